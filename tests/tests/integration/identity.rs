//! Keystone v3: tokens, the catalog, and identity administration.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{ADMIN_PASSWORD, Options, TestContext};

fn is_keystone_time(v: &Value) -> bool {
    // CCYY-MM-DDThh:mm:ss.ffffffZ
    let s = v.as_str().unwrap_or_default();
    s.len() == 27 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s.as_bytes()[19] == b'.'
}

#[tokio::test]
async fn password_token_carries_user_project_roles_catalog_and_times() {
    let ctx = TestContext::new(Options::default()).await;
    let (token, body) = ctx
        .try_token("admin", ADMIN_PASSWORD, Some("admin"))
        .await
        .unwrap();
    assert_eq!(token.len(), 43);
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["user"]["domain"]["id"], "default");
    assert_eq!(t["project"]["name"], "admin");
    assert!(is_keystone_time(&t["expires_at"]), "{}", t["expires_at"]);
    assert!(is_keystone_time(&t["issued_at"]));
    let roles: Vec<&str> = t["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "member", "reader"]);
    let types: Vec<&str> = t["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    for kind in [
        "identity",
        "compute",
        "image",
        "network",
        "block-storage",
        "load-balancer",
    ] {
        assert!(types.contains(&kind), "{kind} missing from {types:?}");
    }
    for service in t["catalog"].as_array().unwrap() {
        for endpoint in service["endpoints"].as_array().unwrap() {
            for key in ["id", "interface", "region", "region_id", "url"] {
                assert!(endpoint[key].is_string(), "{key} missing in {endpoint}");
            }
        }
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn users_and_projects_are_found_by_id_or_by_name_and_domain() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let me = ctx
        .call(Method::GET, "/identity/v3/auth/tokens", Some(&admin), None)
        .await;
    assert_eq!(
        me.status,
        StatusCode::BAD_REQUEST,
        "X-Subject-Token is required"
    );
    let users = ctx
        .call(
            Method::GET,
            "/identity/v3/users?name=admin",
            Some(&admin),
            None,
        )
        .await;
    let user_id = users.body["users"][0]["id"].as_str().unwrap().to_string();
    let projects = ctx
        .call(
            Method::GET,
            "/identity/v3/projects?name=admin",
            Some(&admin),
            None,
        )
        .await;
    let project_id = projects.body["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_id = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"id": project_id}}}});
    let r = ctx
        .call(Method::POST, "/identity/v3/auth/tokens", None, Some(by_id))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["token"]["project"]["id"], project_id);
    // Unscoped: no project, no catalog; then rescoped with the token method.
    let (unscoped, body) = ctx.try_token("admin", ADMIN_PASSWORD, None).await.unwrap();
    assert!(body["token"].get("project").is_none());
    assert!(body["token"].get("catalog").is_none());
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let r = ctx
        .call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            Some(rescope),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["token"]["methods"], json!(["token", "password"]));
    assert_eq!(r.body["token"]["expires_at"], body["token"]["expires_at"]);
    let projects = ctx
        .call(
            Method::GET,
            "/identity/v3/auth/projects",
            Some(&unscoped),
            None,
        )
        .await;
    assert_eq!(projects.body["projects"][0]["name"], "admin");
    ctx.shutdown().await;
}

