//! Attaching volumes to servers through Nova's `os-volume_attachments` and Cinder's
//! `os-attach`/`os-detach`: the states, the node really attaching, failures that leave
//! nothing stuck, and what deleting a server does to its volumes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::TestContext;

use super::volumes::{cloud, create_volume, show_volume, volume_action, wait_volume};

const WAIT: Duration = Duration::from_secs(20);

async fn boot(ctx: &TestContext, token: &str, image: &str, name: &str) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(token),
            Some(json!({"server": {"name": name, "flavorRef": "1", "imageRef": image}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(token, &id, "ACTIVE", WAIT).await;
    id
}

async fn nova_attach(
    ctx: &TestContext,
    token: &str,
    server: &str,
    volume: &str,
) -> yunji_tests::Reply {
    ctx.call(
        Method::POST,
        &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
        Some(token),
        Some(json!({"volumeAttachment": {"volumeId": volume}})),
    )
    .await
}

async fn server_host(ctx: &TestContext, admin: &str, server: &str) -> String {
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}"),
            Some(admin),
            None,
        )
        .await;
    r.body["server"]["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn nova_attaches_and_detaches_a_volume_on_the_node() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &member, &image, "vm").await;
    let vol = create_volume(&ctx, &member, json!({"size": 1})).await;
    wait_volume(&ctx, &member, &vol, "available").await;

    let r = nova_attach(&ctx, &member, &server, &vol).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["volumeAttachment"],
        json!({"id": vol, "device": "/dev/vdb", "serverId": server, "volumeId": vol})
    );
    let v = wait_volume(&ctx, &member, &vol, "in-use").await;
    let attachment = &v["attachments"][0];
    assert_eq!(attachment["server_id"], server);
    assert_eq!(attachment["device"], "/dev/vdb");
    assert_eq!(attachment["host_name"], "node-1");
    assert!(attachment["attached_at"].is_string());
    let storage = ctx.agent_storage(0).await;
    assert_eq!(storage.volumes[0].attachments[0].device, "/dev/vdb");
    assert_eq!(
        storage.volumes[0].attachments[0].server_id.to_string(),
        server
    );

    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(
        r.body["server"]["os-extended-volumes:volumes_attached"],
        json!([{"id": vol}])
    );
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.body["volumeAttachments"][0]["volumeId"], vol);

    // Attached: no delete, no second attach to a volume that is not multiattach.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/volume/v3/volumes/{vol}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let other = boot(&ctx, &member, &image, "vm2").await;
    let r = nova_attach(&ctx, &member, &other, &vol).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("multiattach")
    );

    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{vol}"),
            Some(&member),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let v = wait_volume(&ctx, &member, &vol, "available").await;
    assert_eq!(v["attachments"], json!([]));
    assert!(ctx.agent_storage(0).await.volumes[0].attachments.is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn cinder_os_attach_and_os_detach_really_attach() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &admin, &image, "vm").await;
    let vol = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &vol, "available").await;
    let r = volume_action(
        &ctx,
        &admin,
        &vol,
        json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc", "mode": "ro"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let v = wait_volume(&ctx, &admin, &vol, "in-use").await;
    assert_eq!(v["attachments"][0]["device"], "/dev/vdc");
    let a = &ctx.agent_storage(0).await.volumes[0].attachments[0];
    assert!(a.read_only);
    let attachment = v["attachments"][0]["attachment_id"].as_str().unwrap();
    let r = volume_action(
        &ctx,
        &admin,
        &vol,
        json!({"os-attach": {"instance_uuid": server, "mode": "rx"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = volume_action(
        &ctx,
        &admin,
        &vol,
        json!({"os-detach": {"attachment_id": attachment}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    wait_volume(&ctx, &admin, &vol, "available").await;
    assert!(ctx.agent_storage(0).await.volumes[0].attachments.is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_failed_attach_leaves_the_volume_available_and_a_failed_detach_in_use() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &admin, &image, "vm").await;
    let vol = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &vol, "available").await;

    ctx.inject(
        0,
        "volume_attach",
        json!({"fail_times": 1, "delay_ms": 300}),
    )
    .await;
    let r = nova_attach(&ctx, &admin, &server, &vol).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(show_volume(&ctx, &admin, &vol).await["status"], "attaching");
    let v = wait_volume(&ctx, &admin, &vol, "available").await;
    assert_eq!(v["attachments"], json!([]));

    let r = nova_attach(&ctx, &admin, &server, &vol).await;
    assert_eq!(r.status, StatusCode::OK);
    wait_volume(&ctx, &admin, &vol, "in-use").await;
    ctx.inject(
        0,
        "volume_detach",
        json!({"fail_times": 1, "delay_ms": 300}),
    )
    .await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{vol}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(show_volume(&ctx, &admin, &vol).await["status"], "detaching");
    let v = wait_volume(&ctx, &admin, &vol, "in-use").await;
    assert_eq!(v["attachments"][0]["server_id"], server);
    assert_eq!(ctx.agent_storage(0).await.volumes[0].attachments.len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn multiattach_devices_and_deleting_the_server_frees_the_volume() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let a = boot(&ctx, &admin, &image, "a").await;
    let b = boot(&ctx, &admin, &image, "b").await;
    let shared = create_volume(&ctx, &admin, json!({"size": 1, "multiattach": true})).await;
    let second = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &shared, "available").await;
    wait_volume(&ctx, &admin, &second, "available").await;
    assert_eq!(
        nova_attach(&ctx, &admin, &a, &shared).await.status,
        StatusCode::OK
    );
    wait_volume(&ctx, &admin, &shared, "in-use").await;
    assert_eq!(
        nova_attach(&ctx, &admin, &b, &shared).await.status,
        StatusCode::OK
    );
    // Devices are per server: the second volume of server a is its vdc.
    let r = nova_attach(&ctx, &admin, &a, &second).await;
    assert_eq!(r.body["volumeAttachment"]["device"], "/dev/vdc");
    ctx.eventually(WAIT, "both attached", || async {
        let v = show_volume(&ctx, &admin, &shared).await;
        v["status"] == "in-use" && v["attachments"].as_array().unwrap().len() == 2
    })
    .await;
    wait_volume(&ctx, &admin, &second, "in-use").await;
    // Both VMs would have to see a new size at once: extending waits for one to detach.
    let r = ctx
        .call_at(
            Some("volume 3.42"),
            Method::POST,
            &format!("/volume/v3/volumes/{shared}/action"),
            Some(&admin),
            Some(json!({"os-extend": {"new_size": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body.to_string().contains("attached to 2 servers"),
        "{:?}",
        r.body
    );

    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{a}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_volume(&ctx, &admin, &second, "available").await;
    ctx.eventually(WAIT, "shared volume on b only", || async {
        let v = show_volume(&ctx, &admin, &shared).await;
        v["status"] == "in-use"
            && v["attachments"].as_array().unwrap().len() == 1
            && v["attachments"][0]["server_id"] == Value::String(b.clone())
    })
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn attaching_to_a_server_on_another_node_is_a_clear_409() {
    let (ctx, admin) = cloud(2).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &admin, &image, "vm").await;
    let host = server_host(&ctx, &admin, &server).await;
    // Volumes go to the node with the most free storage: two of the same size land on
    // both nodes.
    let first = create_volume(&ctx, &admin, json!({"size": 5})).await;
    let second = create_volume(&ctx, &admin, json!({"size": 5})).await;
    let v1 = wait_volume(&ctx, &admin, &first, "available").await;
    wait_volume(&ctx, &admin, &second, "available").await;
    let elsewhere = if v1["os-vol-host-attr:host"]
        .as_str()
        .unwrap()
        .starts_with(&host)
    {
        second
    } else {
        first
    };
    let r = nova_attach(&ctx, &admin, &server, &elsewhere).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("only to servers on its own node")
    );
    assert_eq!(
        show_volume(&ctx, &admin, &elsewhere).await["status"],
        "available"
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn attachment_endpoints_answer_401_403_404() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "bob", "member").await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &member, &image, "vm").await;
    let vol = create_volume(&ctx, &member, json!({"size": 1})).await;
    wait_volume(&ctx, &member, &vol, "available").await;
    let list = format!("/compute/v2.1/servers/{server}/os-volume_attachments");
    let one = format!("{list}/{vol}");
    for (method, path) in [
        (Method::GET, &list),
        (Method::POST, &list),
        (Method::GET, &one),
        (Method::DELETE, &one),
    ] {
        let r = ctx.call(method.clone(), path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        let r = ctx
            .call(
                method.clone(),
                path,
                Some(&stranger),
                Some(json!({"volumeAttachment": {"volumeId": vol}})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            r.body
        );
    }
    // Someone else's volume cannot be attached to one's own server.
    let theirs = create_volume(&ctx, &stranger, json!({"size": 1})).await;
    let r = nova_attach(&ctx, &member, &server, &theirs).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = ctx
        .call(
            Method::POST,
            &list,
            Some(&member),
            Some(json!({"volumeAttachment": {"volumeId": vol, "bogus": 1}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    ctx.shutdown().await;
}

async fn boot_from(ctx: &TestContext, token: &str, name: &str, bdm: Value) -> yunji_tests::Reply {
    ctx.call(
        Method::POST,
        "/compute/v2.1/servers",
        Some(token),
        Some(json!({"server": {"name": name, "flavorRef": "1", "block_device_mapping_v2": bdm}})),
    )
    .await
}

async fn volumes_used(ctx: &TestContext, token: &str) -> Value {
    let r = ctx
        .call(Method::GET, "/volume/v3/limits", Some(token), None)
        .await;
    r.body["limits"]["absolute"]["totalVolumesUsed"].clone()
}

#[tokio::test]
async fn a_server_boots_from_a_volume_made_from_an_image_and_takes_it_along() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let r = boot_from(
        &ctx,
        &admin,
        "bfv",
        json!([{"uuid": image, "source_type": "image", "destination_type": "volume",
                "volume_size": 2, "boot_index": 0, "delete_on_termination": true},
               {"source_type": "blank", "destination_type": "volume", "volume_size": 1}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &server, "ACTIVE", WAIT).await;
    let r = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
            Some(&admin),
            None,
        )
        .await;
    let attachments = r.body["volumeAttachments"].as_array().unwrap().clone();
    assert_eq!(attachments.len(), 2, "{attachments:?}");
    assert_eq!(attachments[0]["device"], "/dev/vda");
    assert_eq!(attachments[1]["device"], "/dev/vdb");
    let root = attachments[0]["volumeId"].as_str().unwrap().to_string();
    let data = attachments[1]["volumeId"].as_str().unwrap().to_string();
    let v = show_volume(&ctx, &admin, &root).await;
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["bootable"], "true");
    assert_eq!(v["size"], 2);
    let s = ctx
        .call(
            Method::GET,
            &format!("/compute/v2.1/servers/{server}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s.body["server"]["image"], "");
    assert_eq!(
        s.body["server"]["os-extended-volumes:volumes_attached"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(ctx.agent_storage(0).await.volumes.len(), 2);

    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{server}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // The root volume goes with the server; the data volume stays, detached.
    super::volumes::wait_volume_gone(&ctx, &admin, &root).await;
    wait_volume(&ctx, &admin, &data, "available").await;
    assert_eq!(ctx.agent_storage(0).await.volumes.len(), 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_server_booting_from_an_existing_volume_runs_on_the_volumes_node() {
    let (ctx, admin) = cloud(2).await;
    let image = ctx.test_image(&admin).await;
    // Fill node-1 with a volume first, so the boot volume lands on node-2.
    let first = create_volume(&ctx, &admin, json!({"size": 5})).await;
    let vol = create_volume(&ctx, &admin, json!({"size": 1, "imageRef": image})).await;
    wait_volume(&ctx, &admin, &first, "available").await;
    let v = wait_volume(&ctx, &admin, &vol, "available").await;
    let volume_node = v["os-vol-host-attr:host"]
        .as_str()
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let r = boot_from(
        &ctx,
        &admin,
        "bfv",
        json!([{"uuid": vol, "source_type": "volume", "destination_type": "volume",
                "boot_index": 0}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &server, "ACTIVE", WAIT).await;
    assert_eq!(server_host(&ctx, &admin, &server).await, volume_node);
    wait_volume(&ctx, &admin, &vol, "in-use").await;
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{server}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_volume(&ctx, &admin, &vol, "available").await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_failed_boot_from_volume_removes_the_volumes_it_made() {
    let (ctx, admin) = cloud(1).await;
    let (_, _, member) = ctx.user_with_role(&admin, "alice", "member").await;
    let image = ctx.test_image(&admin).await;
    let given = create_volume(&ctx, &member, json!({"size": 1})).await;
    wait_volume(&ctx, &member, &given, "available").await;
    ctx.inject(0, "create", json!({"fail_times": 1})).await;
    let r = boot_from(
        &ctx,
        &member,
        "bfv",
        json!([{"uuid": image, "source_type": "image", "destination_type": "volume",
                "volume_size": 1, "boot_index": 0},
               {"uuid": given, "source_type": "volume", "destination_type": "volume"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &server, "ERROR", WAIT).await;
    // Only the volume it was given is left, available again.
    let r = ctx
        .call(Method::GET, "/volume/v3/volumes", Some(&member), None)
        .await;
    assert_eq!(
        r.body["volumes"].as_array().unwrap().len(),
        1,
        "{:?}",
        r.body
    );
    wait_volume(&ctx, &member, &given, "available").await;
    assert_eq!(volumes_used(&ctx, &member).await, 1);
    assert_eq!(ctx.agent_storage(0).await.volumes.len(), 1);

    // A failure making the volume fails the build the same way.
    ctx.inject(0, "volume_create", json!({"fail_times": 1}))
        .await;
    let r = boot_from(
        &ctx,
        &member,
        "bfv2",
        json!([{"uuid": image, "source_type": "image", "destination_type": "volume",
                "volume_size": 1, "boot_index": 0}]),
    )
    .await;
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&member, &server, "ERROR", WAIT).await;
    assert_eq!(volumes_used(&ctx, &member).await, 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn boot_from_volume_requests_are_checked_at_create() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    for (bdm, needle) in [
        (json!([]), "boot_index 0"),
        (
            json!([{"source_type": "blank", "destination_type": "volume", "boot_index": 0}]),
            "volume_size",
        ),
        (
            json!([{"uuid": image, "source_type": "image", "destination_type": "volume", "boot_index": 0}]),
            "volume_size",
        ),
        (
            json!([{"source_type": "volume", "destination_type": "volume", "boot_index": 0}]),
            "uuid",
        ),
    ] {
        let r = boot_from(&ctx, &admin, "x", bdm.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bdm}: {:?}", r.body);
        let message = r.body["badRequest"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{bdm}: {message}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn after_a_restart_interrupted_volume_operations_settle() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &admin, &image, "vm").await;
    let attached = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &attached, "available").await;
    // The node takes its time; meanwhile the scheduler "restarts" and recovers.
    ctx.inject(
        0,
        "volume_create",
        json!({"fail_times": 0, "delay_ms": 3_000}),
    )
    .await;
    ctx.inject(
        0,
        "volume_attach",
        json!({"fail_times": 0, "delay_ms": 3_000}),
    )
    .await;
    let creating = create_volume(&ctx, &admin, json!({"size": 1})).await;
    assert_eq!(
        nova_attach(&ctx, &admin, &server, &attached).await.status,
        StatusCode::OK
    );
    assert_eq!(
        show_volume(&ctx, &admin, &attached).await["status"],
        "attaching"
    );
    ctx.scheduler.core.volumes_recover().await.unwrap();
    let v = show_volume(&ctx, &admin, &creating).await;
    assert_eq!(v["status"], "error");
    let v = show_volume(&ctx, &admin, &attached).await;
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    let r = ctx
        .call(Method::GET, "/volume/v3/limits", Some(&admin), None)
        .await;
    assert_eq!(r.body["limits"]["absolute"]["totalVolumesUsed"], 1);
    ctx.shutdown().await;
}

#[tokio::test]
async fn an_in_use_volume_is_snapshotted_only_with_force() {
    let (ctx, admin) = cloud(1).await;
    let image = ctx.test_image(&admin).await;
    let server = boot(&ctx, &admin, &image, "vm").await;
    let vol = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &vol, "available").await;
    assert_eq!(
        nova_attach(&ctx, &admin, &server, &vol).await.status,
        StatusCode::OK
    );
    wait_volume(&ctx, &admin, &vol, "in-use").await;
    let snapshot = |force: bool| {
        ctx.call(
            Method::POST,
            "/volume/v3/snapshots",
            Some(&admin),
            Some(json!({"snapshot": {"volume_id": vol, "force": force}})),
        )
    };
    let r = snapshot(false).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("force")
    );
    assert_eq!(snapshot(true).await.status, StatusCode::ACCEPTED);
    ctx.shutdown().await;
}

/// The live-migration request for `server` to wherever the scheduler picks.
async fn migrate_live(ctx: &TestContext, admin: &str, server: &str) -> yunji_tests::Reply {
    ctx.call(
        Method::POST,
        &format!("/compute/v2.1/servers/{server}/action"),
        Some(admin),
        Some(
            json!({"os-migrateLive": {"host": null, "block_migration": false,
            "disk_over_commit": false}}),
        ),
    )
    .await
}

/// Waits until the server has no task; its host then.
async fn settled_host(ctx: &TestContext, admin: &str, server: &str) -> String {
    ctx.eventually(WAIT, "the migration ended", || async {
        let r = ctx
            .call(
                Method::GET,
                &format!("/compute/v2.1/servers/{server}"),
                Some(admin),
                None,
            )
            .await;
        r.body["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await;
    server_host(ctx, admin, server).await
}

/// Whether agent `index` holds volume `id`, and the servers it says use it.
async fn held_by(ctx: &TestContext, index: usize, id: &str) -> Option<Vec<String>> {
    let storage = ctx.agent_storage(index).await;
    storage
        .volumes
        .iter()
        .find(|v| v.id.to_string() == id)
        .map(|v| {
            v.attachments
                .iter()
                .map(|a| a.server_id.to_string())
                .collect()
        })
}

#[tokio::test]
async fn a_live_migrated_server_takes_its_volumes_along_unless_one_cannot_move() {
    let (ctx, admin) = cloud(2).await;
    let image = ctx.test_image(&admin).await;
    let vol = create_volume(&ctx, &admin, json!({"size": 1})).await;
    wait_volume(&ctx, &admin, &vol, "available").await;
    // A server given an existing volume is placed on the volume's node.
    let r = ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&admin),
            Some(
                json!({"server": {"name": "vm", "flavorRef": "1", "imageRef": image,
                "block_device_mapping_v2": [{"source_type": "volume", "uuid": vol,
                    "destination_type": "volume"}]}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let server = r.body["server"]["id"].as_str().unwrap().to_string();
    ctx.wait_server(&admin, &server, "ACTIVE", WAIT).await;
    wait_volume(&ctx, &admin, &vol, "in-use").await;
    let host = server_host(&ctx, &admin, &server).await;
    let (source, target) = if host == "node-1" { (0, 1) } else { (1, 0) };
    let other = format!("node-{}", target + 1);

    // A snapshot stays on the volume's node: the volume cannot go.
    let snapshot = |force: bool| {
        ctx.call(
            Method::POST,
            "/volume/v3/snapshots",
            Some(&admin),
            Some(json!({"snapshot": {"volume_id": vol, "force": force}})),
        )
    };
    let r = snapshot(true).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let snap = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    let snap_path = format!("/volume/v3/snapshots/{snap}");
    ctx.eventually(WAIT, "snapshot made", || async {
        ctx.call(Method::GET, &snap_path, Some(&admin), None)
            .await
            .body["snapshot"]["status"]
            == "available"
    })
    .await;
    let r = migrate_live(&ctx, &admin, &server).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body.to_string().contains("has snapshots"), "{:?}", r.body);
    let r = ctx
        .call(Method::DELETE, &snap_path, Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    ctx.eventually(WAIT, "snapshot deleted", || async {
        ctx.call(Method::GET, &snap_path, Some(&admin), None)
            .await
            .status
            == StatusCode::NOT_FOUND
    })
    .await;

    // A read-only attachment is not copied by the VMM: refused too. (The same volume,
    // attached again read-only: a volume attaches only to servers on its node.)
    let r = ctx
        .call(
            Method::DELETE,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{vol}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    wait_volume(&ctx, &admin, &vol, "available").await;
    let r = volume_action(
        &ctx,
        &admin,
        &vol,
        json!({"os-attach": {"instance_uuid": server, "mode": "ro"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let attached = wait_volume(&ctx, &admin, &vol, "in-use").await;
    let r = migrate_live(&ctx, &admin, &server).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let message = r.body.to_string();
    assert!(
        message.contains(&vol) && message.contains("read-only"),
        "{message}"
    );
    let attachment = attached["attachments"][0]["attachment_id"].clone();
    let r = volume_action(
        &ctx,
        &admin,
        &vol,
        json!({"os-detach": {"attachment_id": attachment}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    wait_volume(&ctx, &admin, &vol, "available").await;
    let r = nova_attach(&ctx, &admin, &server, &vol).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    wait_volume(&ctx, &admin, &vol, "in-use").await;

    // The migration, held a while on the source: the volume's own operations wait.
    ctx.inject(
        source,
        "migrate_out",
        json!({"delay_ms": 1500, "fail_times": 0}),
    )
    .await;
    let r = migrate_live(&ctx, &admin, &server).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let r = snapshot(true).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(
        r.body.to_string().contains("live-migrating"),
        "{:?}",
        r.body
    );
    assert_eq!(settled_host(&ctx, &admin, &server).await, other);
    ctx.inject(source, "migrate_out", Value::Null).await;

    // The volume moved with it: recorded on the target, held there and attached, gone
    // from the source.
    let v = show_volume(&ctx, &admin, &vol).await;
    assert_eq!(v["status"], "in-use");
    assert!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with(&other),
        "{v}"
    );
    assert_eq!(v["attachments"][0]["host_name"], other.as_str());
    assert_eq!(
        held_by(&ctx, target, &vol).await,
        Some(vec![server.clone()])
    );
    assert_eq!(held_by(&ctx, source, &vol).await, None);

    // A migration back that fails leaves the volume where it is, and no copy behind.
    ctx.inject(target, "migrate_out", json!({"fail_times": 1}))
        .await;
    let r = migrate_live(&ctx, &admin, &server).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(settled_host(&ctx, &admin, &server).await, other);
    assert_eq!(
        held_by(&ctx, target, &vol).await,
        Some(vec![server.clone()])
    );
    assert_eq!(held_by(&ctx, source, &vol).await, None);
    let v = show_volume(&ctx, &admin, &vol).await;
    assert!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with(&other),
        "{v}"
    );
    ctx.shutdown().await;
}
