//! Real cloud disks: volumes hot-plugged into running VMs, read and written from inside,
//! grown live, attached read-only, and booted from. The guests watch their disks with
//! `DISK_WATCHER` and report on the console what they see.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{BOOT, Cloud, cloud, cloud_of_local_nodes};

/// User data that watches the VM's volumes (the disks with a serial, other than the
/// boot disk `vda`). For each volume that appears it prints
/// `YUNJI-DISK serial=S dev=D sectors=N ro=0|1`, then the text at its start
/// (`YUNJI-DISK-READ serial=S data=…`), then writes `written-by-<hostname>` there
/// (`YUNJI-DISK-WRITE serial=S exit=N`), and times writing and syncing 6 MiB after the
/// first MiB (`YUNJI-DISK-BULK serial=S seconds=T`). A change of size prints a new `YUNJI-DISK`
/// line; a volume that goes prints `YUNJI-DISK-GONE serial=S`.
const DISK_WATCHER: &str = r#"#!/bin/sh
(
seen=" "
while true; do
    now=" "
    for d in /sys/block/vd*; do
        n=${d##*/}
        [ "$n" = vda ] && continue
        s=$(cat "$d/serial" 2>/dev/null)
        [ -n "$s" ] || continue
        z=$(cat "$d/size")
        now="$now$s:$z "
        case "$seen" in *" $s:$z "*) continue ;; esac
        echo "YUNJI-DISK serial=$s dev=$n sectors=$z ro=$(cat "$d/ro")"
        case "$seen" in *" $s:"*) continue ;; esac
        data=$(head -c 40 "/dev/$n" | tr -dc 'a-zA-Z0-9-')
        echo "YUNJI-DISK-READ serial=$s data=$data"
        echo "written-by-$(hostname)" | dd of="/dev/$n" 2>/dev/null
        rc=$?
        sync
        echo "YUNJI-DISK-WRITE serial=$s exit=$rc"
        t0=$(cut -d' ' -f1 /proc/uptime)
        dd if=/dev/zero of="/dev/$n" bs=1M seek=1 count=6 2>/dev/null
        sync
        t1=$(cut -d' ' -f1 /proc/uptime)
        echo "YUNJI-DISK-BULK serial=$s seconds=$(echo "$t0 $t1" | awk '{print $2 - $1}')"
    done
    for k in $seen; do
        case "$now" in *" ${k%%:*}:"*) ;; *) echo "YUNJI-DISK-GONE serial=${k%%:*}" ;; esac
    done
    seen=$now
    sleep 0.5
done
) &
"#;

/// 1 GiB in 512-byte sectors.
const GIB_SECTORS: u64 = 2 * 1024 * 1024;

/// The serial a volume shows the guest: its id cut to 20 bytes, as Nova does.
fn serial(volume: &str) -> &str {
    &volume[..20]
}

impl Cloud {
    async fn volume_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> yunji_tests::Reply {
        // 3.42: an attached volume may be extended.
        self.ctx
            .call_at(
                Some("volume 3.42"),
                method,
                &format!("/volume/v3{path}"),
                Some(&self.admin),
                body,
            )
            .await
    }