#[tokio::test]
async fn validation_returns_the_issued_body_head_is_empty_and_revocation_is_final() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (subject, issued) = ctx
        .try_token("admin", ADMIN_PASSWORD, Some("admin"))
        .await
        .unwrap();
    let check = |method: Method| {
        ctx.client
            .request(method, format!("{}/identity/v3/auth/tokens", ctx.url))
            .header("X-Auth-Token", &admin)
            .header("X-Subject-Token", &subject)
            .send()
    };
    let validated = yunji_tests::Api::reply(check(Method::GET).await.unwrap()).await;
    assert_eq!(validated.status, StatusCode::OK);
    assert_eq!(
        validated.body, issued,
        "validation must return the issued body"
    );
    assert_eq!(validated.header("x-subject-token"), Some(subject.as_str()));
    let head = yunji_tests::Api::reply(check(Method::HEAD).await.unwrap()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.raw.is_empty());
    let revoked = yunji_tests::Api::reply(check(Method::DELETE).await.unwrap()).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert!(revoked.raw.is_empty());
    assert_eq!(
        yunji_tests::Api::reply(check(Method::GET).await.unwrap())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let used = ctx
        .call(
            Method::GET,
            "/identity/v3/auth/catalog",
            Some(&subject),
            None,
        )
        .await;
    assert_eq!(used.status, StatusCode::UNAUTHORIZED);
    assert!(
        used.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Authenticate again")
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let ctx = TestContext::new(Options {
        token_ttl_secs: 1,
        ..Options::default()
    })
    .await;
    let token = ctx.admin_token().await;
    assert_eq!(
        ctx.call(Method::GET, "/identity/v3/auth/catalog", Some(&token), None)
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = ctx
        .call(Method::GET, "/identity/v3/auth/catalog", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    ctx.shutdown().await;
}

#[tokio::test]
async fn tokens_survive_a_scheduler_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let ctx = TestContext::start(dir, Options::default(), |_| {}).await;
    let token = ctx.admin_token().await;
    let TestContext { scheduler, dir, .. } = ctx;
    scheduler.shutdown().await;
    let ctx = TestContext::start(dir, Options::default(), |_| {}).await;
    assert_eq!(ctx.dir.path(), path);
    let r = ctx
        .call(Method::GET, "/identity/v3/auth/catalog", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401_with_a_message() {
    let ctx = TestContext::new(Options::default()).await;
    for (user, password) in [("admin", "wrong"), ("nobody", "x")] {
        let r = ctx
            .try_token(user, password, Some("admin"))
            .await
            .unwrap_err();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["error"]["code"], 401);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("password")
        );
        assert!(r.header("www-authenticate").is_some());
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn application_credentials_authenticate_and_die_with_deletion() {
    let ctx = TestContext::new(Options::default()).await;
    let (project_id, user_id, token) = ctx
        .user_with_role(&ctx.admin_token().await, "alice", "member")
        .await;
    let created = ctx
        .call(
            Method::POST,
            &format!("/identity/v3/users/{user_id}/application_credentials"),
            Some(&token),
            Some(json!({"application_credential": {"name": "ak", "roles": [{"name": "reader"}]}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let cred = &created.body["application_credential"];
    let (id, secret) = (
        cred["id"].as_str().unwrap(),
        cred["secret"].as_str().unwrap(),
    );
    assert_eq!(cred["project_id"], project_id);
    let auth = |secret: &str| {
        json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": id, "secret": secret}}}})
    };
    let r = ctx
        .call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            Some(auth(secret)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["token"]["project"]["id"], project_id);
    assert_eq!(r.body["token"]["application_credential"]["id"], id);
    let roles: Vec<&str> = r.body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["reader"], "only the roles the credential was given");
    let by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"name": "ak", "user": {"name": "alice", "domain": {"id": "default"}}, "secret": secret}}}});
    assert_eq!(
        ctx.call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            Some(by_name)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let cred_token = r.header("x-subject-token").unwrap().to_string();
    assert_eq!(
        ctx.call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            Some(auth("wrong"))
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    let listed = ctx
        .call(
            Method::GET,
            &format!("/identity/v3/users/{user_id}/application_credentials"),
            Some(&token),
            None,
        )
        .await;
    assert!(
        listed.body["application_credentials"][0]
            .get("secret")
            .is_none(),
        "the secret is shown once"
    );
    let deleted = ctx
        .call(
            Method::DELETE,
            &format!("/identity/v3/users/{user_id}/application_credentials/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ctx.call(
            Method::POST,
            "/identity/v3/auth/tokens",
            None,
            Some(auth(secret))
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ctx.call(
            Method::GET,
            "/identity/v3/auth/projects",
            Some(&cred_token),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED,
        "tokens from a deleted credential are revoked"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn administration_of_domains_projects_users_roles_and_regions() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let call = |m: Method, p: String, b: Option<Value>| {
        let admin = admin.clone();
        let ctx = &ctx;
        async move { ctx.call(m, &p, Some(&admin), b).await }
    };
    // Domains.
    let d = call(
        Method::POST,
        "/identity/v3/domains".into(),
        Some(json!({"domain": {"name": "gis"}})),
    )
    .await;
    assert_eq!(d.status, StatusCode::CREATED);
    let did = d.body["domain"]["id"].as_str().unwrap().to_string();
    let dup = call(
        Method::POST,
        "/identity/v3/domains".into(),
        Some(json!({"domain": {"name": "gis"}})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Projects in it, update, and duplicate names.
    let p = call(
        Method::POST,
        "/identity/v3/projects".into(),
        Some(json!({"project": {"name": "maps", "domain_id": did}})),
    )
    .await;
    assert_eq!(p.status, StatusCode::CREATED);
    let pid = p.body["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(p.body["project"]["domain_id"], did);
    let dup = call(
        Method::POST,
        "/identity/v3/projects".into(),
        Some(json!({"project": {"name": "maps", "domain_id": did}})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(
        dup.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maps")
    );
    let up = call(
        Method::PATCH,
        format!("/identity/v3/projects/{pid}"),
        Some(json!({"project": {"description": "tiles"}})),
    )
    .await;
    assert_eq!(up.body["project"]["description"], "tiles");
    // A domain with projects cannot go.
    call(
        Method::PATCH,
        format!("/identity/v3/domains/{did}"),
        Some(json!({"domain": {"enabled": false}})),
    )
    .await;
    assert_eq!(
        call(Method::DELETE, format!("/identity/v3/domains/{did}"), None)
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call(Method::DELETE, format!("/identity/v3/projects/{pid}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::GET, format!("/identity/v3/projects/{pid}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Method::DELETE, format!("/identity/v3/domains/{did}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // Users: create, password change by admin revokes their tokens.
    let (_, uid, utoken) = ctx.user_with_role(&admin, "bob", "member").await;
    let set = call(
        Method::PATCH,
        format!("/identity/v3/users/{uid}"),
        Some(json!({"user": {"password": "new"}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    assert!(set.body["user"].get("password").is_none());
    assert_eq!(
        ctx.call(
            Method::GET,
            "/identity/v3/auth/projects",
            Some(&utoken),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    assert!(ctx.try_token("bob", "pw", Some("bob")).await.is_err());
    let bob = ctx.token("bob", "new", "bob").await;
    // A user changes their own password with the original one.
    let own = ctx
        .call(
            Method::POST,
            &format!("/identity/v3/users/{uid}/password"),
            Some(&bob),
            Some(json!({"user": {"password": "newer", "original_password": "new"}})),
        )
        .await;
    assert_eq!(own.status, StatusCode::NO_CONTENT);
    ctx.token("bob", "newer", "bob").await;
    // Roles and assignments.
    let role = call(
        Method::POST,
        "/identity/v3/roles".into(),
        Some(json!({"role": {"name": "auditor"}})),
    )
    .await;
    let rid = role.body["role"]["id"].as_str().unwrap().to_string();
    let projects = call(Method::GET, "/identity/v3/projects?name=bob".into(), None).await;
    let bob_project = projects.body["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let grant = format!("/identity/v3/projects/{bob_project}/users/{uid}/roles/{rid}");
    assert_eq!(
        call(Method::PUT, grant.clone(), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::HEAD, grant.clone(), None).await.status,
        StatusCode::NO_CONTENT
    );
    let listed = call(
        Method::GET,
        format!("/identity/v3/role_assignments?user.id={uid}&include_names"),
        None,
    )
    .await;
    let names: Vec<&str> = listed.body["role_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"auditor") && names.contains(&"member"),
        "{names:?}"
    );
    assert_eq!(
        call(Method::DELETE, grant.clone(), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Method::HEAD, grant, None).await.status,
        StatusCode::NOT_FOUND
    );
    let builtin = call(Method::GET, "/identity/v3/roles?name=admin".into(), None).await;
    let admin_role = builtin.body["roles"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            Method::DELETE,
            format!("/identity/v3/roles/{admin_role}"),
            None
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // Regions, the standard's data centres: each with id and name.
    let r = call(
        Method::POST,
        "/identity/v3/regions".into(),
        Some(json!({"region": {"id": "RegionTwo", "description": "second"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let regions = call(Method::GET, "/identity/v3/regions".into(), None).await;
    let ids: Vec<&str> = regions.body["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["RegionOne", "RegionTwo"]);
    assert_eq!(
        call(
            Method::DELETE,
            "/identity/v3/regions/RegionOne".into(),
            None
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        call(
            Method::DELETE,
            "/identity/v3/regions/RegionTwo".into(),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    // Users go, with their tokens.
    assert_eq!(
        call(Method::DELETE, format!("/identity/v3/users/{uid}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ctx.call(Method::GET, "/identity/v3/auth/projects", Some(&bob), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn first_start_writes_a_private_admin_password_and_a_clouds_yaml() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(dir, Options::default(), |c| c.admin_password = None).await;
    let file = ctx.scheduler.paths.admin_password();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let password = std::fs::read_to_string(&file).unwrap();
    ctx.token("admin", password.trim(), "admin").await;
    let clouds = std::fs::read_to_string(ctx.scheduler.paths.clouds_yaml()).unwrap();
    assert!(clouds.contains("  yunji:") && clouds.contains(&format!("{}/identity/v3", ctx.url)));
    assert!(clouds.contains(password.trim()));
    ctx.shutdown().await;
}
