//! The integration test context: a scheduler and N agents together in one process, the
//! agents on the sim driver set and linked to the scheduler over real mutual TLS on
//! loopback, every test with its own data directory.

// Test support: a failed setup step should stop the test right there.
#![allow(clippy::unwrap_used)]

pub mod rig;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_agent::{AgentConfig, RunningAgent};
use yunji_scheduler::Running;
use yunji_scheduler::config::{Config, DriverChoice};

pub const ADMIN_PASSWORD: &str = "admin-secret";

/// What a test context starts with.
#[derive(Debug, Clone)]
pub struct Options {
    pub agents: usize,
    pub https: bool,
    pub token_ttl_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            agents: 0,
            https: false,
            token_ttl_secs: 3600,
        }
    }
}

pub struct TestContext {
    pub scheduler: Running,
    pub agents: Vec<RunningAgent>,
    pub api: Api,
    pub dir: tempfile::TempDir,
}

/// The context's API client: `ctx.call(…)`, `ctx.url`.
impl std::ops::Deref for TestContext {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A reply: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A scheduler configuration for tests: loopback, a temp dir, cheap password hashing
/// and fast heartbeats.
pub fn test_config(dir: &std::path::Path, options: &Options) -> Config {
    let mut config = Config {
        data_dir: dir.join("scheduler"),
        listen: "127.0.0.1:0".parse().unwrap(),
        local_agents: 0,
        driver: DriverChoice::Sim,
        ..Config::default()
    };
    config.tls.plain_http = !options.https;
    config.identity.argon2_memory_kib = 1024;
    config.identity.argon2_iterations = 1;
    config.identity.token_ttl_secs = options.token_ttl_secs;
    config.agents.heartbeat_secs = 1;
    config.agents.down_after_secs = 3;
    config.admin_password = Some(ADMIN_PASSWORD.into());
    config
}

/// An agent configuration joining `scheduler_url` with `token`.
pub fn agent_config(
    dir: &std::path::Path,
    name: &str,
    scheduler_url: &str,
    token: &str,
) -> AgentConfig {
    AgentConfig {
        scheduler: scheduler_url.into(),
        join_token: token.into(),
        data_dir: dir.join(name),
        node_name: name.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise_url: None,
        driver: yunji_agent::config::DriverChoice::Sim,
        network: yunji_agent::config::NetworkChoice::Sim,
        tls_cert: None,
        tls_key: None,
        ca_cert: None,
        scheduler_ca: None,
        availability_zone: "nova".into(),
        sim_delay_ms: 20,
        sim_vcpus: 16,
        sim_memory_mb: 65_536,
        sim_disk_gb: 1_000,
        graceful_stop_secs: 10,
        thin_pool: None,
        log_format: "text".into(),
    }
}

/// A client of a scheduler's public API: where it listens and how to reach it.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub client: reqwest::Client,
}

impl Api {
    /// A plain-HTTP client of the API at `url`.
    pub fn new(url: String) -> Api {
        Api {
            url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// Sends a request; `token` goes in X-Auth-Token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_at(None, method, path, token, body).await
    }

    /// Sends a request at a microversion: `version` is the whole
    /// `OpenStack-API-Version` value, e.g. `"compute 2.25"`.
    pub async fn call_at(
        &self,
        version: Option<&str>,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", v);
        }
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    /// Sends raw bytes with a content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        Self::reply(req.send().await.unwrap()).await
    }

