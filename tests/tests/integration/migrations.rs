//! Migrations: every live migration and resize is recorded from start to end, and a
//! live migration under way can be looked at (2.23) but not forced or aborted here.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const WAIT: Duration = Duration::from_secs(20);

async fn at(
    ctx: &TestContext,
    token: &str,
    mv: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let version = format!("compute {mv}");
    ctx.call_at(Some(&version), method, path, Some(token), body)
        .await
}

async fn migrations(ctx: &TestContext, admin: &str, server: &str) -> Vec<Value> {
    let r = at(
        ctx,
        admin,
        "2.23",
        Method::GET,
        &format!("/compute/v2.1/os-migrations?instance_uuid={server}"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["migrations"].as_array().unwrap().clone()
}

async fn host_of(ctx: &TestContext, admin: &str, id: &str) -> String {
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(admin),
            None,
        )
        .await;
    r.body["server"]["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn live_migrations_and_resizes_are_recorded_to_their_end() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "mover", "member").await;
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&admin),
            Some(json!({"server": {"name": "m", "flavorRef": "1", "imageRef": image}})),
        )
        .await;
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let source = host_of(&ctx, &admin, &id).await;
    let action = format!("/compute/v2.1/servers/{id}/action");

    // A live migration under way: visible from 2.23, neither forced nor aborted.
    let index = ctx
        .agents
        .iter()
        .position(|a| a.node_name == source)
        .unwrap();
    ctx.inject(
        index,
        "migrate_out",
        json!({"fail_times": 0, "delay_ms": 2_000}),
    )
    .await;
    let r = at(
        &ctx,
        &admin,
        "2.25",
        Method::POST,
        &action,
        Some(json!({"os-migrateLive": {"host": null, "block_migration": "auto"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let under_way = at(
        &ctx,
        &admin,
        "2.23",
        Method::GET,
        &format!("/compute/v2.1/servers/{id}/migrations"),
        None,
    )
    .await;
    assert_eq!(under_way.status, StatusCode::OK, "{:?}", under_way.body);
    let running = under_way.body["migrations"][0].clone();
    assert_eq!(running["status"], "running", "{:?}", under_way.body);
    assert_eq!(running["source_compute"], json!(source));
    let mid = running["id"].as_i64().unwrap();
    let one = format!("/compute/v2.1/servers/{id}/migrations/{mid}");
    let r = at(&ctx, &admin, "2.24", Method::DELETE, &one, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = at(
        &ctx,
        &admin,
        "2.22",
        Method::POST,
        &format!("{one}/action"),
        Some(json!({"force_complete": null})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = at(
        &ctx,
        &member,
        "2.23",
        Method::GET,
        &format!("/compute/v2.1/servers/{id}/migrations"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = at(
        &ctx,
        &admin,
        "2.1",
        Method::GET,
        &format!("/compute/v2.1/servers/{id}/migrations"),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "needs 2.23");
    ctx.eventually(WAIT, "the live migration completes", || async {
        migrations(&ctx, &admin, &id).await[0]["status"] == "completed"
    })
    .await;
    let done = &migrations(&ctx, &admin, &id).await[0];
    assert_eq!(done["migration_type"], "live-migration");
    assert_eq!(done["source_compute"], json!(source));
    assert_eq!(
        done["dest_compute"],
        json!(host_of(&ctx, &admin, &id).await)
    );
    assert!(
        done.get("links").is_none(),
        "a finished migration has no links"
    );
    let r = at(&ctx, &admin, "2.24", Method::DELETE, &one, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);

    // A failed one: recorded as failed, and the action says why.
    let now_on = host_of(&ctx, &admin, &id).await;
    let index = ctx
        .agents
        .iter()
        .position(|a| a.node_name == now_on)
        .unwrap();
    ctx.inject(index, "migrate_out", json!({"fail_times": 1}))
        .await;
    let r = at(
        &ctx,
        &admin,
        "2.25",
        Method::POST,
        &action,
        Some(json!({"os-migrateLive": {"host": null, "block_migration": "auto"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    ctx.eventually(WAIT, "the live migration fails", || async {
        migrations(&ctx, &admin, &id).await[0]["status"] == "failed"
    })
    .await;
    assert_eq!(host_of(&ctx, &admin, &id).await, now_on);
    let events = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}/os-instance-actions"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        events.body["instanceActions"][0]["action"],
        "live-migration"
    );
    assert_eq!(events.body["instanceActions"][0]["message"], "Error");
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;

    // Resizes: finished, then confirmed or reverted.
    for (to, end, status) in [
        ("2", "confirmResize", "confirmed"),
        ("3", "revertResize", "reverted"),
    ] {
        let r = ctx
            .call(
                Method::POST,
                &action,
                Some(&admin),
                Some(json!({"resize": {"flavorRef": to}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        ctx.wait_server(&admin, &id, "VERIFY_RESIZE", WAIT).await;
        assert_eq!(migrations(&ctx, &admin, &id).await[0]["status"], "finished");
        assert_eq!(
            migrations(&ctx, &admin, &id).await[0]["migration_type"],
            "resize"
        );
        let r = ctx
            .call(
                Method::POST,
                &action,
                Some(&admin),
                Some(json!({end: null})),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
        ctx.eventually(WAIT, "the resize ends", || async {
            migrations(&ctx, &admin, &id).await[0]["status"] == status
        })
        .await;
    }
    let all = migrations(&ctx, &admin, &id).await;
    assert_eq!(all.len(), 4, "{all:?}");
    let r = at(
        &ctx,
        &admin,
        "2.23",
        Method::GET,
        "/compute/v2.1/os-migrations?migration_type=resize",
        None,
    )
    .await;
    assert_eq!(r.body["migrations"].as_array().unwrap().len(), 2);
    let r = at(
        &ctx,
        &admin,
        "2.1",
        Method::GET,
        "/compute/v2.1/os-migrations",
        None,
    )
    .await;
    assert!(
        r.body["migrations"][0].get("migration_type").is_none(),
        "2.23 added it"
    );
    let r = at(
        &ctx,
        &member,
        "2.1",
        Method::GET,
        "/compute/v2.1/os-migrations",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = at(
        &ctx,
        &admin,
        "2.1",
        Method::GET,
        "/compute/v2.1/os-migrations?migration_type=sideways",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}
