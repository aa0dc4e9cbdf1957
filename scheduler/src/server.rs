//! Start-up and shutdown: the one place that wires the parts together — data directory,
//! certificates, store, core, background tasks, the API listener and local agents.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use yunji_common::fsutil::write_private;
use yunji_common::pki::{self, CertificateAuthority, Identity, SCHEDULER_CLIENT_NAME};

use crate::agents::AgentClient;
use crate::agents::local::{LocalAgent, supervise};
use crate::config::{Config, DriverChoice};
use crate::core::{Bootstrapped, Core, NodePki};
use crate::store::Store;

/// Where things live in the data directory.
#[derive(Debug, Clone)]
pub struct DataPaths {
    pub root: PathBuf,
}

impl DataPaths {
    pub fn database(&self) -> PathBuf {
        self.root.join("yunji.db")
    }
    pub fn admin_password(&self) -> PathBuf {
        self.root.join("admin-password")
    }
    pub fn clouds_yaml(&self) -> PathBuf {
        self.root.join("clouds.yaml")
    }
    pub fn join_token(&self) -> PathBuf {
        self.root.join("join-token")
    }
    pub fn tls_dir(&self) -> PathBuf {
        self.root.join("tls")
    }
    /// The CA a client trusts when the API certificate was made here.
    pub fn api_ca(&self) -> PathBuf {
        self.tls_dir().join("api-ca.crt")
    }
    pub fn pki_dir(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn agent_dir(&self, node: &str) -> PathBuf {
        self.root.join("agents").join(node)
    }
}

/// A running scheduler.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub core: Arc<Core>,
    pub paths: DataPaths,
    /// The join token agents need (`data-dir/join-token`).
    pub join_token: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, stops local agents.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// Starts the scheduler as configured; returns once it is listening.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let paths = DataPaths {
        root: config.data_dir.clone(),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let public_url = config.public_url(addr);

    // Everything on disk is prepared on the blocking pool.
    let prepared = {
        let (config, paths, public_url) = (config.clone(), paths.clone(), public_url.clone());
        tokio::task::spawn_blocking(move || prepare(&config, &paths, &public_url)).await??
    };

    let agents = AgentClient::new(pki::mutual_client_config(
        &prepared.scheduler_client,
        &prepared.node_ca_pem,
    )?);
    let pki = NodePki {
        join_secret: prepared.join_secret,
        ca: prepared.node_ca,
        ca_pem: prepared.node_ca_pem,
    };
    let core = Core::new(
        config.clone(),
        public_url.clone(),
        prepared.store,
        agents,
        pki,
    )?;
    let core = Arc::new_cyclic(|me| core.with_self(me.clone()));

    // Uploads and imports a restart cut short go back to `queued`, their files removed.
    core.images_recover().await?;
    // So do server operations: deletes resume, interrupted builds fail cleanly.
    core.servers_recover().await?;
    core.volumes_recover().await?;
    let generated = match core.bootstrap(config.admin_password.clone()).await? {
        Bootstrapped::Created { admin_password } if config.admin_password.is_none() => {
            tracing::info!(file = %paths.admin_password().display(),
                "new cloud: the admin password was generated into this file");
            Some(admin_password)
        }
        Bootstrapped::Created { .. } => {
            tracing::info!("new cloud: the admin password is YUNJI_ADMIN_PASSWORD's");
            None
        }
        Bootstrapped::Existing => None,
    };
    {
        let (config, paths, public_url) = (config.clone(), paths.clone(), public_url.clone());
        tokio::task::spawn_blocking(move || {
            write_admin_files(&config, &paths, &public_url, generated)
        })
        .await??;
    }

    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let background = vec![
        core.spawn_heartbeats(),
        core.spawn_upkeep(),
        core.spawn_network_sync(),
    ];

    let tls = prepared
        .api_identity
        .as_ref()
        .map(pki::server_config)
        .transpose()?;
    let handler = crate::http::handler(core.clone());
    let mut listener_stop = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        yunji_common::serve::serve(listener, tls, handler, async move {
            let _ = listener_stop.wait_for(|stop| *stop).await;
        })
        .await;
    }));
    tracing::info!(%addr, url = %public_url, "yunji-scheduler listening");

    let join_token = prepared.join_token;
    let driver = match config.driver {
        DriverChoice::Auto => "auto",
        DriverChoice::Sim => "sim",
    };
    for i in 1..=config.local_agents {
        let node_name = format!("node-{i}");
        let agent = LocalAgent {
            data_dir: paths.agent_dir(&node_name),
            node_name,
            scheduler_url: public_url.clone(),
            join_token: join_token.clone(),
            driver,
            sim_capacity: (
                config.agents.sim_vcpus,
                config.agents.sim_memory_mb,
                config.agents.sim_disk_gb,
            ),
        };
        tasks.push(tokio::spawn(supervise(agent, stop_rx.clone())));
    }

    Ok(Running {
        addr,
        public_url,
        core,
        paths,
        join_token,
        stop,
        tasks,
        background,
    })
}

