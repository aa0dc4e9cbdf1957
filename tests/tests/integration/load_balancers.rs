//! Octavia load balancers: a VIP port from IPAM, PENDING_CREATE/PENDING_UPDATE turning
//! ACTIVE in the background (409 while pending), list filters and paging, delete taking
//! the VIP port with it, the quota, Octavia's error body and the 401/403/404 matrix.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::routers::private_network;

const LB: &str = "/load-balancer/v2/lbaas/loadbalancers";

async fn call(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    ctx.call(method, path, token, body).await
}

pub(crate) async fn create_lb(ctx: &TestContext, token: &str, lb: Value) -> Value {
    let r = call(
        ctx,
        Method::POST,
        LB,
        Some(token),
        Some(json!({"loadbalancer": lb})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["loadbalancer"].clone()
}

pub(crate) async fn wait_active(ctx: &TestContext, token: &str, id: &str) {
    ctx.eventually(
        Duration::from_secs(10),
        "the load balancer ACTIVE",
        || async {
            let r = call(ctx, Method::GET, &format!("{LB}/{id}"), Some(token), None).await;
            r.body["loadbalancer"]["provisioning_status"] == "ACTIVE"
        },
    )
    .await;
}

fn assert_octavia_fault(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["faultcode"], "Client", "{}", r.body);
    assert!(
        r.body["faultstring"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(r.body["debuginfo"].is_null());
}

#[tokio::test]
async fn a_load_balancer_gets_a_vip_port_turns_active_updates_and_deletes_with_its_port() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, subnet) = private_network(&ctx, &member).await;

    let lb = create_lb(
        &ctx,
        &member,
        json!({"name": "web", "description": "front", "vip_subnet_id": subnet}),
    )
    .await;
    let id = lb["id"].as_str().unwrap().to_string();
    assert_eq!(lb["provisioning_status"], "PENDING_CREATE");
    assert_eq!(lb["vip_network_id"], net.as_str());
    assert_eq!(lb["vip_subnet_id"], subnet.as_str());
    assert_eq!(lb["project_id"], project.as_str());
    assert_eq!(lb["tenant_id"], project.as_str());
    assert_eq!(lb["provider"], "yunji");
    assert!(lb["flavor_id"].is_null());
    assert_eq!(lb["listeners"], json!([]));
    assert_eq!(lb["pools"], json!([]));
    assert!(lb["vip_address"].as_str().unwrap().starts_with("10.0.0."));

    let port_id = lb["vip_port_id"].as_str().unwrap();
    let port = call(
        &ctx,
        Method::GET,
        &format!("/network/v2.0/ports/{port_id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(port.status, StatusCode::OK, "{}", port.body);
    assert_eq!(port.body["port"]["device_owner"], "Octavia");
    assert_eq!(port.body["port"]["device_id"], id.as_str());
    assert_eq!(
        port.body["port"]["fixed_ips"][0]["ip_address"],
        lb["vip_address"]
    );

    wait_active(&ctx, &member, &id).await;
    let shown = call(
        &ctx,
        Method::GET,
        &format!("{LB}/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(shown.body["loadbalancer"]["operating_status"], "ONLINE");

    let updated = call(
        &ctx,
        Method::PUT,
        &format!("{LB}/{id}"),
        Some(&member),
        Some(json!({"loadbalancer": {"name": "web2", "admin_state_up": false}})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["loadbalancer"]["name"], "web2");
    assert_eq!(
        updated.body["loadbalancer"]["provisioning_status"],
        "PENDING_UPDATE"
    );
    wait_active(&ctx, &member, &id).await;
    let shown = call(
        &ctx,
        Method::GET,
        &format!("{LB}/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(shown.body["loadbalancer"]["operating_status"], "OFFLINE");

    // The v2.0 prefix serves the same resources.
    let old = call(
        &ctx,
        Method::GET,
        &format!("/load-balancer/v2.0/lbaas/loadbalancers/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.body);

    let deleted = call(
        &ctx,
        Method::DELETE,
        &format!("{LB}/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = call(
        &ctx,
        Method::GET,
        &format!("{LB}/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_octavia_fault(&gone, StatusCode::NOT_FOUND);
    let port = call(
        &ctx,
        Method::GET,
        &format!("/network/v2.0/ports/{port_id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(port.status, StatusCode::NOT_FOUND, "the VIP port must go");
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_taken_vip_address_is_a_409_and_a_cascade_delete_takes_the_vip() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (net, _) = private_network(&ctx, &member).await;
    let lb = create_lb(
        &ctx,
        &member,
        json!({"vip_network_id": net, "vip_address": "10.0.0.50"}),
    )
    .await;
    let id = lb["id"].as_str().unwrap().to_string();
    assert_eq!(lb["vip_address"], "10.0.0.50");
    wait_active(&ctx, &member, &id).await;

    // The address is taken while the load balancer holds it.
    let clash = call(
        &ctx,
        Method::POST,
        LB,
        Some(&member),
        Some(json!({"loadbalancer": {"vip_network_id": net, "vip_address": "10.0.0.50"}})),
    )
    .await;
    assert_octavia_fault(&clash, StatusCode::CONFLICT);

    let deleted = call(
        &ctx,
        Method::DELETE,
        &format!("{LB}/{id}?cascade=true"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let ports = call(
        &ctx,
        Method::GET,
        &format!("/network/v2.0/ports?device_id={id}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(ports.body["ports"], json!([]), "{}", ports.body);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_pending_load_balancer_refuses_changes_with_409() {
    let dir = tempfile::tempdir().unwrap();
    // Applying takes 500 ms: long enough to be seen PENDING_*.
    let ctx = TestContext::start(
        dir,
        Options {
            agents: 1,
            ..Options::default()
        },
        |c| {
            c.load_balancer.apply_delay_ms = 500;
        },
    )
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, subnet) = private_network(&ctx, &member).await;
    let lb = create_lb(&ctx, &member, json!({"vip_subnet_id": subnet})).await;
    let id = lb["id"].as_str().unwrap().to_string();
    wait_active(&ctx, &member, &id).await;
    let update = call(
        &ctx,
        Method::PUT,
        &format!("{LB}/{id}"),
        Some(&member),
        Some(json!({"loadbalancer": {"description": "d"}})),
    )
    .await;
    assert_eq!(update.status, StatusCode::OK);
    assert_eq!(
        update.body["loadbalancer"]["provisioning_status"],
        "PENDING_UPDATE"
    );
    let again = call(
        &ctx,
        Method::PUT,
        &format!("{LB}/{id}"),
        Some(&member),
        Some(json!({"loadbalancer": {"description": "e"}})),
    )
    .await;
    assert_octavia_fault(&again, StatusCode::CONFLICT);
    assert!(
        again.body["faultstring"]
            .as_str()
            .unwrap()
            .contains("PENDING_UPDATE")
    );
    let delete = call(
        &ctx,
        Method::DELETE,
        &format!("{LB}/{id}"),
        Some(&member),
        None,
    )
    .await;
    assert_octavia_fault(&delete, StatusCode::CONFLICT);
    wait_active(&ctx, &member, &id).await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn load_balancers_are_listed_by_filter_and_page() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, subnet) = private_network(&ctx, &member).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let lb = create_lb(
            &ctx,
            &member,
            json!({"name": name, "vip_subnet_id": subnet}),
        )
        .await;
        ids.push(lb["id"].as_str().unwrap().to_string());
    }
    let by_name = call(
        &ctx,
        Method::GET,
        &format!("{LB}?name=b"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(by_name.status, StatusCode::OK);
    assert_eq!(by_name.body["loadbalancers"].as_array().unwrap().len(), 1);
    assert_eq!(by_name.body["loadbalancers"][0]["id"], ids[1].as_str());

    let page = call(
        &ctx,
        Method::GET,
        &format!("{LB}?limit=2"),
        Some(&member),
        None,
    )
    .await;
    let items = page.body["loadbalancers"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(page.body["loadbalancers_links"][0]["rel"], "next");
    let rest = call(
        &ctx,
        Method::GET,
        &format!("{LB}?limit=2&marker={}", ids[1]),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(rest.body["loadbalancers"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["loadbalancers"][0]["id"], ids[2].as_str());

    let bad = call(
        &ctx,
        Method::GET,
        &format!("{LB}?limit=x"),
        Some(&member),
        None,
    )
    .await;
    assert_octavia_fault(&bad, StatusCode::BAD_REQUEST);
    for id in &ids {
        wait_active(&ctx, &member, id).await;
    }
    let active = call(
        &ctx,
        Method::GET,
        &format!("{LB}?provisioning_status=ACTIVE"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(active.body["loadbalancers"].as_array().unwrap().len(), 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_400_that_says_what_to_give() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    for body in [
        json!({"loadbalancer": {"name": "no vip"}}),
        json!({"loadbalancer": {"vip_subnet_id": "x", "colour": "red"}}),
        json!({"lb": {}}),
        json!({"loadbalancer": {"name": 5}}),
    ] {
        let r = call(&ctx, Method::POST, LB, Some(&member), Some(body)).await;
        assert_octavia_fault(&r, StatusCode::BAD_REQUEST);
    }
    let missing = call(
        &ctx,
        Method::POST,
        LB,
        Some(&member),
        Some(json!({"loadbalancer": {"vip_subnet_id": "nope"}})),
    )
    .await;
    assert_octavia_fault(&missing, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_load_balancer_quota_is_checked_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(
        dir,
        Options {
            agents: 1,
            ..Options::default()
        },
        |c| {
            c.load_balancer.default_quota.load_balancer = 1;
        },
    )
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, subnet) = private_network(&ctx, &member).await;
    create_lb(&ctx, &member, json!({"vip_subnet_id": subnet})).await;
    let over = call(
        &ctx,
        Method::POST,
        LB,
        Some(&member),
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    assert_octavia_fault(&over, StatusCode::FORBIDDEN);
    assert!(
        over.body["faultstring"]
            .as_str()
            .unwrap()
            .contains("Quota has been met")
    );
    // Nothing half-made: only the first load balancer's VIP port exists.
    let ports = call(
        &ctx,
        Method::GET,
        "/network/v2.0/ports?device_owner=Octavia",
        Some(&member),
        None,
    )
    .await;
    assert_eq!(ports.body["ports"].as_array().unwrap().len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn tokens_roles_and_projects_are_enforced() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, other) = ctx.user_with_role(&admin, "bob", "member").await;
    let (_, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, subnet) = private_network(&ctx, &member).await;
    let lb = create_lb(&ctx, &member, json!({"vip_subnet_id": subnet})).await;
    let id = lb["id"].as_str().unwrap().to_string();
    wait_active(&ctx, &member, &id).await;
    let one = format!("{LB}/{id}");
    let update = json!({"loadbalancer": {"name": "x"}});

    for (method, path, body) in [
        (Method::GET, LB.to_string(), None),
        (
            Method::POST,
            LB.to_string(),
            Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
        ),
        (Method::GET, one.clone(), None),
        (Method::PUT, one.clone(), Some(update.clone())),
        (Method::DELETE, one.clone(), None),
    ] {
        let r = call(&ctx, method, &path, None, body).await;
        assert_octavia_fault(&r, StatusCode::UNAUTHORIZED);
    }
    let r = call(
        &ctx,
        Method::POST,
        LB,
        Some(&reader),
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    assert_octavia_fault(&r, StatusCode::FORBIDDEN);
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(update.clone())),
        (Method::DELETE, None),
    ] {
        let r = call(&ctx, method, &one, Some(&other), body).await;
        assert_octavia_fault(&r, StatusCode::NOT_FOUND);
    }
    let theirs = call(&ctx, Method::GET, LB, Some(&other), None).await;
    assert_eq!(theirs.body["loadbalancers"], json!([]));
    // Another project's subnet is not theirs to put a VIP on.
    let r = call(
        &ctx,
        Method::POST,
        LB,
        Some(&other),
        Some(json!({"loadbalancer": {"vip_subnet_id": subnet}})),
    )
    .await;
    assert_octavia_fault(&r, StatusCode::NOT_FOUND);
    let all = call(&ctx, Method::GET, LB, Some(&admin), None).await;
    assert_eq!(all.body["loadbalancers"].as_array().unwrap().len(), 1);
    ctx.shutdown().await;
}
