//! The 401/403/404 matrix: no or a bad token is 401 everywhere; a member asking for
//! administration is 403; another project's resource is 404.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, TestContext};

/// Every protected identity endpoint, with ids filled in from a real cloud.
fn endpoints(project: &str, user: &str, role: &str) -> Vec<(Method, String, Option<Value>)> {
    let v3 = "/identity/v3";
    vec![
        (Method::GET, format!("{v3}/auth/tokens"), None),
        (Method::DELETE, format!("{v3}/auth/tokens"), None),
        (Method::GET, format!("{v3}/auth/catalog"), None),
        (Method::GET, format!("{v3}/auth/projects"), None),
        (Method::GET, format!("{v3}/auth/domains"), None),
        (Method::GET, format!("{v3}/services"), None),
        (Method::GET, format!("{v3}/endpoints"), None),
        (Method::GET, format!("{v3}/domains"), None),
        (
            Method::POST,
            format!("{v3}/domains"),
            Some(json!({"domain": {"name": "d"}})),
        ),
        (Method::GET, format!("{v3}/domains/default"), None),
        (
            Method::PATCH,
            format!("{v3}/domains/default"),
            Some(json!({"domain": {}})),
        ),
        (Method::DELETE, format!("{v3}/domains/default"), None),
        (Method::GET, format!("{v3}/projects"), None),
        (
            Method::POST,
            format!("{v3}/projects"),
            Some(json!({"project": {"name": "p"}})),
        ),
        (Method::GET, format!("{v3}/projects/{project}"), None),
        (
            Method::PATCH,
            format!("{v3}/projects/{project}"),
            Some(json!({"project": {}})),
        ),
        (Method::DELETE, format!("{v3}/projects/{project}"), None),
        (Method::GET, format!("{v3}/users"), None),
        (
            Method::POST,
            format!("{v3}/users"),
            Some(json!({"user": {"name": "u"}})),
        ),
        (Method::GET, format!("{v3}/users/{user}"), None),
        (
            Method::PATCH,
            format!("{v3}/users/{user}"),
            Some(json!({"user": {}})),
        ),
        (Method::DELETE, format!("{v3}/users/{user}"), None),
        (Method::GET, format!("{v3}/users/{user}/projects"), None),
        (
            Method::GET,
            format!("{v3}/users/{user}/application_credentials"),
            None,
        ),
        (Method::GET, format!("{v3}/roles"), None),
        (
            Method::POST,
            format!("{v3}/roles"),
            Some(json!({"role": {"name": "r"}})),
        ),
        (Method::GET, format!("{v3}/roles/{role}"), None),
        (Method::DELETE, format!("{v3}/roles/{role}"), None),
        (
            Method::PUT,
            format!("{v3}/projects/{project}/users/{user}/roles/{role}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{v3}/projects/{project}/users/{user}/roles/{role}"),
            None,
        ),
        (
            Method::GET,
            format!("{v3}/projects/{project}/users/{user}/roles"),
            None,
        ),
        (Method::GET, format!("{v3}/role_assignments"), None),
        (Method::GET, format!("{v3}/regions"), None),
        (
            Method::POST,
            format!("{v3}/regions"),
            Some(json!({"region": {"id": "R"}})),
        ),
        (Method::GET, format!("{v3}/regions/RegionOne"), None),
        (
            Method::PATCH,
            format!("{v3}/regions/RegionOne"),
            Some(json!({"region": {}})),
        ),
        (Method::DELETE, format!("{v3}/regions/RegionOne"), None),
    ]
}

#[tokio::test]
async fn every_protected_endpoint_is_401_without_or_with_a_bad_token() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, user, _) = ctx.user_with_role(&admin, "carol", "member").await;
    let roles = ctx
        .call(
            Method::GET,
            "/identity/v3/roles?name=member",
            Some(&admin),
            None,
        )
        .await;
    let role = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
    for (method, path, body) in endpoints(&project, &user, &role) {
        for token in [None, Some("not-a-token")] {
            let r = ctx.call(method.clone(), &path, token, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(r.body["error"]["code"], 401, "{method} {path}");
        }
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_member_may_not_administer_identity() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, user, member) = ctx.user_with_role(&admin, "dave", "member").await;
    let (_, other_user, _) = ctx.user_with_role(&admin, "erin", "member").await;
    let roles = ctx
        .call(
            Method::GET,
            "/identity/v3/roles?name=member",
            Some(&admin),
            None,
        )
        .await;
    let role = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
    let allowed_to_self = [
        format!("/identity/v3/users/{user}"),
        format!("/identity/v3/users/{user}/projects"),
        format!("/identity/v3/users/{user}/application_credentials"),
        format!("/identity/v3/projects/{project}"),
        "/identity/v3/auth/catalog".into(),
        "/identity/v3/auth/projects".into(),
        "/identity/v3/auth/domains".into(),
        "/identity/v3/regions".into(),
        "/identity/v3/regions/RegionOne".into(),
        "/identity/v3/services".into(),
        "/identity/v3/endpoints".into(),
        "/identity/v3/domains/default".into(),
    ];
    for (method, path, body) in endpoints(&project, &other_user, &role) {
        if method == Method::GET && allowed_to_self.contains(&path) {
            continue;
        }
        if path.ends_with("/auth/tokens") {
            continue; // needs X-Subject-Token; covered below
        }
        let r = ctx.call(method.clone(), &path, Some(&member), body).await;
        assert!(
            r.status == StatusCode::FORBIDDEN
                || (path.contains(&project) && path.ends_with(&project)),
            "{method} {path}: {} {:?}",
            r.status,
            r.body
        );
    }
    for path in allowed_to_self {
        let r = ctx.call(Method::GET, &path, Some(&member), None).await;
        assert_eq!(r.status, StatusCode::OK, "GET {path}: {:?}", r.body);
    }
    // Another user's token cannot be validated by a member.
    let check = ctx
        .client
        .get(format!("{}/identity/v3/auth/tokens", ctx.url))
        .header("X-Auth-Token", &member)
        .header("X-Subject-Token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::FORBIDDEN);
    ctx.shutdown().await;
}

#[tokio::test]
async fn another_projects_project_is_not_found_for_a_member() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (own, _, member) = ctx.user_with_role(&admin, "frank", "member").await;
    let (other, _, _) = ctx.user_with_role(&admin, "grace", "member").await;
    assert_eq!(
        ctx.call(
            Method::GET,
            &format!("/identity/v3/projects/{own}"),
            Some(&member),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = ctx
        .call(
            Method::GET,
            &format!("/identity/v3/projects/{other}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = ctx
        .call(
            Method::PATCH,
            &format!("/identity/v3/projects/{own}"),
            Some(&member),
            Some(json!({"project": {}})),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "visible but not changeable"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_user_without_a_role_on_the_project_cannot_scope_to_it() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    ctx.user_with_role(&admin, "heidi", "member").await;
    let r = ctx
        .try_token("heidi", "pw", Some("admin"))
        .await
        .unwrap_err();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no role")
    );
    ctx.shutdown().await;
}