struct Prepared {
    store: Store,
    api_identity: Option<Identity>,
    node_ca: Option<CertificateAuthority>,
    node_ca_pem: String,
    scheduler_client: Identity,
    join_secret: String,
    join_token: String,
}

fn prepare(config: &Config, paths: &DataPaths, public_url: &str) -> anyhow::Result<Prepared> {
    create_private_dir(&paths.root)?;

    let api_identity = match (&config.tls.cert, &config.tls.key, config.https()) {
        (_, _, false) => None,
        (Some(cert), Some(key), true) => Some(Identity::load(cert, key)?),
        _ => {
            let ca =
                CertificateAuthority::load_or_create(&paths.tls_dir(), "api-ca", "yunji API CA")?;
            // The leaf is re-issued at every start, so it always names the current URL.
            Some(ca.issue_server(&api_names(config.listen, public_url))?)
        }
    };

    let (node_ca, node_ca_pem, scheduler_client) = match (
        &config.agents.ca_cert,
        &config.agents.client_cert,
        &config.agents.client_key,
    ) {
        (Some(ca), Some(cert), Some(key)) => (
            None,
            std::fs::read_to_string(ca).with_context(|| format!("reading {}", ca.display()))?,
            Identity::load(cert, key)?,
        ),
        _ => {
            let ca =
                CertificateAuthority::load_or_create(&paths.pki_dir(), "node-ca", "yunji node CA")?;
            let client = ca.issue_client(SCHEDULER_CLIENT_NAME)?;
            let pem = ca.cert_pem().to_string();
            (Some(ca), pem, client)
        }
    };

    let join_secret = match std::fs::read_to_string(paths.join_token()) {
        Ok(token) => token
            .trim()
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::new(),
    };
    let join_secret = if join_secret.is_empty() {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    } else {
        join_secret
    };
    // With HTTPS the token pins the API certificate's CA, so a joining agent needs
    // nothing else, and the token survives the leaf being re-issued at every start.
    let join_token = match &api_identity {
        Some(id) => format!("{join_secret}.{}", id.anchor_fingerprint()?),
        None => join_secret.clone(),
    };
    write_private(&paths.join_token(), join_token.as_bytes())?;

    let store = Store::open(&paths.database())
        .with_context(|| format!("opening the database {}", paths.database().display()))?;
    Ok(Prepared {
        store,
        api_identity,
        node_ca,
        node_ca_pem,
        scheduler_client,
        join_secret,
        join_token,
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}

/// Names the self-made API certificate is valid for.
fn api_names(listen: SocketAddr, public_url: &str) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Ok(uri) = public_url.parse::<http::Uri>()
        && let Some(host) = uri.host()
    {
        names.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim().to_ascii_lowercase();
        if yunji_common::valid_node_name(&host) {
            names.push(host);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// A ready `clouds.yaml` for the admin user (cloud name `yunji`).
pub fn clouds_yaml(
    public_url: &str,
    password: &str,
    region: &str,
    cacert: Option<&Path>,
) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = format!(
        "clouds:\n  yunji:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: {}\n    interface: public\n    identity_api_version: 3\n",
        q(&format!("{public_url}/identity/v3")),
        q(password),
        q(region),
    );
    if let Some(ca) = cacert {
        out.push_str(&format!("    cacert: {}\n", q(&ca.display().to_string())));
    }
    out
}

/// Writes the generated admin password (first start only) and, whenever the password
/// is known, a ready `clouds.yaml` beside it.
fn write_admin_files(
    config: &Config,
    paths: &DataPaths,
    public_url: &str,
    generated: Option<String>,
) -> anyhow::Result<()> {
    if let Some(password) = &generated {
        write_private(&paths.admin_password(), password.as_bytes())?;
    }
    let password = config
        .admin_password
        .clone()
        .or_else(|| std::fs::read_to_string(paths.admin_password()).ok());
    if let Some(password) = password {
        let ca = config
            .https()
            .then(|| paths.api_ca())
            .filter(|_| config.tls.cert.is_none());
        let yaml = clouds_yaml(
            public_url,
            password.trim(),
            &config.identity.region,
            ca.as_deref(),
        );
        write_private(&paths.clouds_yaml(), yaml.as_bytes())?;
        tracing::info!(file = %paths.clouds_yaml().display(), "clouds.yaml written (cloud name: yunji)");
    }
    Ok(())
}
