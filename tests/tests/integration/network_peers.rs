//! What a real node needs in its network spec: its own underlay address (the IPv4
//! address of its agent URL) and, per network, the other nodes carrying it as VXLAN
//! peers, kept current as nodes join and leave the network. The agents listen on
//! distinct loopback addresses so that each node's underlay address is its own.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use yunji_common::agent_api::NodeNetworkSpec;
use yunji_tests::{Options, TestContext, agent_config};

use crate::network::{create_network, create_subnet};

const WAIT: Duration = Duration::from_secs(20);

/// A scheduler and agents `node-1`… listening on 127.0.0.2, 127.0.0.3, ….
async fn cloud_on_distinct_addresses(agents: usize) -> (TestContext, String) {
    let mut ctx = TestContext::new(Options::default()).await;
    for i in 1..=agents {
        let mut config = agent_config(
            ctx.dir.path(),
            &format!("node-{i}"),
            &ctx.url,
            &ctx.scheduler.join_token,
        );
        config.listen = format!("127.0.0.{}:0", i + 1).parse().unwrap();
        ctx.agents.push(yunji_agent::start(config).await.unwrap());
    }
    ctx.wait_nodes_up(agents).await;
    let admin = ctx.admin_token().await;
    (ctx, admin)
}

async fn bound_port(ctx: &TestContext, admin: &str, network: &str, node: &str) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/network/v2.0/ports",
            Some(admin),
            // Without security groups, so that only the peer mechanism pushes the
            // other nodes (a group membership change would push them too).
            Some(
                json!({"port": {"network_id": network, "binding:host_id": node,
                                 "port_security_enabled": false, "security_groups": []}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["port"]["id"].as_str().unwrap().to_string()
}

/// The peers a spec lists for `network`; `None` when it does not carry it.
fn peers_of(spec: &NodeNetworkSpec, network: &str) -> Option<Vec<String>> {
    spec.networks
        .iter()
        .find(|n| n.id == network)
        .map(|n| n.peers.clone())
}

/// Waits until agent `index` carries `network` with exactly `expected` as peers.
async fn wait_peers(ctx: &TestContext, index: usize, network: &str, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    let what = format!(
        "node-{} to carry {network} with peers {expected:?}",
        index + 1
    );
    ctx.eventually(WAIT, &what, || async {
        peers_of(&ctx.agent_network(index).await, network).as_ref() == Some(&expected)
    })
    .await;
}

#[tokio::test]
async fn nodes_with_ports_on_a_network_are_each_others_peers_until_one_leaves_it() {
    let (ctx, admin) = cloud_on_distinct_addresses(3).await;
    let net = create_network(&ctx, &admin, json!({"name": "overlay"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    create_subnet(
        &ctx,
        &admin,
        json!({"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;

    let mut ports = Vec::new();
    for node in ["node-1", "node-2", "node-3"] {
        ports.push(bound_port(&ctx, &admin, &net, node).await);
    }
    wait_peers(&ctx, 0, &net, &["127.0.0.3", "127.0.0.4"]).await;
    wait_peers(&ctx, 1, &net, &["127.0.0.2", "127.0.0.4"]).await;
    wait_peers(&ctx, 2, &net, &["127.0.0.2", "127.0.0.3"]).await;
    let node_1_joined = ctx.agent_network(0).await;

    // node-3 loses its only port on the network.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/network/v2.0/ports/{}", ports[2]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    ctx.eventually(WAIT, "node-3 no longer carrying the network", || async {
        ctx.agent_network(2).await.networks.is_empty()
    })
    .await;
    wait_peers(&ctx, 0, &net, &["127.0.0.3"]).await;
    wait_peers(&ctx, 1, &net, &["127.0.0.2"]).await;
    let node_1_after = ctx.agent_network(0).await;
    let node_3_after = ctx.agent_network(2).await;

    assert_eq!(node_1_joined.underlay.as_deref(), Some("127.0.0.2"));
    assert_eq!(node_1_after.underlay.as_deref(), Some("127.0.0.2"));
    assert_eq!(node_3_after.underlay.as_deref(), Some("127.0.0.4"));
    assert_eq!(
        peers_of(&node_1_after, &net),
        Some(vec!["127.0.0.3".to_string()])
    );
    assert!(node_3_after.networks.is_empty());
    ctx.shutdown().await;
}
