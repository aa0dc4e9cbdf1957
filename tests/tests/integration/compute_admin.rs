//! Nova 2.1 administration around servers: flavors (access, extra specs, paging), key
//! pairs, limits and quota sets, hypervisors and their statistics, services and
//! availability zones — shapes exactly as 2.1 has them, the microversion headers, and the
//! 401/403/404 matrix.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const C: &str = "/compute/v2.1";

/// A key generated with ssh-keygen, and what `ssh-keygen -l -E md5` says of it.
const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICwSr2J8LHqGdYjEiNITg+rUvJM+yU1+wpYP/M1/9yDE test";
const ED25519_MD5: &str = "28:04:5f:2d:a1:d6:cc:66:10:ff:9f:cc:cc:c6:fd:a2";

fn is_uuid(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 36 && s.matches('-').count() == 4
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

async fn get(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::GET, &format!("{C}{path}"), Some(token), None)
        .await
}

async fn send(ctx: &TestContext, method: Method, path: &str, token: &str, body: Value) -> Reply {
    ctx.call(method, &format!("{C}{path}"), Some(token), Some(body))
        .await
}

async fn delete(ctx: &TestContext, path: &str, token: &str) -> Reply {
    ctx.call(Method::DELETE, &format!("{C}{path}"), Some(token), None)
        .await
}

