//! Octavia listeners, pools, members and health monitors, cascade delete, and the
//! standard's nodes extension (`nodes` in the view, `PATCH …/nodes`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::load_balancers::{create_lb, wait_active};
use crate::routers::private_network;

const V2: &str = "/load-balancer/v2/lbaas";

async fn post(ctx: &TestContext, token: &str, path: &str, body: Value) -> Reply {
    ctx.call(
        Method::POST,
        &format!("{V2}{path}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn get(ctx: &TestContext, token: &str, path: &str) -> Reply {
    ctx.call(Method::GET, &format!("{V2}{path}"), Some(token), None)
        .await
}

/// Creates under the load balancer `lb` and waits for it to be ACTIVE again.
async fn made(ctx: &TestContext, token: &str, lb: &str, path: &str, body: Value) -> Value {
    let r = post(ctx, token, path, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{path}: {}", r.body);
    wait_active(ctx, token, lb).await;
    r.body.as_object().unwrap().values().next().unwrap().clone()
}

async fn nodes(ctx: &TestContext, token: &str, lb: &str, body: Value) -> Reply {
    ctx.call(
        Method::PATCH,
        &format!("{V2}/loadbalancers/{lb}/nodes"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn listeners_pools_members_and_monitors_hang_below_a_load_balancer() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, bob) = ctx.user_with_role(&admin, "bob", "member").await;
    let (_, subnet) = private_network(&ctx, &member).await;
    let lb = create_lb(
        &ctx,
        &member,
        json!({"name": "web", "vip_subnet_id": subnet}),
    )
    .await;
    let lb_id = lb["id"].as_str().unwrap().to_string();
    wait_active(&ctx, &member, &lb_id).await;

    let listener = made(
        &ctx,
        &member,
        &lb_id,
        "/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}}),
    )
    .await;
    let same_port = post(
        &ctx,
        &member,
        "/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
    )
    .await;
    let bad_protocol = post(
        &ctx,
        &member,
        "/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "QUIC", "protocol_port": 81}}),
    )
    .await;
    let pool = made(&ctx, &member, &lb_id, "/pools",
        json!({"pool": {"listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})).await;
    let pool_id = pool["id"].as_str().unwrap().to_string();
    let second_default = post(&ctx, &member, "/pools",
        json!({"pool": {"listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "SOURCE_IP"}})).await;
    let bad_algorithm = post(
        &ctx,
        &member,
        "/pools",
        json!({"pool": {"loadbalancer_id": lb_id, "protocol": "HTTP", "lb_algorithm": "RANDOM"}}),
    )
    .await;
    let web1 = made(
        &ctx,
        &member,
        &lb_id,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "10.0.0.11", "protocol_port": 8080, "weight": 2}}),
    )
    .await;
    let duplicate = post(
        &ctx,
        &member,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "10.0.0.11", "protocol_port": 8080}}),
    )
    .await;
    let outside = post(
        &ctx,
        &member,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "192.0.2.9", "protocol_port": 80}}),
    )
    .await;
    let monitor = made(&ctx, &member, &lb_id, "/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}})).await;
    let second_monitor = post(&ctx, &member, "/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool_id, "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}})).await;
    let slow_monitor = post(&ctx, &member, "/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool_id, "type": "TCP", "delay": 2, "timeout": 3, "max_retries": 3}})).await;
    let shown_lb = get(&ctx, &member, &format!("/loadbalancers/{lb_id}")).await;
    let shown_pool = get(&ctx, &member, &format!("/pools/{pool_id}")).await;
    let bob_pool = get(&ctx, &bob, &format!("/pools/{pool_id}")).await;
    let bob_member = post(
        &ctx,
        &bob,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "10.0.0.12", "protocol_port": 80}}),
    )
    .await;
    let no_token = ctx
        .call(Method::GET, &format!("{V2}/listeners"), None, None)
        .await;
    let plain_delete = ctx
        .call(
            Method::DELETE,
            &format!("{V2}/loadbalancers/{lb_id}"),
            Some(&member),
            None,
        )
        .await;

    assert_eq!(listener["protocol_port"], 80);
    assert_eq!(listener["loadbalancers"], json!([{"id": lb_id}]));
    assert_eq!(same_port.status, StatusCode::CONFLICT, "{}", same_port.body);
    assert_eq!(bad_protocol.status, StatusCode::BAD_REQUEST);
    assert_eq!(pool["lb_algorithm"], "ROUND_ROBIN");
    assert_eq!(
        second_default.status,
        StatusCode::CONFLICT,
        "{}",
        second_default.body
    );
    assert_eq!(bad_algorithm.status, StatusCode::BAD_REQUEST);
    assert_eq!(web1["weight"], 2);
    assert_eq!(web1["operating_status"], "NO_MONITOR");
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(outside.status, StatusCode::BAD_REQUEST, "{}", outside.body);
    assert_eq!(monitor["type"], "HTTP");
    assert_eq!(monitor["url_path"], "/");
    assert_eq!(second_monitor.status, StatusCode::CONFLICT);
    assert_eq!(slow_monitor.status, StatusCode::BAD_REQUEST);
    let lb_view = &shown_lb.body["loadbalancer"];
    assert_eq!(lb_view["listeners"], json!([{"id": listener["id"]}]));
    assert_eq!(lb_view["pools"], json!([{"id": pool_id}]));
    assert_eq!(
        lb_view["nodes"],
        json!([{"id": null, "name": "", "address": "10.0.0.11", "protocol_port": 8080}])
    );
    assert_eq!(
        shown_pool.body["pool"]["members"],
        json!([{"id": web1["id"]}])
    );
    assert_eq!(shown_pool.body["pool"]["healthmonitor_id"], monitor["id"]);
    assert_eq!(bob_pool.status, StatusCode::NOT_FOUND);
    assert_eq!(bob_member.status, StatusCode::NOT_FOUND);
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        plain_delete.status,
        StatusCode::CONFLICT,
        "{}",
        plain_delete.body
    );

    // Cascade takes everything, and the VIP port.
    let cascade = ctx
        .call(
            Method::DELETE,
            &format!("{V2}/loadbalancers/{lb_id}?cascade=true"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(cascade.status, StatusCode::NO_CONTENT, "{}", cascade.body);
    assert_eq!(
        get(&ctx, &member, &format!("/pools/{pool_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let listeners = get(&ctx, &member, "/listeners").await;
    assert_eq!(listeners.body["listeners"], json!([]));
    let vip = ctx
        .call(
            Method::GET,
            &format!("/network/v2.0/ports?device_id={lb_id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(vip.body["ports"], json!([]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn nodes_are_added_and_removed_by_server_or_address_on_the_default_pool() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (net, subnet) = private_network(&ctx, &admin).await;
    let lb = create_lb(
        &ctx,
        &admin,
        json!({"name": "gis", "vip_subnet_id": subnet}),
    )
    .await;
    let lb_id = lb["id"].as_str().unwrap().to_string();
    wait_active(&ctx, &admin, &lb_id).await;
    let boot = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&admin),
            Some(
                json!({"server": {"name": "tiles", "flavorRef": "1", "imageRef": image,
                "networks": [{"uuid": net}]}}),
            ),
        )
        .await;
    let server = boot.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &server, "ACTIVE", Duration::from_secs(20))
        .await;
    let elsewhere = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&admin),
            Some(
                json!({"server": {"name": "lonely", "flavorRef": "1", "imageRef": image,
                "networks": "none"}}),
            ),
        )
        .await;
    let lonely = elsewhere.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &lonely, "ACTIVE", Duration::from_secs(20))
        .await;

    // No listener yet: a 409 that says what to create.
    let too_early = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"add": [{"address": "10.0.0.50", "protocol_port": 80}]}),
    )
    .await;
    let listener = made(
        &ctx,
        &admin,
        &lb_id,
        "/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 80}}),
    )
    .await;
    let no_pool = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"add": [{"address": "10.0.0.50", "protocol_port": 80}]}),
    )
    .await;
    made(&ctx, &admin, &lb_id, "/pools",
        json!({"pool": {"listener_id": listener["id"], "protocol": "TCP", "lb_algorithm": "LEAST_CONNECTIONS"}})).await;

    let added = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"add": [
        {"server_id": server, "protocol_port": 8080},
        {"address": "10.0.0.50", "protocol_port": 80}]}),
    )
    .await;
    wait_active(&ctx, &admin, &lb_id).await;
    let not_on_network = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"add": [{"server_id": lonely, "protocol_port": 80}]}),
    )
    .await;
    wait_active(&ctx, &admin, &lb_id).await;
    let both = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"add": [{"server_id": server, "address": "10.0.0.9", "protocol_port": 80}]}),
    )
    .await;
    let removed = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"remove": [{"server_id": server}]}),
    )
    .await;
    wait_active(&ctx, &admin, &lb_id).await;
    let unknown = nodes(
        &ctx,
        &admin,
        &lb_id,
        json!({"remove": [{"address": "10.0.0.99"}]}),
    )
    .await;
    let shown = get(&ctx, &admin, &format!("/loadbalancers/{lb_id}")).await;

    assert_eq!(too_early.status, StatusCode::CONFLICT, "{}", too_early.body);
    assert!(
        too_early.body["faultstring"]
            .as_str()
            .unwrap()
            .contains("listener")
    );
    assert_eq!(no_pool.status, StatusCode::CONFLICT, "{}", no_pool.body);
    assert!(
        no_pool.body["faultstring"]
            .as_str()
            .unwrap()
            .contains("default pool")
    );
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let listed = added.body["loadbalancer"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["id"], server.as_str());
    assert_eq!(listed[0]["name"], "tiles");
    assert!(
        listed[0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.0.0.")
    );
    assert_eq!(listed[0]["protocol_port"], 8080);
    assert_eq!(listed[1]["address"], "10.0.0.50");
    assert_eq!(
        not_on_network.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_on_network.body
    );
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        shown.body["loadbalancer"]["nodes"],
        json!([{"id": null, "name": "", "address": "10.0.0.50", "protocol_port": 80}])
    );
    ctx.shutdown().await;
}

