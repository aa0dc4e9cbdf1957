//! Block storage on sim agents: routing and microversions, volume types, volumes and
//! their lifecycle, snapshots, quotas, limits and pools, and the policy matrix.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::{Options, Reply, TestContext};

const WAIT: Duration = Duration::from_secs(20);
/// An id nothing has.
const UNKNOWN: &str = "0b6e0c7e-1111-4222-8333-944455556666";

/// Cinder's 20 keys of a volume, plus the tenant attribute every owner sees.
const MEMBER_KEYS: &[&str] = &[
    "id",
    "status",
    "size",
    "availability_zone",
    "created_at",
    "updated_at",
    "attachments",
    "name",
    "description",
    "volume_type",
    "snapshot_id",
    "source_volid",
    "metadata",
    "links",
    "user_id",
    "bootable",
    "encrypted",
    "replication_status",
    "consistencygroup_id",
    "multiattach",
    "os-vol-tenant-attr:tenant_id",
];

pub async fn call_mv(
    ctx: &TestContext,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    mv: &str,
) -> Reply {
    let mut req = ctx
        .client
        .request(method, format!("{}{path}", ctx.url))
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", format!("volume {mv}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    yunji_tests::Api::reply(req.send().await.unwrap()).await
}

pub async fn cloud(agents: usize) -> (TestContext, String) {
    let ctx = TestContext::new(Options {
        agents,
        ..Options::default()
    })
    .await;
    let admin = ctx.admin_token().await;
    ctx.wait_nodes_up(agents).await;
    // The first heartbeat with storage must have been recorded.
    ctx.eventually(WAIT, "storage reported", || async {
        let nodes = ctx.scheduler.core.nodes().await.unwrap();
        nodes
            .iter()
            .filter(|n| n.status.as_ref().is_some_and(|s| s.storage.is_some()))
            .count()
            >= agents
    })
    .await;
    (ctx, admin)
}

pub async fn create_volume(ctx: &TestContext, token: &str, body: Value) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/volumes",
            Some(token),
            Some(json!({ "volume": body })),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["volume"]["status"], "creating");
    r.body["volume"]["id"].as_str().unwrap().to_string()
}

pub async fn show_volume(ctx: &TestContext, token: &str, id: &str) -> Value {
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/volumes/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["volume"].clone()
}

