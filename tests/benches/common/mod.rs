//! What the benchmarks that drive a real yunji share: a scheduler process with its
//! local agent on the QEMU driver (`--driver auto`), the test image, and API calls.

// Each benchmark binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use yunji_common::execute::execute;

pub fn bin_dir() -> PathBuf {
    std::env::var_os("YUNJI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"))
}

pub async fn test_image() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("image/build.sh");
    let out = execute("bash", [script], Duration::from_secs(600))
        .await
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub struct Yunji {
    pub scheduler: tokio::process::Child,
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
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
pub fn agent_pid(data_dir: &Path) -> Option<u32> {
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

/// The middle of the figures.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

impl Yunji {
    pub async fn start(dir: &Path) -> Yunji {
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

    /// Makes the `bench` flavor, uploads the test image from `image_file` and waits
    /// for the local agent; answers the image id.
    pub async fn prepare(&self, image_file: &Path) -> String {
        self.call(
            reqwest::Method::POST,
            "/compute/v2.1/flavors",
            Some(json!({"flavor": {
                "name": "bench", "id": "bench", "vcpus": 1, "ram": 128, "disk": 1}})),
        )
        .await;
        let image = self
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
        let r = self
            .http
            .put(format!("{}/image/v2/images/{image}/file", self.url))
            .header("X-Auth-Token", &self.token)
            .header("Content-Type", "application/octet-stream")
            .body(std::fs::read(image_file).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        // The local agent has joined when its hypervisor is up.
        let start = Instant::now();
        while !self
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
        image
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    pub async fn server_create(&self, name: &str, image: &str) -> String {
        self.server_create_with(name, image, "#!/bin/sh\ntrue\n")
            .await
    }

    /// A server of the `bench` flavor running the `user_data` script.
    pub async fn server_create_with(&self, name: &str, image: &str, user_data: &str) -> String {
        let user_data = base64::engine::general_purpose::STANDARD.encode(user_data);
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

    pub fn console_file(&self, id: &str) -> PathBuf {
        self.data_dir
            .join("agents/node-1/vms")
            .join(id)
            .join("console.log")
    }

    pub async fn wait_active(&self, id: &str) {
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