    pub async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await.unwrap().to_vec();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw)
                .unwrap_or(Value::String(String::from_utf8_lossy(&raw).into()))
        };
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    /// A project-scoped token (by names in the Default domain), or the reply on failure.
    pub async fn try_token(
        &self,
        user: &str,
        password: &str,
        project: Option<&str>,
    ) -> Result<(String, Value), Reply> {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"id": "default"}}});
        }
        let reply = self
            .call(
                Method::POST,
                "/identity/v3/auth/tokens",
                None,
                Some(json!({"auth": auth})),
            )
            .await;
        if reply.status != StatusCode::CREATED {
            return Err(reply);
        }
        Ok((
            reply.header("x-subject-token").unwrap().to_string(),
            reply.body,
        ))
    }

    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        self.try_token(user, password, Some(project))
            .await
            .unwrap()
            .0
    }

    pub async fn admin_token(&self) -> String {
        self.token("admin", ADMIN_PASSWORD, "admin").await
    }

    /// Creates a project and a user holding `role` on it; returns (project id, user id, token).
    pub async fn user_with_role(
        &self,
        admin: &str,
        name: &str,
        role: &str,
    ) -> (String, String, String) {
        let project = self
            .call(
                Method::POST,
                "/identity/v3/projects",
                Some(admin),
                Some(json!({"project": {"name": name}})),
            )
            .await;
        assert_eq!(project.status, StatusCode::CREATED, "{:?}", project.body);
        let project_id = project.body["project"]["id"].as_str().unwrap().to_string();
        let user = self
            .call(
                Method::POST,
                "/identity/v3/users",
                Some(admin),
                Some(json!({"user": {"name": name, "password": "pw"}})),
            )
            .await;
        assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
        let user_id = user.body["user"]["id"].as_str().unwrap().to_string();
        let roles = self
            .call(
                Method::GET,
                &format!("/identity/v3/roles?name={role}"),
                Some(admin),
                None,
            )
            .await;
        let role_id = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
        let grant = self
            .call(
                Method::PUT,
                &format!("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
                Some(admin),
                None,
            )
            .await;
        assert_eq!(grant.status, StatusCode::NO_CONTENT);
        let token = self.token(name, "pw", name).await;
        (project_id, user_id, token)
    }

    /// Waits until `check` holds (polling every 100 ms), or panics after `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A small public raw image, active, for servers to boot.
    pub async fn test_image(&self, admin: &str) -> String {
        let r = self
            .call(
                Method::POST,
                "/image/v2/images",
                Some(admin),
                Some(json!({
                "name": "test-image", "disk_format": "raw", "container_format": "bare",
                "visibility": "public"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["id"].as_str().unwrap().to_string();
        let up = self
            .call_raw(
                Method::PUT,
                &format!("/image/v2/images/{id}/file"),
                Some(admin),
                "application/octet-stream",
                vec![0u8; 1 << 20],
            )
            .await;
        assert_eq!(up.status, StatusCode::NO_CONTENT, "{:?}", up.body);
        id
    }

    /// Waits until a server shows `status`.
    pub async fn wait_server(&self, token: &str, id: &str, status: &str, limit: Duration) {
        let path = format!("/compute/v2.1/servers/{id}");
        let start = Instant::now();
        loop {
            let r = self.call(Method::GET, &path, Some(token), None).await;
            if r.body["server"]["status"] == status {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "server {id} did not become {status} within {limit:?}: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TestContext {
    pub async fn new(options: Options) -> TestContext {
        let dir = tempfile::tempdir().unwrap();
        Self::start(dir, options, |_| {}).await
    }

    /// Starts with a configuration the test may adjust first.
    pub async fn start(
        dir: tempfile::TempDir,
        options: Options,
        adjust: impl FnOnce(&mut Config),
    ) -> TestContext {
        let mut config = test_config(dir.path(), &options);
        adjust(&mut config);
        let scheduler = yunji_scheduler::start(config).await.unwrap();
        let url = scheduler.public_url.clone();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if options.https {
            let ca = std::fs::read(scheduler.paths.api_ca()).unwrap();
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        }
        let mut agents = Vec::new();
        for i in 1..=options.agents {
            let config = agent_config(
                dir.path(),
                &format!("node-{i}"),
                &url,
                &scheduler.join_token,
            );
            agents.push(yunji_agent::start(config).await.unwrap());
        }
        let ctx = TestContext {
            scheduler,
            agents,
            api: Api {
                url,
                client: client.build().unwrap(),
            },
            dir,
        };
        // Placement takes only nodes that are up (after their first heartbeat).
        ctx.wait_nodes_up(options.agents).await;
        ctx
    }

    pub async fn shutdown(self) {
        for agent in self.agents {
            agent.shutdown().await;
        }
        self.scheduler.shutdown().await;
    }

    /// Waits until `n` nodes are up.
    pub async fn wait_nodes_up(&self, n: usize) {
        self.eventually(Duration::from_secs(10), "nodes up", || async {
            let nodes = self.scheduler.core.nodes().await.unwrap();
            nodes
                .iter()
                .filter(|node| node.state == yunji_scheduler::model::NodeState::Up)
                .count()
                >= n
        })
        .await;
    }

    /// A client with the scheduler's identity towards agent `index`.
    pub fn agent_transport(&self, index: usize) -> (yunji_common::client::Transport, String) {
        use yunji_common::pki;
        let ca = pki::CertificateAuthority::load_or_create(
            &self.scheduler.paths.pki_dir(),
            "node-ca",
            "unused",
        )
        .unwrap();
        let client = ca.issue_client(pki::SCHEDULER_CLIENT_NAME).unwrap();
        let name =
            rustls::pki_types::ServerName::try_from(self.agents[index].node_name.clone()).unwrap();
        (
            yunji_common::client::Transport::Tls {
                config: pki::mutual_client_config(&client, ca.cert_pem()).unwrap(),
                server_name: name,
            },
            format!("https://{}", self.agents[index].addr),
        )
    }

    /// Injects a sim fault into agent `index`'s `operation` (`null` clears it).
    pub async fn inject(&self, index: usize, operation: &str, fault: Value) {
        let (transport, url) = self.agent_transport(index);
        let path = format!("/v1/sim/faults/{operation}");
        yunji_common::client::call_json::<_, Value>(
            &transport,
            &url,
            http::Method::PUT,
            &path,
            Some(&fault),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }

    /// Agent `index`'s status, as it reports it.
    pub async fn agent_status(&self, index: usize) -> yunji_common::agent_api::NodeStatus {
        let (transport, url) = self.agent_transport(index);
        yunji_common::client::call_json::<(), _>(
            &transport,
            &url,
            http::Method::GET,
            yunji_common::agent_api::STATUS_PATH,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
    }

    /// The node name of agent `index`.
    pub fn agent_name(&self, index: usize) -> &str {
        &self.agents[index].node_name
    }

    /// The network spec agent `index` carries, as it reports it.
    pub async fn agent_network(&self, index: usize) -> yunji_common::agent_api::NodeNetworkSpec {
        let (transport, url) = self.agent_transport(index);
        yunji_common::client::call_json::<(), _>(
            &transport,
            &url,
            http::Method::GET,
            yunji_common::agent_api::NETWORK_PATH,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
    }

    /// The servers agent `index` runs, as it reports them.
    pub async fn agent_inventory(
        &self,
        index: usize,
    ) -> Vec<yunji_common::agent_api::ServerInventory> {
        self.agent_status(index).await.inventory.servers
    }

    /// The storage agent `index` reports: capacity, volumes, snapshots.
    pub async fn agent_storage(&self, index: usize) -> yunji_common::agent_api::StorageStatus {
        let (transport, url) = self.agent_transport(index);
        let status: yunji_common::agent_api::NodeStatus = yunji_common::client::call_json::<(), _>(
            &transport,
            &url,
            http::Method::GET,
            yunji_common::agent_api::STATUS_PATH,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        status.storage.unwrap_or_default()
    }
}
