//! Glance v2 images: create, upload (real qcow2 and raw data, inspected by qemu-img),
//! download, JSON-patch updates, delete, listing, tags, members and visibility, the
//! web-download import from a local HTTP server, the 401/403/404 matrix, bad input, and
//! the calls the compute service makes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yunji_common::execute::execute;
use yunji_tests::{Options, Reply, TestContext};

const PATCH: &str = "application/openstack-images-v2.1-json-patch";
const IMAGES: &str = "/image/v2/images";

async fn run(program: &str, args: &[&str]) -> Vec<u8> {
    execute(program, args, Duration::from_secs(30))
        .await
        .unwrap()
        .stdout
}

/// A 1 MiB qcow2 image made by qemu-img, and its bytes.
async fn qcow2(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    run(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", path.to_str().unwrap(), "1M"],
    )
    .await;
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Raw data: 1 MiB of a pattern.
fn raw() -> Vec<u8> {
    (0..1024 * 1024).map(|i| (i % 251) as u8).collect()
}

/// md5 and sha512 of a file, from coreutils.
async fn digests(path: &Path) -> (String, String) {
    let p = path.to_str().unwrap();
    let first = |out: Vec<u8>| {
        String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    (
        first(run("md5sum", &[p]).await),
        first(run("sha512sum", &[p]).await),
    )
}

fn images_dir(ctx: &TestContext) -> PathBuf {
    ctx.scheduler.paths.root.join("images")
}

/// The files in the image store.
fn stored_files(ctx: &TestContext) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(images_dir(ctx))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn create(ctx: &TestContext, token: &str, body: Value) -> Value {
    let r = ctx
        .call(Method::POST, IMAGES, Some(token), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// A queued qcow2/bare image record.
async fn record(ctx: &TestContext, token: &str, name: &str) -> String {
    let body = json!({"name": name, "disk_format": "qcow2", "container_format": "bare"});
    create(ctx, token, body).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn upload(ctx: &TestContext, token: &str, id: &str, data: Vec<u8>) -> Reply {
    ctx.call_raw(
        Method::PUT,
        &format!("{IMAGES}/{id}/file"),
        Some(token),
        "application/octet-stream",
        data,
    )
    .await
}

async fn show(ctx: &TestContext, token: &str, id: &str) -> Reply {
    ctx.call(Method::GET, &format!("{IMAGES}/{id}"), Some(token), None)
        .await
}

async fn patch(ctx: &TestContext, token: &str, id: &str, ops: Value) -> Reply {
    ctx.call_raw(
        Method::PATCH,
        &format!("{IMAGES}/{id}"),
        Some(token),
        PATCH,
        serde_json::to_vec(&ops).unwrap(),
    )
    .await
}

/// An active qcow2 image; returns its id and data.
async fn active_image(ctx: &TestContext, token: &str, name: &str) -> (String, Vec<u8>) {
    let (_, data) = qcow2(ctx.dir.path(), &format!("{name}.qcow2")).await;
    let id = record(ctx, token, name).await;
    let r = upload(ctx, token, &id, data.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    (id, data)
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_qcow2_image_goes_queued_saving_active_with_its_checksums_and_downloads_unchanged() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (path, data) = qcow2(ctx.dir.path(), "disk.qcow2").await;
    let (md5, sha512) = digests(&path).await;

    let r = ctx
        .call(
            Method::POST,
            IMAGES,
            Some(&admin),
            Some(
                json!({"name": "cirros", "disk_format": "qcow2", "container_format": "bare",
                "min_ram": 64, "tags": ["gis"], "os_distro": "cirros"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location").unwrap(),
        format!("{}/image/v2/images/{id}", ctx.url)
    );
    assert_eq!(
        r.header("openstack-image-import-methods"),
        Some("web-download")
    );
    let image = &r.body;
    assert_eq!(image["status"], "queued");
    assert_eq!(image["visibility"], "shared");
    assert_eq!(
        image["os_distro"], "cirros",
        "custom properties at top level"
    );
    for key in [
        "architecture",
        "file",
        "owner",
        "id",
        "tags",
        "visibility",
        "name",
        "protected",
        "min_ram",
        "min_disk",
        "size",
        "virtual_size",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "disk_format",
        "container_format",
        "created_at",
        "updated_at",
        "self",
        "schema",
        "os_hidden",
    ] {
        assert!(image.get(key).is_some(), "{key} missing from {image}");
    }
    assert_eq!(image["size"], Value::Null);
    assert_eq!(image["self"], format!("/v2/images/{id}"));
    assert_eq!(image["file"], format!("/v2/images/{id}/file"));
    let created = image["created_at"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z'),
        "time like 2026-11-28T01:02:03Z: {created}"
    );

    let empty = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}/{id}/file"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT, "no data yet");

    let r = upload(&ctx, &admin, &id, data.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let image = show(&ctx, &admin, &id).await.body;
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], data.len());
    assert_eq!(image["virtual_size"], 1024 * 1024);
    assert_eq!(image["checksum"], md5);
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["os_hash_value"], sha512);
    assert_eq!(stored_files(&ctx), std::slice::from_ref(&id));

    let download = ctx
        .client
        .get(format!("{}{IMAGES}/{id}/file", ctx.url))
        .header("X-Auth-Token", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(download.headers()["content-md5"], md5.as_str());
    assert_eq!(download.bytes().await.unwrap().to_vec(), data);

    let again = upload(&ctx, &admin, &id, data).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    assert!(again.body["message"].as_str().unwrap().contains("active"));
    ctx.shutdown().await;
}

#[tokio::test]
async fn raw_data_is_stored_with_its_size_as_virtual_size() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let data = raw();
    let path = ctx.dir.path().join("disk.raw");
    std::fs::write(&path, &data).unwrap();
    let (md5, sha512) = digests(&path).await;
    let image = create(
        &ctx,
        &admin,
        json!({"name": "r", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = image["id"].as_str().unwrap();
    assert_eq!(
        upload(&ctx, &admin, id, data.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    let image = show(&ctx, &admin, id).await.body;
    assert_eq!(image["size"], data.len());
    assert_eq!(image["virtual_size"], data.len());
    assert_eq!(image["checksum"], md5);
    assert_eq!(image["os_hash_value"], sha512);
    let download = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}/{id}/file"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(download.raw, data);
    ctx.shutdown().await;
}

#[tokio::test]
async fn images_that_refer_to_other_files_are_refused_and_leave_nothing_behind() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let dir = ctx.dir.path();
    let evil = dir.join("evil.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "/etc/passwd",
            "-F",
            "raw",
            evil.to_str().unwrap(),
        ],
    )
    .await;
    let evil2 = dir.join("evil2.qcow2");
    let data_file = dir.join("x.raw");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            &format!("data_file={}", data_file.display()),
            evil2.to_str().unwrap(),
            "1M",
        ],
    )
    .await;
    for (file, reason) in [(evil, "backing file"), (evil2, "external data file")] {
        let id = record(&ctx, &admin, "evil").await;
        let r = upload(&ctx, &admin, &id, std::fs::read(&file).unwrap()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{reason}: {:?}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{message}");
        assert!(message.contains("qemu-img convert"), "says how: {message}");
        let image = show(&ctx, &admin, &id).await.body;
        assert_eq!(image["status"], "queued");
        assert_eq!(image["size"], Value::Null);
        assert!(stored_files(&ctx).is_empty(), "{:?}", stored_files(&ctx));
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn data_of_another_format_than_disk_format_is_refused_and_can_be_retried() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, data) = qcow2(ctx.dir.path(), "d.qcow2").await;
    let image = create(
        &ctx,
        &admin,
        json!({"name": "mislabelled", "disk_format": "raw", "container_format": "bare"}),
    )
    .await;
    let id = image["id"].as_str().unwrap();
    let r = upload(&ctx, &admin, id, data.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("qcow2") && message.contains("disk_format is raw"),
        "{message}"
    );
    assert!(stored_files(&ctx).is_empty());
    assert_eq!(show(&ctx, &admin, id).await.body["status"], "queued");

    let fixed = patch(
        &ctx,
        &admin,
        id,
        json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]),
    )
    .await;
    assert_eq!(fixed.status, StatusCode::OK);
    assert_eq!(
        upload(&ctx, &admin, id, data).await.status,
        StatusCode::NO_CONTENT
    );
    let too_late = patch(
        &ctx,
        &admin,
        id,
        json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]),
    )
    .await;
    assert_eq!(
        too_late.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        too_late.body
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn uploads_need_formats_octet_stream_and_fit_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(dir, Options::default(), |c| {
        c.images.max_image_bytes = 512 * 1024;
    })
    .await;
    let admin = ctx.admin_token().await;
    let bare = create(&ctx, &admin, json!({"name": "no formats"})).await;
    let r = upload(&ctx, &admin, bare["id"].as_str().unwrap(), raw()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("disk_format"));

    let id = record(&ctx, &admin, "big").await;
    let r = ctx
        .call_raw(
            Method::PUT,
            &format!("{IMAGES}/{id}/file"),
            Some(&admin),
            "text/plain",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = upload(&ctx, &admin, &id, raw()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    // Chunked, so only the stream tells the size.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        raw().chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = ctx
        .client
        .put(format!("{}{IMAGES}/{id}/file", ctx.url))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(show(&ctx, &admin, &id).await.body["status"], "queued");
    assert!(stored_files(&ctx).is_empty(), "{:?}", stored_files(&ctx));
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_client_that_goes_away_mid_upload_leaves_the_image_queued_and_no_file() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "interrupted").await;
    // One chunk, then nothing: the upload hangs in `saving` until the client goes away.
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(vec![0u8; 4096])])
        .chain(futures_util::stream::pending());
    let request = ctx
        .client
        .put(format!("{}{IMAGES}/{id}/file", ctx.url))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let pending = tokio::spawn(request);
    ctx.eventually(Duration::from_secs(10), "the upload to start", || async {
        show(&ctx, &admin, &id).await.body["status"] == "saving"
            && stored_files(&ctx) == [format!("{id}.part")]
    })
    .await;
    pending.abort();
    ctx.eventually(
        Duration::from_secs(10),
        "the image to be queued again",
        || async { show(&ctx, &admin, &id).await.body["status"] == "queued" },
    )
    .await;
    ctx.eventually(
        Duration::from_secs(10),
        "the partial file to go",
        || async { stored_files(&ctx).is_empty() },
    )
    .await;
    ctx.shutdown().await;
}

#[tokio::test]
async fn recovery_after_a_restart_requeues_unfinished_uploads() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "cut short").await;
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(vec![0u8; 4096])])
        .chain(futures_util::stream::pending());
    let request = ctx
        .client
        .put(format!("{}{IMAGES}/{id}/file", ctx.url))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let pending = tokio::spawn(request);
    ctx.eventually(Duration::from_secs(10), "the upload to start", || async {
        show(&ctx, &admin, &id).await.body["status"] == "saving"
    })
    .await;
    ctx.scheduler.core.images_recover().await.unwrap();
    assert_eq!(show(&ctx, &admin, &id).await.body["status"], "queued");
    assert!(stored_files(&ctx).is_empty());
    pending.abort();
    ctx.shutdown().await;
}

