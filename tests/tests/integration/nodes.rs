//! Scheduler and agents over mutual TLS: joining, heartbeats, down detection, and the
//! refusal of certificates from another CA, or none.

use std::time::Duration;

use http::Method;
use rustls::pki_types::ServerName;
use yunji_common::agent_api::{Drivers, NodeStatus, STATUS_PATH};
use yunji_common::client::{CallError, Transport, call_json};
use yunji_common::pki::{self, CertificateAuthority, Identity};
use yunji_scheduler::model::NodeState;
use yunji_tests::{Options, TestContext, agent_config};

async fn node_state(ctx: &TestContext, name: &str) -> Option<NodeState> {
    ctx.scheduler
        .core
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.state)
}

fn agent_url(ctx: &TestContext, i: usize) -> String {
    format!("https://{}", ctx.agents[i].addr)
}

#[tokio::test]
async fn agents_join_and_report_capacity_over_mutual_tls() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    ctx.eventually(Duration::from_secs(10), "both nodes up", || async {
        node_state(&ctx, "node-1").await == Some(NodeState::Up)
            && node_state(&ctx, "node-2").await == Some(NodeState::Up)
    })
    .await;
    let nodes = ctx.scheduler.core.nodes().await.unwrap();
    let status = nodes[0].status.as_ref().unwrap();
    assert_eq!(status.node_name, "node-1");
    assert_eq!(status.drivers, Drivers::SIM);
    assert_eq!(status.capacity.vcpus, 16);
    assert_eq!(status.capacity.memory_mb, 65_536);
    // The scheduler's identity is accepted by the agent directly too.
    let (transport, url) = ctx.agent_transport(1);
    let direct: NodeStatus = call_json::<(), _>(
        &transport,
        &url,
        Method::GET,
        STATUS_PATH,
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(direct.node_name, "node-2");
    ctx.shutdown().await;
}

