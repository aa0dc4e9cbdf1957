//! `yunji conformance` against a cloud of real VMs: two QEMU nodes on the rig with the
//! real network driver, the test server booting the project's test image, so every
//! clause that touches a VM (boot, stop, start, reboot, resize, live migration,
//! createImage, volume hot-plug, live extend, floating and public IPs, load-balancer
//! nodes) runs on a real guest and a real datapath.

use std::path::{Path, PathBuf};

use super::*;

fn cli_binary() -> PathBuf {
    let dir = std::env::var_os("YUNJI_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let binary = dir.join("yunji");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --bins` first",
        binary.display()
    );
    binary
}

#[tokio::test]
#[ignore = "needs root, QEMU and the built binaries"]
async fn every_clause_passes_on_real_vms() {
    // On the rig: each node's taps, bridges and routers stay in its own namespace, and
    // the checker (spawned from this thread) reaches the scheduler in the underlay's.
    let cloud = cloud_on_rig(2).await;
    let clouds_yaml = cloud.ctx.dir.path().join("clouds.yaml");
    std::fs::write(
        &clouds_yaml,
        format!(
            "clouds:\n  e2e:\n    auth:\n      auth_url: {}/identity/v3\n      username: admin\n      password: {}\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n",
            cloud.ctx.url,
            yunji_tests::ADMIN_PASSWORD
        ),
    )
    .unwrap();
    let report = cloud.ctx.dir.path().join("report.json");
    let run = tokio::process::Command::new(cli_binary())
        .env("OS_CLIENT_CONFIG_FILE", &clouds_yaml)
        .args([
            "--os-cloud",
            "e2e",
            "conformance",
            "--image",
            "yunji-test",
            "--timeout",
            "180",
            "--json",
        ])
        .arg(&report)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let summary = String::from_utf8_lossy(&run.stdout);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let failing: Vec<String> = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| format!("{} {}: {}", c["id"], c["status"], c["evidence"]))
        .collect();
    assert!(failing.is_empty(), "{}\n{summary}", failing.join("\n"));
    assert_eq!(run.status.code(), Some(0), "{summary}");
    // The run left no VM behind on either node.
    for node in &cloud.nodes {
        let vms = std::fs::read_dir(node.data_dir.join("vms"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(vms, 0, "{} still has VM directories", node.name);
    }
}
