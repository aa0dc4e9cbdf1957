//! Real VMs on the node: the `Vmm` trait every hypervisor driver implements (QEMU here;
//! Cloud Hypervisor to come), and `VmHost`, which owns the node's VMs on top of it —
//! their disks, config drives and one owning task per VM that serialises its operations.
//!
//! Each VM lives in `<data-dir>/vms/<id>/`: `spec.json` (what it was created with and its
//! current flavor), `disk.qcow2` (an overlay on the node's read-only base image),
//! `config.img` (the config drive), and the VMM's own files (QMP socket, pidfile,
//! console log). The VMM process is started detached, so it outlives the agent; at
//! start the agent re-adopts every VM whose directory it finds.

pub mod cloud_hypervisor;
pub mod config_drive;
pub mod images;
pub mod qemu;
pub mod qmp;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use yunji_common::agent_api::{
    Capacity, FlavorSpec, Inventory, IoLimits, NicSpec, PowerState, ServerAction, ServerInventory,
    ServerReply, ServerSpec, SnapshotReply, VmmDriver,
};
use yunji_common::execute::execute;

use crate::drivers::DriverError;
use crate::net::driver::NetworkDriver;

/// Longest a host tool (`qemu-img`, `mkfs.vfat`, …) may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a started VMM has to report that its guest runs.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure of a VMM driver.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("the {0} driver does not support {1} yet")]
    Unsupported(&'static str, &'static str),
    #[error("{0}")]
    Failed(String),
}

impl From<VmmError> for DriverError {
    fn from(e: VmmError) -> DriverError {
        let code = match e {
            VmmError::Unsupported(..) => "unsupported",
            VmmError::Failed(_) => "vmm",
        };
        DriverError {
            code,
            message: e.to_string(),
        }
    }
}

fn failed(what: impl std::fmt::Display) -> DriverError {
    DriverError {
        code: "vmm",
        message: what.to_string(),
    }
}

/// What a VMM needs to run one VM: its resources and files.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub id: Uuid,
    pub vcpus: u32,
    pub memory_mb: u64,
    /// The VM's directory: the VMM keeps its socket, pidfile and console here.
    pub dir: PathBuf,
    /// The root disk (qcow2), or `None` when the VM boots from its first volume.
    pub root_disk: Option<PathBuf>,
    /// The config drive (raw vfat, read-only).
    pub config_drive: PathBuf,
    /// One NIC per port: a tap named after the port (`net::tap_name`), which the VMM
    /// makes and the network driver then attaches to the port's bridge.
    pub nics: Vec<NicSpec>,
    /// The volumes attached, the boot volume first.
    pub volumes: Vec<VolumeDisk>,
}

/// A volume as the VMM opens it, with what the guest is told about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeDisk {
    pub volume_id: Uuid,
    /// The volume's file or block device.
    pub path: PathBuf,
    /// `qcow2` or `raw`.
    pub format: String,
    /// A block device (a device-mapper volume) rather than a file.
    #[serde(default)]
    pub block_device: bool,
    /// Other VMs may have it attached too (multiattach): none locks the others out.
    #[serde(default)]
    pub shared: bool,
    pub read_only: bool,
    /// The device name the API reports (`/dev/vda` for the boot volume).
    pub device: String,
    /// Its volume type's I/O limits, set on the device once the VM runs.
    #[serde(default)]
    pub limits: IoLimits,
}

impl VolumeDisk {
    /// The serial number the guest reads (`/sys/block/vdX/serial`): the volume id cut to
    /// the 20 bytes virtio-blk carries, as Nova does.
    pub fn serial(&self) -> String {
        self.volume_id.to_string()[..20].to_string()
    }

    /// The VMM's name for the volume's block node (QEMU limits them to 31 bytes).
    pub fn node_name(volume_id: Uuid) -> String {
        format!("vol{}", &volume_id.simple().to_string()[..24])
    }

    /// The VMM's id of the volume's guest device.
    pub fn device_id(volume_id: Uuid) -> String {
        format!("dev{}", &volume_id.simple().to_string()[..24])
    }

    pub fn is_boot(&self) -> bool {
        self.device == "/dev/vda"
    }
}

/// A hypervisor driver: the primitive operations on one VM's VMM process. `VmHost`
/// composes them into the agent API's lifecycle (graceful stop with a forced fallback,
/// soft reboot as power-down and start, cold resize, …).
pub trait Vmm: Send + Sync + 'static {
    fn kind(&self) -> VmmDriver;

    /// Starts the VMM process detached (it outlives the agent) and boots the guest.
    fn boot(&self, vm: &VmConfig) -> impl Future<Output = Result<(), VmmError>> + Send;

    /// The power state, observed from the VMM (`Shutdown` when no process runs).
    fn power_state(&self, dir: &Path) -> impl Future<Output = PowerState> + Send;

    /// Presses the ACPI power button.
    fn power_button(&self, dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send;

    /// Resets the machine (hard reboot).
    fn reset(&self, dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send;

    /// Pauses or resumes the vCPUs (a consistent disk copy is taken while paused).
    fn pause(&self, dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send;
    fn resume(&self, dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send;

    /// Ends the VMM process at once; succeeds when none runs.
    fn force_off(&self, dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send;

    /// The console log's path.
    fn console_path(&self, dir: &Path) -> PathBuf;

    /// Live migration, source side: sends the running VM (and what of its disks the
    /// target lacks) to the `uri` the target's `receive_migration` answered; answers
    /// once it arrived, or fails with the VM still running here.
    fn send_migration(
        &self,
        _vm: &VmConfig,
        _uri: &str,
    ) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "live migration")) }
    }
    /// Live migration, target side: starts the VMM waiting for the VM; answers where
    /// the source sends it.
    fn receive_migration(
        &self,
        _vm: &VmConfig,
    ) -> impl Future<Output = Result<String, VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "live migration")) }
    }
    /// Live migration, target side, once the source has sent everything: lets the
    /// arrived VM run here.
    fn finish_incoming(&self, _dir: &Path) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Ok(()) }
    }
    /// Hot-plugs a volume into the running VM.
    fn attach_disk(
        &self,
        _dir: &Path,
        _disk: &VolumeDisk,
    ) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "disk hot-plug")) }
    }
    /// Asks the guest to release a volume and removes it once released; an error when
    /// the guest has not released it within `timeout` (it stays attached).
    fn detach_disk(
        &self,
        _dir: &Path,
        _volume_id: Uuid,
        _timeout: Duration,
    ) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "disk hot-unplug")) }
    }
    /// Grows an attached volume to `bytes`; the guest sees the new size at once.
    fn grow_disk(
        &self,
        _dir: &Path,
        _volume_id: Uuid,
        _bytes: u64,
    ) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "growing an attached disk")) }
    }
    /// Limits the I/O of a plugged-in volume.
    fn set_io_limits(
        &self,
        _dir: &Path,
        _volume_id: Uuid,
        _limits: IoLimits,
    ) -> impl Future<Output = Result<(), VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "I/O limits")) }
    }
    /// The volumes the running VM has plugged in (by the ids their node names carry).
    fn attached_disks(
        &self,
        _dir: &Path,
    ) -> impl Future<Output = Result<Vec<String>, VmmError>> + Send {
        async { Err(VmmError::Unsupported("this", "listing attached disks")) }
    }
}

