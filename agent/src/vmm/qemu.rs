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

/// The block node of the root disk (a live migration's target exports it).
const ROOT_NODE: &str = "root-disk";

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

/// Every device's PCI slot on the root bus is fixed, not left to QEMU's order of
/// plugging: a VM started for an incoming live migration must have its devices where the
/// source's are (QEMU refuses the migration otherwise), whichever order the source's
/// volumes were hot-plugged and unplugged in. The layout is the one QEMU itself gave a VM
/// without volumes (boot disk, config drive, NICs); data volumes take a slot by their
/// device name's letter.
mod slot {
    pub const BOOT_DISK: u8 = 0x2;
    pub const CONFIG_DRIVE: u8 = 0x3;
    pub const FIRST_NIC: u8 = 0x4;
    pub const NICS: usize = 8;
    /// `/dev/vdb` … `/dev/vdu`: slots 0xc … 0x1f, the last of the bus.
    pub const FIRST_VOLUME: u8 = 0xc;
    pub const LAST_VOLUME_LETTER: u8 = b'u';
    // No two kinds of device share a slot, and the last volume's is the bus's last.
    const _: () = assert!(
        BOOT_DISK < CONFIG_DRIVE
            && CONFIG_DRIVE < FIRST_NIC
            && FIRST_NIC as usize + NICS <= FIRST_VOLUME as usize
            && FIRST_VOLUME + (LAST_VOLUME_LETTER - b'b') == 0x1f
    );
}

