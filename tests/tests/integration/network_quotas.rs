//! Neutron network quotas: defaults, administrators setting and resetting them,
//! details with usage, enforcement in the create's transaction (also under a race),
//! and who may read or change them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

use crate::network::{create_network, create_subnet};

const N: &str = "/network/v2.0";

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
async fn a_project_starts_with_neutrons_defaults() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let shown = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{project}"),
        &member,
        None,
    )
    .await;
    let defaults = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{project}/default"),
        &member,
        None,
    )
    .await;
    let tenant = call(&ctx, Method::GET, "/quotas/tenant", &member, None).await;

    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(
        shown.body["quota"],
        json!({"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
               "security_group": 10, "security_group_rule": 100})
    );
    assert_eq!(defaults.body, shown.body);
    assert_eq!(tenant.body["tenant"]["tenant_id"], project.as_str());
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_administrator_sets_a_limit_that_creates_then_meet_with_409_over_quota() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let set = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"network": 1, "subnet": "1"}})),
    )
    .await;
    let net = create_network(&ctx, &member, json!({"name": "one"})).await;
    create_subnet(
        &ctx,
        &member,
        json!({"network_id": net["id"], "ip_version": 4, "cidr": "10.0.0.0/24"}),
    )
    .await;
    let second = call(
        &ctx,
        Method::POST,
        "/networks",
        &member,
        Some(json!({"network": {}})),
    )
    .await;
    let second_subnet = call(
        &ctx,
        Method::POST,
        "/subnets",
        &member,
        Some(json!({"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.1.0.0/24"}})),
    )
    .await;
    let details = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{project}/details.json"),
        &member,
        None,
    )
    .await;
    let listed = call(&ctx, Method::GET, "/quotas", &admin, None).await;
    let below_usage = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"network": 0, "check_limit": true}})),
    )
    .await;
    let reset = call(
        &ctx,
        Method::DELETE,
        &format!("/quotas/{project}"),
        &admin,
        None,
    )
    .await;
    let after_reset = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{project}"),
        &member,
        None,
    )
    .await;

    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["quota"]["network"], 1);
    assert_eq!(set.body["quota"]["subnet"], 1);
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.body["NeutronError"]["type"], "OverQuota");
    assert_eq!(
        second.body["NeutronError"]["message"],
        "Quota exceeded for resources: ['network']."
    );
    assert_eq!(second_subnet.status, StatusCode::CONFLICT);
    assert_eq!(
        details.body["quota"]["network"],
        json!({"limit": 1, "used": 1, "reserved": 0})
    );
    assert_eq!(details.body["quota"]["port"]["used"], 0);
    assert_eq!(listed.body["quotas"][0]["project_id"], project.as_str());
    assert_eq!(below_usage.status, StatusCode::BAD_REQUEST);
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert_eq!(after_reset.body["quota"]["network"], 100);
    ctx.shutdown().await;
}

#[tokio::test]
async fn parallel_creates_cannot_exceed_the_port_quota_together() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"port": 5}})),
    )
    .await;
    let net = create_network(&ctx, &member, json!({"name": "n"})).await;

    let replies = futures_util::future::join_all((0..12).map(|_| {
        call(
            &ctx,
            Method::POST,
            "/ports",
            &member,
            Some(json!({"port": {"network_id": net["id"]}})),
        )
    }))
    .await;

    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let over = replies
        .iter()
        .filter(|r| {
            r.status == StatusCode::CONFLICT && r.body["NeutronError"]["type"] == "OverQuota"
        })
        .count();
    assert_eq!((created, over), (5, 7));
    ctx.shutdown().await;
}

#[tokio::test]
async fn quotas_answer_401_403_as_policy_says() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (other, _, _) = ctx.user_with_role(&admin, "bob", "member").await;

    let anonymous = ctx
        .call(Method::GET, &format!("{N}/quotas/{project}"), None, None)
        .await;
    let set_own = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &member,
        Some(json!({"quota": {"network": 1000}})),
    )
    .await;
    let reset_own = call(
        &ctx,
        Method::DELETE,
        &format!("/quotas/{project}"),
        &member,
        None,
    )
    .await;
    let list = call(&ctx, Method::GET, "/quotas", &member, None).await;
    let others = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{other}"),
        &member,
        None,
    )
    .await;
    let others_details = call(
        &ctx,
        Method::GET,
        &format!("/quotas/{other}/details"),
        &member,
        None,
    )
    .await;
    let unknown = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"volumes": 3}})),
    )
    .await;
    let negative = call(
        &ctx,
        Method::PUT,
        &format!("/quotas/{project}"),
        &admin,
        Some(json!({"quota": {"network": -2}})),
    )
    .await;

    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(set_own.status, StatusCode::FORBIDDEN);
    assert_eq!(reset_own.status, StatusCode::FORBIDDEN);
    assert_eq!(list.status, StatusCode::FORBIDDEN);
    assert_eq!(others.status, StatusCode::FORBIDDEN);
    assert_eq!(others_details.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body["NeutronError"]["message"]
            .as_str()
            .unwrap()
            .contains("volumes")
    );
    assert_eq!(negative.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}