/// The load balancers the agent `index` carries.
async fn carried(
    ctx: &TestContext,
    index: usize,
) -> Vec<yunji_common::agent_api::LoadBalancerSpec> {
    ctx.agent_network(index).await.load_balancers
}

#[tokio::test]
async fn the_node_carrying_the_vip_is_pushed_every_listener_pool_member_and_monitor() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, subnet) = private_network(&ctx, &admin).await;
    let lb = create_lb(&ctx, &admin, json!({"vip_subnet_id": subnet})).await;
    let lb_id = lb["id"].as_str().unwrap().to_string();
    wait_active(&ctx, &admin, &lb_id).await;
    let vip = ctx
        .call(
            Method::GET,
            &format!(
                "/network/v2.0/ports/{}",
                lb["vip_port_id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    let host = vip.body["port"]["binding:host_id"]
        .as_str()
        .unwrap()
        .to_string();
    let index = (0..2).find(|&i| ctx.agent_name(i) == host).unwrap();
    let listener = made(
        &ctx,
        &admin,
        &lb_id,
        "/listeners",
        json!({"listener": {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 8080}}),
    )
    .await;
    let pool = made(&ctx, &admin, &lb_id, "/pools",
        json!({"pool": {"listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})).await;
    let pool_id = pool["id"].as_str().unwrap();
    let member = made(
        &ctx,
        &admin,
        &lb_id,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "10.0.0.21", "protocol_port": 80, "weight": 3}}),
    )
    .await;
    made(
        &ctx,
        &admin,
        &lb_id,
        &format!("/pools/{pool_id}/members"),
        json!({"member": {"address": "10.0.0.22", "protocol_port": 80, "admin_state_up": false}}),
    )
    .await;
    made(
        &ctx,
        &admin,
        &lb_id,
        "/healthmonitors",
        json!({"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 2, "timeout": 1,
            "max_retries": 2, "url_path": "/health"}}),
    )
    .await;
    ctx.eventually(
        Duration::from_secs(10),
        "the monitor on the node",
        || async {
            carried(&ctx, index).await.first().is_some_and(|lb| {
                lb.listeners
                    .first()
                    .and_then(|l| l.pool.as_ref())
                    .is_some_and(|p| p.health_monitor.is_some())
            })
        },
    )
    .await;
    let lbs = carried(&ctx, index).await;
    assert_eq!(lbs.len(), 1);
    assert_eq!(lbs[0].id, lb_id);
    assert_eq!(lbs[0].vip_address, lb["vip_address"].as_str().unwrap());
    let listener_spec = &lbs[0].listeners[0];
    assert_eq!(
        (listener_spec.protocol.as_str(), listener_spec.protocol_port),
        ("HTTP", 8080)
    );
    let pool_spec = listener_spec.pool.as_ref().unwrap();
    assert_eq!(pool_spec.algorithm, "ROUND_ROBIN");
    // The member that is down takes no traffic, so the node is not given it.
    assert_eq!(pool_spec.members.len(), 1, "{pool_spec:?}");
    assert_eq!(
        (
            pool_spec.members[0].address.as_str(),
            pool_spec.members[0].weight
        ),
        ("10.0.0.21", 3)
    );
    let monitor = pool_spec.health_monitor.as_ref().unwrap();
    assert_eq!(
        (
            monitor.kind.as_str(),
            monitor.delay_secs,
            monitor.url_path.as_deref()
        ),
        ("HTTP", 2, Some("/health"))
    );
    // The other node carries no load balancer.
    assert!(ctx.agent_network(1 - index).await.load_balancers.is_empty());

    // A member removed is gone from the node; the load balancer deleted, all of it.
    let r = ctx
        .call(
            Method::DELETE,
            &format!(
                "{V2}/pools/{pool_id}/members/{}",
                member["id"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    ctx.eventually(
        Duration::from_secs(10),
        "the member off the node",
        || async {
            carried(&ctx, index).await[0].listeners[0]
                .pool
                .as_ref()
                .unwrap()
                .members
                .is_empty()
        },
    )
    .await;
    wait_active(&ctx, &admin, &lb_id).await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{V2}/loadbalancers/{lb_id}?cascade=true"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    ctx.eventually(
        Duration::from_secs(10),
        "the load balancer off the node",
        || async {
            carried(&ctx, index).await.is_empty() && ctx.agent_network(index).await.ports.is_empty()
        },
    )
    .await;
    ctx.shutdown().await;
}

async fn provisioning(ctx: &TestContext, token: &str, path: &str) -> Value {
    let r = ctx.call(Method::GET, path, Some(token), None).await;
    r.body["loadbalancer"]["provisioning_status"].clone()
}

#[tokio::test]
async fn a_load_balancer_its_node_cannot_apply_turns_error_and_an_update_retries_it() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, subnet) = private_network(&ctx, &admin).await;
    ctx.inject(0, "network_apply", json!({"fail_times": null}))
        .await;
    let lb = create_lb(&ctx, &admin, json!({"vip_subnet_id": subnet})).await;
    let path = format!("{V2}/loadbalancers/{}", lb["id"].as_str().unwrap());
    ctx.eventually(
        Duration::from_secs(15),
        "the load balancer ERROR",
        || async { provisioning(&ctx, &admin, &path).await == "ERROR" },
    )
    .await;
    assert!(ctx.agent_network(0).await.load_balancers.is_empty());

    // Once the node applies again, an update provisions it.
    ctx.inject(0, "network_apply", Value::Null).await;
    let r = ctx
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"loadbalancer": {"name": "again"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ctx.eventually(
        Duration::from_secs(15),
        "the load balancer ACTIVE",
        || async { provisioning(&ctx, &admin, &path).await == "ACTIVE" },
    )
    .await;
    assert_eq!(carried(&ctx, 0).await.len(), 1);
    ctx.shutdown().await;
}