fn ids(r: &Reply) -> Vec<String> {
    r.body["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

async fn create_flavor(ctx: &TestContext, admin: &str, flavor: Value) -> Value {
    let r = send(
        ctx,
        Method::POST,
        "/flavors",
        admin,
        json!({"flavor": flavor}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["flavor"].clone()
}

const FLAVOR_DETAIL: &[&str] = &[
    "id",
    "name",
    "ram",
    "disk",
    "vcpus",
    "swap",
    "OS-FLV-EXT-DATA:ephemeral",
    "OS-FLV-DISABLED:disabled",
    "os-flavor-access:is_public",
    "rxtx_factor",
    "links",
];

#[tokio::test]
async fn the_usual_flavors_are_there_from_the_start_in_nova_21_shapes() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let list = get(&ctx, "/flavors", &member).await;
    let detail = get(&ctx, "/flavors/detail", &member).await;
    let tiny = get(&ctx, "/flavors/1", &member).await;

    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(ids(&list), ["1", "2", "3", "4", "5"]);
    for f in list.body["flavors"].as_array().unwrap() {
        assert_eq!(keys(f), set(&["id", "name", "links"]));
    }
    assert_eq!(list.body.as_object().unwrap().len(), 1, "no flavors_links");
    for f in detail.body["flavors"].as_array().unwrap() {
        assert_eq!(keys(f), set(FLAVOR_DETAIL));
    }
    let sizes: Vec<(String, u64, u64, u64)> = detail.body["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["vcpus"].as_u64().unwrap(),
                f["ram"].as_u64().unwrap(),
                f["disk"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("m1.tiny".to_string(), 1, 512, 1),
            ("m1.small".to_string(), 1, 2048, 20),
            ("m1.medium".to_string(), 2, 4096, 40),
            ("m1.large".to_string(), 4, 8192, 80),
            ("m1.xlarge".to_string(), 8, 16384, 160),
        ]
    );
    let f = &tiny.body["flavor"];
    assert_eq!(keys(f), set(FLAVOR_DETAIL));
    assert_eq!(f["swap"], "");
    assert_eq!(f["OS-FLV-DISABLED:disabled"], false);
    assert_eq!(f["os-flavor-access:is_public"], true);
    assert_eq!(f["rxtx_factor"], 1.0);
    assert_eq!(
        f["links"][0]["href"],
        format!("{}/compute/v2.1/flavors/1", ctx.url)
    );
    assert_eq!(f["links"][0]["rel"], "self");
    assert_eq!(
        f["links"][1]["href"],
        format!("{}/compute/flavors/1", ctx.url)
    );
    assert_eq!(f["links"][1]["rel"], "bookmark");
    ctx.shutdown().await;
}

/// A request with a microversion header (`OpenStack-API-Version: compute {mv}`).
async fn call_mv(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: &str,
    header: (&str, &str),
    body: Option<Value>,
) -> Reply {
    let mut req = ctx
        .client
        .request(method, format!("{}{C}{path}", ctx.url))
        .header("X-Auth-Token", token)
        .header(header.0, header.1);
    if let Some(b) = body {
        req = req.json(&b);
    }
    yunji_tests::Api::reply(req.send().await.unwrap()).await
}

fn at(mv: &str) -> (&'static str, String) {
    ("OpenStack-API-Version", format!("compute {mv}"))
}

#[tokio::test]
async fn every_response_echoes_the_negotiated_microversion() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let discovery = ctx.call(Method::GET, "/compute/v2.1/", None, None).await;
    let max = discovery.body["version"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let ask = |header: (&'static str, &'static str)| {
        call_mv(&ctx, Method::GET, "/flavors", &admin, header, None)
    };

    let none = get(&ctx, "/flavors", &admin).await;
    let latest = ask(("OpenStack-API-Version", "compute latest")).await;
    let exact = ask(("OpenStack-API-Version", "compute 2.1")).await;
    let legacy = ask(("X-OpenStack-Nova-API-Version", "2.1")).await;
    let too_new = ask(("OpenStack-API-Version", "compute 2.90")).await;
    let malformed = ask(("OpenStack-API-Version", "compute x.y")).await;
    let error = get(&ctx, "/flavors/no-such-flavor", &admin).await;

    for r in [&none, &latest, &exact, &legacy] {
        assert_eq!(r.status, StatusCode::OK);
    }
    for r in [&none, &exact, &legacy, &error] {
        assert_eq!(r.header("openstack-api-version"), Some("compute 2.1"));
        assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.1"));
    }
    assert_eq!(
        latest.header("openstack-api-version"),
        Some(format!("compute {max}").as_str())
    );
    assert_eq!(
        latest.header("x-openstack-nova-api-version"),
        Some(max.as_str())
    );
    for r in [
        &none, &latest, &exact, &legacy, &error, &too_new, &malformed,
    ] {
        let vary = r.header("vary").unwrap().to_ascii_lowercase();
        assert!(vary.contains("openstack-api-version"), "{vary}");
        assert!(vary.contains("x-openstack-nova-api-version"), "{vary}");
    }
    assert_eq!(too_new.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(too_new.body["notAcceptable"]["code"], 406);
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["badRequest"]["code"], 400);
    ctx.shutdown().await;
}

#[tokio::test]
async fn admins_create_and_delete_flavors_and_members_may_not() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let auto = create_flavor(
        &ctx,
        &admin,
        json!({"name": "auto", "ram": 1024, "vcpus": 2, "disk": 10, "id": "auto"}),
    )
    .await;
    let absent = create_flavor(
        &ctx,
        &admin,
        json!({"name": "absent", "ram": "256", "vcpus": "1", "disk": "0"}),
    )
    .await;
    let full = create_flavor(
        &ctx,
        &admin,
        json!({"name": "full", "ram": 2048, "vcpus": 2, "disk": 20, "id": "c2.m2",
               "OS-FLV-EXT-DATA:ephemeral": 5, "swap": 512, "rxtx_factor": 2.0,
               "os-flavor-access:is_public": false}),
    )
    .await;
    let dup_name = send(
        &ctx,
        Method::POST,
        "/flavors",
        &admin,
        json!({"flavor": {"name": "full", "ram": 1, "vcpus": 1, "disk": 0}}),
    )
    .await;
    let dup_id = send(
        &ctx,
        Method::POST,
        "/flavors",
        &admin,
        json!({"flavor": {"name": "other", "ram": 1, "vcpus": 1, "disk": 0, "id": "1"}}),
    )
    .await;
    let by_member = send(
        &ctx,
        Method::POST,
        "/flavors",
        &member,
        json!({"flavor": {"name": "m", "ram": 1, "vcpus": 1, "disk": 0}}),
    )
    .await;
    let delete_by_member = delete(&ctx, "/flavors/1", &member).await;
    let deleted = delete(&ctx, "/flavors/c2.m2", &admin).await;
    let after = get(&ctx, "/flavors/c2.m2", &admin).await;
    let again = delete(&ctx, "/flavors/c2.m2", &admin).await;

    assert!(is_uuid(&auto["id"]), "{auto}");
    assert!(is_uuid(&absent["id"]), "{absent}");
    assert_eq!(absent["ram"], 256);
    assert_eq!(keys(&full), set(FLAVOR_DETAIL));
    assert_eq!(full["id"], "c2.m2");
    assert_eq!(full["swap"], 512);
    assert_eq!(full["OS-FLV-EXT-DATA:ephemeral"], 5);
    assert_eq!(full["rxtx_factor"], 2.0);
    assert_eq!(full["os-flavor-access:is_public"], false);
    assert_eq!(dup_name.status, StatusCode::CONFLICT);
    assert!(
        dup_name.body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("name full")
    );
    assert_eq!(dup_id.status, StatusCode::CONFLICT);
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(delete_by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert!(deleted.raw.is_empty());
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_flavors_are_400_and_names_in_the_url_are_404() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let bad = [
        json!({"name": "z", "ram": 0, "vcpus": 1, "disk": 0}),
        json!({"name": "z", "ram": 1, "vcpus": -1, "disk": 0}),
        json!({"name": "z", "ram": 1, "vcpus": 1, "disk": -1}),
        json!({"name": "z", "ram": 1, "vcpus": "many", "disk": 0}),
        json!({"name": "z", "ram": 1.5, "vcpus": 1, "disk": 0}),
        json!({"name": "z", "ram": 4_294_967_296u64, "vcpus": 1, "disk": 0}),
        json!({"name": "z", "vcpus": 1, "disk": 0}),
        json!({"name": " z", "ram": 1, "vcpus": 1, "disk": 0}),
        json!({"name": "z", "ram": 1, "vcpus": 1, "disk": 0, "id": "a/b"}),
        json!({"name": "z", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}),
        json!({"name": "z", "ram": 1, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": "maybe"}),
        json!({"name": "z", "ram": 1, "vcpus": 1, "disk": 0, "colour": "blue"}),
    ];

    for flavor in bad {
        let r = send(
            &ctx,
            Method::POST,
            "/flavors",
            &admin,
            json!({"flavor": flavor}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{flavor}: {}", r.body);
        assert!(r.body["badRequest"]["message"].as_str().unwrap().len() > 10);
    }
    let by_name = get(&ctx, "/flavors/m1.tiny", &admin).await;
    let spaced = get(&ctx, "/flavors/m1%20tiny", &admin).await;
    let extra_by_name = get(&ctx, "/flavors/m1.tiny/os-extra_specs", &admin).await;
    assert_eq!(by_name.status, StatusCode::NOT_FOUND);
    assert_eq!(by_name.body["itemNotFound"]["code"], 404);
    assert_eq!(spaced.status, StatusCode::NOT_FOUND);
    assert_eq!(extra_by_name.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn flavor_lists_filter_sort_and_page_with_markers() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;

    let min_ram = get(&ctx, "/flavors?minRam=4096", &admin).await;
    let min_disk = get(&ctx, "/flavors/detail?minDisk=40&deleted=False", &admin).await;
    let by_ram_desc = get(&ctx, "/flavors?sort_key=memory_mb&sort_dir=desc", &admin).await;
    let by_name = get(&ctx, "/flavors?sort_key=name", &admin).await;
    let first = get(&ctx, "/flavors?limit=2", &admin).await;
    let next = first.body["flavors_links"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let second = yunji_tests::Api::reply(
        ctx.client
            .get(&next)
            .header("X-Auth-Token", &admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let last = get(&ctx, "/flavors/detail?limit=2&marker=4", &admin).await;
    let bad_marker = get(&ctx, "/flavors?marker=nope", &admin).await;
    let bad_key = get(&ctx, "/flavors?sort_key=colour", &admin).await;
    let bad_dir = get(&ctx, "/flavors?sort_dir=up", &admin).await;
    let bad_limit = get(&ctx, "/flavors?limit=-1", &admin).await;
    let bad_ram = get(&ctx, "/flavors?minRam=lots", &admin).await;
    let bad_public = get(&ctx, "/flavors?is_public=maybe", &admin).await;

    assert_eq!(ids(&min_ram), ["3", "4", "5"]);
    assert_eq!(ids(&min_disk), ["3", "4", "5"]);
    assert_eq!(ids(&by_ram_desc), ["5", "4", "3", "2", "1"]);
    assert_eq!(ids(&by_name), ["4", "3", "2", "1", "5"]);
    assert_eq!(ids(&first), ["1", "2"]);
    assert_eq!(first.body["flavors_links"][0]["rel"], "next");
    assert_eq!(
        next,
        format!("{}/compute/v2.1/flavors?limit=2&marker=2", ctx.url)
    );
    assert_eq!(ids(&second), ["3", "4"]);
    assert!(second.body.get("flavors_links").is_some());
    assert_eq!(ids(&last), ["5"]);
    assert!(last.body.get("flavors_links").is_none());
    for r in [
        &bad_marker,
        &bad_key,
        &bad_dir,
        &bad_limit,
        &bad_ram,
        &bad_public,
    ] {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn private_flavors_are_seen_only_by_projects_given_access() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (alice_project, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, bob) = ctx.user_with_role(&admin, "bob", "member").await;
    create_flavor(
        &ctx,
        &admin,
        json!({"name": "secret", "ram": 64, "vcpus": 1, "disk": 0, "id": "secret",
               "os-flavor-access:is_public": false}),
    )
    .await;
    let action = |tenant: &str, what: &str| json!({ what: {"tenant": tenant} });

    let hidden_list = get(&ctx, "/flavors", &alice).await;
    let hidden_show = get(&ctx, "/flavors/secret", &alice).await;
    let admin_default = get(&ctx, "/flavors", &admin).await;
    let admin_all = get(&ctx, "/flavors?is_public=None", &admin).await;
    let admin_private = get(&ctx, "/flavors?is_public=false", &admin).await;
    let member_asks_all = get(&ctx, "/flavors?is_public=none", &alice).await;
    let granted = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        action(&alice_project, "addTenantAccess"),
    )
    .await;
    let granted_twice = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        action(&alice_project, "addTenantAccess"),
    )
    .await;
    let unknown_project = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        action("no-such-project", "addTenantAccess"),
    )
    .await;
    let public = send(
        &ctx,
        Method::POST,
        "/flavors/1/action",
        &admin,
        action(&alice_project, "addTenantAccess"),
    )
    .await;
    let by_member = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &alice,
        action(&alice_project, "addTenantAccess"),
    )
    .await;
    let access = get(&ctx, "/flavors/secret/os-flavor-access", &admin).await;
    let public_access = get(&ctx, "/flavors/1/os-flavor-access", &admin).await;
    let member_access = get(&ctx, "/flavors/secret/os-flavor-access", &alice).await;
    let alice_list = get(&ctx, "/flavors", &alice).await;
    let alice_show = get(&ctx, "/flavors/secret", &alice).await;
    let bob_show = get(&ctx, "/flavors/secret", &bob).await;
    let revoked = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        action(&alice_project, "removeTenantAccess"),
    )
    .await;
    let revoked_twice = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        action(&alice_project, "removeTenantAccess"),
    )
    .await;
    let after = get(&ctx, "/flavors/secret", &alice).await;
    let unknown_action = send(
        &ctx,
        Method::POST,
        "/flavors/secret/action",
        &admin,
        json!({"shareWithEveryone": {}}),
    )
    .await;

    assert!(!ids(&hidden_list).contains(&"secret".to_string()));
    assert_eq!(hidden_show.status, StatusCode::NOT_FOUND);
    assert!(!ids(&admin_default).contains(&"secret".to_string()));
    assert_eq!(ids(&admin_all).len(), 6);
    assert_eq!(ids(&admin_private), ["secret"]);
    assert_eq!(ids(&member_asks_all).len(), 5);
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    assert_eq!(
        granted.body,
        json!({"flavor_access": [{"flavor_id": "secret", "tenant_id": alice_project}]})
    );
    assert_eq!(granted_twice.status, StatusCode::CONFLICT);
    assert_eq!(unknown_project.status, StatusCode::BAD_REQUEST);
    assert_eq!(public.status, StatusCode::CONFLICT);
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(access.body, granted.body);
    assert_eq!(public_access.status, StatusCode::NOT_FOUND);
    assert_eq!(member_access.status, StatusCode::FORBIDDEN);
    assert!(ids(&alice_list).contains(&"secret".to_string()));
    assert_eq!(alice_show.status, StatusCode::OK);
    assert_eq!(bob_show.status, StatusCode::NOT_FOUND);
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body, json!({"flavor_access": []}));
    assert_eq!(revoked_twice.status, StatusCode::NOT_FOUND);
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_action.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn flavor_extra_specs_are_set_by_admins_and_read_by_everyone() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let specs = "/flavors/1/os-extra_specs";

    let created = send(
        &ctx,
        Method::POST,
        specs,
        &admin,
        json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": 1024, "x": true}}),
    )
    .await;
    let all = get(&ctx, specs, &member).await;
    let one = get(&ctx, &format!("{specs}/hw:cpu_policy"), &member).await;
    let put = send(
        &ctx,
        Method::PUT,
        &format!("{specs}/hw:cpu_policy"),
        &admin,
        json!({"hw:cpu_policy": "shared"}),
    )
    .await;
    let mismatch = send(
        &ctx,
        Method::PUT,
        &format!("{specs}/hw:cpu_policy"),
        &admin,
        json!({"other": "shared"}),
    )
    .await;
    let bad_key = send(
        &ctx,
        Method::POST,
        specs,
        &admin,
        json!({"extra_specs": {"no/slash": "x"}}),
    )
    .await;
    let by_member = send(
        &ctx,
        Method::POST,
        specs,
        &member,
        json!({"extra_specs": {"a": "b"}}),
    )
    .await;
    let removed = delete(&ctx, &format!("{specs}/x"), &admin).await;
    let gone = get(&ctx, &format!("{specs}/x"), &admin).await;
    let member_delete = delete(&ctx, &format!("{specs}/hw:cpu_policy"), &member).await;
    let unknown_flavor = get(&ctx, "/flavors/nope/os-extra_specs", &admin).await;
    let finally = get(&ctx, specs, &admin).await;

    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        created.body,
        json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024", "x": "True"}})
    );
    assert_eq!(all.body, created.body);
    assert_eq!(one.body, json!({"hw:cpu_policy": "dedicated"}));
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.body, json!({"hw:cpu_policy": "shared"}));
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_key.status, StatusCode::BAD_REQUEST);
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(removed.status, StatusCode::ACCEPTED);
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(member_delete.status, StatusCode::FORBIDDEN);
    assert_eq!(unknown_flavor.status, StatusCode::NOT_FOUND);
    assert_eq!(
        finally.body,
        json!({"extra_specs": {"hw:cpu_policy": "shared", "quota:cpu_shares": "1024"}})
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn key_pairs_are_generated_or_imported_and_private_to_their_user() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, bob) = ctx.user_with_role(&admin, "bob", "member").await;
    let create = |name: &str, key: Option<&str>| {
        let mut kp = json!({"name": name});
        if let Some(k) = key {
            kp["public_key"] = json!(k);
        }
        json!({"keypair": kp})
    };

    let generated = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        create("gen", None),
    )
    .await;
    let imported = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        create("my key", Some(ED25519)),
    )
    .await;
    let duplicate = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        create("gen", Some(ED25519)),
    )
    .await;
    let garbage = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        create("bad", Some("ssh-rsa not-a-key")),
    )
    .await;
    let unsafe_name = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        create("a/b", None),
    )
    .await;
    let with_type = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        json!({"keypair": {"name": "t", "type": "ssh"}}),
    )
    .await;
    let list = get(&ctx, "/os-keypairs", &alice).await;
    let show = get(&ctx, "/os-keypairs/my%20key", &alice).await;
    let bob_list = get(&ctx, "/os-keypairs", &bob).await;
    let bob_show = get(&ctx, "/os-keypairs/gen", &bob).await;
    let bob_delete = delete(&ctx, "/os-keypairs/gen", &bob).await;
    let deleted = delete(&ctx, "/os-keypairs/gen", &alice).await;
    let after = get(&ctx, "/os-keypairs/gen", &alice).await;

    assert_eq!(generated.status, StatusCode::OK, "{}", generated.body);
    let g = &generated.body["keypair"];
    assert_eq!(
        keys(g),
        set(&[
            "name",
            "public_key",
            "fingerprint",
            "user_id",
            "private_key"
        ])
    );
    assert!(
        g["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    assert!(
        g["public_key"]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 ")
    );
    assert_eq!(g["fingerprint"].as_str().unwrap().len(), 47);
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert_eq!(
        keys(&imported.body["keypair"]),
        set(&["name", "public_key", "fingerprint", "user_id"])
    );
    assert_eq!(imported.body["keypair"]["fingerprint"], ED25519_MD5);
    assert_eq!(imported.body["keypair"]["public_key"], ED25519);
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(
        garbage.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Keypair data is invalid")
    );
    assert_eq!(unsafe_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(with_type.status, StatusCode::BAD_REQUEST);
    let items = list.body["keypairs"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(keys(item), set(&["keypair"]));
        assert_eq!(
            keys(&item["keypair"]),
            set(&["name", "public_key", "fingerprint"])
        );
    }
    assert_eq!(show.status, StatusCode::OK);
    let s = &show.body["keypair"];
    assert_eq!(
        keys(s),
        set(&[
            "id",
            "name",
            "user_id",
            "public_key",
            "fingerprint",
            "created_at",
            "updated_at",
            "deleted_at",
            "deleted"
        ])
    );
    assert!(s["id"].is_i64());
    assert_eq!(s["deleted"], false);
    assert_eq!(bob_list.body, json!({"keypairs": []}));
    assert_eq!(bob_show.status, StatusCode::NOT_FOUND);
    assert_eq!(bob_delete.status, StatusCode::NOT_FOUND);
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(after.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

#[tokio::test]
async fn key_pairs_from_2_2_have_a_type_and_from_2_10_admins_name_the_user() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, alice_id, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, bob_id, _) = ctx.user_with_role(&admin, "bob", "member").await;
    let (h22, v22) = at("2.2");
    let (h210, v210) = at("2.10");
    let mv22 = (h22, v22.as_str());
    let mv210 = (h210, v210.as_str());

    let created = call_mv(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        mv22,
        Some(json!({"keypair": {"name": "k", "type": "ssh", "public_key": ED25519}})),
    )
    .await;
    let x509 = call_mv(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        mv22,
        Some(json!({"keypair": {"name": "c", "type": "x509"}})),
    )
    .await;
    let list = call_mv(&ctx, Method::GET, "/os-keypairs", &alice, mv22, None).await;
    let show = call_mv(&ctx, Method::GET, "/os-keypairs/k", &alice, mv22, None).await;
    let user_id_too_early = call_mv(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &admin,
        mv22,
        Some(json!({"keypair": {"name": "b", "user_id": bob_id}})),
    )
    .await;
    let for_bob = call_mv(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &admin,
        mv210,
        Some(json!({"keypair": {"name": "b", "user_id": bob_id}})),
    )
    .await;
    let for_nobody = call_mv(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &admin,
        mv210,
        Some(json!({"keypair": {"name": "b", "user_id": "no-such-user"}})),
    )
    .await;
    let admin_lists_alice = call_mv(
        &ctx,
        Method::GET,
        &format!("/os-keypairs?user_id={alice_id}"),
        &admin,
        mv210,
        None,
    )
    .await;
    let alice_lists_bob = call_mv(
        &ctx,
        Method::GET,
        &format!("/os-keypairs?user_id={bob_id}"),
        &alice,
        mv210,
        None,
    )
    .await;
    let admin_deletes_bobs = call_mv(
        &ctx,
        Method::DELETE,
        &format!("/os-keypairs/b?user_id={bob_id}"),
        &admin,
        mv210,
        None,
    )
    .await;
    let deleted = call_mv(&ctx, Method::DELETE, "/os-keypairs/k", &alice, mv22, None).await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        keys(&created.body["keypair"]),
        set(&["name", "public_key", "fingerprint", "user_id", "type"])
    );
    assert_eq!(created.body["keypair"]["type"], "ssh");
    assert_eq!(x509.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        keys(&list.body["keypairs"][0]["keypair"]),
        set(&["name", "public_key", "fingerprint", "type"])
    );
    assert_eq!(show.body["keypair"]["type"], "ssh");
    assert_eq!(keys(&show.body["keypair"]).len(), 10);
    assert_eq!(user_id_too_early.status, StatusCode::BAD_REQUEST);
    assert_eq!(for_bob.status, StatusCode::CREATED, "{}", for_bob.body);
    assert_eq!(for_bob.body["keypair"]["user_id"], bob_id);
    assert_eq!(for_nobody.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        admin_lists_alice.body["keypairs"][0]["keypair"]["name"],
        "k"
    );
    assert_eq!(alice_lists_bob.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_deletes_bobs.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.raw.is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn key_pairs_count_against_the_key_pairs_quota() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let set_quota = send(
        &ctx,
        Method::PUT,
        &format!("/os-quota-sets/{project}"),
        &admin,
        json!({"quota_set": {"key_pairs": 1}}),
    )
    .await;

    let first = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        json!({"keypair": {"name": "one"}}),
    )
    .await;
    let second = send(
        &ctx,
        Method::POST,
        "/os-keypairs",
        &alice,
        json!({"keypair": {"name": "two"}}),
    )
    .await;

    assert_eq!(set_quota.status, StatusCode::OK);
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        second.body["overLimit"]["message"]
            .as_str()
            .unwrap()
            .contains("key pairs")
    );
    ctx.shutdown().await;
}