/// What the agent keeps about a VM in `spec.json`, to re-adopt it after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VmRecord {
    spec: ServerSpec,
    /// The flavor before an unconfirmed resize (its disk is `disk.pre-resize.qcow2`).
    old_flavor: Option<FlavorSpec>,
    /// A live migration to this node that has not finished yet.
    #[serde(default)]
    incoming: bool,
    /// The volumes attached (those of `spec.volumes`, then later attachments).
    #[serde(default)]
    volumes: Vec<VolumeDisk>,
}

enum Op {
    Act(
        ServerAction,
        oneshot::Sender<Result<ServerReply, DriverError>>,
    ),
    /// Copy the root disk to this file.
    Snapshot(PathBuf, oneshot::Sender<Result<(), DriverError>>),
    AttachVolume(VolumeDisk, oneshot::Sender<Result<(), DriverError>>),
    DetachVolume(Uuid, oneshot::Sender<Result<(), DriverError>>),
    GrowVolume(Uuid, u64, oneshot::Sender<Result<(), DriverError>>),
    /// Keep the guest paused (when it runs) until the sent-back sender is dropped: a
    /// consistent copy of its volumes is taken meanwhile.
    Hold(oneshot::Sender<Result<oneshot::Sender<()>, DriverError>>),
    Delete(oneshot::Sender<Result<(), DriverError>>),
}

struct VmHandle {
    ops: mpsc::Sender<Op>,
    dir: PathBuf,
    /// The VM's attached volumes, as its owner last recorded them.
    volumes: Arc<Mutex<Vec<VolumeDisk>>>,
}

/// The node's VMs on one VMM driver.
pub struct VmHost<V: Vmm> {
    vmm: Arc<V>,
    /// Attaches each booted VM's taps to their networks.
    network: Arc<NetworkDriver>,
    data_dir: PathBuf,
    capacity: Capacity,
    /// How long a soft reboot waits for the guest to power off before forcing it.
    graceful_timeout: Duration,
    images: images::NodeImages,
    vms: Mutex<HashMap<Uuid, VmHandle>>,
    /// Servers being created: a second create of one of them is refused.
    creating: Mutex<std::collections::HashSet<Uuid>>,
}

/// A migration URL (`tcp:ip:port`) on a port of `ip` that is free now; the receiving
/// VMM binds it a moment later (nothing else here takes ports from the ephemeral range
/// in between but the kernel's own choices).
async fn free_migration_url(ip: std::net::IpAddr) -> Result<String, VmmError> {
    Ok(format!("tcp:{}", free_port(ip).await?))
}

/// An address of `ip` whose port is free now (see [`free_migration_url`]).
async fn free_port(ip: std::net::IpAddr) -> Result<std::net::SocketAddr, VmmError> {
    let probe = tokio::net::TcpListener::bind(std::net::SocketAddr::new(ip, 0))
        .await
        .map_err(|e| VmmError::Failed(format!("no free migration port: {e}")))?;
    probe
        .local_addr()
        .map_err(|e| VmmError::Failed(e.to_string()))
}

fn record_path(dir: &Path) -> PathBuf {
    dir.join("spec.json")
}

fn write_record(dir: &Path, record: &VmRecord) -> Result<(), DriverError> {
    let json = serde_json::to_vec_pretty(record).map_err(failed)?;
    yunji_common::fsutil::write_atomic(&record_path(dir), &json, 0o600)
        .map_err(|e| failed(format!("cannot write {}: {e}", dir.display())))
}

impl<V: Vmm> VmHost<V> {
    /// The VMs of `data_dir`, each re-adopted (its VMM process keeps running).
    pub fn new(
        vmm: V,
        network: Arc<NetworkDriver>,
        data_dir: PathBuf,
        capacity: Capacity,
        graceful_timeout: Duration,
    ) -> anyhow::Result<VmHost<V>> {
        let host = VmHost {
            vmm: Arc::new(vmm),
            network,
            images: images::NodeImages::new(data_dir.join("images"))?,
            data_dir,
            capacity,
            graceful_timeout,
            vms: Mutex::new(HashMap::new()),
            creating: Mutex::new(Default::default()),
        };
        // Snapshots not fetched before a restart are of no use any more.
        let _ = std::fs::remove_dir_all(host.snapshots_dir());
        std::fs::create_dir_all(host.snapshots_dir())?;
        let vms_dir = host.vms_dir();
        std::fs::create_dir_all(&vms_dir)?;
        for entry in std::fs::read_dir(&vms_dir)? {
            let dir = entry?.path();
            let record = std::fs::read(record_path(&dir))
                .ok()
                .and_then(|json| serde_json::from_slice::<VmRecord>(&json).ok());
            match record {
                Some(record) => {
                    tracing::info!(id = %record.spec.id, dir = %dir.display(), "re-adopting VM");
                    host.spawn_owner(record, dir);
                }
                // A create that died half-way: nothing of it may stay.
                None => {
                    tracing::warn!(dir = %dir.display(), "removing a VM directory with no record");
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        Ok(host)
    }

    pub fn kind(&self) -> VmmDriver {
        self.vmm.kind()
    }

    pub fn images(&self) -> &images::NodeImages {
        &self.images
    }

    fn vms_dir(&self) -> PathBuf {
        self.data_dir.join("vms")
    }

    /// Where disk snapshots wait for the scheduler to fetch them.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    /// A consistent, self-contained qcow2 copy of the server's root disk.
    pub async fn snapshot(&self, id: Uuid) -> Result<SnapshotReply, DriverError> {
        let (ops, _) = self.handle(id).ok_or_else(|| not_found(id))?;
        let name = format!("{id}-{}.qcow2", Uuid::new_v4().simple());
        let file = self.snapshots_dir().join(&name);
        let (tx, rx) = oneshot::channel();
        ops.send(Op::Snapshot(file.clone(), tx))
            .await
            .map_err(|_| not_found(id))?;
        rx.await.map_err(|_| not_found(id))??;
        let size = tokio::fs::metadata(&file)
            .await
            .map_err(|e| failed(format!("the snapshot of {id} is missing: {e}")))?
            .len();
        Ok(SnapshotReply {
            name,
            disk_format: "qcow2".into(),
            size,
        })
    }

    /// Removes a fetched snapshot; one that is not there is already gone.
    pub async fn snapshot_delete(&self, name: &str) -> Result<(), DriverError> {
        if name.contains('/') || name.starts_with('.') {
            return Err(DriverError {
                code: "bad-request",
                message: format!("{name:?} is not a snapshot name"),
            });
        }
        match tokio::fs::remove_file(self.snapshots_dir().join(name)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(failed(format!("cannot remove snapshot {name}: {e}")))
            }
            _ => Ok(()),
        }
    }

    fn spawn_owner(&self, record: VmRecord, dir: PathBuf) {
        let id = record.spec.id;
        let (ops, rx) = mpsc::channel(16);
        let volumes = Arc::new(Mutex::new(record.volumes.clone()));
        let owner = VmOwner {
            vmm: self.vmm.clone(),
            network: self.network.clone(),
            record,
            dir: dir.clone(),
            graceful_timeout: self.graceful_timeout,
            volumes: volumes.clone(),
        };
        tokio::spawn(owner.run(rx));
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, VmHandle { ops, dir, volumes });
    }

    fn handle(&self, id: Uuid) -> Option<(mpsc::Sender<Op>, PathBuf)> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.get(&id).map(|h| (h.ops.clone(), h.dir.clone()))
    }

