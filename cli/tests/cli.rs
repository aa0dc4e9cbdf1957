//! The `yunji` command line against a yunji cloud in this process: golden output for
//! tables, JSON and YAML, the exit codes scripts rely on, and errors that say what to do.
//! Regenerate the golden files with `YUNJI_BLESS=1 cargo test -p yunji-cli --test cli`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Cloud, stderr, stdout, yunji};

/// Compares `actual` with `tests/golden/NAME` (rewriting it under `YUNJI_BLESS`).
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("YUNJI_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} differs from the golden file (YUNJI_BLESS=1 regenerates it):\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_json_and_yaml_match_the_golden_files() {
    let cloud = Cloud::start(1).await;
    // Output that names the endpoint says {cloud} instead of the test's port.
    let scrub = |s: String| s.replace(&cloud.ctx.url, "{cloud}");

    let created = cloud
        .yunji(&[
            "flavor",
            "create",
            "gis.large",
            "--id",
            "gis-large",
            "--vcpus",
            "8",
            "--ram",
            "16384",
            "--disk",
            "80",
        ])
        .await;
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    golden("flavor-create.txt", &scrub(stdout(&created)));

    let list = cloud.yunji(&["flavor", "list"]).await;
    golden("flavor-list.txt", &stdout(&list));
    let list = cloud.yunji(&["-f", "json", "flavor", "list"]).await;
    golden("flavor-list.json", &stdout(&list));
    let show = cloud
        .yunji(&["-f", "yaml", "flavor", "show", "gis.large"])
        .await;
    golden("flavor-show.yaml", &scrub(stdout(&show)));

    golden(
        "quota-show.txt",
        &stdout(&cloud.yunji(&["quota", "show"]).await),
    );
    golden(
        "datacenter-list.txt",
        &stdout(&cloud.yunji(&["datacenter", "list"]).await),
    );
    let capacity = cloud.yunji(&["-f", "json", "datacenter", "capacity"]).await;
    golden("datacenter-capacity.json", &stdout(&capacity));
    cloud.ctx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_lifecycle_with_wait_and_the_standards_extensions() {
    let cloud = Cloud::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.raw");
    std::fs::write(&disk, vec![0u8; 2 << 20]).unwrap();
    let image = cloud
        .yunji(&[
            "-f",
            "json",
            "image",
            "create",
            "tiny",
            "--file",
            disk.to_str().unwrap(),
            "--disk-format",
            "raw",
        ])
        .await;
    assert_eq!(image.status.code(), Some(0), "{}", stderr(&image));
    let image: serde_json::Value = serde_json::from_slice(&image.stdout).unwrap();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 2 << 20);

    // A network with a subnet, and an external one for public IPs (via the API: the
    // native CLI covers the standard's operations, and creating networks is not one).
    let admin = cloud.ctx.admin_token().await;
    let call = |path: &'static str, body: serde_json::Value| {
        let (ctx, admin) = (&cloud.ctx, admin.clone());
        async move {
            ctx.call(reqwest::Method::POST, path, Some(&admin), Some(body))
                .await
                .body
        }
    };
    let net = call(
        "/network/v2.0/networks",
        serde_json::json!({"network": {"name": "gis-net"}}),
    )
    .await;
    let net = net["network"]["id"].as_str().unwrap().to_owned();
    let ext = call(
        "/network/v2.0/networks",
        serde_json::json!({"network": {"name": "public", "router:external": true}}),
    )
    .await;
    let ext = ext["network"]["id"].as_str().unwrap().to_owned();
    call(
        "/network/v2.0/subnets",
        serde_json::json!({"subnet": {"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}}),
    )
    .await;

    let subnet = call(
        "/network/v2.0/subnets",
        serde_json::json!({"subnet": {"network_id": net, "ip_version": 4, "cidr": "10.20.0.0/24"}}),
    )
    .await;
    let router = call(
        "/network/v2.0/routers",
        serde_json::json!({"router": {"name": "gw", "external_gateway_info": {"network_id": ext}}}),
    )
    .await;
    let path = format!(
        "/network/v2.0/routers/{}/add_router_interface",
        router["router"]["id"].as_str().unwrap()
    );
    let added = cloud
        .ctx
        .call(
            reqwest::Method::PUT,
            &path,
            Some(&admin),
            Some(serde_json::json!({"subnet_id": subnet["subnet"]["id"]})),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);

    let server = cloud
        .yunji(&[
            "-f",
            "json",
            "server",
            "create",
            "vm1",
            "--flavor",
            "m1.tiny",
            "--image",
            "tiny",
            "--network",
            "gis-net",
            "--wait",
        ])
        .await;
    assert_eq!(server.status.code(), Some(0), "{}", stderr(&server));
    let server: serde_json::Value = serde_json::from_slice(&server.stdout).unwrap();
    assert_eq!(server["status"], "ACTIVE");

    let stop = cloud.yunji(&["server", "stop", "vm1", "--wait"]).await;
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let shown = cloud.yunji(&["-f", "json", "server", "show", "vm1"]).await;
    assert!(
        stdout(&shown).contains("\"status\": \"SHUTOFF\""),
        "{}",
        stdout(&shown)
    );
    // An action the state does not allow: the cloud's reason, exit code 1.
    let stop_again = cloud.yunji(&["server", "stop", "vm1"]).await;
    assert_eq!(stop_again.status.code(), Some(1));
    assert!(
        stderr(&stop_again).contains("409"),
        "{}",
        stderr(&stop_again)
    );

    let public_ip = cloud
        .yunji(&["-f", "json", "public-ip", "create", "gis-ip"])
        .await;
    assert_eq!(public_ip.status.code(), Some(0), "{}", stderr(&public_ip));
    let bound = cloud
        .yunji(&[
            "-f",
            "json",
            "public-ip",
            "bind",
            "gis-ip",
            "--server",
            "vm1",
        ])
        .await;
    assert_eq!(bound.status.code(), Some(0), "{}", stderr(&bound));
    let bound: serde_json::Value = serde_json::from_slice(&bound.stdout).unwrap();
    assert_eq!(bound["server_id"], server["id"]);
    assert!(
        bound["public_ip_address"]
            .as_str()
            .unwrap()
            .starts_with("203.0.113.")
    );
    // Exactly one of --server and --private-ip: a usage error, exit code 2.
    let both = cloud
        .yunji(&[
            "public-ip",
            "unbind",
            "gis-ip",
            "--server",
            "vm1",
            "--private-ip",
            "10.20.0.5",
        ])
        .await;
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));

    let volume = cloud
        .yunji(&[
            "-f", "json", "volume", "create", "data", "--size", "1", "--wait",
        ])
        .await;
    assert_eq!(volume.status.code(), Some(0), "{}", stderr(&volume));
    let attached = cloud
        .yunji(&[
            "-f", "json", "volume", "attach", "data", "--server", "vm1", "--wait",
        ])
        .await;
    assert_eq!(attached.status.code(), Some(0), "{}", stderr(&attached));
    assert!(stdout(&attached).contains("\"status\": \"in-use\""));
    let extended = cloud
        .yunji(&[
            "-f", "json", "volume", "extend", "data", "--size", "3", "--wait",
        ])
        .await;
    assert_eq!(extended.status.code(), Some(0), "{}", stderr(&extended));
    assert!(
        stdout(&extended).contains("\"size\": 3"),
        "{}",
        stdout(&extended)
    );
    let refused = cloud.yunji(&["volume", "delete", "data"]).await;
    assert_eq!(refused.status.code(), Some(1));

    for args in [
        &["volume", "detach", "data", "--server", "vm1", "--wait"][..],
        &["volume", "delete", "data", "--wait"],
        &["public-ip", "delete", "gis-ip"],
        &["server", "delete", "vm1", "--wait"],
    ] {
        let done = cloud.yunji(args).await;
        assert_eq!(done.status.code(), Some(0), "{args:?}: {}", stderr(&done));
    }
    assert_eq!(
        stdout(&cloud.yunji(&["-f", "json", "server", "list"]).await).trim(),
        "[]"
    );
    cloud.ctx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do_with_exit_codes_scripts_can_trust() {
    let cloud = Cloud::start(0).await;
    let missing = cloud.yunji(&["server", "show", "no-such-server"]).await;
    assert_eq!(missing.status.code(), Some(1));
    golden("error-no-server.txt", &stderr(&missing));

    let dir = tempfile::tempdir().unwrap();
    let nothing = yunji(
        &dir.path().join("absent.yaml"),
        "nowhere",
        &["server", "list"],
    )
    .await;
    assert_eq!(nothing.status.code(), Some(3));
    assert!(
        stderr(&nothing).contains("no clouds.yaml found"),
        "{}",
        stderr(&nothing)
    );

    let wrong = dir.path().join("clouds.yaml");
    std::fs::write(
        &wrong,
        format!(
            "clouds:\n  bad:\n    auth:\n      auth_url: {}/identity/v3\n      username: admin\n      password: wrong\n      project_name: admin\n",
            cloud.ctx.url
        ),
    )
    .unwrap();
    let refused = yunji(&wrong, "bad", &["server", "list"]).await;
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        stderr(&refused).contains("authentication failed") && stderr(&refused).contains("hint:"),
        "{}",
        stderr(&refused)
    );

    let usage = cloud.yunji(&["server", "frobnicate"]).await;
    assert_eq!(usage.status.code(), Some(2));
    cloud.ctx.shutdown().await;
}