pub async fn wait_volume(ctx: &TestContext, token: &str, id: &str, status: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let v = show_volume(ctx, token, id).await;
        if v["status"] == status {
            return v;
        }
        assert!(
            start.elapsed() < WAIT,
            "volume {id} did not become {status}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_volume_gone(ctx: &TestContext, token: &str, id: &str) {
    ctx.eventually(WAIT, "volume deleted", || async {
        ctx.call(
            Method::GET,
            &format!("/volume/v3/volumes/{id}"),
            Some(token),
            None,
        )
        .await
        .status
            == StatusCode::NOT_FOUND
    })
    .await;
}

pub async fn volume_action(ctx: &TestContext, token: &str, id: &str, body: Value) -> Reply {
    ctx.call(
        Method::POST,
        &format!("/volume/v3/volumes/{id}/action"),
        Some(token),
        Some(body),
    )
    .await
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

#[tokio::test]
async fn paths_with_and_without_the_project_answer_and_echo_the_microversion() {
    let (ctx, admin) = cloud(1).await;
    let tokens = ctx
        .call(
            Method::GET,
            "/identity/v3/auth/projects",
            Some(&admin),
            None,
        )
        .await;
    let pid = tokens.body["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in ["/volume/v3/types", &format!("/volume/v3/{pid}/types/")] {
        let r = ctx.call(Method::GET, path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
        assert_eq!(r.header("openstack-api-version"), Some("volume 3.0"));
        assert_eq!(r.header("vary"), Some("OpenStack-API-Version"));
    }
    let r = call_mv(
        &ctx,
        Method::GET,
        "/volume/v3/types",
        &admin,
        None,
        "latest",
    )
    .await;
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.42"));
    let r = call_mv(&ctx, Method::GET, "/volume/v3/types", &admin, None, "3.99").await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert!(
        r.body["notAcceptable"]["message"].is_string(),
        "{:?}",
        r.body
    );
    // Discovery is unchanged and advertises what is implemented.
    let r = ctx.call(Method::GET, "/volume/v3/", None, None).await;
    assert_eq!(r.body["versions"][0]["version"], "3.42");
    // Errors are Cinder's bodies.
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/{pid}/volumes/{}", UNKNOWN),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body["itemNotFound"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be found")
    );
    let r = ctx
        .call(Method::PATCH, "/volume/v3/volumes", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["badMethod"].is_object());
    ctx.shutdown().await;
}

#[tokio::test]
async fn volume_types_have_defaults_and_only_admins_change_them() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let r = ctx
        .call(Method::GET, "/volume/v3/types", Some(&member), None)
        .await;
    let names: Vec<&str> = r.body["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SATA", "SSD"]);
    // Driver settings are the operator's: a member sees no I/O limits.
    assert_eq!(r.body["volume_types"][0]["extra_specs"], json!({}));
    let r = ctx
        .call(Method::GET, "/volume/v3/types/default", Some(&member), None)
        .await;
    assert_eq!(r.body["volume_type"]["name"], "SATA");
    let r = ctx
        .call(Method::GET, "/volume/v3/types/SSD", Some(&admin), None)
        .await;
    assert_eq!(
        r.body["volume_type"]["extra_specs"]["disk:total_iops_sec"],
        "20000"
    );

    let body =
        json!({"volume_type": {"name": "NVME", "extra_specs": {"disk:total_iops_sec": "90000"}}});
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/types",
            Some(&member),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/types",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Cinder's create answer: no qos_specs_id, even to an administrator.
    assert_eq!(
        keys(&r.body["volume_type"]),
        sorted(&[
            "id",
            "name",
            "description",
            "is_public",
            "extra_specs",
            "os-volume-type-access:is_public"
        ])
    );
    let nvme = r.body["volume_type"]["id"].as_str().unwrap().to_string();
    let r = ctx
        .call(Method::POST, "/volume/v3/types", Some(&admin), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = ctx
        .call(
            Method::POST,
            &format!("/volume/v3/types/{nvme}/extra_specs"),
            Some(&admin),
            Some(json!({"extra_specs": {"multiattach": "<is> True"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/types/{nvme}/extra_specs"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.body["extra_specs"], json!({"multiattach": "<is> True"}));

    // A type in use cannot go.
    let volume = create_volume(&ctx, &member, json!({"size": 1, "volume_type": "NVME"})).await;
    wait_volume(&ctx, &member, &volume, "available").await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/types/{nvme}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("still in use")
    );
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/volumes/{volume}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_volume_gone(&ctx, &member, &volume).await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/types/{nvme}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/types/{nvme}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // The default type stays.
    let r = ctx
        .call(Method::DELETE, "/volume/v3/types/SATA", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_volume_is_created_shown_updated_and_deleted_with_cinders_keys() {
    let (ctx, admin) = cloud(1).await;
    let (project, user, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let id = create_volume(
        &ctx,
        &member,
        json!({"size": 2, "name": "data", "description": "d", "metadata": {"k": "v"},
               "volume_type": "SSD", "availability_zone": "nova"}),
    )
    .await;
    let v = wait_volume(&ctx, &member, &id, "available").await;
    assert_eq!(keys(&v), sorted(MEMBER_KEYS));
    assert_eq!(v["size"], 2);
    assert_eq!(v["name"], "data");
    assert_eq!(v["volume_type"], "SSD");
    assert_eq!(v["bootable"], "false");
    assert_eq!(v["multiattach"], false);
    assert_eq!(v["user_id"], user);
    assert_eq!(v["os-vol-tenant-attr:tenant_id"], project);
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert_eq!(v["attachments"], json!([]));
    // Administrators also see the host, and later microversions add their keys.
    let a = show_volume(&ctx, &admin, &id).await;
    assert_eq!(a["os-vol-host-attr:host"], "node-1@sim#sim");
    let r = call_mv(
        &ctx,
        Method::GET,
        &format!("/volume/v3/volumes/{id}"),
        &member,
        None,
        "3.42",
    )
    .await;
    let mut with_group = MEMBER_KEYS.to_vec();
    with_group.push("group_id");
    assert_eq!(keys(&r.body["volume"]), sorted(&with_group));

    let r = ctx
        .call(
            Method::PUT,
            &format!("/volume/v3/volumes/{id}"),
            Some(&member),
            Some(json!({"volume": {"name": "renamed", "metadata": {"a": "b"}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Create and update answers carry no extension attributes, as in Cinder.
    assert_eq!(
        keys(&r.body["volume"]),
        sorted(&MEMBER_KEYS[..MEMBER_KEYS.len() - 1])
    );
    assert_eq!(r.body["volume"]["name"], "renamed");
    assert_eq!(r.body["volume"]["metadata"], json!({"a": "b"}));
    let r = ctx
        .call(
            Method::POST,
            &format!("/volume/v3/volumes/{id}/metadata"),
            Some(&member),
            Some(json!({"metadata": {"c": "d"}})),
        )
        .await;
    assert_eq!(r.body["metadata"], json!({"a": "b", "c": "d"}));

    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/volumes/{id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_volume_gone(&ctx, &member, &id).await;
    let status = ctx.agent_storage(0).await;
    assert!(status.volumes.is_empty(), "{status:?}");
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_creates_are_400_with_the_reason() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let image = ctx.test_image(&admin).await;
    for (body, needle) in [
        (json!({"name": "x"}), "size is required"),
        (json!({"size": 0}), "greater than 0"),
        (json!({"size": "big"}), "integer"),
        (json!({"size": 1, "availability_zone": "mars"}), "mars"),
        (json!({"size": 1, "imageRef": UNKNOWN}), "image"),
        (json!({"size": 1, "metadata": {"k": 1}}), "metadata"),
        (json!({"size": 1, "source_volid": UNKNOWN}), "snapshot"),
        (json!({"size": 1, "multiattach": "maybe"}), "multiattach"),
    ] {
        let r = ctx
            .call(
                Method::POST,
                "/volume/v3/volumes",
                Some(&member),
                Some(json!({ "volume": body })),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        let message = r.body["badRequest"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/volumes",
            Some(&member),
            Some(json!({"volume": {"size": 1, "volume_type": "TAPE"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // From an image: bootable, and the image must fit.
    let id = create_volume(&ctx, &member, json!({"size": 1, "imageRef": image})).await;
    let v = wait_volume(&ctx, &member, &id, "available").await;
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["volume_image_metadata"]["image_id"], image);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_failed_create_is_error_and_gives_its_quota_back() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    ctx.inject(0, "volume_create", json!({"fail_times": 1}))
        .await;
    let id = create_volume(&ctx, &member, json!({"size": 5})).await;
    wait_volume(&ctx, &member, &id, "error").await;
    let r = ctx
        .call(Method::GET, "/volume/v3/limits", Some(&member), None)
        .await;
    let absolute = &r.body["limits"]["absolute"];
    assert_eq!(absolute["totalVolumesUsed"], 0, "{absolute}");
    assert_eq!(absolute["totalGigabytesUsed"], 0);
    assert!(ctx.agent_storage(0).await.volumes.is_empty());
    // An errored volume is deleted like any other.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/volumes/{id}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_volume_gone(&ctx, &member, &id).await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn quotas_are_enforced_shown_and_set_by_admins() {
    let (ctx, admin) = cloud(1).await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let path = format!("/volume/v3/{project}/os-quota-sets/{project}");
    let r = ctx
        .call(
            Method::PUT,
            &path,
            Some(&member),
            Some(json!({"quota_set": {"volumes": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"quota_set": {"volumes": 2, "gigabytes": 5}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["quota_set"]["volumes"], 2);
    let a = create_volume(&ctx, &member, json!({"size": 3})).await;
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/volumes",
            Some(&member),
            Some(json!({"volume": {"size": 3}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert!(
        r.body["overLimit"]["message"]
            .as_str()
            .unwrap()
            .contains("gigabytes")
    );
    wait_volume(&ctx, &member, &a, "available").await;
    // Extending counts gigabytes too.
    let r = volume_action(&ctx, &member, &a, json!({"os-extend": {"new_size": 6}})).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    let r = ctx
        .call(
            Method::GET,
            &format!("{path}?usage=true"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(
        r.body["quota_set"]["gigabytes"]["in_use"], 3,
        "{:?}",
        r.body
    );
    assert_eq!(r.body["quota_set"]["gigabytes"]["limit"], 5);
    assert_eq!(r.body["quota_set"]["id"], project);
    // A limit below what is in use is refused.
    let r = ctx
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({"quota_set": {"gigabytes": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = ctx
        .call(
            Method::GET,
            &format!("{path}/defaults"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.body["quota_set"]["gigabytes"], 1000);
    let r = ctx.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/{project}/limits"),
            Some(&member),
            None,
        )
        .await;
    let absolute = &r.body["limits"]["absolute"];
    assert_eq!(absolute["maxTotalVolumes"], 10);
    assert_eq!(absolute["maxTotalVolumeGigabytes"], 1000);
    assert_eq!(absolute["totalVolumesUsed"], 1);
    assert_eq!(absolute["totalGigabytesUsed"], 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn parallel_creates_never_exceed_the_quota() {
    let (ctx, admin) = cloud(1).await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let r = ctx
        .call(
            Method::PUT,
            &format!("/volume/v3/os-quota-sets/{project}"),
            Some(&admin),
            Some(json!({"quota_set": {"volumes": 3}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let replies = futures_util::future::join_all((0..10).map(|_| {
        ctx.call(
            Method::POST,
            "/volume/v3/volumes",
            Some(&member),
            Some(json!({"volume": {"size": 1}})),
        )
    }))
    .await;
    let accepted = replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, other) = ctx.user_with_role(&admin, "bob", "member").await;
    let mut ids = Vec::new();
    for (name, size) in [("a", 3), ("b", 1), ("c", 2)] {
        ids.push(create_volume(&ctx, &member, json!({"name": name, "size": size})).await);
    }
    create_volume(&ctx, &other, json!({"name": "theirs", "size": 1})).await;
    let names = |r: &Reply| -> Vec<String> {
        r.body["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = ctx
        .call(Method::GET, "/volume/v3/volumes", Some(&member), None)
        .await;
    // Newest first, summaries only.
    assert_eq!(names(&r), ["c", "b", "a"]);
    assert_eq!(
        keys(&r.body["volumes"][0]),
        sorted(&["id", "name", "links"])
    );
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes/detail?sort=size:asc",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(names(&r), ["b", "c", "a"]);
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes/detail?name=b",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(names(&r), ["b"]);
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes?sort_key=name&sort_dir=asc&limit=2",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(names(&r), ["a", "b"]);
    let next = r.body["volumes_links"][0]["href"].as_str().unwrap();
    let next = next.strip_prefix(&ctx.url).unwrap().to_string();
    let r = ctx.call(Method::GET, &next, Some(&member), None).await;
    assert_eq!(names(&r), ["c"]);
    assert!(r.body.get("volumes_links").is_none());
    // all_tenants is for administrators.
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes?all_tenants=1",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes?all_tenants=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.body["volumes"].as_array().unwrap().len(), 4);
    ctx.shutdown().await;
}

#[tokio::test]
async fn extend_must_grow_and_is_refused_in_use_before_3_42() {
    let (ctx, admin) = cloud(1).await;
    let id = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &id, "available").await;
    let r = volume_action(&ctx, &admin, &id, json!({"os-extend": {"new_size": 1}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("greater than current size")
    );
    let r = volume_action(&ctx, &admin, &id, json!({"os-extend": {"new_size": 4}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    ctx.eventually(WAIT, "extended", || async {
        let v = show_volume(&ctx, &admin, &id).await;
        v["status"] == "available" && v["size"] == 4
    })
    .await;
    assert_eq!(ctx.agent_storage(0).await.volumes[0].size_gb, 4);
    // A failed extend on the node restores the size.
    ctx.inject(0, "volume_extend", json!({"fail_times": 1}))
        .await;
    let r = volume_action(&ctx, &admin, &id, json!({"os-extend": {"new_size": 8}})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    ctx.eventually(WAIT, "extend rolled back", || async {
        let v = show_volume(&ctx, &admin, &id).await;
        v["status"] == "available" && v["size"] == 4
    })
    .await;
    // In use: only from 3.42.
    let r = volume_action(
        &ctx,
        &admin,
        &id,
        json!({"os-reset_status": {"status": "in-use"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = volume_action(&ctx, &admin, &id, json!({"os-extend": {"new_size": 5}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call_mv(
        &ctx,
        Method::POST,
        &format!("/volume/v3/volumes/{id}/action"),
        &admin,
        Some(json!({"os-extend": {"new_size": 5}})),
        "3.42",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    ctx.shutdown().await;
}

#[tokio::test]
async fn snapshots_are_made_and_volumes_made_from_them() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let vol = create_volume(&ctx, &member, json!({"size": 2, "volume_type": "SSD"})).await;
    wait_volume(&ctx, &member, &vol, "available").await;
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/snapshots",
            Some(&member),
            Some(json!({"snapshot": {"volume_id": vol, "name": "snap"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let snap = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["snapshot"]["status"], "creating");
    let base = [
        "id",
        "created_at",
        "updated_at",
        "name",
        "description",
        "volume_id",
        "status",
        "size",
        "metadata",
    ];
    assert_eq!(keys(&r.body["snapshot"]), sorted(&base));
    ctx.eventually(WAIT, "snapshot available", || async {
        let r = ctx
            .call(
                Method::GET,
                &format!("/volume/v3/snapshots/{snap}"),
                Some(&member),
                None,
            )
            .await;
        r.body["snapshot"]["status"] == "available"
    })
    .await;
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/snapshots/{snap}"),
            Some(&member),
            None,
        )
        .await;
    let mut extended = base.to_vec();
    extended.extend([
        "os-extended-snapshot-attributes:progress",
        "os-extended-snapshot-attributes:project_id",
    ]);
    assert_eq!(keys(&r.body["snapshot"]), sorted(&extended));
    assert_eq!(
        r.body["snapshot"]["os-extended-snapshot-attributes:progress"],
        "100%"
    );
    // A volume with snapshots is not deleted.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/volumes/{vol}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("snapshots")
    );
    // From the snapshot: at least its size, its type by default.
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/volumes",
            Some(&member),
            Some(json!({"volume": {"size": 1, "snapshot_id": snap}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let copy = create_volume(&ctx, &member, json!({"snapshot_id": snap})).await;
    let v = wait_volume(&ctx, &member, &copy, "available").await;
    assert_eq!(v["size"], 2);
    assert_eq!(v["volume_type"], "SSD");
    assert_eq!(v["snapshot_id"], snap);
    let r = ctx
        .call(Method::GET, "/volume/v3/limits", Some(&member), None)
        .await;
    assert_eq!(r.body["limits"]["absolute"]["totalSnapshotsUsed"], 1);
    assert_eq!(r.body["limits"]["absolute"]["totalGigabytesUsed"], 6);
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/snapshots/{snap}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    ctx.eventually(WAIT, "snapshot deleted", || async {
        ctx.call(
            Method::GET,
            &format!("/volume/v3/snapshots/{snap}"),
            Some(&member),
            None,
        )
        .await
        .status
            == StatusCode::NOT_FOUND
    })
    .await;
    assert!(ctx.agent_storage(0).await.snapshots.is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn pools_show_each_nodes_capacity_to_admins() {
    let (ctx, admin) = cloud(2).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let id = create_volume(&ctx, &admin, json!({"size": 10})).await;
    wait_volume(&ctx, &admin, &id, "available").await;
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/scheduler-stats/get_pools?detail=true",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/scheduler-stats/get_pools?detail=true",
            Some(&admin),
            None,
        )
        .await;
    let pools = r.body["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    let free: Vec<i64> = pools
        .iter()
        .map(|p| p["capabilities"]["free_capacity_gb"].as_i64().unwrap())
        .collect();
    let mut free_sorted = free.clone();
    free_sorted.sort();
    assert_eq!(free_sorted, [990, 1000]);
    assert_eq!(pools[0]["capabilities"]["total_capacity_gb"], 1000);
    ctx.shutdown().await;
}

#[tokio::test]
async fn policy_matrix_for_volumes() {
    let (ctx, admin) = cloud(1).await;
    let (project, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let (_, _, reader) = {
        let (p, u, _) = ctx.user_with_role(&admin, "carol", "reader").await;
        // carol reads alice's project.
        let roles = ctx
            .call(
                Method::GET,
                "/identity/v3/roles?name=reader",
                Some(&admin),
                None,
            )
            .await;
        let role = roles.body["roles"][0]["id"].as_str().unwrap().to_string();
        let r = ctx
            .call(
                Method::PUT,
                &format!("/identity/v3/projects/{project}/users/{u}/roles/{role}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let token = ctx.token("carol", "pw", "alice").await;
        (p, u, token)
    };
    let vol = create_volume(&ctx, &member, json!({"size": 1})).await;
    wait_volume(&ctx, &member, &vol, "available").await;
    let r = ctx
        .call(
            Method::POST,
            "/volume/v3/snapshots",
            Some(&member),
            Some(json!({"snapshot": {"volume_id": vol}})),
        )
        .await;
    let snap = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    let reads = [
        format!("/volume/v3/volumes/{vol}"),
        format!("/volume/v3/volumes/{vol}/metadata"),
        format!("/volume/v3/snapshots/{snap}"),
    ];
    let writes: Vec<(Method, String, Value)> = vec![
        (
            Method::PUT,
            format!("/volume/v3/volumes/{vol}"),
            json!({"volume": {"name": "x"}}),
        ),
        (
            Method::POST,
            format!("/volume/v3/volumes/{vol}/action"),
            json!({"os-extend": {"new_size": 2}}),
        ),
        (
            Method::POST,
            format!("/volume/v3/volumes/{vol}/metadata"),
            json!({"metadata": {"a": "b"}}),
        ),
        (
            Method::PUT,
            format!("/volume/v3/snapshots/{snap}"),
            json!({"snapshot": {"name": "x"}}),
        ),
        (
            Method::POST,
            "/volume/v3/snapshots".into(),
            json!({"snapshot": {"volume_id": vol}}),
        ),
    ];
    let all: Vec<(Method, String, Option<Value>)> = reads
        .iter()
        .map(|p| (Method::GET, p.clone(), None))
        .chain(
            writes
                .iter()
                .map(|(m, p, b)| (m.clone(), p.clone(), Some(b.clone()))),
        )
        .chain([
            (Method::DELETE, format!("/volume/v3/volumes/{vol}"), None),
            (Method::DELETE, format!("/volume/v3/snapshots/{snap}"), None),
            (Method::GET, "/volume/v3/volumes".into(), None),
            (Method::GET, "/volume/v3/limits".into(), None),
            (Method::GET, "/volume/v3/types".into(), None),
        ])
        .collect();
    for (method, path, body) in &all {
        for token in [None, Some("not-a-token")] {
            let r = ctx.call(method.clone(), path, token, body.clone()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(r.body["unauthorized"].is_object(), "{:?}", r.body);
        }
    }
    for path in &reads {
        let r = ctx.call(Method::GET, path, Some(&stranger), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        let r = ctx.call(Method::GET, path, Some(&reader), None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    for (method, path, body) in &writes {
        let r = ctx
            .call(method.clone(), path, Some(&stranger), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            r.body
        );
        let r = ctx
            .call(method.clone(), path, Some(&reader), Some(body.clone()))
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
    }
    for (method, path) in [
        (Method::DELETE, format!("/volume/v3/volumes/{vol}")),
        (Method::DELETE, format!("/volume/v3/snapshots/{snap}")),
    ] {
        let r = ctx.call(method.clone(), &path, Some(&stranger), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        let r = ctx.call(method.clone(), &path, Some(&reader), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    // Administration needs admin.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/volume/v3/volumes/{vol}/action"),
            json!({"os-reset_status": {"status": "error"}}),
        ),
        (
            Method::POST,
            format!("/volume/v3/volumes/{vol}/action"),
            json!({"os-force_delete": null}),
        ),
        (
            Method::POST,
            "/volume/v3/types".into(),
            json!({"volume_type": {"name": "x"}}),
        ),
        (
            Method::PUT,
            format!("/volume/v3/os-quota-sets/{project}"),
            json!({"quota_set": {"volumes": 1}}),
        ),
    ] {
        let r = ctx
            .call(method.clone(), &path, Some(&member), Some(body))
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            r.body
        );
    }
    let r = ctx
        .call(
            Method::GET,
            &format!("/volume/v3/os-quota-sets/{project}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    ctx.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_are_400_with_the_reason() {
    let (ctx, admin) = cloud(1).await;
    let id = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &id, "available").await;
    let action = format!("/volume/v3/volumes/{id}/action");
    for (method, path, body, needle) in [
        (
            Method::POST,
            "/volume/v3/volumes".to_string(),
            json!([1]),
            "volume",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-explode": {}}),
            "no such action",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-extend": {}}),
            "new_size",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-extend": {"new_size": "x"}}),
            "new_size",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-attach": {}}),
            "instance_uuid",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-set_bootable": {}}),
            "bootable",
        ),
        (
            Method::POST,
            action.clone(),
            json!({"os-reset_status": {"status": "bogus"}}),
            "bogus",
        ),
        (
            Method::POST,
            "/volume/v3/snapshots".to_string(),
            json!({"snapshot": {}}),
            "volume_id",
        ),
        (
            Method::POST,
            "/volume/v3/types".to_string(),
            json!({"volume_type": {}}),
            "name",
        ),
        (
            Method::PUT,
            format!("/volume/v3/volumes/{id}"),
            json!({"volume": {"name": 5}}),
            "name",
        ),
        (
            Method::PUT,
            "/volume/v3/os-quota-sets/x".to_string(),
            json!({"quota_set": {"volumes": "many"}}),
            "integer",
        ),
        (
            Method::GET,
            "/volume/v3/volumes?sort=size:sideways".to_string(),
            Value::Null,
            "sort direction",
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let r = ctx.call(method.clone(), &path, Some(&admin), body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {:?}",
            r.body
        );
        let message = r.body["badRequest"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{method} {path}: {message}");
    }
    let r = ctx
        .call_raw(
            Method::POST,
            "/volume/v3/volumes",
            Some(&admin),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/os-availability-zone",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        r.body["availabilityZoneInfo"],
        json!([{"zoneName": "nova", "zoneState": {"available": true}}])
    );
    let r = ctx
        .call(
            Method::GET,
            "/volume/v3/volumes?volume_type=TAPE",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.body["volumes"], json!([]));
    ctx.shutdown().await;
}