    async fn volume_status(&self, id: &str) -> Value {
        let r = self
            .volume_call(Method::GET, &format!("/volumes/{id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["volume"].clone()
    }

    async fn wait_volume(&self, id: &str, status: &str) -> Value {
        let start = Instant::now();
        loop {
            let volume = self.volume_status(id).await;
            if volume["status"] == status {
                return volume;
            }
            assert!(volume["status"] != "error", "volume {id} failed: {volume}");
            assert!(
                start.elapsed() < BOOT,
                "volume {id} is not {status}: {volume}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn volume_create(&self, body: Value) -> String {
        let r = self
            .volume_call(Method::POST, "/volumes", Some(json!({ "volume": body })))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let id = r.body["volume"]["id"].as_str().unwrap().to_string();
        self.wait_volume(&id, "available").await;
        id
    }

    /// Attaches through Nova and waits for the volume to be in use.
    async fn attach(&self, server: &str, volume: &str) {
        self.attach_call(server, volume).await;
        self.wait_volume(volume, "in-use").await;
    }

    /// Asks Nova to attach; the volume is `attaching` when it answers.
    async fn attach_call(&self, server: &str, volume: &str) {
        let r = self
            .ctx
            .call(
                Method::POST,
                &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
                Some(&self.admin),
                Some(json!({"volumeAttachment": {"volumeId": volume}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }

    async fn detach(&self, server: &str, volume: &str) {
        let r = self
            .ctx
            .call(
                Method::DELETE,
                &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{volume}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        self.wait_volume(volume, "available").await;
    }

    async fn wait_snapshot(&self, id: &str) {
        let start = Instant::now();
        loop {
            let r = self
                .volume_call(Method::GET, &format!("/snapshots/{id}"), None)
                .await;
            let status = &r.body["snapshot"]["status"];
            if status == "available" {
                return;
            }
            assert!(status != "error", "snapshot {id} failed: {:?}", r.body);
            assert!(start.elapsed() < BOOT, "snapshot {id}: {:?}", r.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The console line starting with `prefix` for the volume, waiting for it.
    async fn disk_line(&self, server: &str, prefix: &str, volume: &str) -> String {
        let marker = format!("{prefix} serial={}", serial(volume));
        let output = self.wait_console(server, &marker, 1).await;
        output
            .lines()
            .rev()
            .find(|l| l.contains(&marker))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Boots a server that watches its disks; answers its id once the watcher runs.
    async fn boot_watching(&self, name: &str) -> String {
        let id = self.boot(name, "e2e-small", Some(DISK_WATCHER)).await;
        self.wait_status(&id, "ACTIVE", BOOT).await;
        self.wait_console(&id, "YUNJI-USERDATA-END exit=0", 1).await;
        id
    }
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_volume_is_hot_plugged_written_moved_to_another_vm_grown_live_and_attached_read_only() {
    let cloud = cloud().await;
    let first = cloud.boot_watching("disk-a").await;
    let second = cloud.boot_watching("disk-b").await;
    let volume = cloud
        .volume_create(json!({"size": 1, "name": "data"}))
        .await;

    // A failure on the node (here: the volume's file is gone) leaves no device in the
    // VM and the volume available again, not stuck attaching.
    let broken = cloud
        .volume_create(json!({"size": 1, "name": "broken"}))
        .await;
    let file = cloud.nodes[0]
        .data_dir
        .join(format!("volumes/{broken}.qcow2"));
    std::fs::remove_file(&file).unwrap();
    cloud.attach_call(&first, &broken).await;
    let left = cloud.wait_volume(&broken, "available").await;
    assert_eq!(left["attachments"], json!([]), "{left}");

    // A volume type's I/O limits hold in the VM: 6 MiB at 1 MiB/s take seconds.
    let r = cloud
        .volume_call(
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "slow",
                "extra_specs": {"disk:write_bytes_sec": "1048576"}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["volume_type"]["extra_specs"]["disk:write_bytes_sec"],
        "1048576"
    );
    let slow = cloud
        .volume_create(json!({"size": 1, "volume_type": "slow"}))
        .await;
    cloud.attach(&first, &slow).await;
    let bulk = cloud.disk_line(&first, "YUNJI-DISK-BULK", &slow).await;
    let seconds: f64 = bulk.rsplit('=').next().unwrap().parse().unwrap();
    assert!(seconds >= 4.0, "the write limit did not hold: {bulk}");
    cloud.detach(&first, &slow).await;

    // Hot-plugged: the running guest sees a new disk of 1 GiB, empty, and writes to it.
    let asked = Instant::now();
    cloud.attach(&first, &volume).await;
    let seen = cloud.disk_line(&first, "YUNJI-DISK", &volume).await;
    let attach_latency = asked.elapsed();
    assert!(
        seen.ends_with(&format!("sectors={GIB_SECTORS} ro=0")),
        "{seen}"
    );
    let read = cloud.disk_line(&first, "YUNJI-DISK-READ", &volume).await;
    assert!(read.ends_with("data="), "a new volume is empty: {read}");
    let wrote = cloud.disk_line(&first, "YUNJI-DISK-WRITE", &volume).await;
    assert!(wrote.ends_with("exit=0"), "{wrote}");
    // The default type (SATA) limits writes to 100 MB/s: 6 MiB go at once.
    let bulk = cloud.disk_line(&first, "YUNJI-DISK-BULK", &volume).await;
    let seconds: f64 = bulk.rsplit('=').next().unwrap().parse().unwrap();
    assert!(seconds < 3.0, "{bulk}");
    let shown = cloud.volume_status(&volume).await;
    assert_eq!(shown["attachments"][0]["server_id"], first.as_str());

    // An attached volume is not deleted.
    let r = cloud
        .volume_call(Method::DELETE, &format!("/volumes/{volume}"), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let message = r.body.to_string();
    assert!(
        message.contains("in-use") || message.contains("attached"),
        "{message}"
    );

    // Grown live: the running guest sees 2 GiB, without booting again.
    let r = cloud
        .volume_call(
            Method::POST,
            &format!("/volumes/{volume}/action"),
            Some(json!({"os-extend": {"new_size": 2}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let grown = format!("YUNJI-DISK serial={}", serial(&volume));
    let output = cloud.wait_console(&first, &grown, 2).await;
    assert!(
        output.contains(&format!("sectors={} ro=0", 2 * GIB_SECTORS)),
        "{output}"
    );
    assert_eq!(output.matches("YUNJI-BOOT-OK").count(), 1, "{output}");
    cloud.wait_volume(&volume, "in-use").await;
    assert_eq!(cloud.volume_status(&volume).await["size"], 2);

    // Detached: the guest released it; nothing of it stays in the VM.
    cloud.detach(&first, &volume).await;
    cloud.disk_line(&first, "YUNJI-DISK-GONE", &volume).await;

    // The second VM reads what the first wrote: nothing was lost on the way.
    cloud.attach(&second, &volume).await;
    let read = cloud.disk_line(&second, "YUNJI-DISK-READ", &volume).await;
    assert!(read.ends_with("data=written-by-disk-a"), "{read}");
    cloud.detach(&second, &volume).await;

    // Read-only (Cinder's os-attach with mode ro): the guest's write fails.
    let r = cloud
        .volume_call(
            Method::POST,
            &format!("/volumes/{volume}/action"),
            Some(json!({"os-attach": {"instance_uuid": first, "mode": "ro"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    cloud.wait_volume(&volume, "in-use").await;
    let output = cloud
        .wait_console(
            &first,
            &format!("YUNJI-DISK-WRITE serial={}", serial(&volume)),
            2,
        )
        .await;
    let last = output
        .lines()
        .rev()
        .find(|l| l.contains("YUNJI-DISK serial="))
        .unwrap();
    assert!(last.trim().ends_with("ro=1"), "{last}");
    let write = output
        .lines()
        .rev()
        .find(|l| l.contains("YUNJI-DISK-WRITE"))
        .unwrap();
    assert!(
        !write.trim().ends_with("exit=0"),
        "a read-only write succeeded: {write}"
    );
    println!(
        "volume attach latency (API call to the device seen in the VM): {:.2} s",
        attach_latency.as_secs_f64()
    );

    let output = cloud.console(&first).await;
    assert!(
        !output.contains(serial(&broken)),
        "a failed attach left a device:\n{output}"
    );

    // A snapshot of the attached volume (the VM paused for the copy), and a larger
    // volume made from it, attached to the second VM while it is stopped: the VM sees
    // it at its next start, with the data of the moment of the snapshot.
    let r = cloud
        .volume_call(
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": volume, "force": true, "name": "snap"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let snapshot = r.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_snapshot(&snapshot).await;
    let copy = cloud
        .volume_create(json!({"size": 3, "snapshot_id": snapshot}))
        .await;
    cloud.act(&second, json!({"os-stop": null})).await;
    cloud.wait_status(&second, "SHUTOFF", BOOT).await;
    cloud.attach(&second, &copy).await;
    cloud.act(&second, json!({"os-start": null})).await;
    cloud.wait_status(&second, "ACTIVE", BOOT).await;
    let seen = cloud.disk_line(&second, "YUNJI-DISK", &copy).await;
    assert!(
        seen.ends_with(&format!("sectors={} ro=0", 3 * GIB_SECTORS)),
        "{seen}"
    );
    let read = cloud.disk_line(&second, "YUNJI-DISK-READ", &copy).await;
    assert!(read.ends_with("data=written-by-disk-b"), "{read}");

    // Deleting the server releases the volume.
    cloud.delete_and_check_gone(&first).await;
    cloud.wait_volume(&volume, "available").await;
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_server_boots_from_a_volume_made_from_the_image_which_outlives_it() {
    let cloud = cloud().await;
    let body = json!({"server": {
        "name": "from-volume",
        "flavorRef": "e2e-small",
        "block_device_mapping_v2": [{
            "boot_index": 0,
            "uuid": cloud.image,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": 1,
            "delete_on_termination": false,
        }],
    }});
    let id = cloud.boot_as(&cloud.admin, body).await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    cloud.wait_console(&id, "YUNJI-BOOT-OK", 1).await;
    let server = cloud.show(&id).await;
    let attached = &server["os-extended-volumes:volumes_attached"];
    let volume = attached[0]["id"].as_str().unwrap().to_string();
    // No local root disk: the VM runs from the volume.
    let vm_dir = cloud.nodes[0].vm_dir(&id);
    assert!(!vm_dir.join("disk.qcow2").exists());

    cloud.delete_and_check_gone(&id).await;
    let left = cloud.wait_volume(&volume, "available").await;
    assert_eq!(left["bootable"], "true", "{left}");

    // What stayed is a whole system: a second server boots from the same volume.
    let body = json!({"server": {
        "name": "again",
        "flavorRef": "e2e-small",
        "block_device_mapping_v2": [{
            "boot_index": 0,
            "uuid": volume,
            "source_type": "volume",
            "destination_type": "volume",
            "delete_on_termination": true,
        }],
    }});
    let again = cloud.boot_as(&cloud.admin, body).await;
    cloud.wait_status(&again, "ACTIVE", BOOT).await;
    cloud.wait_console(&again, "YUNJI-BOOT-OK", 1).await;
    cloud.delete_and_check_gone(&again).await;
    // delete_on_termination: the volume went with the server.
    let start = Instant::now();
    loop {
        let r = cloud
            .volume_call(Method::GET, &format!("/volumes/{volume}"), None)
            .await;
        if r.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            start.elapsed() < BOOT,
            "volume {volume} stays: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the VM's console file (read on the node: the agent may be down) shows
/// `marker` `times` times; answers the console.
async fn console_file_shows(cloud: &Cloud, id: &str, marker: &str, times: usize) -> String {
    let file = cloud.nodes[0].vm_dir(id).join("console.log");
    let start = Instant::now();
    loop {
        let output = std::fs::read_to_string(&file).unwrap_or_default();
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

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_restarted_agent_puts_the_vms_disks_back_as_its_records_say() {
    use yunji_agent::vmm::VolumeDisk;
    use yunji_agent::vmm::qmp::Qmp;

    let mut cloud = cloud().await;
    let id = cloud.boot_watching("keeper").await;
    let kept = cloud.volume_create(json!({"size": 1})).await;
    let lost = cloud.volume_create(json!({"size": 1})).await;
    cloud.attach(&id, &kept).await;
    cloud.attach(&id, &lost).await;
    cloud.disk_line(&id, "YUNJI-DISK-WRITE", &lost).await;

    // While the agent is down, the VM loses a recorded volume and gains one nobody
    // recorded (as an attach or detach cut short would leave it).
    cloud.nodes[0].sigkill().await;
    let mut qmp = Qmp::connect(&cloud.nodes[0].vm_dir(&id).join("qmp.sock"))
        .await
        .unwrap();
    let lost_id: uuid::Uuid = lost.parse().unwrap();
    qmp.execute::<Value>(
        "device_del",
        Some(json!({"id": VolumeDisk::device_id(lost_id)})),
    )
    .await
    .unwrap();
    console_file_shows(
        &cloud,
        &id,
        &format!("YUNJI-DISK-GONE serial={}", serial(&lost)),
        1,
    )
    .await;
    let stray_id = uuid::Uuid::new_v4();
    let stray_file = cloud.ctx.dir.path().join("stray.qcow2");
    let args = ["create", "-q", "-f", "qcow2"];
    yunji_common::execute::execute(
        "qemu-img",
        args.iter()
            .map(std::ffi::OsStr::new)
            .chain([stray_file.as_os_str(), "1G".as_ref()]),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let node = VolumeDisk::node_name(stray_id);
    qmp.execute::<Value>(
        "blockdev-add",
        Some(json!({"driver": "qcow2", "node-name": node,
            "file": {"driver": "file", "filename": stray_file}})),
    )
    .await
    .unwrap();
    qmp.execute::<Value>(
        "device_add",
        Some(json!({"driver": "virtio-blk-pci", "drive": node,
            "id": VolumeDisk::device_id(stray_id), "serial": &stray_id.to_string()[..20]})),
    )
    .await
    .unwrap();
    let stray = stray_id.to_string();
    console_file_shows(
        &cloud,
        &id,
        &format!("YUNJI-DISK serial={}", serial(&stray)),
        1,
    )
    .await;
    drop(qmp);

    // Restarted, the agent re-adopts the VM and makes its disks what the record says.
    cloud.nodes[0].spawn(&cloud.ctx);
    let plugged = format!("YUNJI-DISK serial={}", serial(&lost));
    console_file_shows(&cloud, &id, &plugged, 2).await;
    let output = console_file_shows(
        &cloud,
        &id,
        &format!("YUNJI-DISK-GONE serial={}", serial(&stray)),
        1,
    )
    .await;
    assert!(
        !output.contains(&format!("YUNJI-DISK-GONE serial={}", serial(&kept))),
        "{output}"
    );
    assert_eq!(output.matches("YUNJI-BOOT-OK").count(), 1, "{output}");
    cloud.delete_and_check_gone(&id).await;
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_vm_live_migrates_with_its_volume_which_keeps_what_the_guest_wrote() {
    let cloud = cloud_of_local_nodes(2).await;
    // The server is placed on its volume's node, and writes its mark on it there.
    let volume = cloud.volume_create(json!({"size": 1})).await;
    let mut server = cloud.server("mover", "e2e-small", Some(DISK_WATCHER));
    server["block_device_mapping_v2"] = json!([{"source_type": "volume", "uuid": volume,
        "destination_type": "volume", "delete_on_termination": false}]);
    let id = cloud
        .boot_as(&cloud.admin, json!({ "server": server }))
        .await;
    cloud.wait_status(&id, "ACTIVE", BOOT).await;
    let write = cloud.disk_line(&id, "YUNJI-DISK-WRITE", &volume).await;
    assert!(write.ends_with("exit=0"), "{write}");
    cloud.wait_console(&id, "YUNJI-TICK 3", 1).await;

    let source = Cloud::host_of(&cloud.show(&id).await);
    let started = Instant::now();
    let target = cloud.migrate_to_the_other_node(&id).await;
    println!(
        "live migration with a 1 GiB volume attached took {:?}",
        started.elapsed()
    );
    let node = |name: &str| &cloud.nodes[if name == "node-1" { 0 } else { 1 }];
    let file = |name: &str| {
        node(name)
            .data_dir
            .join("volumes")
            .join(format!("{volume}.qcow2"))
    };
    assert!(file(&target).exists(), "the volume is on {target}");
    assert!(!file(&source).exists(), "the source's copy is gone");
    let v = cloud.volume_status(&volume).await;
    assert!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with(&target),
        "{v}"
    );
    // The guest ran on, and the volume is still its disk: unplugged and plugged again,
    // it reads back the mark it wrote on the other node.
    // (The console is the target's: it starts with the migration.)
    let console = cloud.wait_console(&id, "YUNJI-TICK", 2).await;
    assert!(
        !console.contains("YUNJI-BOOT-OK"),
        "booted again:\n{console}"
    );
    cloud.detach(&id, &volume).await;
    cloud
        .wait_console(
            &id,
            &format!("YUNJI-DISK-GONE serial={}", serial(&volume)),
            1,
        )
        .await;
    cloud.attach(&id, &volume).await;
    let read = cloud.disk_line(&id, "YUNJI-DISK-READ", &volume).await;
    assert!(read.ends_with("data=written-by-mover"), "{read}");

    cloud.delete_and_check_gone(&id).await;
    cloud.wait_volume(&volume, "available").await;
    let r = cloud
        .volume_call(Method::DELETE, &format!("/volumes/{volume}"), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}

#[tokio::test]
#[ignore = "needs root and QEMU (tests/run.sh runs it)"]
async fn a_multiattach_volume_is_written_by_one_vm_and_read_by_another_while_both_have_it() {
    let cloud = cloud().await;
    let a = cloud.boot_watching("sharer-a").await;
    let b = cloud.boot_watching("sharer-b").await;
    let volume = cloud
        .volume_create(json!({"size": 1, "multiattach": true}))
        .await;
    cloud.attach(&a, &volume).await;
    let write = cloud.disk_line(&a, "YUNJI-DISK-WRITE", &volume).await;
    assert!(write.ends_with("exit=0"), "{write}");
    // b attaches it while a has it, reads a's mark and writes its own.
    cloud.attach_call(&b, &volume).await;
    let read = cloud.disk_line(&b, "YUNJI-DISK-READ", &volume).await;
    assert!(read.ends_with("data=written-by-sharer-a"), "{read}");
    let write = cloud.disk_line(&b, "YUNJI-DISK-WRITE", &volume).await;
    assert!(write.ends_with("exit=0"), "{write}");
    let shared = cloud.volume_status(&volume).await;
    assert_eq!(
        shared["attachments"].as_array().unwrap().len(),
        2,
        "{shared}"
    );

    // Detached from a, it stays b's; detached from b too, it is available again.
    for (server, left) in [(&a, 1), (&b, 0)] {
        let r = cloud
            .ctx
            .call(
                Method::DELETE,
                &format!("/compute/v2.1/servers/{server}/os-volume_attachments/{volume}"),
                Some(&cloud.admin),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let start = Instant::now();
        loop {
            let v = cloud.volume_status(&volume).await;
            let status = if left == 0 { "available" } else { "in-use" };
            if v["status"] == status && v["attachments"].as_array().unwrap().len() == left {
                break;
            }
            assert!(start.elapsed() < BOOT, "not detached from {server}: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        cloud
            .wait_console(
                server,
                &format!("YUNJI-DISK-GONE serial={}", serial(&volume)),
                1,
            )
            .await;
    }
    for id in [&a, &b] {
        cloud.delete_and_check_gone(id).await;
    }
    let r = cloud
        .volume_call(Method::DELETE, &format!("/volumes/{volume}"), None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
}
