//! The QEMU driver: each VM is a `qemu-system-x86_64` started with `-daemonize` (so it
//! outlives the agent), its pidfile, QMP socket and serial console log in the VM's
//! directory. Power state comes from the process and QMP's `query-status`, never from
//! what the agent last asked for. KVM when `kvm_intel` or `kvm_amd` is loaded, else TCG.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use yunji_common::agent_api::{IoLimits, PowerState, VmmDriver};
use yunji_common::execute::execute;

use super::qmp::{Qmp, QmpError, RunState};
use super::{VmConfig, Vmm, VmmError, VolumeDisk};

/// Longest QEMU may take to daemonize (it has opened its files and sockets by then).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long observing a VM waits for its monitor.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

pub const QEMU_BINARY: &str = "qemu-system-x86_64";

#[derive(Debug, Clone)]
pub struct Qemu {
    binary: String,
    /// `kvm` or `tcg`.
    accel: &'static str,
    /// Where incoming live migrations listen: the node's address other nodes reach.
    migration_ip: IpAddr,
}

/// Longest a live migration may take before it is cancelled (the VM keeps running on
/// its source).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a detach repeats its unplug request while the guest has not released the disk.
const UNPLUG_REPEAT: Duration = Duration::from_secs(3);

impl Qemu {
    pub fn new(binary: String, migration_ip: IpAddr) -> Qemu {
        let kvm = ["/sys/module/kvm_intel", "/sys/module/kvm_amd"]
            .iter()
            .any(|m| Path::new(m).exists())
            && Path::new("/dev/kvm").exists();
        let accel = if kvm { "kvm" } else { "tcg" };
        tracing::info!(%binary, accel, "QEMU driver");
        Qemu {
            binary,
            accel,
            migration_ip,
        }
    }
}

impl Qemu {
    /// Starts QEMU for `vm`, daemonized; `extra` arguments last (`-incoming`).
    async fn start(&self, vm: &VmConfig, extra: &[String]) -> Result<(), VmmError> {
        let dir = &vm.dir;
        // Files of a previous run would mislead the observers.
        let _ = tokio::fs::remove_file(qmp_path(dir)).await;
        let _ = tokio::fs::remove_file(pid_path(dir)).await;
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("guest={},debug-threads=on", vm.id),
            "-machine".into(),
            format!("pc,accel={}", self.accel),
            "-cpu".into(),
            if self.accel == "kvm" { "host" } else { "max" }.into(),
            "-m".into(),
            vm.memory_mb.to_string(),
            "-smp".into(),
            vm.vcpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-daemonize".into(),
            "-pidfile".into(),
            path(&pid_path(dir)),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", path(&qmp_path(dir))),
            "-chardev".into(),
            format!(
                "file,id=console,path={},append=on",
                path(&self.console_path(dir))
            ),
            "-serial".into(),
            "chardev:console".into(),
        ];
        // The guest's first disk is the one it boots from: the root disk, or else the
        // boot volume (which `VmHost` puts first). It alone gets a boot index: SeaBIOS
        // boots the first hard disk it lists, and would list a data volume first.
        if let Some(root) = &vm.root_disk {
            args.extend([
                "-drive".into(),
                format!(
                    "file={},if=none,id=root,format=qcow2,discard=unmap",
                    path(root)
                ),
                "-device".into(),
                "virtio-blk-pci,drive=root,bootindex=0".into(),
            ]);
        }
        for (index, disk) in vm.volumes.iter().enumerate() {
            let mut device = device_args(disk);
            if vm.root_disk.is_none() && index == 0 {
                device.push_str(",bootindex=0");
            }
            args.extend([
                "-blockdev".into(),
                blockdev(disk).to_string(),
                "-device".into(),
                device,
            ]);
        }
        args.extend([
            "-drive".into(),
            format!(
                "file={},if=virtio,format=raw,readonly=on",
                path(&vm.config_drive)
            ),
        ]);
        // QEMU makes each tap (by name) before it daemonizes, so the network driver can
        // attach it as soon as boot returns; the tap goes when QEMU does.
        for (index, nic) in vm.nics.iter().enumerate() {
            args.extend([
                "-netdev".into(),
                format!(
                    "tap,id=nic{index},ifname={},script=no,downscript=no",
                    crate::net::tap_name(&nic.port_id)
                ),
                "-device".into(),
                format!("virtio-net-pci,netdev=nic{index},mac={}", nic.mac),
            ]);
        }
        args.extend_from_slice(extra);
        execute(&self.binary, &args, START_TIMEOUT)
            .await
            .map_err(|e| VmmError::Failed(e.to_string()))?;
        tracing::info!(id = %vm.id, pid = ?running_pid(dir), "QEMU started");
        Ok(())
    }
}