const ABSOLUTE: &[&str] = &[
    "maxTotalInstances",
    "maxTotalCores",
    "maxTotalRAMSize",
    "maxTotalKeypairs",
    "maxServerMeta",
    "maxPersonality",
    "maxPersonalitySize",
    "maxImageMeta",
    "maxSecurityGroups",
    "maxSecurityGroupRules",
    "maxTotalFloatingIps",
    "maxServerGroups",
    "maxServerGroupMembers",
    "totalInstancesUsed",
    "totalCoresUsed",
    "totalRAMUsed",
    "totalFloatingIpsUsed",
    "totalSecurityGroupsUsed",
    "totalServerGroupsUsed",
];

const QUOTA_RESOURCES: &[&str] = &[
    "cores",
    "fixed_ips",
    "floating_ips",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "injected_files",
    "instances",
    "key_pairs",
    "metadata_items",
    "ram",
    "security_group_rules",
    "security_groups",
    "server_group_members",
    "server_groups",
];

#[tokio::test]
async fn limits_show_the_projects_quota_and_usage() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (other, _, _) = ctx.user_with_role(&admin, "bob", "member").await;

    let before = get(&ctx, "/limits", &alice).await;
    send(
        &ctx,
        Method::PUT,
        &format!("/os-quota-sets/{project}"),
        &admin,
        json!({"quota_set": {"instances": 5, "cores": "8", "ram": -1}}),
    )
    .await;
    let after = get(&ctx, "/limits", &alice).await;
    let admin_for_alice = get(&ctx, &format!("/limits?tenant_id={project}"), &admin).await;
    let alice_for_other = get(&ctx, &format!("/limits?tenant_id={other}"), &alice).await;

    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(keys(&before.body["limits"]), set(&["rate", "absolute"]));
    assert_eq!(before.body["limits"]["rate"], json!([]));
    let absolute = &before.body["limits"]["absolute"];
    assert_eq!(keys(absolute), set(ABSOLUTE));
    assert_eq!(absolute["maxTotalInstances"], 10);
    assert_eq!(absolute["maxTotalCores"], 20);
    assert_eq!(absolute["maxTotalRAMSize"], 51200);
    assert_eq!(absolute["maxTotalKeypairs"], 100);
    assert_eq!(absolute["totalInstancesUsed"], 0);
    assert_eq!(absolute["totalRAMUsed"], 0);
    let absolute = &after.body["limits"]["absolute"];
    assert_eq!(absolute["maxTotalInstances"], 5);
    assert_eq!(absolute["maxTotalCores"], 8);
    assert_eq!(absolute["maxTotalRAMSize"], -1);
    assert_eq!(admin_for_alice.body, after.body);
    assert_eq!(alice_for_other.status, StatusCode::FORBIDDEN);
    ctx.shutdown().await;
}

