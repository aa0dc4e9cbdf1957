//! Volume benchmark (issue 7), on a real yunji (scheduler and its local agent as
//! processes, `--driver auto` choosing QEMU):
//!
//! - attach latency: from the Nova attach call to the new disk seen inside the VM (the
//!   guest polls `/sys/block` every 0.1 s and prints it on the console);
//! - sequential write throughput inside the VM to an attached volume (`dd` then `sync`),
//!   against the same amount written and fsynced from the node into a file beside the
//!   volume files. The ratio's point is to catch a misconfigured cache or I/O path; under
//!   TCG the guest's own CPU cost is part of it.
//!
//! Needs root, QEMU and the built binaries (`cargo build --release --bins`, or debug
//! with YUNJI_BIN_DIR):
//!
//!     cargo bench -p yunji-tests --bench volumes

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Yunji, median, test_image};
use serde_json::json;

const ROUNDS: usize = 5;
const WRITE_MIB: u64 = 64;

/// Prints every volume (a disk with a serial) that appears or goes; the first one it
/// sees gets `WRITE_MIB` MiB written and flushed, timed by the guest's uptime.
fn watcher() -> String {
    format!(
        r#"#!/bin/sh
(
seen=" "
while true; do
    now=" "
    for d in /sys/block/vd*; do
        n=${{d##*/}}
        s=$(cat "$d/serial" 2>/dev/null)
        [ -n "$s" ] || continue
        now="$now$s "
        case "$seen" in *" $s "*) continue ;; esac
        echo "YUNJI-DISK serial=$s"
        if [ ! -e /tmp/written ]; then
            touch /tmp/written
            t0=$(cut -d' ' -f1 /proc/uptime)
            dd if=/dev/zero of="/dev/$n" bs=1M count={WRITE_MIB} 2>/dev/null
            sync
            t1=$(cut -d' ' -f1 /proc/uptime)
            echo "YUNJI-WRITE start=$t0 end=$t1"
        fi
    done
    for k in $seen; do
        case "$now" in *" $k "*) ;; *) echo "YUNJI-DISK-GONE serial=$k" ;; esac
    done
    seen=$now
    sleep 0.1
done
) &
"#
    )
}

/// Waits until the console shows `marker` `times` times; the time since `start`.
async fn until(
    yunji: &Yunji,
    server: &str,
    marker: &str,
    times: usize,
    start: Instant,
) -> Duration {
    loop {
        let console = std::fs::read_to_string(yunji.console_file(server)).unwrap_or_default();
        if console.matches(marker).count() >= times {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no {marker} ×{times} on the console of {server}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn volume_status(yunji: &Yunji, id: &str) -> String {
    let r = yunji
        .call(
            reqwest::Method::GET,
            &format!("/volume/v3/volumes/{id}"),
            None,
        )
        .await;
    r["volume"]["status"].as_str().unwrap().to_string()
}

async fn wait_volume(yunji: &Yunji, id: &str, status: &str) {
    let start = Instant::now();
    while volume_status(yunji, id).await != status {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "volume {id} is not {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// MiB/s of writing `WRITE_MIB` MiB of zeros into a new file in `dir` and fsyncing it.
fn node_write(dir: &std::path::Path) -> f64 {
    let path = dir.join("bench-write.tmp");
    let block = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut file = std::fs::File::create(&path).unwrap();
    for _ in 0..WRITE_MIB {
        file.write_all(&block).unwrap();
    }
    file.sync_all().unwrap();
    let took = start.elapsed();
    std::fs::remove_file(&path).unwrap();
    WRITE_MIB as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let image_file = test_image().await;
    let yunji = Yunji::start(dir.path()).await;
    let image = yunji.prepare(&image_file).await;
    let server = yunji.server_create_with("disks", &image, &watcher()).await;
    yunji.wait_active(&server).await;
    until(&yunji, &server, "YUNJI-USERDATA-END", 1, Instant::now()).await;
    let volume = yunji
        .call(
            reqwest::Method::POST,
            "/volume/v3/volumes",
            Some(json!({"volume": {"size": 1, "name": "bench"}})),
        )
        .await["volume"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_volume(&yunji, &volume, "available").await;
    let serial = format!("serial={}", &volume[..20]);

    let mut latencies = Vec::new();
    for round in 1..=ROUNDS {
        let start = Instant::now();
        yunji
            .call(
                reqwest::Method::POST,
                &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
                Some(json!({"volumeAttachment": {"volumeId": volume}})),
            )
            .await;
        latencies.push(
            until(
                &yunji,
                &server,
                &format!("YUNJI-DISK {serial}"),
                round,
                start,
            )
            .await,
        );
        if round == 1 {
            until(&yunji, &server, "YUNJI-WRITE", 1, start).await;
        }
        wait_volume(&yunji, &volume, "in-use").await;
        yunji
            .call(
                reqwest::Method::DELETE,
                &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{volume}"),
                None,
            )
            .await;
        until(
            &yunji,
            &server,
            &format!("YUNJI-DISK-GONE {serial}"),
            round,
            Instant::now(),
        )
        .await;
        wait_volume(&yunji, &volume, "available").await;
    }

    let console = std::fs::read_to_string(yunji.console_file(&server)).unwrap();
    let line = console.lines().find(|l| l.contains("YUNJI-WRITE")).unwrap();
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    let guest = WRITE_MIB as f64 / (field("end=") - field("start=")).max(0.01);
    let volumes_dir = yunji.data_dir.join("agents/node-1/volumes");
    let node = tokio::task::spawn_blocking(move || node_write(&volumes_dir))
        .await
        .unwrap();

    println!("volumes ({ROUNDS} attach rounds, {WRITE_MIB} MiB sequential write, TCG):");
    println!(
        "  attach latency (API call → disk seen in the VM): median {:.2} s, max {:.2} s",
        median(latencies.clone()).as_secs_f64(),
        latencies.iter().max().unwrap().as_secs_f64()
    );
    println!("  write inside the VM to the volume: {guest:.1} MiB/s");
    println!("  write from the node beside the volume file: {node:.1} MiB/s");
    println!("  ratio VM / node: {:.2}", guest / node);
}