#[tokio::test]
async fn patch_replaces_or_removes_only_present_attributes_and_adds_per_dialect() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "p").await;
    let ok = patch(
        &ctx,
        &admin,
        &id,
        json!([
            {"op": "add", "path": "/description", "value": "a GIS base image"},
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "replace", "path": "/min_disk", "value": 2},
            {"op": "add", "path": "/architecture", "value": "x86_64"},
            {"op": "replace", "path": "/tags", "value": ["a", "b"]},
            {"op": "replace", "path": "/protected", "value": true},
        ]),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["description"], "a GIS base image");
    assert_eq!(ok.body["name"], "renamed");
    assert_eq!(ok.body["min_disk"], 2);
    assert_eq!(ok.body["architecture"], "x86_64");
    assert_eq!(ok.body["tags"], json!(["a", "b"]));
    assert_eq!(ok.body["protected"], true);

    let cases = [
        (
            json!([{"op": "replace", "path": "/absent", "value": "x"}]),
            StatusCode::CONFLICT,
            "does not exist",
        ),
        (
            json!([{"op": "remove", "path": "/absent"}]),
            StatusCode::CONFLICT,
            "does not exist",
        ),
        (
            json!([{"op": "remove", "path": "/name"}]),
            StatusCode::FORBIDDEN,
            "may not be removed",
        ),
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            StatusCode::FORBIDDEN,
            "read-only",
        ),
        (
            json!([{"op": "replace", "path": "/checksum", "value": "0"}]),
            StatusCode::FORBIDDEN,
            "read-only",
        ),
        (
            json!([{"op": "add", "path": "/deleted", "value": "x"}]),
            StatusCode::FORBIDDEN,
            "reserved",
        ),
        (
            json!([{"op": "add", "path": "/number", "value": 3}]),
            StatusCode::BAD_REQUEST,
            "must be a string",
        ),
        (
            json!([{"op": "replace", "path": "/min_ram", "value": "lots"}]),
            StatusCode::BAD_REQUEST,
            "whole number",
        ),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "everyone"}]),
            StatusCode::BAD_REQUEST,
            "visibility",
        ),
    ];
    for (ops, status, reason) in cases {
        let r = patch(&ctx, &admin, &id, ops.clone()).await;
        assert_eq!(r.status, status, "{ops}: {:?}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{ops}: {message}");
    }
    // A failing change leaves the earlier ones of the same request unapplied.
    let partial = patch(
        &ctx,
        &admin,
        &id,
        json!([
            {"op": "replace", "path": "/name", "value": "never"},
            {"op": "remove", "path": "/absent"},
        ]),
    )
    .await;
    assert_eq!(partial.status, StatusCode::CONFLICT);
    assert_eq!(show(&ctx, &admin, &id).await.body["name"], "renamed");

    let removed = patch(
        &ctx,
        &admin,
        &id,
        json!([
            {"op": "remove", "path": "/description"},
            {"op": "remove", "path": "/architecture"},
        ]),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK);
    assert!(removed.body.get("description").is_none());
    assert_eq!(removed.body["architecture"], Value::Null);

    // In the v2.1 dialect `add` sets an attribute whether or not it is there (RFC
    // 6902, Glance; openstacksdk sends `add` for everything); in the v2.0 dialect it is
    // only for absent ones, as the standard's table B.33 says.
    let upsert = patch(
        &ctx,
        &admin,
        &id,
        json!([
            {"op": "add", "path": "/name", "value": "again"},
            {"op": "add", "path": "/os_distro", "value": "x"},
            {"op": "add", "path": "/os_distro", "value": "y"},
        ]),
    )
    .await;
    assert_eq!(upsert.status, StatusCode::OK, "{:?}", upsert.body);
    assert_eq!(upsert.body["name"], "again");
    assert_eq!(upsert.body["os_distro"], "y");
    for path in ["/os_distro", "/name", "/min_ram"] {
        let r = ctx
            .call_raw(
                Method::PATCH,
                &format!("{IMAGES}/{id}"),
                Some(&admin),
                "application/openstack-images-v2.0-json-patch",
                serde_json::to_vec(&json!([{"add": path, "value": "z"}])).unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {:?}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap()
                .contains("already present")
        );
    }
    let absent = ctx
        .call_raw(
            Method::PATCH,
            &format!("{IMAGES}/{id}"),
            Some(&admin),
            "application/openstack-images-v2.0-json-patch",
            br#"[{"add": "/os_version", "value": "1"}]"#.to_vec(),
        )
        .await;
    assert_eq!(absent.status, StatusCode::OK, "{:?}", absent.body);

    // Glance's older draft-4 form.
    let v20 = ctx
        .call_raw(
            Method::PATCH,
            &format!("{IMAGES}/{id}"),
            Some(&admin),
            "application/openstack-images-v2.0-json-patch",
            br#"[{"replace": "/name", "value": "v20"}]"#.to_vec(),
        )
        .await;
    assert_eq!(v20.status, StatusCode::OK, "{:?}", v20.body);
    assert_eq!(v20.body["name"], "v20");
    ctx.shutdown().await;
}

