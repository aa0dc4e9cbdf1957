//! Boot benchmark (issue 5): in one run, the test image booted by a bare
//! `qemu-system-x86_64` command and through `POST /servers` on a real yunji (scheduler
//! and its local agent as processes, `--driver auto` choosing QEMU), each timed to the
//! VM's first user-space console marker (`YUNJI-BOOT-OK`); then the agent's and the
//! scheduler's resident memory with 10 running VMs. Needs root and QEMU, and the built
//! binaries (`cargo build --release --bins`, or debug with YUNJI_BIN_DIR):
//!
//!     cargo bench -p yunji-tests --bench boot
//!
//! It lives in the tests crate (not the scheduler's benches) because it drives the
//! agent's config drive code and both binaries, as the end-to-end tests do.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Yunji, agent_pid, median, rss_kib, test_image};
use serde_json::json;
use yunji_common::execute::execute;

const ROUNDS: usize = 3;
const VMS_FOR_MEMORY: usize = 10;
const MARKER: &str = "YUNJI-BOOT-OK";

/// Waits until `file` contains the marker; the time since `start`.
async fn until_marker(file: &Path, start: Instant) -> Duration {
    loop {
        if std::fs::read_to_string(file).is_ok_and(|s| s.contains(MARKER)) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no {MARKER} in {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bare command: the same machine yunji starts (disk overlay, config drive, TCG).
async fn bare_boot(image: &Path, dir: &Path, round: usize) -> Duration {
    let overlay = dir.join(format!("bare-{round}.qcow2"));
    let drive = dir.join(format!("bare-{round}.img"));
    let console = dir.join(format!("bare-{round}.log"));
    let spec = yunji_common::agent_api::ServerSpec {
        id: uuid::Uuid::new_v4(),
        name: "bare".into(),
        hostname: "bare".into(),
        project_id: "bench".into(),
        flavor: yunji_common::agent_api::FlavorSpec {
            vcpus: 1,
            memory_mb: 128,
            disk_gb: 1,
        },
        image: None,
        user_data: None,
        metadata: Default::default(),
        public_key: None,
        nics: Vec::new(),
        volumes: Vec::new(),
    };
    yunji_agent::vmm::config_drive::build(&spec, &drive)
        .await
        .unwrap();
    let args = ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"].map(std::ffi::OsStr::new);
    let paths = [image.as_os_str(), overlay.as_os_str(), "1G".as_ref()];
    execute(
        "qemu-img",
        args.iter().chain(&paths),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let start = Instant::now();
    let mut qemu = tokio::process::Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "pc,accel=tcg",
            "-cpu",
            "max",
            "-m",
            "128",
            "-smp",
            "1",
        ])
        .args(["-nodefaults", "-display", "none", "-serial"])
        .arg(format!("file:{}", console.display()))
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=qcow2", overlay.display()))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,readonly=on",
            drive.display()
        ))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let took = until_marker(&console, start).await;
    qemu.kill().await.unwrap();
    took
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let image_file = test_image().await;
    let yunji = Yunji::start(dir.path()).await;
    let image = yunji.prepare(&image_file).await;
    // A first server puts the image on the node; what follows is the steady state.
    let warm = yunji.server_create("warm-up", &image).await;
    yunji.wait_active(&warm).await;
    // Room for every server of the run (deleted ones count until they are gone).
    let project = yunji
        .call(
            reqwest::Method::GET,
            &format!("/compute/v2.1/servers/{warm}"),
            None,
        )
        .await["server"]["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    yunji
        .call(
            reqwest::Method::PUT,
            &format!("/compute/v2.1/os-quota-sets/{project}"),
            Some(json!({"quota_set": {"instances": 100, "cores": 100, "ram": 1_000_000}})),
        )
        .await;
    yunji
        .call(
            reqwest::Method::DELETE,
            &format!("/compute/v2.1/servers/{warm}"),
            None,
        )
        .await;

    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        bare.push(bare_boot(&image_file, dir.path(), round).await);
        let start = Instant::now();
        let id = yunji.server_create(&format!("bench-{round}"), &image).await;
        ours.push(until_marker(&yunji.console_file(&id), start).await);
        yunji.wait_active(&id).await;
        yunji
            .call(
                reqwest::Method::DELETE,
                &format!("/compute/v2.1/servers/{id}"),
                None,
            )
            .await;
    }
    let (bare, ours) = (median(bare), median(ours));
    println!("boot to {MARKER}, median of {ROUNDS}:");
    println!("  bare qemu-system-x86_64: {:.2} s", bare.as_secs_f64());
    println!("  POST /servers:           {:.2} s", ours.as_secs_f64());
    println!(
        "  ratio:                   {:.3}x (target <= 1.1x)",
        ours.as_secs_f64() / bare.as_secs_f64()
    );

    let mut ids = Vec::new();
    for i in 0..VMS_FOR_MEMORY {
        ids.push(yunji.server_create(&format!("mem-{i}"), &image).await);
    }
    for id in &ids {
        yunji.wait_active(id).await;
    }
    // A few heartbeats with every VM running.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let scheduler = rss_kib(yunji.scheduler.id().unwrap());
    let agent = rss_kib(agent_pid(&yunji.data_dir).unwrap());
    println!("resident memory with {VMS_FOR_MEMORY} running VMs:");
    println!(
        "  scheduler {:.1} MiB, agent {:.1} MiB, together {:.1} MiB (target < 64 MiB)",
        scheduler as f64 / 1024.0,
        agent as f64 / 1024.0,
        (scheduler + agent) as f64 / 1024.0
    );
    for id in &ids {
        yunji
            .call(
                reqwest::Method::DELETE,
                &format!("/compute/v2.1/servers/{id}"),
                None,
            )
            .await;
    }
}
