//! Bad input gets the OpenStack-shaped 4xx that says what was wrong — never a 500.

use reqwest::{Method, StatusCode};
use serde_json::json;
use yunji_tests::{Options, TestContext};

const TOKENS: &str = "/identity/v3/auth/tokens";

#[tokio::test]
async fn malformed_bodies_are_400_with_the_reason() {
    let ctx = TestContext::new(Options::default()).await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated JSON", b"{\"auth\": {".to_vec(), "EOF"),
        ("not JSON", b"hello".to_vec(), "expected"),
        ("non-UTF-8", b"{\"auth\": \"\xff\xfe\"}".to_vec(), "invalid"),
        ("wrong type", br#"{"auth": {"identity": {"methods": "password"}}}"#.to_vec(), "invalid type"),
        ("missing field", br#"{"auth": {}}"#.to_vec(), "missing field `identity`"),
        ("empty body", Vec::new(), "needs a JSON body"),
        ("password method without password", br#"{"auth": {"identity": {"methods": ["password"]}}}"#.to_vec(), "password"),
        ("user without domain", br#"{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}"#.to_vec(), "domain"),
    ];
    for (what, body, reason) in cases {
        let r = ctx
            .call_raw(Method::POST, TOKENS, None, "application/json", body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{what}: {message}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_unknown_auth_method_is_401() {
    let ctx = TestContext::new(Options::default()).await;
    let body = json!({"auth": {"identity": {"methods": ["totp"], "totp": {}}}});
    let r = ctx.call(Method::POST, TOKENS, None, Some(body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("totp")
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_wrong_content_type_is_415() {
    let ctx = TestContext::new(Options::default()).await;
    let r = ctx
        .call_raw(Method::POST, TOKENS, None, "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.body["error"]["code"], 415);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_by_length_and_by_stream() {
    let ctx = TestContext::new(Options::default()).await;
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = ctx
        .call_raw(Method::POST, TOKENS, None, "application/json", big.clone())
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked, so no Content-Length to refuse it by.
    let stream = futures_stream(big);
    let resp = ctx
        .client
        .post(format!("{}{TOKENS}", ctx.url))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    ctx.shutdown().await;
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn names_where_ids_are_expected_are_404_not_500() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    for path in [
        "/identity/v3/projects/admin",
        "/identity/v3/users/admin",
        "/identity/v3/roles/%ff%fe",
    ] {
        let r = ctx.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_query_parameters_are_accepted() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let r = ctx
        .call(
            Method::GET,
            "/identity/v3/projects?deleted=False&fields=id&fields=name&is_public=None",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_fields_in_identity_administration_are_400() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let cases = [
        (
            "/identity/v3/projects",
            json!({"project": {}}),
            "project.name",
        ),
        (
            "/identity/v3/projects",
            json!({"project": {"name": ""}}),
            "1 to 255",
        ),
        (
            "/identity/v3/projects",
            json!({"project": {"name": 7}}),
            "invalid type",
        ),
        (
            "/identity/v3/projects",
            json!({"project": {"name": "x", "domain_id": "nope"}}),
            "nope",
        ),
        (
            "/identity/v3/users",
            json!({"user": {"name": "x", "enabled": "yes"}}),
            "invalid type",
        ),
        (
            "/identity/v3/regions",
            json!({"region": {"id": "R", "parent_region_id": "nope"}}),
            "nope",
        ),
    ];
    for (path, body, reason) in cases {
        let r = ctx
            .call(Method::POST, path, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {:?}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{:?}",
            r.body
        );
    }
    ctx.shutdown().await;
}
