//! The `publicips` extension: an address from the default external network, bound to a
//! server's first port or to a private IP, unbound (400 when bound elsewhere), shown in
//! `GET /floatingips` too and counted by the floating IP quota; 409 without an external
//! network; the 401/403/404 matrix.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::routers::{add_interface, create_router, external_network, private_network};

const N: &str = "/network/v2.0";
const WAIT: Duration = Duration::from_secs(20);

async fn call(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    ctx.call(method, &format!("{N}{path}"), Some(token), body)
        .await
}

#[tokio::test]
async fn without_an_external_network_a_public_ip_is_a_clear_409() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let extensions = call(&ctx, Method::GET, "/extensions/publicips", &member, None).await;
    let r = call(
        &ctx,
        Method::POST,
        "/publicips",
        &member,
        Some(json!({"publicip": {"name": "ip1"}})),
    )
    .await;
    assert_eq!(extensions.status, StatusCode::OK);
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("no external network")
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_public_ip_binds_to_a_server_or_a_private_ip_and_is_a_floating_ip() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let (net, subnet) = private_network(&ctx, &member).await;
    let router = create_router(
        &ctx,
        &member,
        json!({"external_gateway_info": {"network_id": ext}}),
    )
    .await;
    let r = add_interface(
        &ctx,
        &member,
        router["id"].as_str().unwrap(),
        json!({"subnet_id": subnet}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let booted = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&member),
            Some(
                json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                                    "networks": [{"uuid": net}]}}),
            ),
        )
        .await;
    assert_eq!(booted.status, StatusCode::ACCEPTED, "{}", booted.body);
    let server = booted.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &server, "ACTIVE", WAIT).await;
    let port = call(
        &ctx,
        Method::GET,
        &format!("/ports?device_id={server}"),
        &member,
        None,
    )
    .await;
    let private_ip = port.body["ports"][0]["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_string();

    let created = call(
        &ctx,
        Method::POST,
        "/publicips",
        &member,
        Some(json!({"publicip": {"name": "web"}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let ip = created.body["publicip"].clone();
    let id = ip["id"].as_str().unwrap();
    let bind = |body: Value| {
        let path = format!("/publicips/{id}/bind");
        let member = member.clone();
        let ctx = &ctx;
        async move { call(ctx, Method::POST, &path, &member, Some(body)).await }
    };
    let unbind = |body: Value| {
        let path = format!("/publicips/{id}/unbind");
        let member = member.clone();
        let ctx = &ctx;
        async move { call(ctx, Method::POST, &path, &member, Some(body)).await }
    };

    let both = bind(json!({"server_id": server, "private_ip_address": private_ip})).await;
    let by_server = bind(json!({"server_id": server})).await;
    let as_floating = call(
        &ctx,
        Method::GET,
        &format!("/floatingips/{id}"),
        &member,
        None,
    )
    .await;
    let unbind_other = unbind(json!({"private_ip_address": "10.0.0.250"})).await;
    let unbound = unbind(json!({"server_id": server})).await;
    let by_private = bind(json!({"private_ip_address": private_ip})).await;
    let listed = call(&ctx, Method::GET, "/publicips", &member, None).await;
    let unbound_private = unbind(json!({"private_ip_address": private_ip})).await;
    let deleted = call(
        &ctx,
        Method::DELETE,
        &format!("/publicips/{id}"),
        &member,
        None,
    )
    .await;
    let gone = call(
        &ctx,
        Method::GET,
        &format!("/publicips/{id}"),
        &member,
        None,
    )
    .await;

    assert_eq!(ip["name"], "web");
    assert_eq!(ip["public_ip_address"], "203.0.113.3");
    assert_eq!(ip["status"], "DOWN");
    assert_eq!(ip["server_id"], Value::Null);
    assert_eq!(ip["private_ip_address"], Value::Null);
    assert!(ip["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(by_server.status, StatusCode::OK, "{}", by_server.body);
    assert_eq!(by_server.body["publicip"]["server_id"], server.as_str());
    assert_eq!(
        by_server.body["publicip"]["private_ip_address"],
        private_ip.as_str()
    );
    assert_eq!(by_server.body["publicip"]["status"], "ACTIVE");
    assert_eq!(
        as_floating.body["floatingip"]["fixed_ip_address"],
        private_ip.as_str()
    );
    assert_eq!(
        as_floating.body["floatingip"]["port_details"]["device_id"],
        server.as_str()
    );
    assert_eq!(
        unbind_other.status,
        StatusCode::NOT_FOUND,
        "{}",
        unbind_other.body
    );
    assert_eq!(unbound.status, StatusCode::OK, "{}", unbound.body);
    assert_eq!(unbound.body["publicip"]["server_id"], Value::Null);
    assert_eq!(by_private.status, StatusCode::OK, "{}", by_private.body);
    assert_eq!(by_private.body["publicip"]["server_id"], server.as_str());
    assert_eq!(listed.body["publicips"].as_array().unwrap().len(), 1);
    assert_eq!(unbound_private.status, StatusCode::OK);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn unbinding_from_something_it_is_not_bound_to_is_400_and_the_quota_is_shared() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let (net, _) = private_network(&ctx, &member).await;
    let port = call(
        &ctx,
        Method::POST,
        "/ports",
        &member,
        Some(json!({"port": {"network_id": net}})),
    )
    .await;
    let private_ip = port.body["port"]["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap();
    call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"floatingip": 1}})),
    )
    .await;
    let fip = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &member,
        Some(json!({"floatingip": {"floating_network_id": ext}})),
    )
    .await;
    let id = fip.body["floatingip"]["id"].as_str().unwrap();
    let over = call(
        &ctx,
        Method::POST,
        "/publicips",
        &member,
        Some(json!({"publicip": {"name": "x"}})),
    )
    .await;
    let seen = call(
        &ctx,
        Method::GET,
        &format!("/publicips/{id}"),
        &member,
        None,
    )
    .await;
    let not_bound = call(
        &ctx,
        Method::POST,
        &format!("/publicips/{id}/unbind"),
        &member,
        Some(json!({"private_ip_address": private_ip})),
    )
    .await;

    assert_eq!(over.status, StatusCode::CONFLICT, "{}", over.body);
    assert_eq!(over.body["NeutronError"]["type"], "OverQuota");
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(
        seen.body["publicip"]["public_ip_address"],
        fip.body["floatingip"]["floating_ip_address"]
    );
    assert_eq!(
        not_bound.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_bound.body
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_public_ip_endpoint_answers_401_403_and_404_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, reader) = ctx.user_with_role(&admin, "rita", "reader").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let (ext, _) = external_network(&ctx, &admin).await;
    let made = call(
        &ctx,
        Method::POST,
        "/floatingips",
        &admin,
        Some(json!({"floatingip": {"floating_network_id": ext, "project_id": project}})),
    )
    .await;
    let id = made.body["floatingip"]["id"].as_str().unwrap();
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/publicips".into(), None),
        (
            Method::POST,
            "/publicips".into(),
            Some(json!({"publicip": {"name": "x"}})),
        ),
        (Method::GET, format!("/publicips/{id}"), None),
        (
            Method::POST,
            format!("/publicips/{id}/bind"),
            Some(json!({"private_ip_address": "10.0.0.5"})),
        ),
        (
            Method::POST,
            format!("/publicips/{id}/unbind"),
            Some(json!({"private_ip_address": "10.0.0.5"})),
        ),
        (Method::DELETE, format!("/publicips/{id}"), None),
    ];
    for (method, path, body) in &endpoints {
        let url = format!("{N}{path}");
        let none = ctx.call(method.clone(), &url, None, body.clone()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        if *method != Method::GET {
            let r = ctx
                .call(method.clone(), &url, Some(&reader), body.clone())
                .await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "reader: {method} {path}: {}",
                r.body
            );
        }
        if path.contains(id) {
            let r = ctx
                .call(method.clone(), &url, Some(&stranger), body.clone())
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "stranger: {method} {path}");
        }
    }
    ctx.shutdown().await;
}
