//! The OpenAPI document: every operation it lists reaches a handler, nothing else is
//! admitted, and `docs/openapi.json` is exactly what the scheduler serves.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use yunji_tests::{Options, TestContext};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

/// A path from the document with every `{parameter}` filled by an id nothing has.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "00000000-0000-4000-8000-000000000000"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let doc = ctx.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (template, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let path = concrete(template);
            let r = ctx.call(method.clone(), &path, Some(&admin), None).await;
            let text = String::from_utf8_lossy(&r.raw);
            assert_ne!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {text}"
            );
            assert!(
                !text.contains("no handler serves it") && !text.contains("not an endpoint"),
                "{method} {path} is documented but not served: {text}"
            );
            assert!(!r.status.is_server_error(), "{method} {path}: {text}");
            operations += 1;
        }
    }
    assert!(operations > 250, "only {operations} operations documented");
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_agent_operation_reaches_a_handler_and_nothing_else_does() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    ctx.wait_nodes_up(1).await;
    let (transport, url) = ctx.agent_transport(0);
    let call = |method: http::Method, path: String| {
        let (transport, url) = (&transport, &url);
        async move {
            yunji_common::client::call_json::<(), Value>(
                transport,
                url,
                method,
                &path,
                None,
                std::time::Duration::from_secs(10),
            )
            .await
        }
    };
    for route in yunji_common::agent_api::routes::AGENT_ROUTES {
        let mut path = concrete(route.path);
        let required: Vec<String> = route
            .query
            .iter()
            .filter(|(_, required, _)| *required)
            .map(|(name, _, _)| format!("{name}=x"))
            .collect();
        if !required.is_empty() {
            path = format!("{path}?{}", required.join("&"));
        }
        if let Err(e) = call(route.method.clone(), path.clone()).await {
            let e = format!("{e:#}");
            assert!(
                !e.contains("no such agent endpoint") && !e.contains("405"),
                "{} {path}: {e}",
                route.method
            );
        }
    }
    let e = call(http::Method::GET, "/v1/nowhere".into())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("no such agent endpoint"), "{e:#}");
    let e = call(http::Method::POST, "/v1/status".into())
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("no such agent endpoint"), "{e:#}");
    ctx.shutdown().await;
}

#[tokio::test]
async fn what_the_document_leaves_out_is_404_and_other_methods_405_with_allow() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let r = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers/x/nothing",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let message = r.body["itemNotFound"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("/openapi.json"), "{message}");

    let r = ctx
        .call(Method::PATCH, "/compute/v2.1/servers", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(r.body["badMethod"]["code"], 405);
    // A literal path also matching a template lists each method once.
    let r = ctx
        .call(
            Method::PATCH,
            "/compute/v2.1/servers/detail",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE"));
    // The legacy forms are admitted as their canonical paths.
    for path in [
        "/compute/v2.1/0123456789abcdef/flavors",
        "/volume/v3/types",
        "/load-balancer/v2.0/lbaas/loadbalancers",
    ] {
        let r = ctx.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_committed_document_is_the_one_served() {
    let ctx = TestContext::new(Options::default()).await;
    let served = ctx.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    if std::env::var_os("YUNJI_BLESS").is_some() {
        let pretty = serde_json::to_string_pretty(&served.body).unwrap() + "\n";
        std::fs::write(COMMITTED, pretty).unwrap();
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(COMMITTED).expect("docs/openapi.json exists"),
    )
    .expect("docs/openapi.json is JSON");
    assert!(
        committed == served.body,
        "docs/openapi.json is out of date: regenerate it with \
         YUNJI_BLESS=1 cargo test -p yunji-tests --test integration the_committed_document"
    );
    ctx.shutdown().await;
}