#[tokio::test]
async fn https_scheduler_is_joined_through_the_pinned_fingerprint() {
    let ctx = TestContext::new(Options {
        agents: 1,
        https: true,
        ..Options::default()
    })
    .await;
    assert_eq!(
        ctx.scheduler.join_token.split('.').nth(1).map(str::len),
        Some(64)
    );
    ctx.eventually(Duration::from_secs(10), "node up", || async {
        node_state(&ctx, "node-1").await == Some(NodeState::Up)
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_join_token_survives_a_scheduler_restart_and_a_wrong_pin_is_refused() {
    let ctx = TestContext::new(Options {
        https: true,
        ..Options::default()
    })
    .await;
    let token = ctx.scheduler.join_token.clone();
    let TestContext { scheduler, dir, .. } = ctx;
    scheduler.shutdown().await;
    let ctx = TestContext::start(
        dir,
        Options {
            https: true,
            ..Options::default()
        },
        |_| {},
    )
    .await;
    assert_eq!(
        ctx.scheduler.join_token, token,
        "the token pins the CA, not the re-issued leaf"
    );
    let agent = yunji_agent::start(agent_config(ctx.dir.path(), "node-9", &ctx.url, &token))
        .await
        .unwrap();
    ctx.eventually(Duration::from_secs(10), "node up", || async {
        node_state(&ctx, "node-9").await == Some(NodeState::Up)
    })
    .await;
    agent.shutdown().await;
    let secret = token.split('.').next().unwrap();
    let wrong_pin = format!("{secret}.{}", "0".repeat(64));
    let err = match yunji_agent::start(agent_config(ctx.dir.path(), "node-8", &ctx.url, &wrong_pin))
        .await
    {
        Ok(_) => panic!("joined a scheduler whose certificate does not match the pin"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("join token"), "{err}");
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_second_agent_on_a_data_directory_is_refused_and_says_who_holds_it() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let config = agent_config(
        ctx.dir.path(),
        "node-1",
        &ctx.url,
        &ctx.scheduler.join_token,
    );
    let error = yunji_agent::start(config).await.err().unwrap().to_string();
    let me = std::process::id();
    assert!(
        error.contains(&format!("another yunji-agent (pid {me}) is running on"))
            && error.contains("its own --data-dir"),
        "{error}"
    );
    // The first agent is untouched.
    assert_eq!(node_state(&ctx, "node-1").await, Some(NodeState::Up));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_wrong_join_token_is_refused() {
    let ctx = TestContext::new(Options::default()).await;
    let config = agent_config(ctx.dir.path(), "intruder", &ctx.url, "not-the-token");
    let err = match yunji_agent::start(config).await {
        Ok(_) => panic!("an agent with a wrong token joined"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("join token is wrong"), "{err}");
    assert_eq!(node_state(&ctx, "intruder").await, None);
    ctx.shutdown().await;
}

#[tokio::test]
async fn agents_refuse_clients_without_a_certificate_from_the_node_ca() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let ca_pem =
        std::fs::read_to_string(ctx.scheduler.paths.pki_dir().join("node-ca.crt")).unwrap();
    let name = ServerName::try_from("node-1".to_string()).unwrap();
    let url = agent_url(&ctx, 0);
    let status = |transport: Transport| {
        let url = url.clone();
        async move {
            call_json::<(), NodeStatus>(
                &transport,
                &url,
                Method::GET,
                STATUS_PATH,
                None,
                Duration::from_secs(5),
            )
            .await
        }
    };
    // No client certificate at all.
    let anonymous = Transport::Tls {
        config: pki::client_config_trusting(&ca_pem).unwrap(),
        server_name: name.clone(),
    };
    assert!(matches!(
        status(anonymous).await,
        Err(CallError::Tls { .. } | CallError::Http { .. })
    ));
    // A client certificate from another CA.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue =
        CertificateAuthority::load_or_create(rogue_dir.path(), "rogue", "rogue CA").unwrap();
    let impostor = rogue.issue_client(pki::SCHEDULER_CLIENT_NAME).unwrap();
    let foreign = Transport::Tls {
        config: pki::mutual_client_config(&impostor, &ca_pem).unwrap(),
        server_name: name.clone(),
    };
    assert!(status(foreign).await.is_err());
    // Another node's certificate (right CA, but serverAuth only) cannot call an agent.
    let node_identity = Identity::load(
        &ctx.dir.path().join("node-1/node.crt"),
        &ctx.dir.path().join("node-1/node.key"),
    )
    .unwrap();
    let sibling = Transport::Tls {
        config: pki::mutual_client_config(&node_identity, &ca_pem).unwrap(),
        server_name: name,
    };
    assert!(status(sibling).await.is_err());
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_agent_with_a_certificate_from_another_ca_never_comes_up() {
    let ctx = TestContext::new(Options::default()).await;
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue =
        CertificateAuthority::load_or_create(rogue_dir.path(), "rogue", "rogue CA").unwrap();
    let (key_pem, csr) = pki::node_key_and_csr("node-x").unwrap();
    let cert_pem = rogue.sign_node_csr("node-x", &csr).unwrap();
    let (cert, key) = (
        rogue_dir.path().join("x.crt"),
        rogue_dir.path().join("x.key"),
    );
    Identity { cert_pem, key_pem }.save(&cert, &key).unwrap();
    let mut config = agent_config(
        ctx.dir.path(),
        "node-x",
        &ctx.url,
        &ctx.scheduler.join_token,
    );
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    config.ca_cert = Some(ctx.scheduler.paths.pki_dir().join("node-ca.crt"));
    let agent = yunji_agent::start(config).await.unwrap();
    ctx.eventually(
        Duration::from_secs(10),
        "the impostor marked down",
        || async { node_state(&ctx, "node-x").await == Some(NodeState::Down) },
    )
    .await;
    let node = ctx
        .scheduler
        .core
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == "node-x")
        .unwrap();
    assert!(node.last_seen.is_none(), "never heard from over mutual TLS");
    assert!(node.error.unwrap().contains("TLS"));
    agent.shutdown().await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_node_that_stops_answering_is_marked_down_and_comes_back() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    ctx.eventually(Duration::from_secs(10), "node up", || async {
        node_state(&ctx, "node-1").await == Some(NodeState::Up)
    })
    .await;
    ctx.inject(0, "status", serde_json::json!({"fail_times": null}))
        .await;
    ctx.eventually(Duration::from_secs(10), "node down", || async {
        node_state(&ctx, "node-1").await == Some(NodeState::Down)
    })
    .await;
    ctx.inject(0, "status", serde_json::Value::Null).await;
    ctx.eventually(Duration::from_secs(10), "node up again", || async {
        node_state(&ctx, "node-1").await == Some(NodeState::Up)
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn operator_provided_certificates_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("operator-pki");
    let ca = CertificateAuthority::load_or_create(&pki_dir, "ca", "operator CA").unwrap();
    let scheduler_client = ca.issue_client(pki::SCHEDULER_CLIENT_NAME).unwrap();
    scheduler_client
        .save(
            &pki_dir.join("scheduler.crt"),
            &pki_dir.join("scheduler.key"),
        )
        .unwrap();
    let (key_pem, csr) = pki::node_key_and_csr("node-op").unwrap();
    let cert_pem = ca.sign_node_csr("node-op", &csr).unwrap();
    Identity { cert_pem, key_pem }
        .save(&pki_dir.join("node.crt"), &pki_dir.join("node.key"))
        .unwrap();
    let p = pki_dir.clone();
    let ctx = TestContext::start(dir, Options::default(), move |c| {
        c.agents.ca_cert = Some(p.join("ca.crt"));
        c.agents.client_cert = Some(p.join("scheduler.crt"));
        c.agents.client_key = Some(p.join("scheduler.key"));
    })
    .await;
    let mut config = agent_config(
        ctx.dir.path(),
        "node-op",
        &ctx.url,
        &ctx.scheduler.join_token,
    );
    config.tls_cert = Some(pki_dir.join("node.crt"));
    config.tls_key = Some(pki_dir.join("node.key"));
    config.ca_cert = Some(pki_dir.join("ca.crt"));
    let agent = yunji_agent::start(config).await.unwrap();
    ctx.eventually(Duration::from_secs(10), "node up", || async {
        node_state(&ctx, "node-op").await == Some(NodeState::Up)
    })
    .await;
    agent.shutdown().await;
    ctx.shutdown().await;
}
