//! The network side of nodes: a server's node is pushed its network and port, the port
//! turns ACTIVE once carried, the spec is withdrawn when the server goes, and a failed
//! push is retried until the node carries the change.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, TestContext};

use crate::network::{create_network, create_subnet};

const WAIT: Duration = Duration::from_secs(20);

async fn cloud(agents: usize) -> (TestContext, String, String) {
    let ctx = TestContext::new(Options {
        agents,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(agents).await;
    let image = ctx.test_image(&admin).await;
    (ctx, admin, image)
}

async fn network(ctx: &TestContext, admin: &str) -> String {
    let n = create_network(ctx, admin, json!({"name": "private"})).await;
    let id = n["id"].as_str().unwrap().to_string();
    create_subnet(
        ctx,
        admin,
        json!({"network_id": id, "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    id
}

async fn boot(ctx: &TestContext, admin: &str, image: &str, net: &str) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(admin),
            Some(
                json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                                   "networks": [{"uuid": net}]}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_string()
}

async fn port_of(ctx: &TestContext, admin: &str, server: &str) -> Value {
    let r = ctx
        .call(
            Method::GET,
            &format!("/network/v2.0/ports?device_id={server}"),
            Some(admin),
            None,
        )
        .await;
    r.body["ports"][0].clone()
}

#[tokio::test]
async fn a_servers_node_carries_its_network_and_port_until_the_server_is_deleted() {
    let (ctx, admin, image) = cloud(1).await;
    let net = network(&ctx, &admin).await;

    let id = boot(&ctx, &admin, &image, &net).await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let port_id = port_of(&ctx, &admin, &id).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    ctx.eventually(WAIT, "node-1 carrying the port", || async {
        ctx.agent_status(0).await.network.ports == vec![port_id.clone()]
    })
    .await;
    ctx.eventually(WAIT, "the port ACTIVE", || async {
        port_of(&ctx, &admin, &id).await["status"] == "ACTIVE"
    })
    .await;
    let carried = ctx.agent_status(0).await.network;
    ctx.call(
        Method::DELETE,
        &format!("/compute/v2.1/servers/{id}"),
        Some(&admin),
        None,
    )
    .await;
    ctx.eventually(WAIT, "the spec withdrawn from node-1", || async {
        let now = ctx.agent_status(0).await.network;
        now.ports.is_empty() && now.networks.is_empty()
    })
    .await;
    let after = ctx.agent_status(0).await.network;

    assert_eq!(carried.networks, vec![net]);
    assert!(after.generation > carried.generation);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_port_stays_down_while_its_node_refuses_and_turns_active_once_a_retry_lands() {
    let (ctx, admin, _) = cloud(1).await;
    let net = network(&ctx, &admin).await;
    ctx.inject(0, "network_apply", json!({"fail_times": null}))
        .await;

    let r = ctx
        .call(
            Method::POST,
            "/network/v2.0/ports",
            Some(&admin),
            Some(json!({"port": {"network_id": net, "binding:host_id": "node-1"}})),
        )
        .await;
    let port_id = r.body["port"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let while_refused = ctx
        .call(
            Method::GET,
            &format!("/network/v2.0/ports/{port_id}"),
            Some(&admin),
            None,
        )
        .await;
    let carried_while_refused = ctx.agent_status(0).await.network;
    ctx.inject(0, "network_apply", Value::Null).await;
    ctx.eventually(WAIT, "the port ACTIVE after a retry", || async {
        ctx.call(
            Method::GET,
            &format!("/network/v2.0/ports/{port_id}"),
            Some(&admin),
            None,
        )
        .await
        .body["port"]["status"]
            == "ACTIVE"
    })
    .await;
    let carried = ctx.agent_status(0).await.network;

    assert_eq!(while_refused.body["port"]["status"], "DOWN");
    assert!(carried_while_refused.ports.is_empty());
    assert_eq!(carried.ports, vec![port_id]);
    ctx.shutdown().await;
}

#[tokio::test]
async fn each_node_is_pushed_only_the_ports_bound_to_it() {
    let (ctx, admin, _) = cloud(2).await;
    let net = network(&ctx, &admin).await;
    let bind = |host: &'static str| {
        let (ctx, admin, net) = (&ctx, &admin, &net);
        async move {
            let r = ctx
                .call(
                    Method::POST,
                    "/network/v2.0/ports",
                    Some(admin),
                    Some(json!({"port": {"network_id": net, "binding:host_id": host}})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["port"]["id"].as_str().unwrap().to_string()
        }
    };

    let on_one = bind("node-1").await;
    let on_two = bind("node-2").await;

    ctx.eventually(WAIT, "each node carrying its own port", || async {
        ctx.agent_status(0).await.network.ports == vec![on_one.clone()]
            && ctx.agent_status(1).await.network.ports == vec![on_two.clone()]
    })
    .await;
    ctx.shutdown().await;
}
