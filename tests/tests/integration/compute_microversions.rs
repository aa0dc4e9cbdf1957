//! Compute microversions 2.26 to 2.55: what each changes, checked on both sides of
//! the version that changed it.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const WAIT: Duration = Duration::from_secs(20);

/// A compute call at microversion `mv`.
async fn at(
    ctx: &TestContext,
    mv: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    ctx.call_at(
        Some(&format!("compute {mv}")),
        method,
        &format!("/compute/v2.1{path}"),
        Some(token),
        body,
    )
    .await
}

/// Only the status of a compute call at microversion `mv`.
async fn status_at(
    ctx: &TestContext,
    mv: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> StatusCode {
    at(ctx, mv, method, path, token, body).await.status
}

async fn boot(ctx: &TestContext, mv: &str, token: &str, server: Value) -> String {
    let r = at(
        ctx,
        mv,
        Method::POST,
        "/servers",
        token,
        Some(json!({ "server": server })),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(token, &id, "ACTIVE", WAIT).await;
    id
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The ids of the servers a list answered, as a set.
fn listed(r: &Reply) -> BTreeSet<String> {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn server_tags_are_set_shown_and_filtered_from_2_26() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "tagger", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "other", "member").await;
    let server = |name: &str, tags: Value| json!({"name": name, "flavorRef": "1", "imageRef": image, "networks": "none", "tags": tags});

    // Tags at boot came with 2.52.
    let early = at(
        &ctx,
        "2.51",
        Method::POST,
        "/servers",
        &member,
        Some(json!({"server": server("early", json!(["red"]))})),
    )
    .await;
    let a = boot(
        &ctx,
        "2.52",
        &member,
        server("a", json!(["red", "blue", "red"])),
    )
    .await;
    let b = boot(&ctx, "2.52", &member, server("b", json!(["red"]))).await;
    let c = boot(&ctx, "2.52", &member, server("c", json!([]))).await;
    let bad_boot = at(
        &ctx,
        "2.52",
        Method::POST,
        "/servers",
        &member,
        Some(json!({"server": server("bad", json!(["a/b"]))})),
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{:?}", early.body);
    assert_eq!(
        bad_boot.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        bad_boot.body
    );

    // The view: `tags` from 2.26, repeats dropped.
    let shown = at(
        &ctx,
        "2.26",
        Method::GET,
        &format!("/servers/{a}"),
        &member,
        None,
    )
    .await;
    let before = at(
        &ctx,
        "2.25",
        Method::GET,
        &format!("/servers/{a}"),
        &member,
        None,
    )
    .await;
    assert_eq!(shown.body["server"]["tags"], json!(["red", "blue"]));
    assert!(before.body["server"].get("tags").is_none());
    let detail = at(&ctx, "2.26", Method::GET, "/servers/detail", &member, None).await;
    for s in detail.body["servers"].as_array().unwrap() {
        assert!(s["tags"].is_array(), "{s}");
    }

    // The tags API: 404 before 2.26, and for a server of another project.
    let tags_path = format!("/servers/{c}/tags");
    assert_eq!(
        status_at(&ctx, "2.25", Method::GET, &tags_path, &member, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_at(&ctx, "2.26", Method::GET, &tags_path, &stranger, None).await,
        StatusCode::NOT_FOUND
    );
    let added = at(
        &ctx,
        "2.26",
        Method::PUT,
        &format!("{tags_path}/green"),
        &member,
        None,
    )
    .await;
    let again = at(
        &ctx,
        "2.26",
        Method::PUT,
        &format!("{tags_path}/green"),
        &member,
        None,
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED);
    assert!(
        added
            .header("location")
            .unwrap()
            .ends_with(&format!("/servers/{c}/tags/green"))
    );
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(again.header("location"), added.header("location"));
    assert_eq!(
        status_at(
            &ctx,
            "2.26",
            Method::GET,
            &format!("{tags_path}/green"),
            &member,
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_at(
            &ctx,
            "2.26",
            Method::GET,
            &format!("{tags_path}/blue"),
            &member,
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let listed_tags = at(&ctx, "2.26", Method::GET, &tags_path, &member, None).await;
    assert_eq!(listed_tags.body, json!({"tags": ["green"]}));

    // The list filters: all of, any of, not all of, not any of.
    let filter = |query: &'static str| {
        let (ctx, member) = (&ctx, &member);
        async move {
            listed(
                &at(
                    ctx,
                    "2.26",
                    Method::GET,
                    &format!("/servers?{query}"),
                    member,
                    None,
                )
                .await,
            )
        }
    };
    let ids = |list: &[&String]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(filter("tags=red").await, ids(&[&a, &b]));
    assert_eq!(filter("tags=red,blue").await, ids(&[&a]));
    assert_eq!(filter("tags=red,red").await, ids(&[&a, &b]));
    assert_eq!(filter("tags-any=blue,green").await, ids(&[&a, &c]));
    assert_eq!(filter("not-tags=red,blue").await, ids(&[&b, &c]));
    assert_eq!(filter("not-tags-any=blue,green").await, ids(&[&b]));
    assert_eq!(filter("tags=red&not-tags=blue").await, ids(&[&b]));
    let unfiltered = at(
        &ctx,
        "2.25",
        Method::GET,
        "/servers?tags=red",
        &member,
        None,
    )
    .await;
    assert_eq!(
        listed(&unfiltered),
        ids(&[&a, &b, &c]),
        "no tag filters before 2.26"
    );

    // Replace, delete one, delete all.
    let a_tags = format!("/servers/{a}/tags");
    let replaced = at(
        &ctx,
        "2.26",
        Method::PUT,
        &a_tags,
        &member,
        Some(json!({"tags": ["x", "x", "y"]})),
    )
    .await;
    assert_eq!(replaced.body, json!({"tags": ["x", "y"]}));
    let bad = at(
        &ctx,
        "2.26",
        Method::PUT,
        &a_tags,
        &member,
        Some(json!({"tags": ["a,b"]})),
    )
    .await;
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let too_many = at(
        &ctx,
        "2.26",
        Method::PUT,
        &a_tags,
        &member,
        Some(json!({ "tags": many })),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        too_many.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        too_many.body
    );
    assert_eq!(
        status_at(
            &ctx,
            "2.26",
            Method::DELETE,
            &format!("{a_tags}/x"),
            &member,
            None
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_at(
            &ctx,
            "2.26",
            Method::DELETE,
            &format!("{a_tags}/x"),
            &member,
            None
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_at(&ctx, "2.26", Method::DELETE, &a_tags, &member, None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        at(&ctx, "2.26", Method::GET, &a_tags, &member, None)
            .await
            .body,
        json!({"tags": []})
    );

    // An update answers Nova's shorter view, tags included.
    let updated = at(
        &ctx,
        "2.26",
        Method::PUT,
        &format!("/servers/{b}"),
        &member,
        Some(json!({"server": {"name": "b2"}})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    let view = &updated.body["server"];
    assert_eq!(view["tags"], json!(["red"]));
    assert_eq!(view["name"], "b2");
    for absent in [
        "key_name",
        "security_groups",
        "OS-EXT-STS:vm_state",
        "OS-SRV-USG:launched_at",
        "config_drive",
        "os-extended-volumes:volumes_attached",
        "OS-EXT-AZ:availability_zone",
    ] {
        assert!(
            view.get(absent).is_none(),
            "{absent} in an update's answer: {view}"
        );
    }
    assert_eq!(view["locked"], false);
    ctx.shutdown().await;
}

#[tokio::test]
async fn server_create_views_and_actions_follow_2_30_to_2_51() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "viewer", "member").await;

    // 2.37: networks is required, and a network's uuid must be one.
    let no_networks = json!({"server": {"name": "n", "flavorRef": "1", "imageRef": image}});
    let missing = at(
        &ctx,
        "2.37",
        Method::POST,
        "/servers",
        &member,
        Some(no_networks.clone()),
    )
    .await;
    let not_uuid = at(&ctx, "2.37", Method::POST, "/servers", &member,
        Some(json!({"server": {"name": "n", "flavorRef": "1", "imageRef": image, "networks": [{"uuid": "net1"}]}}))).await;
    assert_eq!(
        missing.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        missing.body
    );
    assert!(
        missing.body.to_string().contains("networks is required"),
        "{:?}",
        missing.body
    );
    assert_eq!(
        not_uuid.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        not_uuid.body
    );
    // `auto` with no network to use: Nova would make one, this cloud says so instead.
    let auto = at(&ctx, "2.37", Method::POST, "/servers", &member,
        Some(json!({"server": {"name": "n", "flavorRef": "1", "imageRef": image, "networks": "auto"}}))).await;
    assert_eq!(auto.status, StatusCode::BAD_REQUEST, "{:?}", auto.body);
    assert!(
        auto.body
            .to_string()
            .contains("Unable to automatically allocate a network"),
        "{:?}",
        auto.body
    );
    // Device tags: on networks at 2.32, not at 2.37, again from 2.42.
    let tagged = |mv: &'static str| {
        let (ctx, member, image) = (&ctx, &member, &image);
        async move {
            at(ctx, mv, Method::POST, "/servers", member, Some(json!({"server": {"name": "t", "flavorRef": "1",
                "imageRef": image, "networks": [{"uuid": "0b0c8a2e-0000-4000-8000-000000000000", "tag": "nic1"}]}}))).await.status
        }
    };
    // The network does not exist: a tag that passes validation gets the 404 of the look-up.
    assert_eq!(tagged("2.32").await, StatusCode::NOT_FOUND);
    assert_eq!(tagged("2.37").await, StatusCode::BAD_REQUEST);
    assert_eq!(tagged("2.42").await, StatusCode::NOT_FOUND);
    let id = boot(
        &ctx,
        "2.37",
        &member,
        json!({"name": "v", "flavorRef": "1", "imageRef": image, "networks": "none"}),
    )
    .await;

    // 2.38: an unknown status filter is an error instead of an empty list.
    let old = at(
        &ctx,
        "2.37",
        Method::GET,
        "/servers?status=BOGUS",
        &member,
        None,
    )
    .await;
    let new = at(
        &ctx,
        "2.38",
        Method::GET,
        "/servers?status=BOGUS",
        &member,
        None,
    )
    .await;
    assert_eq!(listed(&old), BTreeSet::new());
    assert_eq!(new.status, StatusCode::BAD_REQUEST);

    // 2.47: the flavor the server was built with, embedded.
    let by_ref = at(
        &ctx,
        "2.46",
        Method::GET,
        &format!("/servers/{id}"),
        &member,
        None,
    )
    .await;
    let embedded = at(
        &ctx,
        "2.47",
        Method::GET,
        &format!("/servers/{id}"),
        &member,
        None,
    )
    .await;
    assert_eq!(
        keys(&by_ref.body["server"]["flavor"]),
        set(&["id", "links"])
    );
    let flavor = &embedded.body["server"]["flavor"];
    assert_eq!(
        keys(flavor),
        set(&[
            "original_name",
            "vcpus",
            "ram",
            "disk",
            "ephemeral",
            "swap",
            "extra_specs"
        ])
    );
    assert_eq!(
        (
            flavor["original_name"].as_str(),
            flavor["vcpus"].as_u64(),
            flavor["swap"].as_u64()
        ),
        (Some("m1.tiny"), Some(1), Some(0))
    );

    // 2.45: createImage answers the image's id in its body.
    let create_image = |mv: &'static str, name: &'static str| {
        let (ctx, member, id) = (&ctx, &member, &id);
        async move {
            at(
                ctx,
                mv,
                Method::POST,
                &format!("/servers/{id}/action"),
                member,
                Some(json!({"createImage": {"name": name}})),
            )
            .await
        }
    };
    let header_only = create_image("2.44", "snap-44").await;
    let with_body = create_image("2.45", "snap-45").await;
    assert_eq!(header_only.status, StatusCode::ACCEPTED);
    assert_eq!(header_only.body, Value::Null);
    assert!(header_only.header("location").is_some());
    assert_eq!(
        with_body.status,
        StatusCode::ACCEPTED,
        "{:?}",
        with_body.body
    );
    assert_eq!(keys(&with_body.body), set(&["image_id"]));
    let image_id = with_body.body["image_id"].as_str().unwrap();
    let snapshot = ctx
        .call(
            Method::GET,
            &format!("/image/v2/images/{image_id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(snapshot.body["name"], "snap-45");

    // 2.51: everyone sees an action's events; only administrators their tracebacks.
    let actions = at(
        &ctx,
        "2.51",
        Method::GET,
        &format!("/servers/{id}/os-instance-actions"),
        &member,
        None,
    )
    .await;
    let request_id = actions.body["instanceActions"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let action_path = format!("/servers/{id}/os-instance-actions/{request_id}");
    let hidden = at(&ctx, "2.50", Method::GET, &action_path, &member, None).await;
    let shown = at(&ctx, "2.51", Method::GET, &action_path, &member, None).await;
    let as_admin = at(&ctx, "2.51", Method::GET, &action_path, &admin, None).await;
    assert!(hidden.body["instanceAction"].get("events").is_none());
    let event = &shown.body["instanceAction"]["events"][0];
    assert!(event["event"].is_string(), "{:?}", shown.body);
    assert!(event.get("traceback").is_none());
    assert!(
        as_admin.body["instanceAction"]["events"][0]
            .get("traceback")
            .is_some()
    );

    // 2.49: a volume attachment may carry a tag (the volume here does not exist: a tag
    // that passes validation gets the 404 of the look-up).
    let attach = |mv: &'static str| {
        let (ctx, member, id) = (&ctx, &member, &id);
        async move {
            at(ctx, mv, Method::POST, &format!("/servers/{id}/os-volume_attachments"), member,
                Some(json!({"volumeAttachment": {"volumeId": "0b0c8a2e-0000-4000-8000-000000000000", "tag": "data"}}))).await.status
        }
    };
    assert_eq!(attach("2.48").await, StatusCode::BAD_REQUEST);
    assert_eq!(attach("2.49").await, StatusCode::NOT_FOUND);

    // 2.30: live migration takes `force`.
    let migrate = |mv: &'static str| {
        let (ctx, admin, id) = (&ctx, &admin, &id);
        async move {
            at(ctx, mv, Method::POST, &format!("/servers/{id}/action"), admin,
                Some(json!({"os-migrateLive": {"host": null, "block_migration": "auto", "force": false}}))).await
        }
    };
    assert_eq!(migrate("2.29").await.status, StatusCode::BAD_REQUEST);
    let moved = migrate("2.30").await;
    assert_eq!(moved.status, StatusCode::ACCEPTED, "{:?}", moved.body);
    ctx.shutdown().await;
}

#[tokio::test]
async fn flavor_descriptions_come_with_2_55() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "reader", "member").await;
    let flavor = |description: Value| json!({"flavor": {"name": "described", "ram": 512, "vcpus": 1, "disk": 1, "id": "d1", "description": description}});

    let early = at(
        &ctx,
        "2.54",
        Method::POST,
        "/flavors",
        &admin,
        Some(flavor(json!("for GIS tiles"))),
    )
    .await;
    let created = at(
        &ctx,
        "2.55",
        Method::POST,
        "/flavors",
        &admin,
        Some(flavor(json!("for GIS tiles"))),
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{:?}", early.body);
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    assert_eq!(created.body["flavor"]["description"], "for GIS tiles");

    let shown = at(&ctx, "2.55", Method::GET, "/flavors/d1", &member, None).await;
    let older = at(&ctx, "2.54", Method::GET, "/flavors/d1", &member, None).await;
    let list = at(&ctx, "2.55", Method::GET, "/flavors", &member, None).await;
    let detail = at(&ctx, "2.55", Method::GET, "/flavors/detail", &member, None).await;
    assert_eq!(shown.body["flavor"]["description"], "for GIS tiles");
    assert!(older.body["flavor"].get("description").is_none());
    for f in list.body["flavors"].as_array().unwrap() {
        assert_eq!(keys(f), set(&["id", "name", "links", "description"]));
    }
    let tiny = detail.body["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "1")
        .unwrap();
    assert_eq!(tiny["description"], Value::Null);

    // Only the description changes, only an administrator changes it, only from 2.55.
    let path = "/flavors/d1";
    let update = |d: Value| json!({"flavor": {"description": d}});
    let changed = at(
        &ctx,
        "2.55",
        Method::PUT,
        path,
        &admin,
        Some(update(json!("tiles and vectors"))),
    )
    .await;
    let by_member = at(
        &ctx,
        "2.55",
        Method::PUT,
        path,
        &member,
        Some(update(json!("mine"))),
    )
    .await;
    let renamed = at(
        &ctx,
        "2.55",
        Method::PUT,
        path,
        &admin,
        Some(json!({"flavor": {"name": "x"}})),
    )
    .await;
    let too_early = at(
        &ctx,
        "2.54",
        Method::PUT,
        path,
        &admin,
        Some(update(json!("early"))),
    )
    .await;
    let missing = at(
        &ctx,
        "2.55",
        Method::PUT,
        "/flavors/nope",
        &admin,
        Some(update(json!("x"))),
    )
    .await;
    let cleared = at(
        &ctx,
        "2.55",
        Method::PUT,
        path,
        &admin,
        Some(update(Value::Null)),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["flavor"]["description"], "tiles and vectors");
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_early.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(cleared.body["flavor"]["description"], Value::Null);
    ctx.shutdown().await;
}

#[tokio::test]
async fn hypervisors_and_services_follow_2_28_2_33_and_2_53() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(
        &ctx,
        "2.53",
        &admin,
        json!({"name": "h", "flavorRef": "1", "imageRef": image, "networks": "none"}),
    )
    .await;

    // 2.28: cpu_info is an object.
    let d27 = at(
        &ctx,
        "2.27",
        Method::GET,
        "/os-hypervisors/detail",
        &admin,
        None,
    )
    .await;
    let d28 = at(
        &ctx,
        "2.28",
        Method::GET,
        "/os-hypervisors/detail",
        &admin,
        None,
    )
    .await;
    assert!(d27.body["hypervisors"][0]["cpu_info"].is_string());
    assert!(d28.body["hypervisors"][0]["cpu_info"].is_object());

    // 2.33: paging.
    let first = at(
        &ctx,
        "2.33",
        Method::GET,
        "/os-hypervisors?limit=1",
        &admin,
        None,
    )
    .await;
    assert_eq!(first.body["hypervisors"].as_array().unwrap().len(), 1);
    let next = first.body["hypervisors_links"][0]["href"].as_str().unwrap();
    let marker = first.body["hypervisors"][0]["id"].clone();
    assert!(next.contains(&format!("marker={marker}")), "{next}");
    let second = at(
        &ctx,
        "2.33",
        Method::GET,
        &format!("/os-hypervisors?marker={marker}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(second.body["hypervisors"].as_array().unwrap().len(), 1);
    assert_ne!(second.body["hypervisors"][0]["id"], marker);
    assert!(second.body.get("hypervisors_links").is_none());
    let lost = at(
        &ctx,
        "2.33",
        Method::GET,
        "/os-hypervisors?marker=999",
        &admin,
        None,
    )
    .await;
    assert_eq!(lost.status, StatusCode::BAD_REQUEST);

    // 2.53: UUIDs, the pattern and with_servers parameters, no search route.
    let list = at(
        &ctx,
        "2.53",
        Method::GET,
        "/os-hypervisors/detail?with_servers=true",
        &admin,
        None,
    )
    .await;
    let hypervisors = list.body["hypervisors"].as_array().unwrap();
    let uuid = hypervisors[0]["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&uuid).is_ok(), "{uuid}");
    let hosting: Vec<&Value> = hypervisors
        .iter()
        .filter(|h| h.get("servers").is_some())
        .collect();
    assert_eq!(hosting.len(), 1, "{hypervisors:?}");
    assert_eq!(
        hosting[0]["servers"],
        json!([{"name": "h", "uuid": server}])
    );
    let name = hypervisors[0]["hypervisor_hostname"]
        .as_str()
        .unwrap()
        .to_string();
    let by_uuid = at(
        &ctx,
        "2.53",
        Method::GET,
        &format!("/os-hypervisors/{uuid}"),
        &admin,
        None,
    )
    .await;
    let by_int = at(&ctx, "2.53", Method::GET, "/os-hypervisors/1", &admin, None).await;
    let int_before = at(&ctx, "2.52", Method::GET, "/os-hypervisors/1", &admin, None).await;
    assert_eq!(
        by_uuid.body["hypervisor"]["hypervisor_hostname"],
        name.as_str()
    );
    assert_eq!(by_int.status, StatusCode::NOT_FOUND);
    assert_eq!(int_before.status, StatusCode::OK);
    let found = at(
        &ctx,
        "2.53",
        Method::GET,
        &format!("/os-hypervisors?hypervisor_hostname_pattern={name}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        found.body["hypervisors"].as_array().unwrap().len(),
        1,
        "{:?}",
        found.body
    );
    let paged_search = at(
        &ctx,
        "2.53",
        Method::GET,
        &format!("/os-hypervisors?hypervisor_hostname_pattern={name}&limit=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(paged_search.status, StatusCode::BAD_REQUEST);
    let search = format!("/os-hypervisors/{name}/search");
    assert_eq!(
        status_at(&ctx, "2.53", Method::GET, &search, &admin, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_at(&ctx, "2.52", Method::GET, &search, &admin, None).await,
        StatusCode::OK
    );

    // Services: UUIDs from 2.53, the compute one the hypervisor's `service.id`.
    let services = at(
        &ctx,
        "2.53",
        Method::GET,
        &format!("/os-services?host={name}"),
        &admin,
        None,
    )
    .await;
    let service_id = &services.body["services"][0]["id"];
    assert!(
        service_id
            .as_str()
            .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        "{service_id}"
    );
    assert_eq!(&by_uuid.body["hypervisor"]["service"]["id"], service_id);
    let old = at(&ctx, "2.52", Method::GET, "/os-services", &admin, None).await;
    assert!(old.body["services"][0]["id"].is_i64());
    ctx.shutdown().await;
}

#[tokio::test]
async fn key_pairs_limits_quotas_and_usage_follow_2_35_to_2_40() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (project, _, member) = ctx.user_with_role(&admin, "counted", "member").await;

    // 2.35: key pairs page by name.
    for name in ["kc", "ka", "kb"] {
        let r = at(
            &ctx,
            "2.35",
            Method::POST,
            "/os-keypairs",
            &member,
            Some(json!({"keypair": {"name": name}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let names = |r: &Reply| -> Vec<String> {
        r.body["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let page = at(
        &ctx,
        "2.35",
        Method::GET,
        "/os-keypairs?limit=2",
        &member,
        None,
    )
    .await;
    assert_eq!(names(&page), ["ka", "kb"]);
    assert!(
        page.body["keypairs_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=kb")
    );
    let rest = at(
        &ctx,
        "2.35",
        Method::GET,
        "/os-keypairs?marker=kb&limit=2",
        &member,
        None,
    )
    .await;
    assert_eq!(names(&rest), ["kc"]);
    assert!(rest.body.get("keypairs_links").is_none());
    assert_eq!(
        status_at(
            &ctx,
            "2.35",
            Method::GET,
            "/os-keypairs?marker=nope",
            &member,
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        names(
            &at(
                &ctx,
                "2.34",
                Method::GET,
                "/os-keypairs?limit=1",
                &member,
                None
            )
            .await
        )
        .len(),
        3,
        "no paging before 2.35"
    );

    // 2.36 drops the network limits and quotas, 2.39 the image metadata limit.
    let absolute = |mv: &'static str| {
        let (ctx, member) = (&ctx, &member);
        async move {
            keys(
                &at(ctx, mv, Method::GET, "/limits", member, None).await.body["limits"]["absolute"],
            )
        }
    };
    let (l35, l36, l39) = (
        absolute("2.35").await,
        absolute("2.36").await,
        absolute("2.39").await,
    );
    let network = set(&[
        "maxSecurityGroups",
        "maxSecurityGroupRules",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
        "totalSecurityGroupsUsed",
    ]);
    assert!(network.is_subset(&l35));
    assert_eq!(
        l35.difference(&l36).cloned().collect::<BTreeSet<_>>(),
        network
    );
    assert_eq!(
        l36.difference(&l39).cloned().collect::<BTreeSet<_>>(),
        set(&["maxImageMeta"])
    );
    let quota_path = format!("/os-quota-sets/{project}");
    let q35 = at(&ctx, "2.35", Method::GET, &quota_path, &admin, None).await;
    let q36 = at(&ctx, "2.36", Method::GET, &quota_path, &admin, None).await;
    let d36 = at(
        &ctx,
        "2.36",
        Method::GET,
        &format!("{quota_path}/detail"),
        &admin,
        None,
    )
    .await;
    let network_quotas = set(&[
        "fixed_ips",
        "floating_ips",
        "security_group_rules",
        "security_groups",
    ]);
    assert!(network_quotas.is_subset(&keys(&q35.body["quota_set"])));
    assert!(keys(&q36.body["quota_set"]).is_disjoint(&network_quotas));
    assert!(keys(&d36.body["quota_set"]).is_disjoint(&network_quotas));
    let set_groups = |mv: &'static str| {
        let (ctx, admin, path) = (&ctx, &admin, &quota_path);
        async move {
            at(
                ctx,
                mv,
                Method::PUT,
                path,
                admin,
                Some(json!({"quota_set": {"security_groups": 20}})),
            )
            .await
            .status
        }
    };
    assert_eq!(set_groups("2.35").await, StatusCode::OK);
    assert_eq!(set_groups("2.36").await, StatusCode::BAD_REQUEST);

    // 2.40: usage pages by server.
    for name in ["u1", "u2"] {
        boot(
            &ctx,
            "2.40",
            &member,
            json!({"name": name, "flavorRef": "1", "imageRef": image, "networks": "none"}),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let window = "start=2000-01-01T00:00:00&end=2100-01-01T00:00:00";
    let usage = format!("/os-simple-tenant-usage/{project}?{window}");
    let servers = |r: &Reply| {
        r.body["tenant_usage"]["server_usages"]
            .as_array()
            .unwrap()
            .len()
    };
    let whole = at(&ctx, "2.40", Method::GET, &usage, &member, None).await;
    let first = at(
        &ctx,
        "2.40",
        Method::GET,
        &format!("{usage}&limit=1"),
        &member,
        None,
    )
    .await;
    assert_eq!(servers(&whole), 2);
    assert_eq!(servers(&first), 1, "{:?}", first.body);
    let next = first.body["tenant_usage_links"][0]["href"]
        .as_str()
        .unwrap();
    let marker = next.split("marker=").nth(1).unwrap();
    let second = at(
        &ctx,
        "2.40",
        Method::GET,
        &format!("{usage}&limit=1&marker={marker}"),
        &member,
        None,
    )
    .await;
    assert_eq!(servers(&second), 1);
    assert_ne!(
        second.body["tenant_usage"]["server_usages"][0]["instance_id"],
        first.body["tenant_usage"]["server_usages"][0]["instance_id"]
    );
    let older = at(
        &ctx,
        "2.39",
        Method::GET,
        &format!("{usage}&limit=1"),
        &member,
        None,
    )
    .await;
    assert_eq!(servers(&older), 2, "no paging before 2.40");
    ctx.shutdown().await;
}