#[tokio::test]
async fn quota_sets_are_read_by_the_project_and_set_by_admins() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, alice) = ctx.user_with_role(&admin, "alice", "member").await;
    let (other, _, _) = ctx.user_with_role(&admin, "bob", "member").await;
    let path = format!("/os-quota-sets/{project}");

    let initial = get(&ctx, &path, &alice).await;
    let defaults = get(&ctx, &format!("{path}/defaults"), &alice).await;
    let updated = send(
        &ctx,
        Method::PUT,
        &path,
        &admin,
        json!({"quota_set": {"instances": 5, "key_pairs": "7", "force": true}}),
    )
    .await;
    let shown = get(&ctx, &path, &alice).await;
    let detail = get(&ctx, &format!("{path}/detail"), &alice).await;
    let too_low = send(
        &ctx,
        Method::PUT,
        &path,
        &admin,
        json!({"quota_set": {"instances": -2}}),
    )
    .await;
    let unknown = send(
        &ctx,
        Method::PUT,
        &path,
        &admin,
        json!({"quota_set": {"gpus": 1}}),
    )
    .await;
    let not_a_number = send(
        &ctx,
        Method::PUT,
        &path,
        &admin,
        json!({"quota_set": {"cores": "many"}}),
    )
    .await;
    let no_project = send(
        &ctx,
        Method::PUT,
        "/os-quota-sets/no-such-project",
        &admin,
        json!({"quota_set": {"cores": 1}}),
    )
    .await;
    let by_member = send(
        &ctx,
        Method::PUT,
        &path,
        &alice,
        json!({"quota_set": {"instances": 50}}),
    )
    .await;
    let other_project = get(&ctx, &format!("/os-quota-sets/{other}"), &alice).await;
    let other_detail = get(&ctx, &format!("/os-quota-sets/{other}/detail"), &alice).await;
    let member_delete = delete(&ctx, &path, &alice).await;
    let reset = delete(&ctx, &path, &admin).await;
    let after_reset = get(&ctx, &path, &admin).await;

    assert_eq!(initial.status, StatusCode::OK);
    let mut with_id = set(QUOTA_RESOURCES);
    with_id.insert("id".into());
    assert_eq!(keys(&initial.body["quota_set"]), with_id);
    assert_eq!(initial.body["quota_set"]["id"], project);
    assert_eq!(initial.body["quota_set"]["instances"], 10);
    assert_eq!(defaults.body, initial.body);
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(keys(&updated.body["quota_set"]), set(QUOTA_RESOURCES));
    assert_eq!(updated.body["quota_set"]["instances"], 5);
    assert_eq!(updated.body["quota_set"]["key_pairs"], 7);
    assert_eq!(shown.body["quota_set"]["instances"], 5);
    assert_eq!(keys(&detail.body["quota_set"]), with_id);
    assert_eq!(
        detail.body["quota_set"]["instances"],
        json!({"limit": 5, "in_use": 0, "reserved": 0})
    );
    for r in [&too_low, &unknown, &not_a_number, &no_project] {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(other_project.status, StatusCode::FORBIDDEN);
    assert_eq!(other_detail.status, StatusCode::FORBIDDEN);
    assert_eq!(member_delete.status, StatusCode::FORBIDDEN);
    assert_eq!(reset.status, StatusCode::ACCEPTED);
    assert_eq!(after_reset.body["quota_set"]["instances"], 10);
    ctx.shutdown().await;
}

