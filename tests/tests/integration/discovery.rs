//! Version discovery for every service, unauthenticated, as clients need it.

use reqwest::{Method, StatusCode};
use yunji_tests::{Options, TestContext};

#[tokio::test]
async fn identity_versions_are_300_at_root_and_identity_and_200_at_v3() {
    let ctx = TestContext::new(Options::default()).await;
    for path in ["/", "/identity", "/identity/"] {
        let r = ctx.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES, "{path}");
        let v = &r.body["versions"]["values"][0];
        assert_eq!(v["id"], "v3.14");
        assert_eq!(v["links"][0]["href"], format!("{}/identity/v3/", ctx.url));
        assert!(v["media-types"].is_array());
    }
    for path in ["/identity/v3", "/identity/v3/"] {
        let r = ctx.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["version"]["status"], "stable");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_service_answers_its_discovery_document() {
    let ctx = TestContext::new(Options::default()).await;
    let compute = ctx.call(Method::GET, "/compute/", None, None).await;
    assert_eq!(compute.status, StatusCode::OK);
    assert_eq!(compute.body["versions"][0]["id"], "v2.0");
    assert_eq!(compute.body["versions"][1]["id"], "v2.1");
    assert_eq!(compute.body["versions"][1]["status"], "CURRENT");
    assert_eq!(compute.body["versions"][1]["min_version"], "2.1");
    let v21 = ctx.call(Method::GET, "/compute/v2.1", None, None).await;
    assert_eq!(v21.body["version"]["id"], "v2.1");

    let image = ctx.call(Method::GET, "/image/", None, None).await;
    assert_eq!(image.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(
        image.body["versions"][0]["links"][0]["href"],
        format!("{}/image/v2/", ctx.url)
    );

    let network = ctx.call(Method::GET, "/network", None, None).await;
    assert_eq!(network.status, StatusCode::OK);
    assert_eq!(network.body["versions"][0]["id"], "v2.0");
    assert_eq!(
        ctx.call(Method::GET, "/network/v2.0/", None, None)
            .await
            .status,
        StatusCode::OK
    );

    let volume = ctx.call(Method::GET, "/volume/", None, None).await;
    assert_eq!(volume.status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(volume.body["versions"][0]["min_version"], "3.0");
    assert_eq!(
        ctx.call(Method::GET, "/volume/v3/", None, None)
            .await
            .status,
        StatusCode::OK
    );

    let lb = ctx.call(Method::GET, "/load-balancer/", None, None).await;
    assert_eq!(lb.status, StatusCode::OK);
    assert_eq!(lb.body["versions"][1]["status"], "CURRENT");
    ctx.shutdown().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_even_errors() {
    let ctx = TestContext::new(Options::default()).await;
    for (method, path) in [
        (Method::GET, "/identity/v3"),
        (Method::GET, "/nowhere"),
        (Method::GET, "/identity/v3/projects"),
        (Method::DELETE, "/identity/v3"),
    ] {
        let r = ctx.call(method, path, None, None).await;
        let id = r.header("x-openstack-request-id").unwrap_or_default();
        assert!(id.starts_with("req-") && id.len() == 40, "{path}: {id:?}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_are_404_in_the_services_own_error_shape() {
    let ctx = TestContext::new(Options::default()).await;
    let keystone = ctx
        .call(Method::GET, "/identity/v3/nothing", None, None)
        .await;
    assert_eq!(keystone.status, StatusCode::NOT_FOUND);
    assert_eq!(keystone.body["error"]["code"], 404);
    let nova = ctx
        .call(Method::GET, "/compute/v2.1/nothing", None, None)
        .await;
    assert_eq!(nova.body["itemNotFound"]["code"], 404);
    let neutron = ctx
        .call(Method::GET, "/network/v2.0/nothing", None, None)
        .await;
    assert_eq!(neutron.body["NeutronError"]["type"], "HTTPNotFound");
    let octavia = ctx
        .call(Method::GET, "/load-balancer/v2/nothing", None, None)
        .await;
    assert_eq!(octavia.body["faultcode"], "Client");
    let wrong_method = ctx.call(Method::DELETE, "/identity/v3", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn https_with_a_self_made_certificate_serves_the_api() {
    let ctx = TestContext::new(Options {
        https: true,
        ..Options::default()
    })
    .await;
    assert!(ctx.url.starts_with("https://"));
    let r = ctx.call(Method::GET, "/identity/v3", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let token = ctx.admin_token().await;
    assert!(!token.is_empty());
    ctx.shutdown().await;
}
