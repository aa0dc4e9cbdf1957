//! End-to-end tests with real VMs: a scheduler in-process and `yunji-agent` processes
//! with `--driver qemu`, booting the project's test image (tests/image/build.sh) under
//! TCG. They need root, QEMU and the built agent binary, so they are ignored by default;
//! tests/run.sh runs them (`cargo test -p yunji-tests --test e2e -- --ignored
//! --test-threads=1`). The tests of `network` run the cloud on a multi-node rig of
//! network namespaces (`yunji_tests::rig`) with the real network driver; the others on
//! one node in the root namespace, their VMs without NICs.

// Tests: a failed step should stop the test right there.
#![allow(clippy::unwrap_used)]

mod conformance;
mod load_balancers;
mod network;
mod restarts;
mod volumes;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use yunji_tests::rig::{Rig, SCHEDULER_ADDRESS};
use yunji_tests::{Api, Options, TestContext};

/// A TCG boot takes 5–6 s here; the margin covers two cores shared with compilers.
const BOOT: Duration = Duration::from_secs(90);

/// An agent process on the QEMU driver. Dropping it kills the agent and every QEMU it
/// started (by their pidfiles), whatever the test did.
struct QemuNode {
    name: String,
    data_dir: PathBuf,
    /// The rig namespace the agent runs in, and its address there (loopback without).
    netns: Option<(String, std::net::Ipv4Addr)>,
    child: Option<tokio::process::Child>,
}

/// A built yunji binary (`cargo build --bins`), from `YUNJI_BIN_DIR` when set.
fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("YUNJI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --bins` first",
        binary.display()
    );
    binary
}

impl QemuNode {
    async fn start(
        ctx: &TestContext,
        name: &str,
        netns: Option<(String, std::net::Ipv4Addr)>,
    ) -> QemuNode {
        let mut node = QemuNode {
            name: name.into(),
            data_dir: ctx.dir.path().join(name),
            netns,
            child: None,
        };
        node.spawn(ctx);
        node
    }

