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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use yunji_common::execute::execute;

const ROUNDS: usize = 3;
const VMS_FOR_MEMORY: usize = 10;
const MARKER: &str = "YUNJI-BOOT-OK";

fn bin_dir() -> PathBuf {
    std::env::var_os("YUNJI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

async fn test_image() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("image/build.sh");
    let out = execute("bash", [script], Duration::from_secs(600))
        .await
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

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

struct Yunji {
    scheduler: tokio::process::Child,
    url: String,
    token: String,
    http: reqwest::Client,
    data_dir: PathBuf,
}

impl Drop for Yunji {
    fn drop(&mut self) {
        let _ = self.scheduler.start_kill();
        let vms = self.data_dir.join("agents/node-1/vms");
        for vm in std::fs::read_dir(vms).into_iter().flatten().flatten() {
            yunji_agent::vmm::qemu::kill_now(&vm.path());
        }
        if let Some(agent) =
            agent_pid(&self.data_dir).and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(agent, rustix::process::Signal::KILL);
        }
    }
}

/// The local agent the scheduler started (found by its data directory).
fn agent_pid(data_dir: &Path) -> Option<u32> {
    let needle = data_dir
        .join("agents/node-1")
        .to_string_lossy()
        .into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains("yunji-agent") && cmdline.contains(&needle)).then_some(pid)
        })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

impl Yunji {
    async fn start(dir: &Path) -> Yunji {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = dir.join("yunji");
        let scheduler = tokio::process::Command::new(bin_dir().join("yunji-scheduler"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--plain-http"])
            .args(["--local-agents", "1", "--driver", "auto"])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("YUNJI_ADMIN_PASSWORD", "bench-secret")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "bench-secret"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let start = Instant::now();
        let token = loop {
            if let Ok(r) = http
                .post(format!("{url}/identity/v3/auth/tokens"))
                .json(&auth)
                .send()
                .await
                && r.status() == 201
            {
                break r.headers()["x-subject-token"].to_str().unwrap().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the scheduler did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Yunji {
            scheduler,
            url,
            token,
            http,
            data_dir,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn server_create(&self, name: &str, image: &str) -> String {
        let user_data = base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\ntrue\n");
        let r = self
            .call(
                reqwest::Method::POST,
                "/compute/v2.1/servers",
                Some(json!({"server": {
                "name": name, "flavorRef": "bench", "imageRef": image, "user_data": user_data}})),
            )
            .await;
        r["server"]["id"].as_str().unwrap().to_string()
    }

    fn console_file(&self, id: &str) -> PathBuf {
        self.data_dir
            .join("agents/node-1/vms")
            .join(id)
            .join("console.log")
    }

    async fn wait_active(&self, id: &str) {
        let start = Instant::now();
        loop {
            let s = self
                .call(
                    reqwest::Method::GET,
                    &format!("/compute/v2.1/servers/{id}"),
                    None,
                )
                .await;
            if s["server"]["status"] == "ACTIVE" {
                return;
            }
            assert!(s["server"]["status"] != "ERROR", "{s}");
            assert!(start.elapsed() < Duration::from_secs(300), "{s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let image_file = test_image().await;
    let yunji = Yunji::start(dir.path()).await;
    yunji
        .call(
            reqwest::Method::POST,
            "/compute/v2.1/flavors",
            Some(json!({"flavor": {
            "name": "bench", "id": "bench", "vcpus": 1, "ram": 128, "disk": 1}})),
        )
        .await;
    let image = yunji
        .call(
            reqwest::Method::POST,
            "/image/v2/images",
            Some(json!({"name": "yunji-test",
            "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = yunji
        .http
        .put(format!("{}/image/v2/images/{image}/file", yunji.url))
        .header("X-Auth-Token", &yunji.token)
        .header("Content-Type", "application/octet-stream")
        .body(std::fs::read(&image_file).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The local agent has joined when its hypervisor is up.
    let start = Instant::now();
    while !yunji
        .call(
            reqwest::Method::GET,
            "/compute/v2.1/os-hypervisors/detail",
            None,
        )
        .await["hypervisors"]
        .as_array()
        .is_some_and(|h| h.iter().any(|h| h["state"] == "up"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the local agent did not join"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
