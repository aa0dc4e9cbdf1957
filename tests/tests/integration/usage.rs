//! Usage: hours of vCPUs, memory and disk per project over a period.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use yunji_tests::{Options, TestContext};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn usage_adds_up_each_servers_running_hours() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (project, _, member) = ctx.user_with_role(&admin, "metered", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "unmetered", "member").await;
    let mut ids = Vec::new();
    for (name, flavor) in [("small", "1"), ("big", "2")] {
        let r = ctx
            .call(
                Method::POST,
                "/compute/v2.1/servers",
                Some(&member),
                Some(json!({"server": {"name": name, "flavorRef": flavor, "imageRef": image}})),
            )
            .await;
        let id = r.body["server"]["id"].as_str().unwrap().to_string();
        ctx.wait_server(&member, &id, "ACTIVE", WAIT).await;
        ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{}", ids[0]),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    ctx.eventually(WAIT, "the server is deleted", || async {
        ctx.call(
            Method::GET,
            &format!("/compute/v2.1/servers/{}", ids[0]),
            Some(&member),
            None,
        )
        .await
        .status
            == StatusCode::NOT_FOUND
    })
    .await;

    let period = "start=2026-01-01T00:00:00&end=2999-01-01T00:00:00";
    let one = format!("/compute/v2.1/os-simple-tenant-usage/{project}?{period}");
    let r = ctx.call(Method::GET, &one, Some(&member), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let usage = &r.body["tenant_usage"];
    let servers = usage["server_usages"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{usage}");
    let deleted = servers
        .iter()
        .find(|s| s["instance_id"] == json!(ids[0]))
        .unwrap();
    assert_eq!(deleted["state"], "deleted");
    assert!(deleted["ended_at"].is_string());
    let running = servers
        .iter()
        .find(|s| s["instance_id"] == json!(ids[1]))
        .unwrap();
    assert_eq!(running["state"], "active");
    assert!(running["ended_at"].is_null());
    let hours: f64 = servers.iter().map(|s| s["hours"].as_f64().unwrap()).sum();
    assert!(hours > 0.0);
    assert!((usage["total_hours"].as_f64().unwrap() - hours).abs() < 1e-9);
    let vcpu_hours: f64 = servers
        .iter()
        .map(|s| s["hours"].as_f64().unwrap() * s["vcpus"].as_f64().unwrap())
        .sum();
    assert!((usage["total_vcpus_usage"].as_f64().unwrap() - vcpu_hours).abs() < 1e-9);
    assert!(
        usage["total_memory_mb_usage"].as_f64().unwrap()
            > usage["total_vcpus_usage"].as_f64().unwrap()
    );

    // Every project's usage is for administrators; another project's is not anyone's.
    let all = format!("/compute/v2.1/os-simple-tenant-usage?{period}&detailed=1");
    let r = ctx.call(Method::GET, &all, Some(&admin), None).await;
    let mine = r.body["tenant_usages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["tenant_id"] == json!(project))
        .unwrap()
        .clone();
    assert_eq!(mine["server_usages"].as_array().unwrap().len(), 2);
    let r = ctx.call(Method::GET, &all, Some(&member), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx.call(Method::GET, &one, Some(&stranger), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx.call(Method::GET, &one, None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A period before any server ran is empty; a malformed or reversed one is a 400.
    let r = ctx
        .call(Method::GET, &format!("/compute/v2.1/os-simple-tenant-usage/{project}?start=2020-01-01T00:00:00&end=2020-02-01T00:00:00"), Some(&member), None)
        .await;
    assert_eq!(r.body["tenant_usage"], json!({}));
    for bad in [
        "start=yesterday",
        "start=2026-02-01T00:00:00&end=2026-01-01T00:00:00",
    ] {
        let r = ctx
            .call(
                Method::GET,
                &format!("/compute/v2.1/os-simple-tenant-usage/{project}?{bad}"),
                Some(&member),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
    }
    ctx.shutdown().await;
}