const HYPERVISOR_DETAIL: &[&str] = &[
    "id",
    "hypervisor_hostname",
    "state",
    "status",
    "vcpus",
    "memory_mb",
    "local_gb",
    "vcpus_used",
    "memory_mb_used",
    "local_gb_used",
    "free_ram_mb",
    "free_disk_gb",
    "running_vms",
    "current_workload",
    "disk_available_least",
    "hypervisor_type",
    "hypervisor_version",
    "host_ip",
    "service",
    "cpu_info",
];

#[tokio::test]
async fn hypervisors_and_statistics_add_up_the_sim_agents() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    ctx.wait_nodes_up(2).await;
    let admin = ctx.admin_token().await;

    let list = get(&ctx, "/os-hypervisors", &admin).await;
    let detail = get(&ctx, "/os-hypervisors/detail", &admin).await;
    let first_id = list.body["hypervisors"][0]["id"].as_i64().unwrap();
    let show = get(&ctx, &format!("/os-hypervisors/{first_id}"), &admin).await;
    let by_name = get(&ctx, "/os-hypervisors/node-1", &admin).await;
    let unknown_id = get(&ctx, "/os-hypervisors/999", &admin).await;
    let search = get(&ctx, "/os-hypervisors/node-2/search", &admin).await;
    let search_none = get(&ctx, "/os-hypervisors/nothing/search", &admin).await;
    let stats = get(&ctx, "/os-hypervisors/statistics", &admin).await;

    assert_eq!(list.status, StatusCode::OK);
    let items = list.body["hypervisors"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for h in items {
        assert_eq!(
            keys(h),
            set(&["id", "hypervisor_hostname", "state", "status"])
        );
        assert_eq!(h["state"], "up");
        assert_eq!(h["status"], "enabled");
    }
    let names: Vec<&str> = items
        .iter()
        .map(|h| h["hypervisor_hostname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-1", "node-2"]);
    for h in detail.body["hypervisors"].as_array().unwrap() {
        assert_eq!(keys(h), set(HYPERVISOR_DETAIL));
        assert_eq!(h["vcpus"], 16);
        assert_eq!(h["memory_mb"], 65_536);
        assert_eq!(h["local_gb"], 1_000);
        assert_eq!(h["vcpus_used"], 0);
        assert_eq!(h["free_ram_mb"], 65_536);
        assert_eq!(h["hypervisor_type"], "fake");
        assert_eq!(h["host_ip"], "127.0.0.1");
        assert!(h["cpu_info"].is_string());
        assert_eq!(keys(&h["service"]), set(&["host", "id", "disabled_reason"]));
        assert_eq!(h["service"]["host"], h["hypervisor_hostname"]);
    }
    assert_eq!(show.body["hypervisor"], detail.body["hypervisors"][0]);
    assert_eq!(by_name.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_id.status, StatusCode::NOT_FOUND);
    assert_eq!(
        search.body["hypervisors"][0]["hypervisor_hostname"],
        "node-2"
    );
    assert_eq!(search_none.status, StatusCode::NOT_FOUND);
    assert_eq!(
        stats.body,
        json!({"hypervisor_statistics": {
            "count": 2,
            "vcpus": 32,
            "memory_mb": 131_072,
            "local_gb": 2_000,
            "vcpus_used": 0,
            "memory_mb_used": 0,
            "local_gb_used": 0,
            "free_ram_mb": 131_072,
            "free_disk_gb": 2_000,
            "running_vms": 0,
            "current_workload": 0,
            "disk_available_least": 2_000,
        }})
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn services_and_availability_zones_come_from_the_nodes() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    ctx.wait_nodes_up(2).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;

    let services = get(&ctx, "/os-services", &admin).await;
    let computes = get(&ctx, "/os-services?binary=nova-compute", &admin).await;
    let on_node = get(&ctx, "/os-services?host=node-2", &admin).await;
    let hypervisors = get(&ctx, "/os-hypervisors/detail", &admin).await;
    let (h211, v211) = at("2.11");
    let forced = call_mv(
        &ctx,
        Method::GET,
        "/os-services",
        &admin,
        (h211, v211.as_str()),
        None,
    )
    .await;
    let zones = get(&ctx, "/os-availability-zone", &member).await;
    let detail = get(&ctx, "/os-availability-zone/detail", &admin).await;

    assert_eq!(services.status, StatusCode::OK);
    let all = services.body["services"].as_array().unwrap();
    for s in all {
        assert_eq!(
            keys(s),
            set(&[
                "id",
                "binary",
                "host",
                "zone",
                "status",
                "state",
                "updated_at",
                "disabled_reason"
            ])
        );
        assert_eq!(s["state"], "up");
        assert_eq!(s["status"], "enabled");
    }
    let binaries: BTreeSet<&str> = all.iter().map(|s| s["binary"].as_str().unwrap()).collect();
    assert_eq!(
        binaries,
        BTreeSet::from(["nova-compute", "nova-conductor", "nova-scheduler"])
    );
    for s in forced.body["services"].as_array().unwrap() {
        assert_eq!(s["forced_down"], false);
        assert_eq!(keys(s).len(), 9);
    }
    let computes = computes.body["services"].as_array().unwrap();
    assert_eq!(computes.len(), 2);
    for s in computes {
        assert_eq!(s["zone"], "nova");
    }
    assert_eq!(on_node.body["services"].as_array().unwrap().len(), 1);
    // A hypervisor's service is the node's nova-compute.
    assert_eq!(
        hypervisors.body["hypervisors"][1]["service"]["id"],
        on_node.body["services"][0]["id"]
    );
    assert_eq!(
        zones.body,
        json!({"availabilityZoneInfo": [
            {"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}
        ]})
    );
    let zones = detail.body["availabilityZoneInfo"].as_array().unwrap();
    let names: Vec<&str> = zones
        .iter()
        .map(|z| z["zoneName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nova", "internal"]);
    let hosts = &zones[0]["hosts"];
    assert_eq!(keys(hosts), set(&["node-1", "node-2"]));
    assert_eq!(hosts["node-1"]["nova-compute"]["available"], true);
    assert_eq!(hosts["node-1"]["nova-compute"]["active"], true);
    assert!(hosts["node-1"]["nova-compute"]["updated_at"].is_string());
    let internal: Vec<&Value> = zones[1]["hosts"].as_object().unwrap().values().collect();
    assert_eq!(
        keys(internal[0]),
        set(&["nova-conductor", "nova-scheduler"])
    );
    ctx.shutdown().await;
}

/// Every endpoint of this file, with a body where it takes one.
fn endpoints(project: &str) -> Vec<(Method, String, Option<Value>)> {
    let flavor = json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 0}});
    vec![
        (Method::GET, "/flavors".into(), None),
        (Method::GET, "/flavors/detail".into(), None),
        (Method::POST, "/flavors".into(), Some(flavor)),
        (Method::GET, "/flavors/1".into(), None),
        (Method::DELETE, "/flavors/1".into(), None),
        (Method::GET, "/flavors/1/os-flavor-access".into(), None),
        (
            Method::POST,
            "/flavors/1/action".into(),
            Some(json!({"addTenantAccess": {"tenant": project}})),
        ),
        (Method::GET, "/flavors/1/os-extra_specs".into(), None),
        (
            Method::POST,
            "/flavors/1/os-extra_specs".into(),
            Some(json!({"extra_specs": {"a": "b"}})),
        ),
        (Method::GET, "/flavors/1/os-extra_specs/a".into(), None),
        (
            Method::PUT,
            "/flavors/1/os-extra_specs/a".into(),
            Some(json!({"a": "c"})),
        ),
        (Method::DELETE, "/flavors/1/os-extra_specs/a".into(), None),
        (Method::GET, "/os-keypairs".into(), None),
        (
            Method::POST,
            "/os-keypairs".into(),
            Some(json!({"keypair": {"name": "k"}})),
        ),
        (Method::GET, "/os-keypairs/k".into(), None),
        (Method::DELETE, "/os-keypairs/k".into(), None),
        (Method::GET, "/limits".into(), None),
        (Method::GET, format!("/os-quota-sets/{project}"), None),
        (
            Method::GET,
            format!("/os-quota-sets/{project}/defaults"),
            None,
        ),
        (
            Method::GET,
            format!("/os-quota-sets/{project}/detail"),
            None,
        ),
        (
            Method::PUT,
            format!("/os-quota-sets/{project}"),
            Some(json!({"quota_set": {"instances": 1}})),
        ),
        (Method::DELETE, format!("/os-quota-sets/{project}"), None),
        (Method::GET, "/os-hypervisors".into(), None),
        (Method::GET, "/os-hypervisors/detail".into(), None),
        (Method::GET, "/os-hypervisors/1".into(), None),
        (Method::GET, "/os-hypervisors/statistics".into(), None),
        (Method::GET, "/os-hypervisors/node/search".into(), None),
        (Method::GET, "/os-services".into(), None),
        (Method::GET, "/os-availability-zone".into(), None),
        (Method::GET, "/os-availability-zone/detail".into(), None),
    ]
}

