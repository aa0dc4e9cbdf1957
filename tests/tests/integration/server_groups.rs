//! Server groups: the API, and placement honouring each policy across two nodes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const WAIT: Duration = Duration::from_secs(20);

/// Creates a group at a microversion (the soft policies need 2.15).
async fn create(ctx: &TestContext, token: &str, body: Value, mv: &str) -> Reply {
    let version = format!("compute {mv}");
    let path = "/compute/v2.1/os-server-groups";
    ctx.call_at(Some(&version), Method::POST, path, Some(token), Some(body))
        .await
}

async fn group(ctx: &TestContext, token: &str, policy: &str, mv: &str) -> Reply {
    let body = json!({"server_group": {"name": format!("g-{policy}"), "policies": [policy]}});
    create(ctx, token, body, mv).await
}

async fn boot_in(ctx: &TestContext, token: &str, image: &str, group: &str, name: &str) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(token),
            Some(json!({
                "server": {"name": name, "flavorRef": "1", "imageRef": image},
                "os:scheduler_hints": {"group": group},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_string()
}

async fn host_of(ctx: &TestContext, admin: &str, id: &str) -> Value {
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(admin),
            None,
        )
        .await;
    r.body["server"]["OS-EXT-SRV-ATTR:host"].clone()
}

#[tokio::test]
async fn placement_honours_each_group_policy_across_nodes() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;

    // Anti-affinity: two members on two nodes; a third has nowhere to go.
    let anti = group(&ctx, &admin, "anti-affinity", "2.1").await;
    assert_eq!(anti.status, StatusCode::OK, "{:?}", anti.body);
    let anti = anti.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = boot_in(&ctx, &admin, &image, &anti, "a1").await;
    let b = boot_in(&ctx, &admin, &image, &anti, "a2").await;
    ctx.wait_server(&admin, &a, "ACTIVE", WAIT).await;
    ctx.wait_server(&admin, &b, "ACTIVE", WAIT).await;
    assert_ne!(
        host_of(&ctx, &admin, &a).await,
        host_of(&ctx, &admin, &b).await
    );
    let c = boot_in(&ctx, &admin, &image, &anti, "a3").await;
    ctx.wait_server(&admin, &c, "ERROR", WAIT).await;
    let shown = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/os-server-groups/{anti}"),
            Some(&admin),
            None,
        )
        .await;
    let members = shown.body["server_group"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{:?}", shown.body);
    // A member cannot live-migrate onto its peer's node.
    let other = host_of(&ctx, &admin, &b).await;
    let r = ctx
        .call(
            Method::POST,
            &format!("/compute/v2.1/servers/{a}/action"),
            Some(&admin),
            Some(json!({"os-migrateLive": {"host": other, "block_migration": false, "disk_over_commit": false}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body.to_string().contains("anti-affinity"), "{:?}", r.body);

    // Affinity: every member follows the first.
    let aff = group(&ctx, &admin, "affinity", "2.1").await;
    let aff = aff.body["server_group"]["id"].as_str().unwrap().to_string();
    let first = boot_in(&ctx, &admin, &image, &aff, "f1").await;
    ctx.wait_server(&admin, &first, "ACTIVE", WAIT).await;
    for i in 0..3 {
        let next = boot_in(&ctx, &admin, &image, &aff, &format!("f{i}")).await;
        ctx.wait_server(&admin, &next, "ACTIVE", WAIT).await;
        assert_eq!(
            host_of(&ctx, &admin, &next).await,
            host_of(&ctx, &admin, &first).await
        );
    }

    // Soft anti-affinity spreads while it can and still places when it cannot.
    let soft = group(&ctx, &admin, "soft-anti-affinity", "2.15").await;
    assert_eq!(soft.status, StatusCode::OK, "{:?}", soft.body);
    let soft = soft.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for i in 0..3 {
            let id = boot_in(&ctx, &admin, &image, &soft, &format!("s{i}")).await;
            ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
            ids.push(id);
        }
        ids
    };
    assert_ne!(
        host_of(&ctx, &admin, &ids[0]).await,
        host_of(&ctx, &admin, &ids[1]).await
    );

    // A deleted server leaves its group.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{c}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ctx.eventually(WAIT, "the deleted server leaves its group", || async {
        let shown = ctx
            .call(
                Method::GET,
                &format!("/compute/v2.1/os-server-groups/{anti}"),
                Some(&admin),
                None,
            )
            .await;
        shown.body["server_group"]["members"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn server_group_api_checks_input_owner_and_quota() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "grouper", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "other", "member").await;

    for (policies, mv) in [
        (json!(["soft-affinity"]), "2.1"),
        (json!(["affinity", "anti-affinity"]), "2.1"),
        (json!(["sideways"]), "2.15"),
        (json!([]), "2.1"),
    ] {
        let body = json!({"server_group": {"name": "x", "policies": policies}});
        let r = create(&ctx, &member, body, mv).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{policies}: {:?}",
            r.body
        );
    }

    let created = group(&ctx, &member, "affinity", "2.13").await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let g = &created.body["server_group"];
    assert_eq!(g["policies"], json!(["affinity"]));
    assert_eq!(g["members"], json!([]));
    assert_eq!(g["project_id"], json!(project));
    let id = g["id"].as_str().unwrap().to_string();
    let path = format!("/compute/v2.1/os-server-groups/{id}");

    // 401 without a token; 404 for another project; listed for its own.
    let r = ctx.call(Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for method in [Method::GET, Method::DELETE] {
        let r = ctx.call(method, &path, Some(&stranger), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    }
    let r = ctx
        .call(
            Method::GET,
            "/compute/v2.1/os-server-groups",
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(r.body["server_groups"], json!([]));
    let r = ctx
        .call(
            Method::GET,
            "/compute/v2.1/os-server-groups",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 1);
    let r = ctx
        .call(
            Method::GET,
            "/compute/v2.1/os-server-groups?all_projects=True",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.body["server_groups"].as_array().unwrap().len(), 1);

    // A stranger cannot put a server into the group.
    let image = ctx.test_image(&admin).await;
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&stranger),
            Some(json!({
                "server": {"name": "x", "flavorRef": "1", "imageRef": image},
                "os:scheduler_hints": {"group": id},
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // The server_groups quota holds, and the limits count the groups.
    let r = ctx
        .call(
            Method::PUT,
            &format!("/compute/v2.1/os-quota-sets/{project}"),
            Some(&admin),
            Some(json!({"quota_set": {"server_groups": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = group(&ctx, &member, "affinity", "2.1").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = ctx
        .call(Method::GET, "/compute/v2.1/limits", Some(&member), None)
        .await;
    assert_eq!(r.body["limits"]["absolute"]["totalServerGroupsUsed"], 1);
    assert_eq!(r.body["limits"]["absolute"]["maxServerGroups"], 1);

    let r = ctx.call(Method::PUT, &path, Some(&member), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = ctx.call(Method::DELETE, &path, Some(&member), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = ctx.call(Method::GET, &path, Some(&member), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}