/// The PCI slot of a volume: the boot disk's for the boot volume, else by the letter of
/// its device name.
fn volume_slot(disk: &VolumeDisk) -> Result<u8, VmmError> {
    if disk.is_boot() {
        return Ok(slot::BOOT_DISK);
    }
    match disk.device.strip_prefix("/dev/vd").map(str::as_bytes) {
        Some(&[letter]) if (b'b'..=slot::LAST_VOLUME_LETTER).contains(&letter) => {
            Ok(slot::FIRST_VOLUME + (letter - b'b'))
        }
        _ => Err(VmmError::Failed(format!(
            "volume {} is to be {}, but a QEMU VM takes data volumes as /dev/vdb to /dev/vd{}",
            disk.volume_id,
            disk.device,
            slot::LAST_VOLUME_LETTER as char
        ))),
    }
}

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
                    "file={},if=none,id=root,node-name={ROOT_NODE},format=qcow2,discard=unmap",
                    path(root)
                ),
                "-device".into(),
                format!(
                    "virtio-blk-pci,drive=root,bootindex=0,addr={:#x}",
                    slot::BOOT_DISK
                ),
            ]);
        }
        for (index, disk) in vm.volumes.iter().enumerate() {
            let mut device = device_args(disk)?;
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
                "file={},if=none,id=config,format=raw,readonly=on",
                path(&vm.config_drive)
            ),
            "-device".into(),
            format!("virtio-blk-pci,drive=config,addr={:#x}", slot::CONFIG_DRIVE),
        ]);
        if vm.nics.len() > slot::NICS {
            return Err(VmmError::Failed(format!(
                "server {} has {} ports; a QEMU VM takes at most {}",
                vm.id,
                vm.nics.len(),
                slot::NICS
            )));
        }
        // QEMU makes each tap (by name) before it daemonizes, so the network driver can
        // attach it as soon as boot returns; the tap goes when QEMU does.
        for (index, nic) in (0u8..).zip(&vm.nics) {
            args.extend([
                "-netdev".into(),
                format!(
                    "tap,id=nic{index},ifname={},script=no,downscript=no",
                    crate::net::tap_name(&nic.port_id)
                ),
                "-device".into(),
                format!(
                    "virtio-net-pci,netdev=nic{index},mac={},addr={:#x}",
                    nic.mac,
                    slot::FIRST_NIC + index
                ),
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

/// The guest device of a volume: virtio-blk with the volume's serial, in its slot.
fn device_args(disk: &VolumeDisk) -> Result<String, VmmError> {
    Ok(format!(
        "virtio-blk-pci,drive={},id={},serial={},addr={:#x},share-rw={}",
        VolumeDisk::node_name(disk.volume_id),
        VolumeDisk::device_id(disk.volume_id),
        disk.serial(),
        volume_slot(disk)?,
        if disk.shared { "on" } else { "off" }
    ))
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
        let addr = format!("{:#x}", volume_slot(disk)?);
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
            "addr": addr,
            // A shared volume: other VMs write it too (QEMU's locks would refuse them).
            "share-rw": disk.shared,
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

    /// Sends the running VM and its writable disks and waits until it arrived; on
    /// failure or timeout everything started is cancelled and the VM runs on here.
    ///
    /// The disks go first, as QEMU's NBD-mirror protocol has them (what libvirt does):
    /// each is mirrored to the target's NBD export of the same disk — the root disk's
    /// top layer only (the target made the same overlay on the same base image), a
    /// volume whole — in write-blocking mode, so once every mirror is ready each guest
    /// write reaches both nodes. Then the VM's state goes; once it arrived (the guest is
    /// paused here) the mirrors are ended, and only then does the target let it run.
    async fn send_migration(&self, vm: &VmConfig, uri: &str) -> Result<(), VmmError> {
        let mut parts = uri.split_whitespace();
        let state_uri = parts.next().unwrap_or_default();
        let disks = writable_disks(vm);
        let disk_server = parts.find_map(|p| p.strip_prefix("nbd:"));
        let mut qmp = monitor(&vm.dir).await?;
        let mirrors = match (disks.is_empty(), disk_server) {
            (true, _) => Vec::new(),
            (false, Some(server)) => mirror_disks(&mut qmp, &disks, server).await?,
            (false, None) => {
                return Err(VmmError::Failed(format!(
                    "the target of the live migration ({uri}) offers no server for the VM's disks"
                )));
            }
        };
        let sent = send_state(&mut qmp, state_uri).await;
        // Ready mirrors end without switching over: the target keeps its copies.
        end_mirrors(&mut qmp, &mirrors).await;
        sent
    }

    /// Starts QEMU waiting for the VM on a free TCP port of the node's migration address,
    /// held paused once it arrived (`-S`) until `finish_incoming`; with writable disks,
    /// also an NBD server exporting them for the source's mirrors. Answers the URI the
    /// source sends to: `tcp:HOST:PORT`, then ` nbd:HOST:PORT` with disks.
    async fn receive_migration(&self, vm: &VmConfig) -> Result<String, VmmError> {
        let uri = super::free_migration_url(self.migration_ip).await?;
        self.start(
            vm,
            &["-S".to_string(), "-incoming".to_string(), uri.clone()],
        )
        .await?;
        let disks = writable_disks(vm);
        if disks.is_empty() {
            return Ok(uri);
        }
        let server = super::free_port(self.migration_ip).await?;
        let mut qmp = monitor(&vm.dir).await?;
        let address = serde_json::json!({"type": "inet", "data": {
            "host": server.ip().to_string(), "port": server.port().to_string()}});
        qmp.execute::<serde_json::Value>(
            "nbd-server-start",
            Some(serde_json::json!({ "addr": address })),
        )
        .await
        .map_err(qmp_failed)?;
        for disk in &disks {
            let export = serde_json::json!({"type": "nbd", "id": disk.node,
                "node-name": disk.node, "writable": true});
            qmp.execute::<serde_json::Value>("block-export-add", Some(export))
                .await
                .map_err(qmp_failed)?;
        }
        Ok(format!("{uri} nbd:{server}"))
    }

    /// Stops the disk server (the source's mirrors have ended) and lets the VM run.
    async fn finish_incoming(&self, dir: &Path) -> Result<(), VmmError> {
        let mut qmp = monitor(dir).await?;
        let start = std::time::Instant::now();
        while qmp.query_status().await.map_err(qmp_failed)?.status == RunState::Inmigrate {
            if start.elapsed() > MIGRATION_TIMEOUT {
                return Err(VmmError::Failed(
                    "the VM's state has not arrived from the source".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Fails only when no server runs (a VM without writable disks).
        let _ = qmp
            .execute::<serde_json::Value>("nbd-server-stop", None)
            .await;
        qmp.cont().await.map_err(qmp_failed)
    }
}

/// A disk a live migration copies: the block node the target exports, the name the
/// source mirrors it from, and how much of it to copy.
struct MigratingDisk {
    node: String,
    device: String,
    /// `top` (the target has the same base image) or `full`.
    sync: &'static str,
}

/// The VM's disks a live migration copies: the root disk and the writable volumes.
/// (Read-only disks — the config drive, read-only volumes — the target has already.)
fn writable_disks(vm: &VmConfig) -> Vec<MigratingDisk> {
    let root = vm.root_disk.as_ref().map(|_| MigratingDisk {
        node: ROOT_NODE.into(),
        // The root drive's device name: also that of VMs started before the node had one.
        device: "root".into(),
        sync: "top",
    });
    let volumes = vm.volumes.iter().filter(|d| !d.read_only).map(|d| {
        let node = VolumeDisk::node_name(d.volume_id);
        MigratingDisk {
            device: node.clone(),
            node,
            sync: "full",
        }
    });
    root.into_iter().chain(volumes).collect()
}

/// The id of the job (and of the NBD client node) mirroring `disk`.
fn mirror_id(disk: &MigratingDisk) -> String {
    format!("mig-{}", disk.node)
}

/// Starts mirroring each disk to its export on the target's NBD `server` and waits
/// until all are ready; answers the jobs' ids. On failure what was started is ended.
async fn mirror_disks(
    qmp: &mut Qmp,
    disks: &[MigratingDisk],
    server: &str,
) -> Result<Vec<String>, VmmError> {
    let address: std::net::SocketAddr = server
        .parse()
        .map_err(|_| VmmError::Failed(format!("the disk server {server} is not host:port")))?;
    let mut started = Vec::new();
    let result = async {
        for disk in disks {
            let id = mirror_id(disk);
            let client = serde_json::json!({"driver": "nbd", "node-name": id,
                "server": {"type": "inet", "host": address.ip().to_string(),
                    "port": address.port().to_string()},
                "export": disk.node});
            qmp.execute::<serde_json::Value>("blockdev-add", Some(client))
                .await
                .map_err(qmp_failed)?;
            started.push(id.clone());
            let mirror = serde_json::json!({"job-id": id, "device": disk.device,
                "target": id, "sync": disk.sync, "copy-mode": "write-blocking"});
            qmp.execute::<serde_json::Value>("blockdev-mirror", Some(mirror))
                .await
                .map_err(qmp_failed)?;
        }
        let start = std::time::Instant::now();
        loop {
            let jobs: Vec<BlockJob> = qmp
                .execute("query-block-jobs", None)
                .await
                .map_err(qmp_failed)?;
            let ours: Vec<&BlockJob> = jobs
                .iter()
                .filter(|j| started.contains(&j.device))
                .collect();
            if ours.len() < started.len() {
                return Err(VmmError::Failed(
                    "a disk's mirror to the target ended before it was ready".into(),
                ));
            }
            if ours.iter().all(|j| j.ready) {
                return Ok(());
            }
            if start.elapsed() > MIGRATION_TIMEOUT {
                return Err(VmmError::Failed(format!(
                    "the VM's disks were not copied to the target within {MIGRATION_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    .await;
    match result {
        Ok(()) => Ok(started),
        Err(e) => {
            end_mirrors(qmp, &started).await;
            Err(e)
        }
    }
}

/// Ends the mirror jobs (a ready one completes without switching over) and, once
/// they are gone, removes their NBD client nodes.
async fn end_mirrors(qmp: &mut Qmp, ids: &[String]) {
    for id in ids {
        let _ = qmp
            .execute::<serde_json::Value>(
                "block-job-cancel",
                Some(serde_json::json!({"device": id})),
            )
            .await;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < MIGRATION_TIMEOUT {
        match qmp.execute::<Vec<BlockJob>>("query-block-jobs", None).await {
            Ok(jobs) if jobs.iter().any(|j| ids.contains(&j.device)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => break,
        }
    }
    for id in ids {
        let _ = qmp
            .execute::<serde_json::Value>(
                "blockdev-del",
                Some(serde_json::json!({"node-name": id})),
            )
            .await;
    }
}

/// Sends the VM's state to `uri` and waits until it arrived; cancelled on failure or
/// timeout.
async fn send_state(qmp: &mut Qmp, uri: &str) -> Result<(), VmmError> {
    qmp.migrate(uri).await.map_err(qmp_failed)?;
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

/// A block job, as `query-block-jobs` lists it.
#[derive(Debug, serde::Deserialize)]
struct BlockJob {
    /// The job's id.
    device: String,
    ready: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};
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
            shared: false,
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

    /// A VM of `dir` with a root disk, a writable volume and a read-only one.
    fn vm_with_volumes(dir: &Path) -> VmConfig {
        let mut writable = volume();
        writable.read_only = false;
        VmConfig {
            id: uuid::Uuid::nil(),
            vcpus: 1,
            memory_mb: 128,
            dir: dir.to_path_buf(),
            root_disk: Some(dir.join("disk.qcow2")),
            config_drive: dir.join("config.img"),
            nics: Vec::new(),
            volumes: vec![writable, volume()],
        }
    }

    /// What QEMU is asked in a migration of [`vm_with_volumes`] whose state transfer
    /// ends as `outcome` says. The fake checks the order of the commands: the read-only
    /// volume is not mirrored; the state goes only once both mirrors are ready; the
    /// mirrors end after, however the transfer went.
    fn migration_script(vm: &VmConfig, outcome: Value) -> Vec<(&'static str, Vec<Value>)> {
        let writable = format!("mig-{}", VolumeDisk::node_name(vm.volumes[0].volume_id));
        let jobs = |ready: bool| {
            json!({"return": [{"device": "mig-root-disk", "ready": true},
                              {"device": writable, "ready": ready}]})
        };
        vec![
            ("qmp_capabilities", vec![ok()]),
            ("blockdev-add", vec![ok()]),
            ("blockdev-mirror", vec![ok()]),
            ("blockdev-add", vec![ok()]),
            ("blockdev-mirror", vec![ok()]),
            ("query-block-jobs", vec![jobs(false)]),
            ("query-block-jobs", vec![jobs(true)]),
            ("migrate", vec![ok()]),
            ("query-migrate", vec![json!({ "return": outcome })]),
            ("block-job-cancel", vec![ok()]),
            ("block-job-cancel", vec![ok()]),
            ("query-block-jobs", vec![json!({"return": []})]),
            ("blockdev-del", vec![ok()]),
            ("blockdev-del", vec![ok()]),
        ]
    }

    const TARGET: &str = "tcp:127.0.0.1:4000 nbd:127.0.0.1:4001";

    #[tokio::test]
    async fn a_migration_mirrors_the_writable_disks_until_ready_then_sends_the_state_then_ends_them()
     {
        let dir = tempfile::tempdir().unwrap();
        let (_qemu, listener) = fake_vm(dir.path());
        let vm = vm_with_volumes(dir.path());
        let script = migration_script(&vm, json!({"status": "completed"}));
        let monitor = tokio::spawn(fake_qemu(listener, script));
        let qemu = Qemu::new("qemu-system-x86_64".into(), "127.0.0.1".parse().unwrap());
        qemu.send_migration(&vm, TARGET).await.unwrap();
        monitor.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_migration_ends_the_mirrors_and_a_target_without_a_disk_server_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_qemu, listener) = fake_vm(dir.path());
        let vm = vm_with_volumes(dir.path());
        let failed = json!({"status": "failed", "error-desc": "target went away"});
        let monitor = tokio::spawn(fake_qemu(listener, migration_script(&vm, failed)));
        let qemu = Qemu::new("qemu-system-x86_64".into(), "127.0.0.1".parse().unwrap());
        let error = qemu.send_migration(&vm, TARGET).await.unwrap_err();
        assert!(error.to_string().contains("target went away"), "{error}");
        monitor.await.unwrap();

        let other = tempfile::tempdir().unwrap();
        let (_qemu, listener) = fake_vm(other.path());
        let monitor = tokio::spawn(fake_qemu(listener, vec![("qmp_capabilities", vec![ok()])]));
        let error = qemu
            .send_migration(&vm_with_volumes(other.path()), "tcp:127.0.0.1:4000")
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("offers no server for the VM's disks"),
            "{error}"
        );
        monitor.await.unwrap();
    }

    #[test]
    fn a_volume_is_a_read_only_blockdev_with_its_serial_on_a_virtio_disk() {
        let disk = volume();
        let node = blockdev(&disk);
        assert_eq!(node["driver"], "qcow2");
        assert_eq!(node["read-only"], true);
        assert_eq!(node["file"]["driver"], "file");
        let device = device_args(&disk).unwrap();
        assert!(device.starts_with("virtio-blk-pci,drive=vol"), "{device}");
        assert!(device.contains(&format!("serial={},", &disk.volume_id.to_string()[..20])));
        assert!(VolumeDisk::node_name(disk.volume_id).len() <= 31);
    }

    #[test]
    fn a_volume_takes_the_slot_its_device_letter_names_and_the_boot_volume_the_boot_disks() {
        let at = |device: &str| {
            let mut disk = volume();
            disk.device = device.into();
            volume_slot(&disk)
        };
        assert_eq!(at("/dev/vda").unwrap(), slot::BOOT_DISK);
        assert_eq!(at("/dev/vdb").unwrap(), slot::FIRST_VOLUME);
        assert_eq!(at("/dev/vdu").unwrap(), 0x1f, "the bus's last slot");
        let disk = volume();
        assert!(device_args(&disk).unwrap().contains(",addr=0xc,"));
        for beyond in ["/dev/vdv", "/dev/vdz", "/dev/sdb", "/dev/vdbb"] {
            let error = at(beyond).unwrap_err().to_string();
            assert!(error.contains("/dev/vdb to /dev/vdu"), "{beyond}: {error}");
        }
    }
}