/// The `blockdev-add` arguments (also `-blockdev`'s JSON) of a volume.
fn blockdev(disk: &VolumeDisk) -> serde_json::Value {
    serde_json::json!({
        "driver": disk.format,
        "node-name": VolumeDisk::node_name(disk.volume_id),
        "read-only": disk.read_only,
        "discard": "unmap",
        "file": {
            "driver": if disk.block_device { "host_device" } else { "file" },
            "filename": disk.path,
        },
    })
}

/// The guest device of a volume: virtio-blk with the volume's serial.
fn device_args(disk: &VolumeDisk) -> String {
    format!(
        "virtio-blk-pci,drive={},id={},serial={}",
        VolumeDisk::node_name(disk.volume_id),
        VolumeDisk::device_id(disk.volume_id),
        disk.serial()
    )
}

fn qmp_path(dir: &Path) -> PathBuf {
    dir.join("qmp.sock")
}

fn pid_path(dir: &Path) -> PathBuf {
    dir.join("qemu.pid")
}

/// The pid of the VM's QEMU, when one runs: the pidfile's process, checked to be a QEMU
/// of this VM (a pid can be reused once QEMU is gone).
pub fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let ours = qmp_path(dir).to_string_lossy().into_owned();
    let cmdline = String::from_utf8_lossy(&cmdline);
    // A zombie has an empty command line: it is not running.
    cmdline.contains(&ours).then_some(pid)
}

