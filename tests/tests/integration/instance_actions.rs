//! Instance actions: every change to a server is recorded with its request id and how
//! it ended; administrators see the events and why one failed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, TestContext};

const WAIT: Duration = Duration::from_secs(20);

async fn actions(ctx: &TestContext, token: &str, id: &str, mv: &str) -> (StatusCode, Value) {
    let path = format!("/compute/v2.1/servers/{id}/os-instance-actions");
    let version = format!("compute {mv}");
    let r = ctx
        .call_at(Some(&version), Method::GET, &path, Some(token), None)
        .await;
    (r.status, r.body)
}

#[tokio::test]
async fn every_change_is_recorded_with_its_request_and_outcome() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "acted", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "watcher", "member").await;

    let created = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&member),
            Some(json!({"server": {"name": "a", "flavorRef": "1", "imageRef": image}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::ACCEPTED);
    let create_request = created
        .header("x-openstack-request-id")
        .unwrap()
        .to_string();
    let id = created.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &id, "ACTIVE", WAIT).await;

    let act = |body: Value| {
        let (ctx, member, id) = (&ctx, member.clone(), id.clone());
        async move {
            ctx.call(
                Method::POST,
                &format!("/compute/v2.1/servers/{id}/action"),
                Some(&member),
                Some(body),
            )
            .await
        }
    };
    let stop = act(json!({"os-stop": null})).await;
    assert_eq!(stop.status, StatusCode::ACCEPTED);
    ctx.wait_server(&member, &id, "SHUTOFF", WAIT).await;
    // A start that fails on the node: the action ends in error.
    ctx.inject(0, "start", json!({"fail_times": 1})).await;
    let start = act(json!({"os-start": null})).await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let start_request = start.header("x-openstack-request-id").unwrap().to_string();
    ctx.eventually(WAIT, "the failed start finishes", || async {
        let (_, body) = actions(&ctx, &member, &id, "2.1").await;
        body["instanceActions"][0]["message"] == "Error"
    })
    .await;

    let (status, body) = actions(&ctx, &member, &id, "2.1").await;
    assert_eq!(status, StatusCode::OK);
    let list = body["instanceActions"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(names, ["start", "stop", "create"], "newest first: {body}");
    assert_eq!(list[2]["request_id"], json!(create_request));
    assert_eq!(list[2]["message"], Value::Null);
    assert_eq!(list[0]["request_id"], json!(start_request));
    assert_eq!(list[0]["instance_uuid"], json!(id));

    // The member sees the action; only an administrator sees its events and why.
    let path = format!("/compute/v2.1/servers/{id}/os-instance-actions/{start_request}");
    let mine = ctx.call(Method::GET, &path, Some(&member), None).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert!(
        mine.body["instanceAction"].get("events").is_none(),
        "{:?}",
        mine.body
    );
    let theirs = ctx.call(Method::GET, &path, Some(&admin), None).await;
    let event = &theirs.body["instanceAction"]["events"][0];
    assert_eq!(event["event"], "compute_start_instance");
    assert_eq!(event["result"], "Error");
    assert!(
        event["traceback"].as_str().unwrap().contains("start"),
        "{event}"
    );
    let r = ctx.call(Method::GET, &path, Some(&stranger), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = ctx.call(Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}/os-instance-actions/req-nope"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A deleted server's actions: from 2.21 on, with the delete last.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ctx.eventually(WAIT, "the server is gone", || async {
        actions(&ctx, &member, &id, "2.1").await.0 == StatusCode::NOT_FOUND
    })
    .await;
    let (status, body) = actions(&ctx, &member, &id, "2.21").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instanceActions"][0]["action"], "delete");
    assert_eq!(body["instanceActions"][0]["message"], Value::Null);
    ctx.shutdown().await;
}