    /// Sends `op` (made with its reply channel) to the VM's owner and waits for the reply.
    async fn ask<T>(
        &self,
        id: Uuid,
        op: impl FnOnce(oneshot::Sender<Result<T, DriverError>>) -> Op,
    ) -> Result<T, DriverError> {
        let (ops, _) = self.handle(id).ok_or_else(|| not_found(id))?;
        let (tx, rx) = oneshot::channel();
        ops.send(op(tx)).await.map_err(|_| not_found(id))?;
        rx.await.map_err(|_| not_found(id))?
    }

    /// Whether the server's VM runs (or is paused) now.
    pub async fn is_running(&self, id: Uuid) -> bool {
        match self.handle(id) {
            Some((_, dir)) => self.vmm.power_state(&dir).await != PowerState::Shutdown,
            None => false,
        }
    }

    /// Every attachment of the node's VMs: (server, volume).
    pub fn attachments(&self) -> Vec<(Uuid, VolumeDisk)> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.iter()
            .flat_map(|(id, h)| {
                let volumes = h.volumes.lock().unwrap_or_else(|p| p.into_inner());
                volumes.iter().map(|v| (*id, v.clone())).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Attaches a volume to a server: hot-plugged when it runs, else plugged at its
    /// next start.
    pub async fn attach_volume(&self, id: Uuid, disk: VolumeDisk) -> Result<(), DriverError> {
        self.ask(id, |tx| Op::AttachVolume(disk, tx)).await
    }

    /// Detaches a volume from a server once the guest released it.
    pub async fn detach_volume(&self, id: Uuid, volume_id: Uuid) -> Result<(), DriverError> {
        self.ask(id, |tx| Op::DetachVolume(volume_id, tx)).await
    }

    /// Grows a volume attached to a server to `bytes`, live when it runs.
    pub async fn grow_volume(
        &self,
        id: Uuid,
        volume_id: Uuid,
        bytes: u64,
    ) -> Result<(), DriverError> {
        self.ask(id, |tx| Op::GrowVolume(volume_id, bytes, tx))
            .await
    }

    /// Pauses a running server until the returned sender is dropped (a no-op for one
    /// that is stopped).
    pub async fn hold(&self, id: Uuid) -> Result<oneshot::Sender<()>, DriverError> {
        self.ask(id, Op::Hold).await
    }

    pub async fn observe(&self) -> Result<(Capacity, Inventory), DriverError> {
        let dirs: Vec<(Uuid, PathBuf)> = {
            let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
            vms.iter().map(|(id, h)| (*id, h.dir.clone())).collect()
        };
        let states = futures_util::future::join_all(dirs.iter().map(|(_, dir)| {
            let vmm = self.vmm.clone();
            async move { vmm.power_state(dir).await }
        }))
        .await;
        let mut servers: Vec<ServerInventory> = dirs
            .iter()
            .zip(states)
            .map(|((id, _), power_state)| ServerInventory {
                id: *id,
                power_state,
            })
            .collect();
        servers.sort_by_key(|s| s.id);
        Ok((self.capacity, Inventory { servers }))
    }

    /// Creates the VM's disk and config drive and boots it. Every step's result is
    /// undone when a later one fails: nothing of a failed create stays on the node.
    pub async fn create(
        &self,
        spec: ServerSpec,
        volumes: Vec<VolumeDisk>,
    ) -> Result<ServerReply, DriverError> {
        let id = spec.id;
        self.claim(id)?;
        let dir = self.vms_dir().join(id.to_string());
        let result = match self.provision(&spec, volumes, &dir, false).await {
            Ok(record) => {
                let config = vm_config(&record, &dir);
                boot_and_wait(self.vmm.as_ref(), &self.network, &config)
                    .await
                    .map(|()| record)
            }
            Err(e) => Err(e),
        };
        let result = self.finish_create(spec, dir, result).await;
        self.unclaim(id);
        result
    }

    /// Live migration's target side: the VM's disk and config drive as a create makes
    /// them, its volumes (blank copies the source fills), and its VMM waiting for the
    /// source; answers the URI to send it to. The owner then finishes (`FinishIncoming`)
    /// or forgets (`AbortIncoming`) it.
    pub async fn prepare_incoming(
        &self,
        spec: ServerSpec,
        volumes: Vec<VolumeDisk>,
    ) -> Result<ServerReply, DriverError> {
        let id = spec.id;
        self.claim(id)?;
        let dir = self.vms_dir().join(id.to_string());
        let prepared = match self.provision(&spec, volumes, &dir, true).await {
            Ok(record) => self
                .vmm
                .receive_migration(&vm_config(&record, &dir))
                .await
                .map(|uri| (record, uri))
                .map_err(Into::into),
            Err(e) => Err(e),
        };
        let (result, uri) = match prepared {
            Ok((record, uri)) => (Ok(record), Some(uri)),
            Err(e) => (Err(e), None),
        };
        let result = self.finish_create(spec, dir, result).await;
        self.unclaim(id);
        let mut reply = result?;
        reply.migration_uri = uri;
        Ok(reply)
    }

    /// Marks `id` as being made here; refused while it is, or once it exists.
    fn claim(&self, id: Uuid) -> Result<(), DriverError> {
        let claimed = self
            .creating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if !claimed || self.handle(id).is_some() {
            if claimed {
                self.unclaim(id);
            }
            return Err(DriverError {
                code: "state",
                message: format!("server {id} already exists on this node"),
            });
        }
        Ok(())
    }

    fn unclaim(&self, id: Uuid) {
        self.creating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Hands a provisioned VM to its owner task, or undoes what a failed create made.
    async fn finish_create(
        &self,
        spec: ServerSpec,
        dir: PathBuf,
        result: Result<VmRecord, DriverError>,
    ) -> Result<ServerReply, DriverError> {
        let id = spec.id;
        match result {
            Ok(record) => {
                let power_state = self.vmm.power_state(&dir).await;
                self.spawn_owner(record, dir);
                Ok(ServerReply {
                    id,
                    power_state,
                    migration_uri: None,
                })
            }
            Err(e) => {
                let _ = self.vmm.force_off(&dir).await;
                let _ = tokio::fs::remove_dir_all(&dir).await;
                Err(e)
            }
        }
    }

    /// Makes the VM's directory, root disk (unless it boots from a volume), config drive
    /// and record; the VMM is not started.
    async fn provision(
        &self,
        spec: &ServerSpec,
        mut volumes: Vec<VolumeDisk>,
        dir: &Path,
        incoming: bool,
    ) -> Result<VmRecord, DriverError> {
        // The boot volume comes first: the guest's first disk.
        volumes.sort_by_key(|v| !v.is_boot());
        let base = match &spec.image {
            Some(image) => Some((self.images.path_of(&image.id)?, &image.disk_format)),
            None if volumes.first().is_some_and(VolumeDisk::is_boot) => None,
            None => {
                return Err(DriverError {
                    code: "bad-request",
                    message: format!(
                        "server {} has neither an image nor a boot volume (/dev/vda)",
                        spec.id
                    ),
                });
            }
        };
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        let record = VmRecord {
            spec: spec.clone(),
            old_flavor: None,
            incoming,
            volumes,
        };
        let config = vm_config(&record, dir);
        if let (Some((base, format)), Some(root)) = (base, &config.root_disk) {
            create_overlay(&base, format, root, spec.flavor.disk_gb).await?;
        }
        config_drive::build(spec, &config.config_drive).await?;
        // The record comes last before booting: a directory without one is a create that
        // did not finish, removed at the next start.
        write_record(dir, &record)?;
        Ok(record)
    }

    pub async fn act(&self, id: Uuid, action: ServerAction) -> Result<ServerReply, DriverError> {
        // Once done, these leave nothing of the VM here: its owner ends.
        let leaves = matches!(
            action,
            ServerAction::MigrateOut { .. } | ServerAction::AbortIncoming
        );
        let (ops, _) = self.handle(id).ok_or_else(|| not_found(id))?;
        let (tx, rx) = oneshot::channel();
        ops.send(Op::Act(action, tx))
            .await
            .map_err(|_| not_found(id))?;
        let reply = rx.await.map_err(|_| not_found(id))??;
        if leaves {
            self.vms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        }
        Ok(reply)
    }

    pub async fn console(&self, id: Uuid, length: Option<usize>) -> Result<String, DriverError> {
        let (_, dir) = self.handle(id).ok_or_else(|| not_found(id))?;
        let bytes = match tokio::fs::read(self.vmm.console_path(&dir)).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(failed(format!("cannot read the console of {id}: {e}"))),
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let skip = length.map_or(0, |n| lines.len().saturating_sub(n));
        Ok(lines[skip..].join("\n") + "\n")
    }

    /// Deletes a server and everything it owned; one that is not here is already gone.
    pub async fn delete(&self, id: Uuid) -> Result<(), DriverError> {
        let Some((ops, _)) = self.handle(id) else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        if ops.send(Op::Delete(tx)).await.is_ok() {
            rx.await.map_err(|_| not_found(id))??;
        }
        self.vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        Ok(())
    }
}

fn not_found(id: Uuid) -> DriverError {
    DriverError {
        code: "not-found",
        message: format!("no server {id} on this node"),
    }
}

fn vm_config(record: &VmRecord, dir: &Path) -> VmConfig {
    let spec = &record.spec;
    VmConfig {
        id: spec.id,
        vcpus: spec.flavor.vcpus.max(1),
        memory_mb: spec.flavor.memory_mb.max(64),
        dir: dir.to_path_buf(),
        root_disk: spec.image.is_some().then(|| dir.join("disk.qcow2")),
        config_drive: dir.join("config.img"),
        nics: spec.nics.clone(),
        volumes: record.volumes.clone(),
    }
}

/// The qemu-img format name of a Glance `disk_format` the node boots.
pub(crate) fn base_format(disk_format: &str) -> Result<&'static str, DriverError> {
    match disk_format {
        "qcow2" => Ok("qcow2"),
        "raw" => Ok("raw"),
        other => Err(DriverError {
            code: "bad-request",
            message: format!("this node boots qcow2 and raw images, not {other}"),
        }),
    }
}

/// A qcow2 overlay on the read-only base, as large as the flavor's disk (never smaller
/// than the image).
async fn create_overlay(
    base: &Path,
    disk_format: &str,
    overlay: &Path,
    disk_gb: u64,
) -> Result<(), DriverError> {
    let format = base_format(disk_format)?;
    let mut args = vec![
        "create".into(),
        "-q".into(),
        "-f".into(),
        "qcow2".into(),
        "-F".into(),
        format.into(),
        "-b".into(),
        base.as_os_str().to_owned(),
        overlay.as_os_str().to_owned(),
    ];
    let virtual_size = images::virtual_size(base).await?;
    let size = (disk_gb << 30).max(virtual_size);
    args.push(size.to_string().into());
    execute("qemu-img", &args, TOOL_TIMEOUT)
        .await
        .map_err(failed)?;
    Ok(())
}

/// Grows a qcow2 disk to `disk_gb` (disks never shrink).
async fn grow_disk(disk: &Path, disk_gb: u64) -> Result<(), DriverError> {
    let size = images::virtual_size(disk).await?;
    if disk_gb << 30 > size {
        let args = [
            "resize".into(),
            "-q".into(),
            disk.as_os_str().to_owned(),
            (disk_gb << 30).to_string().into(),
        ];
        execute("qemu-img", &args, TOOL_TIMEOUT)
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Boots the VM, waits until its guest runs, and attaches its taps to their networks (a
/// VM whose NICs cannot be attached is forced off: it would run cut off).
async fn boot_and_wait<V: Vmm>(
    vmm: &V,
    network: &NetworkDriver,
    config: &VmConfig,
) -> Result<(), DriverError> {
    wait_running(vmm, config).await?;
    if let Err(e) = limit_volumes(vmm, config).await {
        let _ = vmm.force_off(&config.dir).await;
        return Err(e);
    }
    for nic in &config.nics {
        if let Err(e) = network.attach_port(&nic.port_id).await {
            let _ = vmm.force_off(&config.dir).await;
            return Err(e);
        }
    }
    Ok(())
}

/// Sets the volumes' I/O limits in the running VM (QEMU takes them once it runs).
async fn limit_volumes<V: Vmm>(vmm: &V, config: &VmConfig) -> Result<(), DriverError> {
    for disk in config.volumes.iter().filter(|d| !d.limits.is_unlimited()) {
        vmm.set_io_limits(&config.dir, disk.volume_id, disk.limits)
            .await?;
    }
    Ok(())
}

async fn wait_running<V: Vmm>(vmm: &V, config: &VmConfig) -> Result<(), DriverError> {
    vmm.boot(config).await?;
    let start = Instant::now();
    loop {
        match vmm.power_state(&config.dir).await {
            PowerState::Running => return Ok(()),
            PowerState::Shutdown | PowerState::Crashed
                if start.elapsed() > Duration::from_secs(2) =>
            {
                return Err(failed(format!(
                    "the VMM of {} stopped right after it started; see its console log",
                    config.id
                )));
            }
            _ if start.elapsed() > BOOT_TIMEOUT => {
                return Err(failed(format!(
                    "the VM {} is not running {BOOT_TIMEOUT:?} after it was started",
                    config.id
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the VMM reports `state` (within the boot timeout).
async fn wait_for<V: Vmm>(
    vmm: &V,
    config: &VmConfig,
    state: PowerState,
) -> Result<(), DriverError> {
    let start = Instant::now();
    loop {
        let now = vmm.power_state(&config.dir).await;
        if now == state {
            return Ok(());
        }
        if start.elapsed() > BOOT_TIMEOUT {
            return Err(failed(format!(
                "the VM {} is {now:?}, not {state:?}, {BOOT_TIMEOUT:?} later",
                config.id
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one task that acts on a VM: operations arrive over its channel, one at a time.
struct VmOwner<V: Vmm> {
    vmm: Arc<V>,
    network: Arc<NetworkDriver>,
    record: VmRecord,
    dir: PathBuf,
    graceful_timeout: Duration,
    /// Where the record's volumes are published for `VmHost::attachments`.
    volumes: Arc<Mutex<Vec<VolumeDisk>>>,
}

/// How long a detach waits for the guest to release the device.
const DETACH_TIMEOUT: Duration = Duration::from_secs(30);

impl<V: Vmm> VmOwner<V> {
    async fn run(mut self, mut ops: mpsc::Receiver<Op>) {
        self.reconcile_volumes().await;
        while let Some(op) = ops.recv().await {
            match op {
                Op::Act(action, reply) => {
                    let leaves = matches!(
                        action,
                        ServerAction::MigrateOut { .. } | ServerAction::AbortIncoming
                    );
                    let result = self.act(action).await;
                    let gone = leaves && result.is_ok();
                    let _ = reply.send(result);
                    if gone {
                        return;
                    }
                }
                Op::Snapshot(file, reply) => {
                    let result = self.snapshot(&file).await;
                    if result.is_err() {
                        let _ = tokio::fs::remove_file(&file).await;
                    }
                    let _ = reply.send(result);
                }
                Op::AttachVolume(disk, reply) => {
                    let _ = reply.send(self.attach_volume(disk).await);
                }
                Op::DetachVolume(volume_id, reply) => {
                    let _ = reply.send(self.detach_volume(volume_id).await);
                }
                Op::GrowVolume(volume_id, bytes, reply) => {
                    let _ = reply.send(self.grow_volume(volume_id, bytes).await);
                }
                Op::Hold(reply) => {
                    let running = self.state().await == PowerState::Running;
                    if running && let Err(e) = self.vmm.pause(&self.dir).await {
                        let _ = reply.send(Err(e.into()));
                        continue;
                    }
                    let (release, released) = oneshot::channel();
                    if reply.send(Ok(release)).is_ok() {
                        // Resolves when the holder drops its sender.
                        let _ = released.await;
                    }
                    if running && let Err(error) = self.vmm.resume(&self.dir).await {
                        tracing::error!(id = %self.id(), %error, "resuming after a hold failed");
                    }
                }
                Op::Delete(reply) => {
                    let result = self.delete().await;
                    let done = result.is_ok();
                    let _ = reply.send(result);
                    if done {
                        return;
                    }
                }
            }
        }
    }

    fn config(&self) -> VmConfig {
        vm_config(&self.record, &self.dir)
    }

    /// Writes the record and publishes its volumes.
    fn save(&mut self, record: VmRecord) -> Result<(), DriverError> {
        write_record(&self.dir, &record)?;
        *self.volumes.lock().unwrap_or_else(|p| p.into_inner()) = record.volumes.clone();
        self.record = record;
        Ok(())
    }

    /// The root disk, for operations that copy or grow it.
    fn root_disk(&self, op: &str) -> Result<PathBuf, DriverError> {
        self.config().root_disk.ok_or_else(|| DriverError {
            code: "unsupported",
            message: format!(
                "server {} boots from a volume: {op} acts on volumes through the volume API",
                self.id()
            ),
        })
    }

    /// Makes the running VM's volumes those of its record (after a restart, an attach or
    /// detach may have been cut short between the VMM and the record): plugs in what
    /// is missing, takes out what is not recorded.
    async fn reconcile_volumes(&self) {
        if self.record.incoming || self.state().await == PowerState::Shutdown {
            return;
        }
        let plugged = match self.vmm.attached_disks(&self.dir).await {
            Ok(plugged) => plugged,
            Err(VmmError::Unsupported(..)) => return,
            Err(error) => {
                tracing::warn!(id = %self.id(), %error, "cannot list the VM's volumes");
                return;
            }
        };
        for disk in &self.record.volumes {
            if !plugged.contains(&VolumeDisk::node_name(disk.volume_id)) {
                tracing::warn!(id = %self.id(), volume = %disk.volume_id, "plugging in a recorded volume the VM lacks");
                let plugged = match self.vmm.attach_disk(&self.dir, disk).await {
                    Ok(()) if !disk.limits.is_unlimited() => {
                        self.vmm
                            .set_io_limits(&self.dir, disk.volume_id, disk.limits)
                            .await
                    }
                    other => other,
                };
                if let Err(error) = plugged {
                    tracing::error!(id = %self.id(), volume = %disk.volume_id, %error, "cannot plug in a volume");
                }
            }
        }
        for node in &plugged {
            let recorded = self
                .record
                .volumes
                .iter()
                .any(|d| &VolumeDisk::node_name(d.volume_id) == node);
            // Names use only the first 24 hex digits of the volume id: any id with them
            // names the same device.
            let stray = node
                .strip_prefix("vol")
                .and_then(|hex| Uuid::parse_str(&format!("{hex}00000000")).ok());
            if let (false, Some(volume_id)) = (recorded, stray) {
                tracing::warn!(id = %self.id(), %node, "taking out a volume the record does not have");
                if let Err(error) = self
                    .vmm
                    .detach_disk(&self.dir, volume_id, DETACH_TIMEOUT)
                    .await
                {
                    tracing::error!(id = %self.id(), %node, %error, "cannot take out a volume");
                }
            }
        }
    }

    async fn attach_volume(&mut self, disk: VolumeDisk) -> Result<(), DriverError> {
        if self
            .record
            .volumes
            .iter()
            .any(|v| v.volume_id == disk.volume_id)
        {
            return Ok(());
        }
        if self.record.incoming {
            return Err(self.wrong_state("attach a volume to", PowerState::Paused));
        }
        match self.state().await {
            PowerState::Shutdown => {}
            PowerState::Running | PowerState::Paused => {
                self.vmm.attach_disk(&self.dir, &disk).await?;
                if !disk.limits.is_unlimited()
                    && let Err(e) = self
                        .vmm
                        .set_io_limits(&self.dir, disk.volume_id, disk.limits)
                        .await
                {
                    // Unlimited it must not stay: take it out again.
                    let _ = self
                        .vmm
                        .detach_disk(&self.dir, disk.volume_id, DETACH_TIMEOUT)
                        .await;
                    return Err(e.into());
                }
            }
            power => return Err(self.wrong_state("attach a volume to", power)),
        }
        let mut record = self.record.clone();
        record.volumes.push(disk.clone());
        if let Err(e) = self.save(record) {
            // Unrecorded, the device would be lost at the next start: take it out again.
            let _ = self
                .vmm
                .detach_disk(&self.dir, disk.volume_id, DETACH_TIMEOUT)
                .await;
            return Err(e);
        }
        Ok(())
    }

    async fn detach_volume(&mut self, volume_id: Uuid) -> Result<(), DriverError> {
        let Some(disk) = self
            .record
            .volumes
            .iter()
            .find(|v| v.volume_id == volume_id)
        else {
            return Ok(());
        };
        if disk.is_boot() {
            return Err(DriverError {
                code: "state",
                message: format!(
                    "volume {volume_id} is the boot disk of server {}; it is detached when                      the server is deleted",
                    self.id()
                ),
            });
        }
        if self.state().await != PowerState::Shutdown {
            self.vmm
                .detach_disk(&self.dir, volume_id, DETACH_TIMEOUT)
                .await?;
        }
        let mut record = self.record.clone();
        record.volumes.retain(|v| v.volume_id != volume_id);
        self.save(record)
    }

    async fn grow_volume(&mut self, volume_id: Uuid, bytes: u64) -> Result<(), DriverError> {
        if !self.record.volumes.iter().any(|v| v.volume_id == volume_id) {
            return Err(DriverError {
                code: "not-found",
                message: format!("volume {volume_id} is not attached to server {}", self.id()),
            });
        }
        if self.state().await == PowerState::Shutdown {
            return Err(DriverError {
                code: "state",
                message: format!("server {} is not running", self.id()),
            });
        }
        self.vmm.grow_disk(&self.dir, volume_id, bytes).await?;
        Ok(())
    }

    fn id(&self) -> Uuid {
        self.record.spec.id
    }

    async fn state(&self) -> PowerState {
        self.vmm.power_state(&self.dir).await
    }

    fn wrong_state(&self, op: &str, power: PowerState) -> DriverError {
        DriverError {
            code: "state",
            message: format!("cannot {op} server {} while it is {power:?}", self.id()),
        }
    }

    async fn reply(&self) -> Result<ServerReply, DriverError> {
        Ok(ServerReply {
            id: self.id(),
            power_state: self.state().await,
            migration_uri: None,
        })
    }

    /// ACPI power-down, then forced off when the guest has not stopped within `timeout`.
    async fn stop(&self, timeout: Duration) -> Result<(), DriverError> {
        if self.state().await == PowerState::Shutdown {
            return Ok(());
        }
        if let Err(error) = self.vmm.power_button(&self.dir).await {
            tracing::warn!(id = %self.id(), %error, "power button failed; forcing off");
        } else {
            let start = Instant::now();
            while start.elapsed() < timeout {
                if self.state().await == PowerState::Shutdown {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tracing::warn!(id = %self.id(), ?timeout, "guest did not power off; forcing off");
        }
        self.vmm.force_off(&self.dir).await?;
        Ok(())
    }

    async fn act(&mut self, action: ServerAction) -> Result<ServerReply, DriverError> {
        let op = action.name();
        let power = self.state().await;
        match action {
            ServerAction::Start => {
                if power != PowerState::Shutdown {
                    return Err(self.wrong_state(op, power));
                }
                boot_and_wait(self.vmm.as_ref(), &self.network, &self.config()).await?;
            }
            ServerAction::Stop { timeout_secs } => {
                if power != PowerState::Running && power != PowerState::Paused {
                    return Err(self.wrong_state(op, power));
                }
                self.stop(Duration::from_secs(timeout_secs)).await?;
            }
            ServerAction::Reboot { hard: true } => {
                if power == PowerState::Shutdown {
                    boot_and_wait(self.vmm.as_ref(), &self.network, &self.config()).await?;
                } else {
                    self.vmm.reset(&self.dir).await?;
                    if power == PowerState::Paused {
                        self.vmm.resume(&self.dir).await?;
                    }
                }
            }
            ServerAction::Reboot { hard: false } => {
                if power != PowerState::Running {
                    return Err(self.wrong_state(op, power));
                }
                // As libvirt without a guest agent: power down, then start again.
                self.stop(self.graceful_timeout).await?;
                boot_and_wait(self.vmm.as_ref(), &self.network, &self.config()).await?;
            }
            ServerAction::Resize { flavor } => {
                if self.record.old_flavor.is_some() {
                    return Err(self.wrong_state("resize again before confirming", power));
                }
                let was_running = power != PowerState::Shutdown;
                self.stop(self.graceful_timeout).await?;
                // A server booted from a volume keeps its volume as it is (as Nova does).
                if let Some(disk) = self.config().root_disk {
                    let keep = self.dir.join("disk.pre-resize.qcow2");
                    tokio::fs::copy(&disk, &keep)
                        .await
                        .map_err(|e| failed(format!("cannot keep the disk for a revert: {e}")))?;
                    if let Err(e) = grow_disk(&disk, flavor.disk_gb).await {
                        let _ = tokio::fs::rename(&keep, &disk).await;
                        return Err(e);
                    }
                }
                let mut record = self.record.clone();
                record.old_flavor = Some(record.spec.flavor);
                record.spec.flavor = flavor;
                self.save(record)?;
                if was_running {
                    boot_and_wait(self.vmm.as_ref(), &self.network, &self.config()).await?;
                }
            }
            ServerAction::ConfirmResize => {
                if self.record.old_flavor.is_none() {
                    return Err(self.wrong_state(op, power));
                }
                let mut record = self.record.clone();
                record.old_flavor = None;
                self.save(record)?;
                let _ = tokio::fs::remove_file(self.dir.join("disk.pre-resize.qcow2")).await;
            }
            ServerAction::RevertResize => {
                let Some(old) = self.record.old_flavor else {
                    return Err(self.wrong_state(op, power));
                };
                let was_running = power != PowerState::Shutdown;
                self.stop(self.graceful_timeout).await?;
                if let Some(disk) = self.config().root_disk {
                    tokio::fs::rename(self.dir.join("disk.pre-resize.qcow2"), disk)
                        .await
                        .map_err(|e| {
                            failed(format!("cannot restore the disk of before the resize: {e}"))
                        })?;
                }
                let mut record = self.record.clone();
                record.old_flavor = None;
                record.spec.flavor = old;
                self.save(record)?;
                if was_running {
                    boot_and_wait(self.vmm.as_ref(), &self.network, &self.config()).await?;
                }
            }
            ServerAction::PrepareIncoming { .. } => {
                return Err(self.wrong_state("prepare an incoming migration of", power));
            }
            ServerAction::MigrateOut { uri } => {
                if power != PowerState::Running || self.record.incoming {
                    return Err(self.wrong_state(op, power));
                }
                // QEMU copies the volumes along (the target made blank ones); Cloud
                // Hypervisor copies no disk, so its volumes would arrive empty.
                if !self.record.volumes.is_empty() && self.vmm.kind() != VmmDriver::Qemu {
                    return Err(DriverError {
                        code: "unsupported",
                        message: format!(
                            "server {} has volumes attached, and {:?} does not copy disks in \
                             a live migration; detach them before migrating it live",
                            self.id(),
                            self.vmm.kind()
                        ),
                    });
                }
                self.vmm.send_migration(&self.config(), &uri).await?;
                tracing::info!(id = %self.id(), %uri, "live migration sent; removing the source");
                self.delete().await?;
                return Ok(ServerReply {
                    id: self.id(),
                    power_state: PowerState::Shutdown,
                    migration_uri: None,
                });
            }
            ServerAction::FinishIncoming => {
                if !self.record.incoming {
                    return Err(self.wrong_state(op, power));
                }
                // The guest runs here once the last of its state arrived; its volumes'
                // limits are the VMM's settings, not the guest's state, so set again.
                let config = self.config();
                self.vmm.finish_incoming(&self.dir).await?;
                wait_for(self.vmm.as_ref(), &config, PowerState::Running).await?;
                limit_volumes(self.vmm.as_ref(), &config).await?;
                for nic in &config.nics {
                    self.network.attach_port(&nic.port_id).await?;
                }
                let mut record = self.record.clone();
                record.incoming = false;
                self.save(record)?;
            }
            ServerAction::AbortIncoming => {
                if !self.record.incoming {
                    return Err(self.wrong_state(op, power));
                }
                self.delete().await?;
                return Ok(ServerReply {
                    id: self.id(),
                    power_state: PowerState::Shutdown,
                    migration_uri: None,
                });
            }
        }
        self.reply().await
    }

    /// Copies the root disk (with its base) into one qcow2; a running guest is paused for
    /// the copy so that the disk does not change under it.
    async fn snapshot(&self, file: &Path) -> Result<(), DriverError> {
        let disk = self.root_disk("a snapshot of the server")?;
        let pause = self.state().await == PowerState::Running;
        if pause {
            self.vmm.pause(&self.dir).await?;
        }
        // -U: QEMU holds the disk's lock; the paused guest writes nothing meanwhile.
        let args = [
            "convert".as_ref(),
            "-U".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            disk.as_os_str(),
            file.as_os_str(),
        ];
        let copied = execute("qemu-img", args, TOOL_TIMEOUT).await;
        if pause {
            self.vmm.resume(&self.dir).await?;
        }
        copied.map_err(failed)?;
        Ok(())
    }

    /// Stops the VM at once and removes everything it owned.
    async fn delete(&self) -> Result<(), DriverError> {
        self.vmm.force_off(&self.dir).await?;
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed(format!("cannot remove {}: {e}", self.dir.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use base64::Engine;
    use yunji_common::agent_api::ImageSpec;

    use super::*;

    /// What the fake VMM does when asked to boot.
    #[derive(Clone, Copy, PartialEq)]
    enum BootOutcome {
        Runs,
        Fails,
        /// Starts, and its process ends at once (a guest that cannot run).
        Dies,
    }

    /// A VMM that runs nothing: it records which VM directories "run".
    struct FakeVmm {
        outcome: BootOutcome,
        running: Mutex<HashSet<PathBuf>>,
    }

    impl FakeVmm {
        fn running(&self) -> HashSet<PathBuf> {
            self.running.lock().unwrap().clone()
        }
    }

    impl Vmm for Arc<FakeVmm> {
        fn kind(&self) -> VmmDriver {
            VmmDriver::Qemu
        }
        async fn boot(&self, vm: &VmConfig) -> Result<(), VmmError> {
            assert!(vm.root_disk.as_ref().is_some_and(|d| d.exists()) && vm.config_drive.exists());
            match self.outcome {
                BootOutcome::Fails => Err(VmmError::Failed("injected boot failure".into())),
                BootOutcome::Dies => Ok(()),
                BootOutcome::Runs => {
                    self.running.lock().unwrap().insert(vm.dir.clone());
                    Ok(())
                }
            }
        }
        async fn power_state(&self, dir: &Path) -> PowerState {
            if self.running.lock().unwrap().contains(dir) {
                PowerState::Running
            } else {
                PowerState::Shutdown
            }
        }
        async fn power_button(&self, dir: &Path) -> Result<(), VmmError> {
            self.running.lock().unwrap().remove(dir);
            Ok(())
        }
        async fn reset(&self, _dir: &Path) -> Result<(), VmmError> {
            Ok(())
        }
        async fn pause(&self, _dir: &Path) -> Result<(), VmmError> {
            Ok(())
        }
        async fn resume(&self, _dir: &Path) -> Result<(), VmmError> {
            Ok(())
        }
        async fn force_off(&self, dir: &Path) -> Result<(), VmmError> {
            self.running.lock().unwrap().remove(dir);
            Ok(())
        }
        fn console_path(&self, dir: &Path) -> PathBuf {
            dir.join("console.log")
        }
    }

    fn sim_network() -> Arc<NetworkDriver> {
        Arc::new(NetworkDriver::Sim(
            crate::drivers::sim_network::SimNetwork::new(Duration::ZERO),
        ))
    }

    const IMAGE: &str = "0b6c3c4e-7d2a-4f57-9a43-2f9e5b1e4a10";

    fn host(dir: &Path, outcome: BootOutcome) -> (VmHost<Arc<FakeVmm>>, Arc<FakeVmm>) {
        let fake = Arc::new(FakeVmm {
            outcome,
            running: Mutex::new(HashSet::new()),
        });
        let capacity = Capacity {
            vcpus: 4,
            memory_mb: 4096,
            disk_gb: 10,
        };
        let host = VmHost::new(
            fake.clone(),
            sim_network(),
            dir.to_path_buf(),
            capacity,
            Duration::from_secs(1),
        )
        .unwrap();
        // A 1 MiB raw base image, as a push would have left it.
        std::fs::write(dir.join("images").join(IMAGE), vec![0u8; 1 << 20]).unwrap();
        (host, fake)
    }

    fn spec(image: &str, user_data: Option<String>) -> ServerSpec {
        ServerSpec {
            id: Uuid::new_v4(),
            name: "vm".into(),
            hostname: "vm".into(),
            project_id: "p".into(),
            flavor: FlavorSpec {
                vcpus: 1,
                memory_mb: 128,
                disk_gb: 1,
            },
            image: Some(ImageSpec {
                id: image.into(),
                disk_format: "raw".into(),
                size: 1 << 20,
                os_hash_value: None,
            }),
            user_data,
            metadata: Default::default(),
            public_key: None,
            nics: Vec::new(),
            volumes: Vec::new(),
        }
    }

    fn vm_dirs(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("vms")).unwrap().count()
    }

    #[tokio::test]
    async fn a_failure_at_each_provisioning_step_leaves_nothing_behind() {
        let good_data = base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\n");
        let cases = [
            // The image is not on the node: before the disk.
            (
                BootOutcome::Runs,
                spec("7f4c2a52-1111-4a4a-9c9c-000000000000", None),
                "not-found",
            ),
            // The config drive: user_data that does not decode.
            (
                BootOutcome::Runs,
                spec(IMAGE, Some("%%%".into())),
                "bad-request",
            ),
            // The VMM refuses to start.
            (
                BootOutcome::Fails,
                spec(IMAGE, Some(good_data.clone())),
                "vmm",
            ),
            // The VMM starts and its guest ends at once.
            (BootOutcome::Dies, spec(IMAGE, Some(good_data)), "vmm"),
        ];
        for (outcome, spec, code) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (host, fake) = host(dir.path(), outcome);
            let id = spec.id;
            let error = host.create(spec, Vec::new()).await.unwrap_err();
            assert_eq!(error.code, code, "{}", error.message);
            assert_eq!(vm_dirs(dir.path()), 0, "{}", error.message);
            assert!(fake.running().is_empty());
            assert!(host.observe().await.unwrap().1.servers.is_empty());
            assert_eq!(
                host.act(id, ServerAction::Start).await.unwrap_err().code,
                "not-found"
            );
        }
    }

    #[tokio::test]
    async fn a_vm_is_re_adopted_from_its_directory_and_delete_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let (host, fake) = host(dir.path(), BootOutcome::Runs);
        let spec = spec(IMAGE, None);
        let id = spec.id;
        let reply = host.create(spec, Vec::new()).await.unwrap();
        assert_eq!(reply.power_state, PowerState::Running);
        let vm_dir = dir.path().join("vms").join(id.to_string());
        for file in ["spec.json", "disk.qcow2", "config.img"] {
            assert!(vm_dir.join(file).exists(), "{file}");
        }
        // A directory a create left half-made (no record) goes at the next start.
        std::fs::create_dir_all(dir.path().join("vms/half-made")).unwrap();
        drop(host);

        let again = VmHost::new(
            fake.clone(),
            sim_network(),
            dir.path().to_path_buf(),
            Capacity {
                vcpus: 1,
                memory_mb: 1,
                disk_gb: 1,
            },
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!dir.path().join("vms/half-made").exists());
        let servers = again.observe().await.unwrap().1.servers;
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].id, id);
        assert_eq!(servers[0].power_state, PowerState::Running);
        let stopped = again
            .act(id, ServerAction::Stop { timeout_secs: 1 })
            .await
            .unwrap();
        assert_eq!(stopped.power_state, PowerState::Shutdown);
        again.delete(id).await.unwrap();
        assert!(!vm_dir.exists());
        assert!(again.observe().await.unwrap().1.servers.is_empty());
    }

    #[tokio::test]
    async fn resize_keeps_the_old_disk_until_confirmed_and_revert_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let (host, _fake) = host(dir.path(), BootOutcome::Runs);
        let spec = spec(IMAGE, None);
        let id = spec.id;
        host.create(spec, Vec::new()).await.unwrap();
        let vm_dir = dir.path().join("vms").join(id.to_string());
        let larger = FlavorSpec {
            vcpus: 2,
            memory_mb: 256,
            disk_gb: 2,
        };
        host.act(id, ServerAction::Resize { flavor: larger })
            .await
            .unwrap();
        assert_eq!(
            images::virtual_size(&vm_dir.join("disk.qcow2"))
                .await
                .unwrap(),
            2 << 30
        );
        assert!(vm_dir.join("disk.pre-resize.qcow2").exists());
        assert_eq!(
            host.act(id, ServerAction::Resize { flavor: larger })
                .await
                .unwrap_err()
                .code,
            "state"
        );
        let reverted = host.act(id, ServerAction::RevertResize).await.unwrap();
        assert_eq!(reverted.power_state, PowerState::Running);
        assert_eq!(
            images::virtual_size(&vm_dir.join("disk.qcow2"))
                .await
                .unwrap(),
            1 << 30
        );
        let record: VmRecord =
            serde_json::from_slice(&std::fs::read(vm_dir.join("spec.json")).unwrap()).unwrap();
        assert_eq!(record.spec.flavor.vcpus, 1);
        assert!(record.old_flavor.is_none());
        assert!(!vm_dir.join("disk.pre-resize.qcow2").exists());
    }
}