/// SIGKILLs the VM's QEMU, if one runs, without waiting: for guards that clean up
/// after a failed test, where nothing async can run.
pub fn kill_now(dir: &Path) {
    if let Some(pid) = running_pid(dir).and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

fn qmp_failed(e: QmpError) -> VmmError {
    VmmError::Failed(format!("QEMU monitor: {e}"))
}

async fn monitor(dir: &Path) -> Result<Qmp, VmmError> {
    if running_pid(dir).is_none() {
        return Err(VmmError::Failed("the VM's QEMU is not running".into()));
    }
    Qmp::connect(&qmp_path(dir)).await.map_err(qmp_failed)
}

fn power_of(state: RunState) -> PowerState {
    match state {
        RunState::Running => PowerState::Running,
        RunState::Shutdown => PowerState::Shutdown,
        RunState::GuestPanicked | RunState::InternalError | RunState::IoError => {
            PowerState::Crashed
        }
        _ => PowerState::Paused,
    }
}

impl Vmm for Qemu {
    fn kind(&self) -> VmmDriver {
        VmmDriver::Qemu
    }

    async fn boot(&self, vm: &VmConfig) -> Result<(), VmmError> {
        self.start(vm, &[]).await
    }

    async fn power_state(&self, dir: &Path) -> PowerState {
        if running_pid(dir).is_none() {
            return PowerState::Shutdown;
        }
        let status = tokio::time::timeout(OBSERVE_TIMEOUT, async {
            let mut qmp = Qmp::connect(&qmp_path(dir)).await?;
            qmp.query_status().await
        })
        .await;
        match status {
            Ok(Ok(status)) => power_of(status.status),
            // The process ended while we asked.
            _ if running_pid(dir).is_none() => PowerState::Shutdown,
            // Running, but its monitor does not answer (busy with another client).
            Ok(Err(error)) => {
                tracing::debug!(dir = %dir.display(), %error, "QMP did not answer");
                PowerState::Paused
            }
            Err(_) => PowerState::Paused,
        }
    }

    async fn power_button(&self, dir: &Path) -> Result<(), VmmError> {
        monitor(dir)
            .await?
            .system_powerdown()
            .await
            .map_err(qmp_failed)
    }

    async fn reset(&self, dir: &Path) -> Result<(), VmmError> {
        monitor(dir).await?.system_reset().await.map_err(qmp_failed)
    }

    async fn pause(&self, dir: &Path) -> Result<(), VmmError> {
        monitor(dir).await?.stop().await.map_err(qmp_failed)
    }

    async fn resume(&self, dir: &Path) -> Result<(), VmmError> {
        monitor(dir).await?.cont().await.map_err(qmp_failed)
    }

    async fn force_off(&self, dir: &Path) -> Result<(), VmmError> {
        let Some(pid) = running_pid(dir) else {
            return Ok(());
        };
        // `quit` lets QEMU close its files; SIGKILL when the monitor does not answer.
        let quit = tokio::time::timeout(OBSERVE_TIMEOUT, async {
            monitor(dir).await?.quit().await.map_err(qmp_failed)
        })
        .await;
        if !matches!(quit, Ok(Ok(())))
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        for _ in 0..100 {
            if running_pid(dir).is_none() {
                let _ = tokio::fs::remove_file(pid_path(dir)).await;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(VmmError::Failed(format!(
            "QEMU (pid {pid}) did not end after it was killed"
        )))
    }

    fn console_path(&self, dir: &Path) -> PathBuf {
        dir.join("console.log")
    }

    async fn attach_disk(&self, dir: &Path, disk: &VolumeDisk) -> Result<(), VmmError> {
        let mut qmp = monitor(dir).await?;
        let node = VolumeDisk::node_name(disk.volume_id);
        // A detach cut short may have left the block node without its device; it would
        // make the add fail. (A node a device still uses is not deleted.)
        let _ = qmp
            .execute::<serde_json::Value>(
                "blockdev-del",
                Some(serde_json::json!({"node-name": node})),
            )
            .await;
        qmp.execute::<serde_json::Value>("blockdev-add", Some(blockdev(disk)))
            .await
            .map_err(qmp_failed)?;
        let device = serde_json::json!({
            "driver": "virtio-blk-pci",
            "drive": node,
            "id": VolumeDisk::device_id(disk.volume_id),
            "serial": disk.serial(),
        });
        if let Err(e) = qmp
            .execute::<serde_json::Value>("device_add", Some(device))
            .await
        {
            // No half-attached volume: the block node goes with the failed device.
            let _ = qmp
                .execute::<serde_json::Value>(
                    "blockdev-del",
                    Some(serde_json::json!({"node-name": node})),
                )
                .await;
            return Err(qmp_failed(e));
        }
        Ok(())
    }

    /// `device_del` asks the guest to eject the device (ACPI hot-unplug); the block node
    /// can be deleted only once it did, so that is what is waited for.
    async fn detach_disk(
        &self,
        dir: &Path,
        volume_id: uuid::Uuid,
        timeout: Duration,
    ) -> Result<(), VmmError> {
        let mut qmp = monitor(dir).await?;
        let node = serde_json::json!({"node-name": VolumeDisk::node_name(volume_id)});
        let device = serde_json::json!({"id": VolumeDisk::device_id(volume_id)});
        match qmp
            .execute::<serde_json::Value>("device_del", Some(device.clone()))
            .await
        {
            // Gone already (an earlier detach the guest finished late).
            Err(QmpError::Command { class, .. }) if class == "DeviceNotFound" => {}
            Err(e) => return Err(qmp_failed(e)),
            Ok(_) => {}
        }
        let start = std::time::Instant::now();
        let mut asked = start;
        loop {
            // A guest still booting misses the unplug request (its ACPI hot-plug driver is
            // not up yet), so ask again every few seconds, as Nova does.
            if asked.elapsed() >= UNPLUG_REPEAT {
                asked = std::time::Instant::now();
                match qmp
                    .execute::<serde_json::Value>("device_del", Some(device.clone()))
                    .await
                {
                    Ok(_) | Err(QmpError::Command { .. }) => {}
                    Err(e) => return Err(qmp_failed(e)),
                }
            }
            match qmp
                .execute::<serde_json::Value>("blockdev-del", Some(node.clone()))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted already: nothing is left of the volume in the VM.
                Err(QmpError::Command { desc, .. }) if desc.contains("Failed to find node") => {
                    return Ok(());
                }
                Err(QmpError::Command { .. }) if start.elapsed() < timeout => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(QmpError::Command { desc, .. }) => {
                    return Err(VmmError::Failed(format!(
                        "the guest did not release volume {volume_id} within {timeout:?} ({desc}); \
                         it stays attached: stop the server and detach it again"
                    )));
                }
                Err(e) => return Err(qmp_failed(e)),
            }
        }
    }

    async fn grow_disk(
        &self,
        dir: &Path,
        volume_id: uuid::Uuid,
        bytes: u64,
    ) -> Result<(), VmmError> {
        let args = serde_json::json!({
            "node-name": VolumeDisk::node_name(volume_id),
            "size": bytes,
        });
        monitor(dir)
            .await?
            .execute::<serde_json::Value>("block_resize", Some(args))
            .await
            .map_err(qmp_failed)?;
        Ok(())
    }

    async fn set_io_limits(
        &self,
        dir: &Path,
        volume_id: uuid::Uuid,
        limits: IoLimits,
    ) -> Result<(), VmmError> {
        // The limits belong to the block device inside the virtio-blk-pci proxy.
        let device = format!(
            "/machine/peripheral/{}/virtio-backend",
            VolumeDisk::device_id(volume_id)
        );
        let args = serde_json::json!({
            "id": device,
            "bps": limits.total_bytes_sec,
            "bps_rd": limits.read_bytes_sec,
            "bps_wr": limits.write_bytes_sec,
            "iops": limits.total_iops_sec,
            "iops_rd": limits.read_iops_sec,
            "iops_wr": limits.write_iops_sec,
        });
        monitor(dir)
            .await?
            .execute::<serde_json::Value>("block_set_io_throttle", Some(args))
            .await
            .map_err(qmp_failed)?;
        Ok(())
    }

    /// The volumes whose guest device exists: `query-block` lists the block backends
    /// of devices (a block node whose device is gone is not plugged in).
    async fn attached_disks(&self, dir: &Path) -> Result<Vec<String>, VmmError> {
        #[derive(serde::Deserialize)]
        struct Inserted {
            #[serde(rename = "node-name")]
            node_name: String,
        }
        #[derive(serde::Deserialize)]
        struct Backend {
            #[serde(default)]
            qdev: Option<String>,
            #[serde(default)]
            inserted: Option<Inserted>,
        }
        let backends: Vec<Backend> = monitor(dir)
            .await?
            .execute("query-block", None)
            .await
            .map_err(qmp_failed)?;
        Ok(backends
            .into_iter()
            .filter(|b| b.qdev.is_some())
            .filter_map(|b| b.inserted.map(|i| i.node_name))
            .filter(|n| n.starts_with("vol"))
            .collect())
    }

    /// Sends the running VM with its disks' top layers (the target made the same
    /// overlays on the same base image) and waits until it arrived; on failure or
    /// timeout the migration is cancelled and the VM keeps running here.
    async fn send_migration(&self, dir: &Path, uri: &str) -> Result<(), VmmError> {
        let mut qmp = monitor(dir).await?;
        qmp.migrate(uri, true).await.map_err(qmp_failed)?;
        let start = std::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let info = qmp.query_migrate().await.map_err(qmp_failed)?;
            match info.status.as_deref() {
                Some("completed") => return Ok(()),
                Some("failed" | "cancelled") => {
                    return Err(VmmError::Failed(format!(
                        "live migration to {uri} failed: {}",
                        info.error_desc
                            .unwrap_or_else(|| "QEMU gave no reason".into())
                    )));
                }
                _ if start.elapsed() > MIGRATION_TIMEOUT => {
                    let _ = qmp.migrate_cancel().await;
                    return Err(VmmError::Failed(format!(
                        "live migration to {uri} did not finish within {MIGRATION_TIMEOUT:?}"
                    )));
                }
                _ => {}
            }
        }
    }

    /// Starts QEMU waiting for the VM on a free TCP port of the node's migration address;
    /// answers the URI the source sends to.
    async fn receive_migration(&self, vm: &VmConfig) -> Result<String, VmmError> {
        let uri = super::free_migration_url(self.migration_ip).await?;
        self.start(vm, &["-incoming".to_string(), uri.clone()])
            .await?;
        Ok(uri)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use tokio::net::UnixListener;

    use super::*;
    use crate::vmm::qmp::tests::{fake_qemu, ok};

    /// A directory that looks like a running VM's to `monitor`: a pidfile naming a
    /// process whose command line holds the QMP socket's path, and a scripted monitor
    /// listening there.
    #[allow(clippy::disallowed_methods)] // a stand-in process, not product code
    fn fake_vm(dir: &Path) -> (tokio::process::Child, UnixListener) {
        let socket = qmp_path(dir);
        let child = tokio::process::Command::new("sh")
            .args(["-c", "sleep 30"])
            .arg(&socket)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        std::fs::write(pid_path(dir), child.id().unwrap().to_string()).unwrap();
        // Until the child has exec'd, its command line is the test binary's.
        while running_pid(dir).is_none() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        (child, UnixListener::bind(&socket).unwrap())
    }

    fn volume() -> VolumeDisk {
        VolumeDisk {
            volume_id: uuid::Uuid::new_v4(),
            path: "/var/lib/yunji/volumes/v.qcow2".into(),
            format: "qcow2".into(),
            block_device: false,
            read_only: true,
            device: "/dev/vdb".into(),
            limits: IoLimits::default(),
        }
    }

    #[tokio::test]
    async fn a_device_qemu_refuses_leaves_no_block_node_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (_qemu, listener) = fake_vm(dir.path());
        let refused = json!({"error": {"class": "GenericError", "desc": "no free PCI slot"}});
        let no_node = json!({"error": {"class": "GenericError", "desc": "Failed to find node"}});
        let monitor = tokio::spawn(fake_qemu(
            listener,
            vec![
                ("qmp_capabilities", vec![ok()]),
                // Clearing a node a cut-short detach left: there is none.
                ("blockdev-del", vec![no_node.clone()]),
                ("blockdev-add", vec![ok()]),
                ("device_add", vec![refused]),
                // What the test is about: the node added first is deleted again.
                ("blockdev-del", vec![ok()]),
            ],
        ));
        let qemu = Qemu::new("qemu-system-x86_64".into(), "127.0.0.1".parse().unwrap());
        let error = qemu.attach_disk(dir.path(), &volume()).await.unwrap_err();
        assert!(error.to_string().contains("no free PCI slot"), "{error}");
        monitor.await.unwrap();
    }

    #[test]
    fn a_volume_is_a_read_only_blockdev_with_its_serial_on_a_virtio_disk() {
        let disk = volume();
        let node = blockdev(&disk);
        assert_eq!(node["driver"], "qcow2");
        assert_eq!(node["read-only"], true);
        assert_eq!(node["file"]["driver"], "file");
        let device = device_args(&disk);
        assert!(device.starts_with("virtio-blk-pci,drive=vol"), "{device}");
        assert!(device.ends_with(&format!("serial={}", &disk.volume_id.to_string()[..20])));
        assert!(VolumeDisk::node_name(disk.volume_id).len() <= 31);
    }
}