#[tokio::test]
async fn every_endpoint_needs_a_token() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    for (method, path, body) in endpoints("some-project") {
        let none = ctx
            .call(method.clone(), &format!("{C}{path}"), None, body.clone())
            .await;
        let bad = ctx
            .call(method.clone(), &format!("{C}{path}"), Some("bogus"), body)
            .await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(none.body["unauthorized"]["code"], 401, "{method} {path}");
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // The admin token is valid: the 401s above are about the token alone.
    assert_eq!(get(&ctx, "/flavors", &admin).await.status, StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn members_may_not_administer_compute() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (other, _, _) = ctx.user_with_role(&admin, "bob", "member").await;
    let admin_only: BTreeSet<(String, String)> = [
        ("POST", "/flavors"),
        ("DELETE", "/flavors/1"),
        ("GET", "/flavors/1/os-flavor-access"),
        ("POST", "/flavors/1/action"),
        ("POST", "/flavors/1/os-extra_specs"),
        ("PUT", "/flavors/1/os-extra_specs/a"),
        ("DELETE", "/flavors/1/os-extra_specs/a"),
        ("GET", "/os-quota-sets/{p}"),
        ("GET", "/os-quota-sets/{p}/detail"),
        ("PUT", "/os-quota-sets/{p}"),
        ("DELETE", "/os-quota-sets/{p}"),
        ("GET", "/os-hypervisors"),
        ("GET", "/os-hypervisors/detail"),
        ("GET", "/os-hypervisors/1"),
        ("GET", "/os-hypervisors/statistics"),
        ("GET", "/os-hypervisors/node/search"),
        ("GET", "/os-services"),
        ("GET", "/os-availability-zone/detail"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.replace("{p}", &other)))
    .collect();

    for (method, path, body) in endpoints(&other) {
        let r = ctx
            .call(method.clone(), &format!("{C}{path}"), Some(&member), body)
            .await;
        if admin_only.contains(&(method.to_string(), path.clone())) {
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {path}: {}",
                r.body
            );
            assert_eq!(r.body["forbidden"]["code"], 403);
        } else {
            assert!(
                r.status.is_success() || r.status == StatusCode::NOT_FOUND,
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    ctx.shutdown().await;
}