#[tokio::test]
async fn malformed_patches_are_400_and_other_media_types_415() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "m").await;
    let path = format!("{IMAGES}/{id}");
    for content_type in [
        "application/json",
        "application/json-patch+json",
        "text/plain",
    ] {
        let r = ctx
            .call_raw(
                Method::PATCH,
                &path,
                Some(&admin),
                content_type,
                b"[]".to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert_eq!(r.body["code"], 415);
        assert!(
            r.header("accept-patch")
                .unwrap()
                .contains("v2.1-json-patch")
        );
    }
    let cases: Vec<(&[u8], &str)> = vec![
        (b"not json", "invalid"),
        (b"{\"op\": \"add\"}", "JSON array"),
        (b"[1]", "JSON objects"),
        (b"[{\"path\": \"/name\", \"value\": \"x\"}]", "op"),
        (
            b"[{\"op\": \"move\", \"path\": \"/name\", \"value\": \"x\"}]",
            "Invalid operation",
        ),
        (b"[{\"op\": \"add\", \"value\": \"x\"}]", "path"),
        (
            b"[{\"op\": \"add\", \"path\": \"name\", \"value\": \"x\"}]",
            "Pointer",
        ),
        (
            b"[{\"op\": \"add\", \"path\": \"/a//b\", \"value\": \"x\"}]",
            "Pointer",
        ),
        (
            b"[{\"op\": \"add\", \"path\": \"/a/b\", \"value\": \"x\"}]",
            "JSON pointer",
        ),
        (b"[{\"op\": \"add\", \"path\": \"/a\"}]", "value"),
    ];
    for (body, reason) in cases {
        let r = ctx
            .call_raw(Method::PATCH, &path, Some(&admin), PATCH, body.to_vec())
            .await;
        let text = String::from_utf8_lossy(body);
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{text}: {:?}", r.body);
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{text}: {message}");
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn bad_image_requests_are_4xx_never_500() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let cases = [
        (json!({"name": 7}), StatusCode::BAD_REQUEST),
        (json!({"disk_format": "exe"}), StatusCode::BAD_REQUEST),
        (json!({"visibility": "world"}), StatusCode::BAD_REQUEST),
        (json!({"id": "not-a-uuid"}), StatusCode::BAD_REQUEST),
        (json!({"min_ram": -1}), StatusCode::BAD_REQUEST),
        (json!({"tags": "a"}), StatusCode::BAD_REQUEST),
        (json!({"status": "active"}), StatusCode::FORBIDDEN),
        (json!({"size": 3}), StatusCode::FORBIDDEN),
        (json!({"os_glance_import_task": "x"}), StatusCode::FORBIDDEN),
        (json!(["a list"]), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let r = ctx
            .call(Method::POST, IMAGES, Some(&admin), Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let id = "8d5a5b8c-5d3c-4c8e-9a1e-2f0b5c4d3e2f";
    create(&ctx, &admin, json!({"id": id, "name": "chosen id"})).await;
    let dup = ctx
        .call(Method::POST, IMAGES, Some(&admin), Some(json!({"id": id})))
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let text = ctx
        .call_raw(
            Method::POST,
            IMAGES,
            Some(&admin),
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for path in [
        format!("{IMAGES}/cirros"),
        format!("{IMAGES}/%ff%fe"),
        format!("{IMAGES}/00000000-0000-0000-0000-000000000000"),
        format!("{IMAGES}/cirros/file"),
    ] {
        let r = ctx.call(Method::GET, &path, Some(&admin), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.body["code"], 404);
    }
    let r = ctx
        .call(Method::GET, "/image/v2/nothing", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = ctx
        .call(Method::POST, &format!("{IMAGES}/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    for query in [
        "limit=-1",
        "limit=x",
        "sort_key=bogus",
        "sort_dir=up",
        "sort=name:up",
        "sort=name&sort_key=id",
        "visibility=everyone",
        "member_status=maybe",
        "status=gone",
        "marker=00000000-0000-0000-0000-000000000000",
        "protected=perhaps",
    ] {
        let r = ctx
            .call(
                Method::GET,
                &format!("{IMAGES}?{query}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
    }
    let r = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}?deleted=False&is_public=None&unknown=1"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn a_protected_image_cannot_be_deleted_until_unprotected() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (id, _) = active_image(&ctx, &admin, "keep").await;
    let r = patch(
        &ctx,
        &admin,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": true}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let path = format!("{IMAGES}/{id}");
    let r = ctx.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body["message"].as_str().unwrap().contains("protected"));
    patch(
        &ctx,
        &admin,
        &id,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    let r = ctx.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(show(&ctx, &admin, &id).await.status, StatusCode::NOT_FOUND);
    assert!(stored_files(&ctx).is_empty());
    ctx.shutdown().await;
}

#[tokio::test]
async fn listing_filters_sorts_and_pages_with_next_links() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    for (name, disk, tags) in [
        ("delta", "qcow2", json!(["gis"])),
        ("alpha", "raw", json!([])),
        ("charlie", "qcow2", json!(["gis", "base"])),
        ("bravo", "iso", json!([])),
        ("echo", "qcow2", json!([])),
    ] {
        create(
            &ctx,
            &admin,
            json!({"name": name, "disk_format": disk, "container_format": "bare", "tags": tags}),
        )
        .await;
    }
    let list = |q: &str| {
        let path = format!("{IMAGES}?{q}");
        let ctx = &ctx;
        let admin = &admin;
        async move { ctx.call(Method::GET, &path, Some(admin), None).await }
    };
    let all = list("").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        names(&all),
        ["echo", "bravo", "charlie", "alpha", "delta"],
        "newest first by default"
    );
    assert_eq!(all.body["first"], "/v2/images");
    assert_eq!(all.body["schema"], "/v2/schemas/images");
    assert!(all.body.get("next").is_none());

    assert_eq!(
        names(&list("sort_key=name&sort_dir=asc").await),
        ["alpha", "bravo", "charlie", "delta", "echo"]
    );
    assert_eq!(
        names(&list("sort=disk_format:asc,name:desc").await),
        ["bravo", "echo", "delta", "charlie", "alpha"]
    );
    assert_eq!(names(&list("name=charlie").await), ["charlie"]);
    assert_eq!(
        names(&list("name=in:alpha,echo&sort=name:asc").await),
        ["alpha", "echo"]
    );
    assert_eq!(
        names(&list("disk_format=qcow2&sort=name:asc").await),
        ["charlie", "delta", "echo"]
    );
    assert_eq!(
        names(&list("tag=gis&sort=name:asc").await),
        ["charlie", "delta"]
    );
    assert_eq!(names(&list("tag=gis&tag=base").await), ["charlie"]);
    assert_eq!(names(&list("status=active").await), Vec::<String>::new());
    assert_eq!(names(&list("status=queued").await).len(), 5);
    assert_eq!(names(&list("visibility=shared").await).len(), 5);
    assert_eq!(names(&list("visibility=public").await).len(), 0);
    let owner = all.body["images"][0]["owner"].as_str().unwrap().to_string();
    assert_eq!(names(&list(&format!("owner={owner}")).await).len(), 5);
    assert_eq!(names(&list("owner=someone-else").await).len(), 0);

    // Paging: follow `next` until it stops.
    let mut seen = Vec::new();
    let mut next = Some("/v2/images?sort=name:asc&limit=2".to_string());
    let mut pages = 0;
    while let Some(link) = next {
        let page = ctx
            .call(Method::GET, &format!("/image{link}"), Some(&admin), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{link}: {:?}", page.body);
        seen.extend(names(&page));
        next = page.body["next"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(seen, ["alpha", "bravo", "charlie", "delta", "echo"]);
    assert_eq!(pages, 3);
    ctx.shutdown().await;
}

#[tokio::test]
async fn tags_are_added_and_removed_one_by_one() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "t").await;
    for tag in ["gis", "base", "gis"] {
        let r = ctx
            .call(
                Method::PUT,
                &format!("{IMAGES}/{id}/tags/{tag}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(
        show(&ctx, &admin, &id).await.body["tags"],
        json!(["gis", "base"])
    );
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{IMAGES}/{id}/tags/gis"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{IMAGES}/{id}/tags/gis"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(show(&ctx, &admin, &id).await.body["tags"], json!(["base"]));
    ctx.shutdown().await;
}

#[tokio::test]
async fn shared_images_reach_members_and_accepted_ones_list_them() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, owner) = ctx.user_with_role(&admin, "owner", "member").await;
    let (consumer_project, _, consumer) = ctx.user_with_role(&admin, "consumer", "member").await;
    let (outsider_project, _, outsider) = ctx.user_with_role(&admin, "outsider", "member").await;
    let id = record(&ctx, &owner, "shared map").await;
    assert_eq!(
        show(&ctx, &consumer, &id).await.status,
        StatusCode::NOT_FOUND
    );

    let members = format!("{IMAGES}/{id}/members");
    let r = ctx
        .call(
            Method::POST,
            &members,
            Some(&owner),
            Some(json!({"member": consumer_project})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["member_id"], consumer_project);
    assert_eq!(r.body["image_id"], id);
    assert_eq!(r.body["schema"], "/v2/schemas/member");
    let dup = ctx
        .call(
            Method::POST,
            &members,
            Some(&owner),
            Some(json!({"member": consumer_project})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let nobody = ctx
        .call(
            Method::POST,
            &members,
            Some(&owner),
            Some(json!({"member": "no-such-project"})),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);

    // A pending member can see the image, but lists it only when asking for pending.
    assert_eq!(show(&ctx, &consumer, &id).await.status, StatusCode::OK);
    let listed = |q: &'static str, token: String| {
        let ctx = &ctx;
        async move {
            let r = ctx
                .call(Method::GET, &format!("{IMAGES}{q}"), Some(&token), None)
                .await;
            names(&r)
        }
    };
    assert!(listed("", consumer.clone()).await.is_empty());
    assert_eq!(
        listed("?member_status=pending", consumer.clone()).await,
        ["shared map"]
    );
    // Only the member answers for itself.
    let mine = format!("{members}/{consumer_project}");
    let r = ctx
        .call(
            Method::PUT,
            &mine,
            Some(&owner),
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::PUT,
            &mine,
            Some(&consumer),
            Some(json!({"status": "accepted"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "accepted");
    assert_eq!(listed("", consumer.clone()).await, ["shared map"]);
    assert_eq!(
        listed("?visibility=shared", consumer.clone()).await,
        ["shared map"]
    );
    let r = ctx.call(Method::GET, &members, Some(&consumer), None).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["schema"], "/v2/schemas/members");
    // A member may not share further, nor change the image.
    let r = ctx
        .call(
            Method::POST,
            &members,
            Some(&consumer),
            Some(json!({"member": outsider_project})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(
        &ctx,
        &consumer,
        &id,
        json!([{"op": "replace", "path": "/name", "value": "mine"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Outsiders see nothing of it.
    assert_eq!(
        show(&ctx, &outsider, &id).await.status,
        StatusCode::NOT_FOUND
    );
    let r = ctx.call(Method::GET, &members, Some(&outsider), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = ctx.call(Method::DELETE, &mine, Some(&owner), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        show(&ctx, &consumer, &id).await.status,
        StatusCode::NOT_FOUND
    );
    ctx.shutdown().await;
}

#[tokio::test]
async fn private_images_have_no_members_and_community_ones_are_listed_on_request() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, owner) = ctx.user_with_role(&admin, "owner2", "member").await;
    let (other_project, _, other) = ctx.user_with_role(&admin, "other2", "member").await;
    let private = create(&ctx, &owner, json!({"name": "p", "visibility": "private"})).await;
    let pid = private["id"].as_str().unwrap();
    let r = ctx
        .call(
            Method::POST,
            &format!("{IMAGES}/{pid}/members"),
            Some(&owner),
            Some(json!({"member": other_project})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body["message"].as_str().unwrap().contains("shared"));

    let community = create(
        &ctx,
        &owner,
        json!({"name": "c", "visibility": "community"}),
    )
    .await;
    let cid = community["id"].as_str().unwrap();
    assert_eq!(show(&ctx, &other, cid).await.status, StatusCode::OK);
    let default = ctx.call(Method::GET, IMAGES, Some(&other), None).await;
    assert!(names(&default).is_empty());
    let asked = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}?visibility=community"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(names(&asked), ["c"]);
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{IMAGES}/{cid}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "visible but not theirs");
    ctx.shutdown().await;
}

/// Every image endpoint, with an image id.
fn endpoints(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, IMAGES.to_string(), None),
        (Method::POST, IMAGES.to_string(), Some(json!({"name": "x"}))),
        (Method::GET, format!("{IMAGES}/{id}"), None),
        (Method::PATCH, format!("{IMAGES}/{id}"), Some(json!([]))),
        (Method::DELETE, format!("{IMAGES}/{id}"), None),
        (Method::PUT, format!("{IMAGES}/{id}/file"), None),
        (Method::GET, format!("{IMAGES}/{id}/file"), None),
        (
            Method::POST,
            format!("{IMAGES}/{id}/import"),
            Some(json!({"method": {"name": "web-download", "uri": "http://127.0.0.1:9/x"}})),
        ),
        (Method::GET, format!("{IMAGES}/{id}/tasks"), None),
        (Method::PUT, format!("{IMAGES}/{id}/tags/t"), None),
        (Method::DELETE, format!("{IMAGES}/{id}/tags/t"), None),
        (Method::GET, format!("{IMAGES}/{id}/members"), None),
        (
            Method::POST,
            format!("{IMAGES}/{id}/members"),
            Some(json!({"member": "p"})),
        ),
        (Method::GET, format!("{IMAGES}/{id}/members/p"), None),
        (
            Method::PUT,
            format!("{IMAGES}/{id}/members/p"),
            Some(json!({"status": "accepted"})),
        ),
        (Method::DELETE, format!("{IMAGES}/{id}/members/p"), None),
        (
            Method::POST,
            format!("{IMAGES}/{id}/actions/deactivate"),
            None,
        ),
        (
            Method::POST,
            format!("{IMAGES}/{id}/actions/reactivate"),
            None,
        ),
        (Method::GET, "/image/v2/tasks".into(), None),
        (Method::GET, "/image/v2/tasks/x".into(), None),
        (Method::GET, "/image/v2/info/import".into(), None),
        (Method::GET, "/image/v2/schemas/image".into(), None),
        (Method::GET, "/image/v2/schemas/images".into(), None),
        (Method::GET, "/image/v2/schemas/member".into(), None),
        (Method::GET, "/image/v2/schemas/members".into(), None),
    ]
}

#[tokio::test]
async fn every_image_endpoint_is_401_without_or_with_a_bad_token() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let id = record(&ctx, &admin, "x").await;
    for (method, path, body) in endpoints(&id) {
        for token in [None, Some("not-a-token")] {
            let r = ctx.call(method.clone(), &path, token, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(r.body["code"], 401, "{method} {path}");
        }
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn another_projects_private_image_is_404_on_every_endpoint() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, owner) = ctx.user_with_role(&admin, "hidden-owner", "member").await;
    let (_, _, stranger) = ctx.user_with_role(&admin, "stranger", "member").await;
    let private = create(&ctx, &owner, json!({"name": "p", "visibility": "private"})).await;
    let id = private["id"].as_str().unwrap();
    for (method, path, body) in endpoints(id) {
        if !path.contains(id) || path.contains("/actions/") {
            continue;
        }
        let r = if method == Method::PATCH {
            patch(&ctx, &stranger, id, json!([])).await
        } else {
            ctx.call(method.clone(), &path, Some(&stranger), body).await
        };
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {:?}",
            r.body
        );
    }
    // The admin sees it.
    assert_eq!(show(&ctx, &admin, id).await.status, StatusCode::OK);
    ctx.shutdown().await;
}

#[tokio::test]
async fn only_admins_publicize_and_readers_only_look() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member) = ctx.user_with_role(&admin, "worker", "member").await;
    let r = ctx
        .call(
            Method::POST,
            IMAGES,
            Some(&member),
            Some(json!({"name": "pub", "visibility": "public"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body["message"].as_str().unwrap().contains("admin"));
    let (id, data) = active_image(&ctx, &member, "mine").await;
    let r = patch(
        &ctx,
        &member,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(
        &ctx,
        &member,
        &id,
        json!([{"op": "replace", "path": "/owner", "value": "elsewhere"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(
        &ctx,
        &admin,
        &id,
        json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // A reader of the same project: looks, downloads, changes nothing.
    let user = ctx
        .call(
            Method::POST,
            "/identity/v3/users",
            Some(&admin),
            Some(json!({"user": {"name": "looker", "password": "pw"}})),
        )
        .await;
    let user_id = user.body["user"]["id"].as_str().unwrap();
    let roles = ctx
        .call(
            Method::GET,
            "/identity/v3/roles?name=reader",
            Some(&admin),
            None,
        )
        .await;
    let role = roles.body["roles"][0]["id"].as_str().unwrap();
    ctx.call(
        Method::PUT,
        &format!("/identity/v3/projects/{project}/users/{user_id}/roles/{role}"),
        Some(&admin),
        None,
    )
    .await;
    let reader = ctx.token("looker", "pw", "worker").await;
    assert_eq!(show(&ctx, &reader, &id).await.status, StatusCode::OK);
    let download = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}/{id}/file"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(download.raw, data);
    let r = ctx
        .call(
            Method::POST,
            IMAGES,
            Some(&reader),
            Some(json!({"name": "r"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let queued = record(&ctx, &member, "queued").await;
    let r = upload(&ctx, &reader, &queued, raw()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{IMAGES}/{id}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(
        &ctx,
        &reader,
        &id,
        json!([{"op": "replace", "path": "/name", "value": "x"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    ctx.shutdown().await;
}

#[tokio::test]
async fn deactivated_images_are_not_downloadable_except_by_admins() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, _, member) = ctx.user_with_role(&admin, "deact", "member").await;
    let (id, _) = active_image(&ctx, &member, "d").await;
    let action = |a: &str| format!("{IMAGES}/{id}/actions/{a}");
    let r = ctx
        .call(Method::POST, &action("deactivate"), Some(&member), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = ctx
        .call(Method::POST, &action("deactivate"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(show(&ctx, &member, &id).await.body["status"], "deactivated");
    let file = format!("{IMAGES}/{id}/file");
    assert_eq!(
        ctx.call(Method::GET, &file, Some(&member), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ctx.call(Method::GET, &file, Some(&admin), None)
            .await
            .status,
        StatusCode::OK
    );
    let r = ctx
        .call(Method::POST, &action("reactivate"), Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(show(&ctx, &member, &id).await.body["status"], "active");
    ctx.shutdown().await;
}

#[tokio::test]
async fn the_schemas_describe_images_and_members() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let r = ctx
        .call(Method::GET, "/image/v2/schemas/image", Some(&admin), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "image");
    assert_eq!(r.body["additionalProperties"]["type"], "string");
    for key in [
        "architecture",
        "file",
        "owner",
        "id",
        "tags",
        "visibility",
        "name",
        "protected",
        "min_ram",
        "min_disk",
        "size",
        "virtual_size",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "disk_format",
        "container_format",
        "created_at",
        "updated_at",
        "self",
        "schema",
        "os_hidden",
    ] {
        assert!(r.body["properties"].get(key).is_some(), "{key}");
    }
    let images = ctx
        .call(Method::GET, "/image/v2/schemas/images", Some(&admin), None)
        .await;
    assert_eq!(
        images.body["properties"]["images"]["items"]["name"],
        "image"
    );
    let members = ctx
        .call(Method::GET, "/image/v2/schemas/members", Some(&admin), None)
        .await;
    assert_eq!(members.body["name"], "members");
    let info = ctx
        .call(Method::GET, "/image/v2/info/import", Some(&admin), None)
        .await;
    assert_eq!(
        info.body["import-methods"]["value"],
        json!(["web-download"])
    );
    ctx.shutdown().await;
}

/// A one-file HTTP server on 127.0.0.1: `/image` answers `data`, anything else 404.
async fn file_server(data: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let data = data.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = if path == "/image" {
                    ("200 OK", data)
                } else {
                    ("404 Not Found", b"not here".to_vec())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: \
                     application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn import(ctx: &TestContext, token: &str, id: &str, uri: &str) -> Reply {
    ctx.call(
        Method::POST,
        &format!("{IMAGES}/{id}/import"),
        Some(token),
        Some(json!({"method": {"name": "web-download", "uri": uri}})),
    )
    .await
}

async fn settled(ctx: &TestContext, token: &str, id: &str) -> Value {
    let mut image = Value::Null;
    for _ in 0..100 {
        image = show(ctx, token, id).await.body;
        if image["status"] != "importing" {
            return image;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import of {id} did not finish: {image}");
}

async fn tasks(ctx: &TestContext, token: &str, id: &str) -> Value {
    ctx.call(
        Method::GET,
        &format!("{IMAGES}/{id}/tasks"),
        Some(token),
        None,
    )
    .await
    .body["tasks"]
        .clone()
}

#[tokio::test]
async fn web_download_imports_in_the_background_and_fails_back_to_queued() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(dir, Options::default(), |c| {
        c.images.web_download_allow_private = true;
    })
    .await;
    let admin = ctx.admin_token().await;
    let (path, data) = qcow2(ctx.dir.path(), "remote.qcow2").await;
    let (md5, _) = digests(&path).await;
    let server = file_server(data.clone()).await;

    let id = record(&ctx, &admin, "imported").await;
    let r = import(&ctx, &admin, &id, &format!("{server}/image")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let image = settled(&ctx, &admin, &id).await;
    assert_eq!(image["status"], "active", "{image}");
    assert_eq!(image["checksum"], md5);
    assert_eq!(image["virtual_size"], 1024 * 1024);
    let t = tasks(&ctx, &admin, &id).await;
    assert_eq!(t[0]["status"], "success", "{t}");
    assert_eq!(t[0]["type"], "api_image_import");
    let task_id = t[0]["id"].as_str().unwrap();
    let listed = ctx
        .call(
            Method::GET,
            "/image/v2/tasks?status=success",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(listed.body["tasks"][0]["id"], task_id);
    let one = ctx
        .call(
            Method::GET,
            &format!("/image/v2/tasks/{task_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        one.body["input"]["import_req"]["method"]["name"],
        "web-download"
    );
    let (_, _, stranger) = ctx.user_with_role(&admin, "task-stranger", "member").await;
    let hidden = ctx
        .call(
            Method::GET,
            &format!("/image/v2/tasks/{task_id}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let theirs = ctx
        .call(Method::GET, "/image/v2/tasks", Some(&stranger), None)
        .await;
    assert_eq!(theirs.body["tasks"], json!([]));
    let download = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}/{id}/file"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(download.raw, data);
    let again = import(&ctx, &admin, &id, &format!("{server}/image")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let missing = record(&ctx, &admin, "missing").await;
    let r = import(&ctx, &admin, &missing, &format!("{server}/nothing")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let image = settled(&ctx, &admin, &missing).await;
    assert_eq!(image["status"], "queued");
    let t = tasks(&ctx, &admin, &missing).await;
    assert_eq!(t[0]["status"], "failure");
    assert!(t[0]["message"].as_str().unwrap().contains("404"), "{t}");

    // Data of the wrong format is refused like an upload.
    let raw_id = create(
        &ctx,
        &admin,
        json!({"name": "wrong", "disk_format": "raw", "container_format": "bare"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    import(&ctx, &admin, &raw_id, &format!("{server}/image")).await;
    assert_eq!(settled(&ctx, &admin, &raw_id).await["status"], "queued");
    let t = tasks(&ctx, &admin, &raw_id).await;
    assert!(
        t[0]["message"].as_str().unwrap().contains("disk_format"),
        "{t}"
    );
    assert_eq!(stored_files(&ctx), std::slice::from_ref(&id));

    for (body, status) in [
        (
            json!({"method": {"name": "glance-direct"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"method": {"name": "web-download"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
    ] {
        let r = ctx
            .call(
                Method::POST,
                &format!("{IMAGES}/{missing}/import"),
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    ctx.shutdown().await;
}

#[tokio::test]
async fn web_download_refuses_loopback_addresses_unless_the_operator_allows_them() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (_, data) = qcow2(ctx.dir.path(), "remote.qcow2").await;
    let server = file_server(data).await;
    let id = record(&ctx, &admin, "ssrf").await;
    let r = import(&ctx, &admin, &id, &format!("{server}/image")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(settled(&ctx, &admin, &id).await["status"], "queued");
    let t = tasks(&ctx, &admin, &id).await;
    let message = t[0]["message"].as_str().unwrap();
    assert!(message.contains("web_download_allow_private"), "{message}");
    ctx.shutdown().await;
}

#[tokio::test]
async fn compute_boots_from_active_visible_images_and_snapshots_copy_their_data() {
    let ctx = TestContext::new(Options::default()).await;
    let admin = ctx.admin_token().await;
    let (project, _, member_token) = ctx.user_with_role(&admin, "computer", "member").await;
    let (_, _, stranger_token) = ctx.user_with_role(&admin, "nosy", "member").await;
    let core = &ctx.scheduler.core;
    let member = core
        .token_validate(&member_token)
        .await
        .unwrap()
        .caller
        .clone();
    let stranger = core
        .token_validate(&stranger_token)
        .await
        .unwrap()
        .caller
        .clone();

    // Booting needs an image that is active and visible to the caller: else a 400
    // that says which.
    let boot = |token: String, image: String| {
        let ctx = &ctx;
        async move {
            ctx.call(
                Method::POST,
                "/compute/v2.1/servers",
                Some(&token),
                Some(json!({"server": {"name": "b", "flavorRef": "1", "imageRef": image}})),
            )
            .await
        }
    };
    let queued = record(&ctx, &member_token, "not yet").await;
    let r = boot(member_token.clone(), queued).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body.to_string().contains("not active"), "{:?}", r.body);
    let (id, data) = active_image(&ctx, &member_token, "base").await;
    let r = boot(stranger_token.clone(), id.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body.to_string().contains("Can not find requested image"),
        "{:?}",
        r.body
    );
    let source = core.image_get_any(&id).await.unwrap().unwrap();

    let mut properties = serde_json::Map::new();
    properties.insert("image_type".into(), json!("snapshot"));
    properties.insert("description".into(), json!("server snapshot"));
    properties.insert("min_ram".into(), json!("512"));
    let snap = core
        .image_create_from(&member, &source, &project, "snap".into(), properties)
        .await
        .unwrap();
    assert_eq!(snap.owner, project);
    assert_eq!(snap.name.as_deref(), Some("snap"));
    assert_eq!(snap.checksum, source.checksum);
    assert_eq!(snap.os_hash_value, source.os_hash_value);
    assert_eq!(snap.disk_format.as_deref(), Some("qcow2"));
    assert_eq!(snap.min_ram, 512);
    assert_eq!(snap.properties["image_type"], "snapshot");
    assert!(core.image_path(&snap).exists());

    let shown = show(&ctx, &member_token, &snap.id).await.body;
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["visibility"], "private");
    assert_eq!(shown["description"], "server snapshot");
    // The copy outlives its source.
    let r = ctx
        .call(
            Method::DELETE,
            &format!("{IMAGES}/{id}"),
            Some(&member_token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let download = ctx
        .call(
            Method::GET,
            &format!("{IMAGES}/{}/file", snap.id),
            Some(&member_token),
            None,
        )
        .await;
    assert_eq!(download.raw, data);
    // Nobody snapshots into another project.
    let err = core
        .image_create_from(
            &stranger,
            &snap,
            &project,
            "theirs".into(),
            serde_json::Map::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, yunji_scheduler::core::Error::NotFound(_)));
    ctx.shutdown().await;
}