    /// Starts the agent: in the root namespace with the sim network, or inside its rig
    /// namespace with the real one.
    fn spawn(&mut self, ctx: &TestContext) {
        let (mut command, listen, network) = match &self.netns {
            None => (
                tokio::process::Command::new(binary("yunji-agent")),
                "127.0.0.1:0".to_string(),
                "sim",
            ),
            Some((netns, address)) => {
                let mut command = tokio::process::Command::new("ip");
                command
                    .args(["netns", "exec", netns])
                    .arg(binary("yunji-agent"));
                (command, format!("{address}:0"), "real")
            }
        };
        let child = command
            .args(["--scheduler", &ctx.url, "--node-name", &self.name])
            .args([
                "--listen",
                &listen,
                "--driver",
                "qemu",
                "--network",
                network,
            ])
            .args(["--graceful-stop-secs", "20"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("YUNJI_JOIN_TOKEN", &ctx.scheduler.join_token)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    async fn sigkill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().await.unwrap();
    }

    fn vm_dir(&self, id: &str) -> PathBuf {
        self.data_dir.join("vms").join(id)
    }

    /// The pid of the server's QEMU, if it runs.
    fn qemu_pid(&self, id: &str) -> Option<i32> {
        yunji_agent::vmm::qemu::running_pid(&self.vm_dir(id))
    }
}

impl Drop for QemuNode {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let Ok(vms) = std::fs::read_dir(self.data_dir.join("vms")) else {
            return;
        };
        for vm in vms.flatten() {
            yunji_agent::vmm::qemu::kill_now(&vm.path());
        }
    }
}

/// The test image, built (or taken from the cache) by tests/image/build.sh.
async fn test_image_file() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("image/build.sh");
    let out = yunji_common::execute::execute("bash", [script], Duration::from_secs(600))
        .await
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Fields drop in order: the nodes (killing their VMs) before the context removes the
/// directory their pidfiles are in, and the rig's namespaces last.
struct Cloud {
    nodes: Vec<QemuNode>,
    ctx: TestContext,
    session: Session,
    rig: Option<Rig>,
}

/// An admin's session with a cloud whose flavors and test image are in place: what
/// every test drives servers through (`cloud.boot(…)` reaches it through `Deref`).
struct Session {
    api: Api,
    admin: String,
    image: String,
}

impl std::ops::Deref for Cloud {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// One node in the root namespace.
async fn cloud() -> Cloud {
    cloud_of_local_nodes(1).await
}

/// `nodes` nodes in the root namespace, their VMs without NICs.
async fn cloud_of_local_nodes(nodes: usize) -> Cloud {
    let ctx = TestContext::new(Options::default()).await;
    let mut started = Vec::new();
    for n in 1..=nodes {
        started.push(QemuNode::start(&ctx, &format!("node-{n}"), None).await);
    }
    cloud_of(ctx, started, None).await
}

/// `nodes` nodes on a rig, each agent in its namespace with the real network driver; the
/// scheduler in the underlay namespace, which this thread enters.
async fn cloud_on_rig(nodes: usize) -> Cloud {
    let mut rig = Rig::new(nodes).await;
    rig.enter_underlay();
    let dir = tempfile::tempdir().unwrap();
    let ctx = TestContext::start(dir, Options::default(), |config| {
        config.listen = (SCHEDULER_ADDRESS, 0).into();
    })
    .await;
    let mut started = Vec::new();
    for n in 1..=nodes {
        let netns = (rig.node(n), Rig::address(n));
        started.push(QemuNode::start(&ctx, &format!("node-{n}"), Some(netns)).await);
    }
    cloud_of(ctx, started, Some(rig)).await
}

/// Waits for the nodes, then makes the flavors and uploads the test image.
async fn cloud_of(ctx: TestContext, nodes: Vec<QemuNode>, rig: Option<Rig>) -> Cloud {
    ctx.wait_nodes_up(nodes.len()).await;
    let admin = ctx.admin_token().await;
    let session = Session::prepare(ctx.api.clone(), admin).await;
    Cloud {
        nodes,
        ctx,
        session,
        rig,
    }
}

async fn upload_image(ctx: &Api, admin: &str, name: &str, format: &str, file: &Path) -> String {
    let r = ctx
        .call(
            Method::POST,
            "/image/v2/images",
            Some(admin),
            Some(json!({"name": name, "disk_format": format, "container_format": "bare", "visibility": "public"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let up = ctx
        .call_raw(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            Some(admin),
            "application/octet-stream",
            std::fs::read(file).unwrap(),
        )
        .await;
    assert_eq!(up.status, StatusCode::NO_CONTENT, "{:?}", up.body);
    id
}

impl Session {
    /// Makes the test flavors and uploads the test image.
    async fn prepare(api: Api, admin: String) -> Session {
        for (id, vcpus, ram, disk) in [("e2e-small", 1, 128, 1), ("e2e-large", 2, 256, 2)] {
            let r = api
                .call(
                    Method::POST,
                    "/compute/v2.1/flavors",
                    Some(&admin),
                    Some(json!({"flavor": {"name": id, "id": id, "vcpus": vcpus, "ram": ram, "disk": disk}})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        let image = upload_image(
            &api,
            &admin,
            "yunji-test",
            "qcow2",
            &test_image_file().await,
        )
        .await;
        Session { api, admin, image }
    }

    async fn boot(&self, name: &str, flavor: &str, user_data: Option<&str>) -> String {
        let server = self.server(name, flavor, user_data);
        self.boot_as(&self.admin, json!({ "server": server })).await
    }

    /// A server body booting the test image.
    fn server(&self, name: &str, flavor: &str, user_data: Option<&str>) -> Value {
        let mut server = json!({"name": name, "flavorRef": flavor, "imageRef": self.image});
        if let Some(script) = user_data {
            server["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(script));
        }
        server
    }

    /// Creates a server in `token`'s project from a whole request body.
    async fn boot_as(&self, token: &str, body: Value) -> String {
        let r = self
            .api
            .call(
                Method::POST,
                "/compute/v2.1/servers",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        r.body["server"]["id"].as_str().unwrap().to_string()
    }

    async fn act(&self, id: &str, body: Value) {
        let r = self
            .api
            .call(
                Method::POST,
                &format!("/compute/v2.1/servers/{id}/action"),
                Some(&self.admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{body}: {:?}", r.body);
    }

    async fn show(&self, id: &str) -> Value {
        let r = self
            .api
            .call(
                Method::GET,
                &format!("/compute/v2.1/servers/{id}"),
                Some(&self.admin),
                None,
            )
            .await;
        r.body["server"].clone()
    }

    /// Waits for the server's status, failing with its fault if it turns ERROR.
    async fn wait_status(&self, id: &str, status: &str, limit: Duration) {
        let start = Instant::now();
        loop {
            let server = self.show(id).await;
            if server["status"] == status && server["OS-EXT-STS:task_state"].is_null() {
                return;
            }
            assert!(
                server["status"] != "ERROR" || status == "ERROR",
                "server {id} failed: {}",
                server["fault"]
            );
            assert!(
                start.elapsed() < limit,
                "server {id} is not {status} after {limit:?}: {server}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn console(&self, id: &str) -> String {
        let r = self
            .api
            .call(
                Method::POST,
                &format!("/compute/v2.1/servers/{id}/action"),
                Some(&self.admin),
                Some(json!({"os-getConsoleOutput": {"length": null}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["output"].as_str().unwrap().to_string()
    }

    /// Waits until the console shows `marker` at least `times` times.
    async fn wait_console(&self, id: &str, marker: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let output = self.console(id).await;
            if output.matches(marker).count() >= times {
                return output;
            }
            assert!(
                start.elapsed() < BOOT,
                "{marker:?} not {times} times on the console of {id}:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The last `YUNJI-RESOURCES` line the VM printed.
    async fn resources(&self, id: &str) -> String {
        let output = self.console(id).await;
        output
            .lines()
            .rev()
            .find(|l| l.contains("YUNJI-RESOURCES"))
            .unwrap_or_default()
            .to_string()
    }
}

impl Cloud {
    /// A request as admin that must answer `status`; its body.
    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let r = self.ctx.call(method, path, Some(&self.admin), body).await;
        assert_eq!(r.status, status, "{path}: {:?}", r.body);
        r.body
    }

    async fn delete_and_check_gone(&self, id: &str) {
        let r = self
            .ctx
            .call(
                Method::DELETE,
                &format!("/compute/v2.1/servers/{id}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
        let start = Instant::now();
        while self.nodes.iter().any(|n| n.vm_dir(id).exists()) {
            assert!(start.elapsed() < BOOT, "the VM directory of {id} stays");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(self.nodes.iter().all(|n| n.qemu_pid(id).is_none()));
    }
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_server_boots_runs_user_data_and_is_stopped_started_and_rebooted_for_real() {
    let cloud = cloud().await;
    let id = cloud
        .boot(
            "web-1",
            "e2e-small",
            Some("#!/bin/sh\necho \"user-data-says $((6 * 7))\"\n"),
        )
        .await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    let output = cloud
        .wait_console(&id, "YUNJI-USERDATA-END exit=0", 1)
        .await;
    assert!(
        output.contains(&format!("YUNJI-BOOT-OK hostname=web-1 uuid={id}")),
        "{output}"
    );
    assert!(output.contains("user-data-says 42"), "{output}");
    assert!(cloud.resources(&id).await.contains("cpus=1"));

    cloud.act(&id, json!({"os-stop": null})).await;
    cloud.wait_status(&id, "SHUTOFF", BOOT).await;
    assert_eq!(cloud.nodes[0].qemu_pid(&id), None);
    cloud.wait_console(&id, "YUNJI-POWER-BUTTON", 1).await;

    cloud.act(&id, json!({"os-start": null})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-BOOT-OK", 2).await;

    // Soft: the guest sees the power button, then boots again; hard: a reset.
    cloud.act(&id, json!({"reboot": {"type": "SOFT"}})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-BOOT-OK", 3).await;
    cloud.wait_console(&id, "YUNJI-POWER-BUTTON", 2).await;
    let pid = cloud.nodes[0].qemu_pid(&id).unwrap();
    cloud.act(&id, json!({"reboot": {"type": "HARD"}})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    let output = cloud.wait_console(&id, "YUNJI-BOOT-OK", 4).await;
    assert_eq!(
        output.matches("YUNJI-POWER-BUTTON").count(),
        2,
        "a reset presses no button"
    );
    assert_eq!(
        cloud.nodes[0].qemu_pid(&id),
        Some(pid),
        "a reset keeps the process"
    );

    cloud.delete_and_check_gone(&id).await;
    cloud.ctx.shutdown().await;
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_resize_shows_the_new_flavor_inside_the_vm_and_a_revert_restores_it() {
    let cloud = cloud().await;
    let id = cloud.boot("resized", "e2e-small", None).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-RESOURCES", 1).await;
    assert!(cloud.resources(&id).await.contains("cpus=1"));

    cloud
        .act(&id, json!({"resize": {"flavorRef": "e2e-large"}}))
        .await;
    cloud.wait_status(&id, "VERIFY_RESIZE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-RESOURCES", 2).await;
    let larger = cloud.resources(&id).await;
    assert!(larger.contains("cpus=2"), "{larger}");

    cloud.act(&id, json!({"revertResize": null})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-RESOURCES", 3).await;
    let reverted = cloud.resources(&id).await;
    assert!(reverted.contains("cpus=1"), "{reverted}");
    let mem = |line: &str| -> u64 {
        line.split("mem_kb=")
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(
        mem(&larger) > mem(&reverted) + 64 * 1024,
        "{larger} / {reverted}"
    );

    cloud
        .act(&id, json!({"resize": {"flavorRef": "e2e-large"}}))
        .await;
    cloud.wait_status(&id, "VERIFY_RESIZE", BOOT).await;
    cloud.act(&id, json!({"confirmResize": null})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-RESOURCES", 4).await;
    assert!(cloud.resources(&id).await.contains("cpus=2"));
    assert!(
        !cloud.nodes[0]
            .vm_dir(&id)
            .join("disk.pre-resize.qcow2")
            .exists()
    );

    cloud.delete_and_check_gone(&id).await;
    cloud.ctx.shutdown().await;
}

async fn node_url(ctx: &TestContext) -> String {
    ctx.scheduler.core.nodes().await.unwrap()[0].url.clone()
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn vms_outlive_a_killed_agent_and_a_vm_killed_by_hand_turns_shutoff() {
    let mut cloud = cloud().await;
    let id = cloud.boot("survivor", "e2e-small", None).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-TICK 2", 1).await;
    let pid = cloud.nodes[0].qemu_pid(&id).unwrap();

    let url = node_url(&cloud.ctx).await;
    cloud.nodes[0].sigkill().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cloud.nodes[0].qemu_pid(&id),
        Some(pid),
        "the VM outlives its agent"
    );
    cloud.nodes[0].spawn(&cloud.ctx);
    // The new agent listens on another port: wait until it has joined with it.
    cloud
        .ctx
        .eventually(
            Duration::from_secs(20),
            "the agent to join again",
            || async { node_url(&cloud.ctx).await != url },
        )
        .await;
    cloud.ctx.wait_nodes_up(1).await;
    // Re-adopted: the same process, counting on, never rebooted; and acted on again.
    let output = cloud.wait_console(&id, "YUNJI-TICK 8", 1).await;
    assert_eq!(output.matches("YUNJI-BOOT-OK").count(), 1, "{output}");
    assert_eq!(cloud.show(&id).await["status"], "ACTIVE");
    assert_eq!(cloud.nodes[0].qemu_pid(&id), Some(pid));

    // Killed behind the cloud's back: SHUTOFF within seconds.
    yunji_agent::vmm::qemu::kill_now(&cloud.nodes[0].vm_dir(&id));
    cloud
        .wait_status(&id, "SHUTOFF", Duration::from_secs(10))
        .await;
    cloud.act(&id, json!({"os-start": null})).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-BOOT-OK", 2).await;

    // Deleted while its agent is down: gone for the user at once, and removed from the
    // node by the first heartbeat that finds it still running once the agent is back.
    let pid = cloud.nodes[0].qemu_pid(&id).unwrap();
    cloud.nodes[0].sigkill().await;
    let path = format!("/compute/v2.1/servers/{id}");
    let r = cloud
        .ctx
        .call(Method::DELETE, &path, Some(&cloud.admin), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    cloud
        .ctx
        .eventually(Duration::from_secs(30), "the server to be gone", || async {
            let r = cloud.ctx.call(Method::GET, &path, Some(&cloud.admin), None);
            r.await.status == StatusCode::NOT_FOUND
        })
        .await;
    assert_eq!(
        cloud.nodes[0].qemu_pid(&id),
        Some(pid),
        "no agent ran to stop it"
    );
    cloud.nodes[0].spawn(&cloud.ctx);
    let start = Instant::now();
    while cloud.nodes[0].vm_dir(&id).exists() || cloud.nodes[0].qemu_pid(&id).is_some() {
        assert!(start.elapsed() < BOOT, "the deleted server's VM stays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cloud.ctx.shutdown().await;
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn an_image_the_node_refuses_fails_the_build_and_leaves_nothing_on_the_node() {
    let cloud = cloud().await;
    // An ISO (raw data, which Glance accepts): the node boots qcow2 and raw disks only,
    // so it refuses the image when the scheduler pushes it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("disk.raw");
    std::fs::write(&file, vec![0u8; 1 << 20]).unwrap();
    let image = upload_image(&cloud.ctx, &cloud.admin, "iso-labelled", "iso", &file).await;
    let r = cloud
        .ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&cloud.admin),
            Some(
                json!({"server": {"name": "refused", "flavorRef": "e2e-small", "imageRef": image}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["server"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&id, "ERROR", BOOT).await;
    assert!(!cloud.nodes[0].vm_dir(&id).exists());
    let images: Vec<_> = std::fs::read_dir(cloud.nodes[0].data_dir.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        images.iter().all(|name| !name.contains(".part")),
        "{images:?}"
    );
    cloud.ctx.shutdown().await;
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn create_image_copies_the_running_disk_and_a_second_server_boots_from_it() {
    let cloud = cloud().await;
    // The first server writes a mark on its disk (past the image's own 10 MB); the second
    // must read it from the same place of its disk.
    let id = cloud
        .boot(
            "source",
            "e2e-small",
            Some("#!/bin/sh\necho written-by-the-first-server | dd of=/dev/vda bs=1M seek=512 conv=fsync\n"),
        )
        .await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud
        .wait_console(&id, "YUNJI-USERDATA-END exit=0", 1)
        .await;
    let r = cloud
        .ctx
        .call(
            Method::POST,
            &format!("/compute/v2.1/servers/{id}/action"),
            Some(&cloud.admin),
            Some(json!({"createImage": {"name": "snap-of-source"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    // Before microversion 2.45 the new image is named by the Location header.
    let location = r.header("location").unwrap();
    let snapshot = location.rsplit('/').next().unwrap().to_string();
    let image = cloud
        .ctx
        .call(
            Method::GET,
            &format!("/image/v2/images/{snapshot}"),
            Some(&cloud.admin),
            None,
        )
        .await;
    assert_eq!(image.body["status"], "active", "{}", image.body);
    assert_eq!(image.body["disk_format"], "qcow2");
    assert_eq!(image.body["instance_uuid"], id.as_str());
    // Paused for the copy, then running on: the same boot.
    let output = cloud.wait_console(&id, "YUNJI-TICK", 1).await;
    assert_eq!(output.matches("YUNJI-BOOT-OK").count(), 1);
    assert!(
        std::fs::read_dir(cloud.nodes[0].data_dir.join("snapshots"))
            .unwrap()
            .next()
            .is_none(),
        "the node keeps no fetched snapshot"
    );

    let r = cloud
        .ctx
        .call(
            Method::POST,
            "/compute/v2.1/servers",
            Some(&cloud.admin),
            Some(json!({"server": {"name": "from-snapshot", "flavorRef": "e2e-small",
                "imageRef": snapshot,
                "user_data": base64::engine::general_purpose::STANDARD
                    .encode("#!/bin/sh\necho \"found: $(dd if=/dev/vda bs=1M skip=512 count=1 | head -n 1)\"\n")}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let second = r.body["server"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&second, "ACTIVE", BOOT).await;
    let output = cloud.wait_console(&second, "YUNJI-USERDATA-END", 1).await;
    assert!(output.contains(&format!("uuid={second}")), "{output}");
    assert!(
        output.contains("found: written-by-the-first-server"),
        "{output}"
    );
    cloud.delete_and_check_gone(&second).await;
    cloud.delete_and_check_gone(&id).await;
    cloud.ctx.shutdown().await;
}
