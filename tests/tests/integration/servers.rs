//! Servers on sim agents: the lifecycle, placement, quotas, live migration, failures.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, TestContext};

const WAIT: Duration = Duration::from_secs(20);

async fn boot(ctx: &TestContext, token: &str, image: &str, name: &str, flavor: &str) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(token),
            Some(json!({"server": {"name": name, "flavorRef": flavor, "imageRef": image}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    r.body["server"]["id"].as_str().unwrap().to_string()
}

async fn act(ctx: &TestContext, token: &str, id: &str, body: Value) -> yunji_tests::Reply {
    ctx.call(
        Method::POST,
        &format!("/compute/v2.1/servers/{id}/action"),
        Some(token),
        Some(body),
    )
    .await
}

async fn show(ctx: &TestContext, token: &str, id: &str) -> Value {
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["server"].clone()
}

#[tokio::test]
async fn a_server_is_built_and_goes_through_its_lifecycle() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "vm-1", "1").await;
    assert_eq!(show(&ctx, &admin, &id).await["status"], "BUILD");
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let s = show(&ctx, &admin, &id).await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "node-1");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    assert_eq!(s["OS-EXT-AZ:availability_zone"], "nova");
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(s["image"]["id"], image);

    // A wrong state is a 409 that says which state the action needs.
    let r = act(&ctx, &admin, &id, json!({"os-start": null})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("SHUTOFF"),
        "{:?}",
        r.body
    );

    assert_eq!(
        act(&ctx, &admin, &id, json!({"os-stop": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "SHUTOFF", WAIT).await;
    assert_eq!(show(&ctx, &admin, &id).await["OS-EXT-STS:power_state"], 4);
    assert_eq!(
        act(&ctx, &admin, &id, json!({"reboot": {"type": "SOFT"}}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        act(&ctx, &admin, &id, json!({"os-start": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    assert_eq!(
        act(&ctx, &admin, &id, json!({"reboot": {"type": "SOFT"}}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    assert_eq!(
        act(&ctx, &admin, &id, json!({"reboot": {"type": "HARD"}}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let console = act(
        &ctx,
        &admin,
        &id,
        json!({"os-getConsoleOutput": {"length": 50}}),
    )
    .await;
    assert_eq!(console.status, StatusCode::OK);
    let output = console.body["output"].as_str().unwrap();
    assert!(
        output.matches("booted").count() >= 3,
        "three boots and two reboots: {output}"
    );

    // Resize, then revert; resize, then confirm.
    assert_eq!(
        act(&ctx, &admin, &id, json!({"resize": {"flavorRef": "1"}}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        act(&ctx, &admin, &id, json!({"resize": {"flavorRef": "2"}}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "VERIFY_RESIZE", WAIT).await;
    assert_eq!(show(&ctx, &admin, &id).await["flavor"]["id"], "2");
    assert_eq!(
        act(&ctx, &admin, &id, json!({"revertResize": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    assert_eq!(show(&ctx, &admin, &id).await["flavor"]["id"], "1");
    assert_eq!(
        act(&ctx, &admin, &id, json!({"resize": {"flavorRef": "2"}}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "VERIFY_RESIZE", WAIT).await;
    assert_eq!(
        act(&ctx, &admin, &id, json!({"confirmResize": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    assert_eq!(show(&ctx, &admin, &id).await["flavor"]["id"], "2");

    // Rename, metadata, delete.
    let r = ctx
        .call(
            Method::PUT,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            Some(json!({"server": {"name": "vm-renamed"}})),
        )
        .await;
    assert_eq!(r.body["server"]["name"], "vm-renamed");
    let r = ctx
        .call(
            Method::POST,
            &format!("/compute/v2.1/servers/{id}/metadata"),
            Some(&admin),
            Some(json!({"metadata": {"a": "1", "b": "2"}})),
        )
        .await;
    assert_eq!(r.body["metadata"], json!({"a": "1", "b": "2"}));
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}/metadata/a"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(show(&ctx, &admin, &id).await["metadata"], json!({"b": "2"}));
    assert_eq!(
        ctx.call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    ctx.eventually(WAIT, "server gone", || async {
        ctx.call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            None,
        )
        .await
        .status
            == StatusCode::NOT_FOUND
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn parallel_creates_never_exceed_the_quota() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "quota", "member").await;
    let creates = (0..50).map(|i| {
        let (ctx, member, image) = (&ctx, member.clone(), image.clone());
        async move {
            ctx.call(Method::POST, "/compute/v2.1/servers", Some(&member),
                Some(json!({"server": {"name": format!("q{i}"), "flavorRef": "1", "imageRef": image}})))
                .await
                .status
        }
    });
    let statuses = futures_util::future::join_all(creates).await;
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count();
    let over = statuses
        .iter()
        .filter(|s| **s == StatusCode::PAYLOAD_TOO_LARGE)
        .count();
    assert_eq!((accepted, over), (10, 40), "{statuses:?}");
    let list = ctx
        .call(Method::GET, "/compute/v2.1/servers", Some(&member), None)
        .await;
    assert_eq!(list.body["servers"].as_array().unwrap().len(), 10);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_failed_build_is_error_with_a_fault_and_gives_its_quota_back() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    ctx.inject(0, "create", json!({"fail_times": 1})).await;
    let id = boot(&ctx, &admin, &image, "doomed", "1").await;
    ctx.wait_server(&admin, &id, "ERROR", WAIT).await;
    let s = show(&ctx, &admin, &id).await;
    assert!(
        s["fault"]["message"]
            .as_str()
            .unwrap()
            .contains("injected failure of create"),
        "{s}"
    );
    let usage = ctx
        .scheduler
        .core
        .compute_usage(s["tenant_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(usage.instances, 0);
    assert!(
        ctx.agent_inventory(0).await.is_empty(),
        "nothing left on the node"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn live_migration_moves_the_server_and_a_failed_one_leaves_it_on_the_source() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "mover", "1").await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let source = show(&ctx, &admin, &id).await["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_string();
    let target = if source == "node-1" {
        "node-2"
    } else {
        "node-1"
    };
    let r = act(&ctx, &admin, &id, json!({"os-migrateLive": {"host": target, "block_migration": false, "disk_over_commit": false}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    ctx.eventually(WAIT, "host changed", || async {
        let s = show(&ctx, &admin, &id).await;
        s["status"] == "ACTIVE" && s["OS-EXT-SRV-ATTR:host"] == target
    })
    .await;
    // Now make the send fail: the server stays where it is, running.
    let index = if target == "node-1" { 0 } else { 1 };
    ctx.inject(index, "migrate_out", json!({"fail_times": 1}))
        .await;
    let r = act(&ctx, &admin, &id, json!({"os-migrateLive": {"host": null, "block_migration": false, "disk_over_commit": false}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    ctx.eventually(WAIT, "migration over", || async {
        show(&ctx, &admin, &id).await["OS-EXT-STS:task_state"].is_null()
    })
    .await;
    let s = show(&ctx, &admin, &id).await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], target);
    assert_eq!(s["status"], "ACTIVE");
    // Naming the host it is on, or one that does not exist, is refused.
    let r = act(&ctx, &admin, &id, json!({"os-migrateLive": {"host": target, "block_migration": false, "disk_over_commit": false}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = act(&ctx, &admin, &id, json!({"os-migrateLive": {"host": "nowhere", "block_migration": false, "disk_over_commit": false}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn servers_are_spread_by_free_memory_and_listed_with_paging() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(boot(&ctx, &admin, &image, &format!("p{i}"), "2").await);
    }
    for id in &ids {
        ctx.wait_server(&admin, id, "ACTIVE", WAIT).await;
    }
    let mut hosts = Vec::new();
    for id in &ids {
        hosts.push(
            show(&ctx, &admin, id).await["OS-EXT-SRV-ATTR:host"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(
        hosts[0], hosts[1],
        "the second server goes to the emptier node"
    );
    let page = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers?limit=2",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(page.body["servers"].as_array().unwrap().len(), 2);
    assert_eq!(
        page.body["servers"][0],
        json!({"id": ids[2], "name": "p2", "links": page.body["servers"][0]["links"]})
    );
    let next = page.body["servers_links"][0]["href"].as_str().unwrap();
    let rest = next.trim_start_matches(&ctx.url);
    let page2 = ctx.call(Method::GET, rest, Some(&admin), None).await;
    assert_eq!(page2.body["servers"].as_array().unwrap().len(), 1);
    assert_eq!(page2.body["servers"][0]["id"], ids[0]);
    let filtered = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers/detail?name=p1&status=ACTIVE",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(filtered.body["servers"].as_array().unwrap().len(), 1);
    assert_eq!(filtered.body["servers"][0]["id"], ids[1]);
    // Nova's name filter is a regular expression, searched for anywhere in the name.
    let names = |query: &'static str| {
        let ctx = &ctx;
        let admin = &admin;
        async move {
            let r = ctx
                .call(
                    Method::GET,
                    &format!("/compute/v2.1/servers?{query}"),
                    Some(admin),
                    None,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
            r.body["servers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("name=%5Ep%5B12%5D%24").await, ["p2", "p1"]);
    assert_eq!(names("name=p").await, ["p2", "p1", "p0"]);
    assert_eq!(names("name=%5E1").await, Vec::<String>::new());
    assert_eq!(names("name=%5Ep%5B01%5D&limit=1").await, ["p1"]);
    let bad_regex = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers?name=p%5B",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        bad_regex.status,
        StatusCode::BAD_REQUEST,
        "{}",
        bad_regex.body
    );
    assert!(
        bad_regex.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("not a regular expression"),
        "{}",
        bad_regex.body
    );
    let bad_marker = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers?marker=nope",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(bad_marker.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn policy_matrix_for_servers() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "owner", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "stranger", "member").await;
    let (_, _, reader) = ctx.user_with_role(&admin, "watcher", "reader").await;
    let id = boot(&ctx, &member, &image, "mine", "1").await;
    ctx.wait_server(&member, &id, "ACTIVE", WAIT).await;
    let paths = [
        (Method::GET, format!("/compute/v2.1/servers/{id}"), None),
        (
            Method::PUT,
            format!("/compute/v2.1/servers/{id}"),
            Some(json!({"server": {"name": "x"}})),
        ),
        (Method::DELETE, format!("/compute/v2.1/servers/{id}"), None),
        (
            Method::POST,
            format!("/compute/v2.1/servers/{id}/action"),
            Some(json!({"os-stop": null})),
        ),
        (
            Method::GET,
            format!("/compute/v2.1/servers/{id}/metadata"),
            None,
        ),
    ];
    for (m, p, b) in &paths {
        assert_eq!(
            ctx.call(m.clone(), p, None, b.clone()).await.status,
            StatusCode::UNAUTHORIZED,
            "{m} {p}"
        );
        assert_eq!(
            ctx.call(m.clone(), p, Some(&stranger), b.clone())
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{m} {p}"
        );
    }
    for path in ["/compute/v2.1/servers", "/compute/v2.1/servers/detail"] {
        assert_eq!(
            ctx.call(Method::GET, path, None, None).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = ctx.call(Method::GET, path, Some(&stranger), None).await;
        assert!(
            r.body["servers"].as_array().unwrap().is_empty(),
            "another project's servers are not listed"
        );
    }
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&reader),
            Some(json!({"server": {"name": "r", "flavorRef": "1", "imageRef": image}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = act(&ctx, &member, &id, json!({"os-migrateLive": {"host": null, "block_migration": false, "disk_over_commit": false}})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "live migration is for admins"
    );
    let r = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers?all_tenants=1",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let all = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers?all_tenants=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(all.body["servers"].as_array().unwrap().len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_create_requests_are_400_with_the_reason() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let image = ctx.test_image(&admin).await;
    let cases = [
        (
            json!({"server": {"name": "x", "imageRef": image}}),
            "flavorRef",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "nope", "imageRef": image}}),
            "Flavor",
        ),
        (
            json!({"server": {"name": " x", "flavorRef": "1", "imageRef": image}}),
            "name",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "1", "imageRef": image, "user_data": "%%%"}}),
            "base64",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "1", "imageRef": image, "availability_zone": "mars"}}),
            "mars",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "1", "imageRef": image, "key_name": "none"}}),
            "key_name",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "1", "imageRef": image, "networks": 5}}),
            "networks",
        ),
        (
            json!({"server": {"name": "x", "flavorRef": "1"}}),
            "imageRef",
        ),
    ];
    for (body, reason) in cases {
        let r = ctx
            .call(
                Method::POST,
                "/compute/v2.1/servers",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert!(
            r.body["badRequest"]["message"]
                .as_str()
                .unwrap()
                .contains(reason),
            "{body}: {:?}",
            r.body
        );
    }
    let r = ctx
        .call(Method::GET, "/compute/v2.1/servers/vm1", Some(&admin), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a name where an id goes is a 404"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn create_image_makes_an_image_of_the_servers_project() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "snap", "1").await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let r = act(
        &ctx,
        &admin,
        &id,
        json!({"createImage": {"name": "snap-1", "metadata": {"description": "a snapshot"}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let location = r.header("location").unwrap().to_string();
    let image_id = location.rsplit('/').next().unwrap();
    let img = ctx
        .call(
            Method::GET,
            &format!("/image/v2/images/{image_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(img.body["name"], "snap-1");
    assert_eq!(
        img.body["owner"],
        show(&ctx, &admin, &id).await["tenant_id"]
    );
    ctx.eventually(WAIT, "snapshot active", || async {
        ctx.call(
            Method::GET,
            &format!("/image/v2/images/{image_id}"),
            Some(&admin),
            None,
        )
        .await
        .body["status"]
            == "active"
    })
    .await;
    // And it boots.
    let second = boot(&ctx, &admin, image_id, "from-snap", "1").await;
    ctx.wait_server(&admin, &second, "ACTIVE", WAIT).await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn microversions_shape_the_server_view_and_the_live_migration_body() {
    let ctx = TestContext::new(Options {
        agents: 2,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(2).await;
    let image = ctx.test_image(&admin).await;
    let at = |mv: &'static str, method: Method, path: String, body: Option<Value>| {
        let mut req = ctx
            .client
            .request(method, format!("{}{path}", ctx.url))
            .header("X-Auth-Token", &admin)
            .header("OpenStack-API-Version", format!("compute {mv}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { yunji_tests::Api::reply(req.send().await.unwrap()).await }
    };
    let r = at("2.1", Method::POST, "/compute/v2.1/servers".into(),
        Some(json!({"server": {"name": "d", "flavorRef": "1", "imageRef": image, "description": "x"}}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "description needs 2.19");
    let r = at("2.19", Method::POST, "/compute/v2.1/servers".into(),
        Some(json!({"server": {"name": "d", "flavorRef": "1", "imageRef": image, "description": "maps"}}))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.header("openstack-api-version"), Some("compute 2.19"));
    assert_eq!(r.header("x-openstack-nova-api-version"), Some("2.19"));
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let old = at(
        "2.1",
        Method::GET,
        format!("/compute/v2.1/servers/{id}"),
        None,
    )
    .await;
    assert!(old.body["server"].get("description").is_none());
    assert!(old.body["server"].get("locked").is_none());
    let new = at(
        "2.25",
        Method::GET,
        format!("/compute/v2.1/servers/{id}"),
        None,
    )
    .await;
    assert_eq!(new.body["server"]["description"], "maps");
    assert_eq!(new.body["server"]["locked"], false);
    assert_eq!(new.body["server"]["host_status"], "UP");
    assert_eq!(new.body["server"]["OS-EXT-SRV-ATTR:hostname"], "d");
    let r = at("2.25", Method::POST, format!("/compute/v2.1/servers/{id}/action"),
        Some(json!({"os-migrateLive": {"host": null, "block_migration": "auto", "disk_over_commit": false}}))).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "2.25 dropped disk_over_commit"
    );
    let r = at(
        "2.25",
        Method::POST,
        format!("/compute/v2.1/servers/{id}/action"),
        Some(json!({"os-migrateLive": {"host": null, "block_migration": "auto"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        at(
            "2.56",
            Method::GET,
            format!("/compute/v2.1/servers/{id}"),
            None
        )
        .await
        .status,
        StatusCode::NOT_ACCEPTABLE
    );
    assert_eq!(
        at(
            "latest",
            Method::GET,
            format!("/compute/v2.1/servers/{id}"),
            None
        )
        .await
        .header("openstack-api-version"),
        Some("compute 2.55")
    );
    assert_eq!(
        at(
            "two",
            Method::GET,
            format!("/compute/v2.1/servers/{id}"),
            None
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_locked_server_refuses_its_owner_until_unlocked() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let (_, _, member) = ctx.user_with_role(&admin, "locker", "member").await;
    let id = boot(&ctx, &member, &image, "locked", "1").await;
    ctx.wait_server(&member, &id, "ACTIVE", WAIT).await;
    assert_eq!(
        act(&ctx, &member, &id, json!({"lock": null})).await.status,
        StatusCode::ACCEPTED
    );
    let r = act(&ctx, &member, &id, json!({"os-stop": null})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("locked")
    );
    assert_eq!(
        act(&ctx, &member, &id, json!({"unlock": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        act(&ctx, &member, &id, json!({"os-stop": null}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn deleting_gives_the_quota_back_and_a_resize_confirms_itself_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(
        dir,
        Options {
            agents: 1,
            ..Options::default()
        },
        |c| {
            c.compute.resize_confirm_window_secs = 1;
        },
    )
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "auto", "1").await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    let project = show(&ctx, &admin, &id).await["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ctx.scheduler
            .core
            .compute_usage(&project)
            .await
            .unwrap()
            .instances,
        1
    );
    assert_eq!(
        act(&ctx, &admin, &id, json!({"resize": {"flavorRef": "2"}}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    ctx.wait_server(&admin, &id, "VERIFY_RESIZE", WAIT).await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    assert_eq!(show(&ctx, &admin, &id).await["flavor"]["id"], "2");
    let usage = ctx.scheduler.core.compute_usage(&project).await.unwrap();
    assert_eq!((usage.instances, usage.ram_mb), (1, 2048));
    ctx.call(
        Method::DELETE,
        &format!("/compute/v2.1/servers/{id}"),
        Some(&admin),
        None,
    )
    .await;
    ctx.eventually(WAIT, "quota given back", || async {
        ctx.scheduler
            .core
            .compute_usage(&project)
            .await
            .unwrap()
            .instances
            == 0
    })
    .await;
    assert!(
        ctx.agent_inventory(0).await.is_empty(),
        "the node forgot the server"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn after_a_restart_an_interrupted_build_fails_cleanly_and_gives_its_quota_back() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    // The node takes its time; meanwhile the scheduler "restarts" and recovers.
    ctx.inject(0, "create", json!({"fail_times": 0, "delay_ms": 3_000}))
        .await;
    let id = boot(&ctx, &admin, &image, "interrupted", "1").await;
    ctx.eventually(WAIT, "spawning", || async {
        show(&ctx, &admin, &id).await["OS-EXT-STS:task_state"] == "spawning"
    })
    .await;
    ctx.scheduler.core.servers_recover().await.unwrap();
    let s = show(&ctx, &admin, &id).await;
    assert_eq!(s["status"], "ERROR");
    assert!(
        s["fault"]["message"].as_str().unwrap().contains("restart"),
        "{s}"
    );
    let project = s["tenant_id"].as_str().unwrap();
    assert_eq!(
        ctx.scheduler
            .core
            .compute_usage(project)
            .await
            .unwrap()
            .instances,
        0
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn changes_since_lists_deleted_servers_too() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let id = boot(&ctx, &admin, &image, "ephemeral", "1").await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
    ctx.call(
        Method::DELETE,
        &format!("/compute/v2.1/servers/{id}"),
        Some(&admin),
        None,
    )
    .await;
    ctx.eventually(WAIT, "deleted", || async {
        ctx.call(
            Method::GET,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            None,
        )
        .await
        .status
            == StatusCode::NOT_FOUND
    })
    .await;
    let plain = ctx
        .call(
            Method::GET,
            "/compute/v2.1/servers/detail",
            Some(&admin),
            None,
        )
        .await;
    assert!(plain.body["servers"].as_array().unwrap().is_empty());
    let changed = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/detail?changes-since={since}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(changed.body["servers"][0]["id"], id);
    assert_eq!(changed.body["servers"][0]["status"], "DELETED");
    ctx.shutdown().await;
}

#[tokio::test]
async fn remote_consoles_are_refused_pointing_at_the_console_log() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(1).await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "screenless", "1").await;
    let r = act(
        &ctx,
        &admin,
        &id,
        json!({"os-getVNCConsole": {"type": "novnc"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.to_string().contains("console log"), "{:?}", r.body);
    let path = format!("/compute/v2.1/servers/{id}/remote-consoles");
    let body = json!({"remote_console": {"protocol": "vnc", "type": "novnc"}});
    let r = ctx
        .call_at(
            Some("compute 2.6"),
            Method::POST,
            &path,
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Before 2.6 the path does not exist; for another project's server it is a 404.
    let r = ctx
        .call(Method::POST, &path, Some(&admin), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let (_, _, stranger) = ctx.user_with_role(&admin, "peeker", "member").await;
    let r = act(
        &ctx,
        &stranger,
        &id,
        json!({"os-getVNCConsole": {"type": "novnc"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    ctx.shutdown().await;
}

/// Whether agent 0 still runs the VM of server `id`.
async fn node_runs(ctx: &TestContext, id: &str) -> bool {
    ctx.agent_inventory(0)
        .await
        .iter()
        .any(|vm| vm.id.to_string() == id)
}

#[tokio::test]
async fn a_server_deleted_while_its_node_fails_the_delete_is_removed_by_a_later_heartbeat() {
    let ctx = TestContext::new(Options {
        agents: 1,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    let image = ctx.test_image(&admin).await;
    let id = boot(&ctx, &admin, &image, "left-behind", "1").await;
    ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;

    // The node cannot delete it: for the user the server is gone all the same.
    ctx.inject(0, "delete", json!({"fail_times": null})).await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let path = format!("/compute/v2.1/servers/{id}");
    ctx.eventually(WAIT, "the server to be gone", || async {
        ctx.call(Method::GET, &path, Some(&admin), None)
            .await
            .status
            == StatusCode::NOT_FOUND
    })
    .await;
    assert!(node_runs(&ctx, &id).await, "the failed delete left the VM");

    // Once the node can, the heartbeat that finds the VM removes it.
    ctx.inject(0, "delete", Value::Null).await;
    ctx.eventually(WAIT, "the deleted server's VM to be removed", || async {
        !node_runs(&ctx, &id).await
    })
    .await;
    ctx.shutdown().await;
}

/// Makes the scheduler forget server `id`, as a database restored from an older backup
/// would, while its node runs on.
fn forget_server(ctx: &TestContext, id: &str) {
    let db = rusqlite::Connection::open(ctx.scheduler.paths.database()).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    // Its ports and actions stay behind, as they would in such a restore.
    db.pragma_update(None, "foreign_keys", false).unwrap();
    assert_eq!(
        db.execute("DELETE FROM servers WHERE id = ?1", [id])
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_vm_no_server_owns_is_left_running_unless_the_operator_asks_for_its_removal() {
    for remove in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            agents: 1,
            ..Options::default()
        };
        let ctx = TestContext::start(dir, options, |config| {
            config.compute.remove_unknown_vms = remove;
        })
        .await;
        let admin = ctx.admin_token().await;
        let image = ctx.test_image(&admin).await;
        let id = boot(&ctx, &admin, &image, "unowned", "1").await;
        ctx.wait_server(&admin, &id, "ACTIVE", WAIT).await;
        forget_server(&ctx, &id);

        if remove {
            ctx.eventually(WAIT, "the unowned VM to be removed", || async {
                !node_runs(&ctx, &id).await
            })
            .await;
        } else {
            // Three heartbeats (one a second) find it and leave it.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(node_runs(&ctx, &id).await, "remove_unknown_vms is off");
        }
        ctx.shutdown().await;
    }
}
