//! Cloud disks on real VMs: a `VolumeStore` keeps the node's volumes and snapshots
//! (qcow2 files, `files`, or device-mapper thin volumes, `thin`), and `RealDisks` puts
//! them into the node's VMs through `VmHost` — hot-plugged into running VMs, plugged at
//! the next start of stopped ones, grown live, snapshotted while the VM using them is
//! paused. Which VM uses a volume is kept by the VM (its record), so it survives an
//! agent restart with the VM.

pub mod files;
pub mod thin;

use std::future::Future;
use std::path::{Path, PathBuf};

use uuid::Uuid;
use yunji_common::agent_api::{
    AttachmentInventory, DiskDriver, IoLimits, SnapshotInventory, SnapshotSpec, StorageStatus,
    VolumeAttach, VolumeAttachment, VolumeDetach, VolumeInventory, VolumeSource, VolumeSpec,
};

use crate::drivers::sim_disk::SimDisk;
use crate::drivers::{DriverError, DriverSet};
use crate::vmm::{VmHost, Vmm, VolumeDisk};

pub(crate) fn not_found(what: &str, id: Uuid) -> DriverError {
    DriverError {
        code: "not-found",
        message: format!("no {what} {id} on this node"),
    }
}

pub(crate) fn store_failed(message: String) -> DriverError {
    DriverError {
        code: "disk",
        message,
    }
}

fn state(message: String) -> DriverError {
    DriverError {
        code: "state",
        message,
    }
}

/// What a new volume starts with, as the store sees it.
#[derive(Debug, Clone, Copy)]
pub enum StoreSource<'a> {
    Blank,
    /// A base image of the node (`vmm::images`) in qemu-img's `format`.
    Image {
        path: &'a Path,
        format: &'a str,
    },
    Snapshot(Uuid),
}

/// Where volumes and their snapshots are kept: files, or device-mapper thin volumes.
pub trait VolumeStore: Send + Sync + 'static {
    fn kind(&self) -> DiskDriver;
    /// The space volumes may take, and what they were given (their full sizes).
    fn capacity_gb(&self) -> u64;
    fn provisioned_gb(&self) -> u64;
    fn volumes(&self) -> Vec<(Uuid, u64)>;
    fn snapshots(&self) -> Vec<SnapshotInventory>;
    fn size_gb(&self, id: Uuid) -> Option<u64>;
    /// How a VMM opens the volume: its path, qemu format, and whether it is a block
    /// device.
    fn open(&self, id: Uuid) -> Result<(PathBuf, &'static str, bool), DriverError>;
    /// Whether VMs may share the volume (made `shared`): they open it without locking
    /// each other out.
    fn shared(&self, id: Uuid) -> bool;
    /// Makes a volume, `shared` when several VMs may write it at once; nothing of it is
    /// left when it fails.
    fn create(
        &self,
        id: Uuid,
        size_gb: u64,
        source: StoreSource<'_>,
        shared: bool,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
    fn delete(&self, id: Uuid) -> impl Future<Output = Result<(), DriverError>> + Send;
    /// Grows a volume; `live` when a running VM uses it (and grows its view next).
    fn grow(
        &self,
        id: Uuid,
        size_gb: u64,
        live: bool,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
    /// Copies a volume that does not change meanwhile.
    fn snapshot(
        &self,
        id: Uuid,
        volume_id: Uuid,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
    fn snapshot_delete(&self, id: Uuid) -> impl Future<Output = Result<(), DriverError>> + Send;
}

/// A volume store and the node's VMs that use its volumes.
pub struct RealDisks<S: VolumeStore> {
    store: S,
}

impl<S: VolumeStore> RealDisks<S> {
    pub fn new(store: S) -> RealDisks<S> {
        RealDisks { store }
    }

    fn inventory(&self, id: Uuid, users: &[(Uuid, VolumeDisk)]) -> VolumeInventory {
        VolumeInventory {
            id,
            size_gb: self.store.size_gb(id).unwrap_or(0),
            attachments: users
                .iter()
                .filter(|(_, disk)| disk.volume_id == id)
                .map(|(server_id, disk)| AttachmentInventory {
                    server_id: *server_id,
                    device: disk.device.clone(),
                    read_only: disk.read_only,
                })
                .collect(),
        }
    }

    pub fn observe<V: Vmm>(&self, host: &VmHost<V>) -> StorageStatus {
        let users = host.attachments();
        let capacity_gb = self.store.capacity_gb();
        let mut volumes: Vec<VolumeInventory> = self
            .store
            .volumes()
            .into_iter()
            .map(|(id, _)| self.inventory(id, &users))
            .collect();
        volumes.sort_by_key(|v| v.id);
        let mut snapshots = self.store.snapshots();
        snapshots.sort_by_key(|s| s.id);
        StorageStatus {
            capacity_gb,
            free_gb: capacity_gb.saturating_sub(self.store.provisioned_gb()),
            volumes,
            snapshots,
        }
    }

    fn ensure_room(&self, extra_gb: u64) -> Result<(), DriverError> {
        let free = self
            .store
            .capacity_gb()
            .saturating_sub(self.store.provisioned_gb());
        if extra_gb > free {
            return Err(DriverError {
                code: "no-space",
                message: format!("{extra_gb} GB asked, {free} GB free for volumes on this node"),
            });
        }
        Ok(())
    }

    fn exists(&self, id: Uuid) -> Result<u64, DriverError> {
        self.store
            .size_gb(id)
            .ok_or_else(|| not_found("volume", id))
    }

    /// Makes a volume; making one that exists already answers it (a retried call).
    pub async fn create<V: Vmm>(
        &self,
        host: &VmHost<V>,
        spec: VolumeSpec,
    ) -> Result<VolumeInventory, DriverError> {
        if self.store.size_gb(spec.id).is_none() {
            self.ensure_room(spec.size_gb)?;
            let image_path;
            let source = match &spec.source {
                VolumeSource::Blank => StoreSource::Blank,
                VolumeSource::Image { image } => {
                    image_path = host.images().path_of(&image.id)?;
                    StoreSource::Image {
                        path: &image_path,
                        format: crate::vmm::base_format(&image.disk_format)?,
                    }
                }
                VolumeSource::Snapshot { snapshot_id } => StoreSource::Snapshot(*snapshot_id),
            };
            self.store
                .create(spec.id, spec.size_gb, source, spec.shared)
                .await?;
        }
        Ok(self.inventory(spec.id, &host.attachments()))
    }

    /// Deletes a volume; refused while a VM uses it or a snapshot was taken of it.
    pub async fn delete<V: Vmm>(&self, host: &VmHost<V>, id: Uuid) -> Result<(), DriverError> {
        if let Some((server, _)) = host.attachments().iter().find(|(_, d)| d.volume_id == id) {
            return Err(state(format!(
                "volume {id} is attached to server {server}; detach it first"
            )));
        }
        if self.store.snapshots().iter().any(|s| s.volume_id == id) {
            return Err(state(format!(
                "volume {id} has snapshots; delete them first"
            )));
        }
        self.store.delete(id).await
    }

    /// Grows a volume, live in the running VMs that use it.
    pub async fn extend<V: Vmm>(
        &self,
        host: &VmHost<V>,
        id: Uuid,
        size_gb: u64,
    ) -> Result<VolumeInventory, DriverError> {
        let current = self.exists(id)?;
        if size_gb <= current {
            return Err(state(format!(
                "volume {id} has {current} GB; it can only grow"
            )));
        }
        self.ensure_room(size_gb - current)?;
        let user = host
            .attachments()
            .into_iter()
            .find(|(_, d)| d.volume_id == id);
        let live = match user {
            Some((server, _)) => host.is_running(server).await,
            None => false,
        };
        self.store.grow(id, size_gb, live).await?;
        if let (true, Some((server, _))) = (live, user) {
            host.grow_volume(server, id, size_gb << 30).await?;
        }
        Ok(self.inventory(id, &host.attachments()))
    }

    /// How a VM opens a volume attached as `device`.
    pub fn disk(
        &self,
        volume_id: Uuid,
        device: String,
        read_only: bool,
        limits: IoLimits,
    ) -> Result<VolumeDisk, DriverError> {
        let (path, format, block_device) = self.store.open(volume_id)?;
        Ok(VolumeDisk {
            volume_id,
            path,
            format: format.to_string(),
            block_device,
            shared: self.store.shared(volume_id),
            read_only,
            device,
            limits,
        })
    }

    fn disks(&self, attachments: &[VolumeAttachment]) -> Result<Vec<VolumeDisk>, DriverError> {
        attachments
            .iter()
            .map(|a| self.disk(a.volume_id, a.device.clone(), a.read_only, a.limits))
            .collect()
    }

    /// Attaches a volume to a server of this node; attaching it again answers the
    /// attachment that exists.
    pub async fn attach<V: Vmm>(
        &self,
        host: &VmHost<V>,
        id: Uuid,
        attach: VolumeAttach,
    ) -> Result<VolumeInventory, DriverError> {
        let disk = self.disk(id, attach.device, attach.read_only, attach.limits)?;
        host.attach_volume(attach.server_id, disk).await?;
        Ok(self.inventory(id, &host.attachments()))
    }

    /// Detaches a volume once the guest released it.
    pub async fn detach<V: Vmm>(
        &self,
        host: &VmHost<V>,
        id: Uuid,
        detach: VolumeDetach,
    ) -> Result<VolumeInventory, DriverError> {
        self.exists(id)?;
        match host.detach_volume(detach.server_id, id).await {
            // A server that is gone uses nothing.
            Err(e) if e.code == "not-found" => {}
            other => other?,
        }
        Ok(self.inventory(id, &host.attachments()))
    }

    /// Snapshots a volume; the running VMs that use it are paused for the copy.
    pub async fn snapshot_create<V: Vmm>(
        &self,
        host: &VmHost<V>,
        spec: SnapshotSpec,
    ) -> Result<SnapshotInventory, DriverError> {
        let existing = |store: &S| store.snapshots().into_iter().find(|s| s.id == spec.id);
        if let Some(snapshot) = existing(&self.store) {
            return Ok(snapshot);
        }
        let size_gb = self.exists(spec.volume_id)?;
        self.ensure_room(size_gb)?;
        let mut holds = Vec::new();
        for (server, disk) in host.attachments() {
            if disk.volume_id == spec.volume_id {
                holds.push(host.hold(server).await?);
            }
        }
        let made = self.store.snapshot(spec.id, spec.volume_id).await;
        drop(holds);
        made?;
        existing(&self.store).ok_or_else(|| not_found("snapshot", spec.id))
    }

    pub async fn snapshot_delete(&self, id: Uuid) -> Result<(), DriverError> {
        self.store.snapshot_delete(id).await
    }
}

/// The node's disk driver: the sim's, or real volumes for real VMs.
pub enum Disks {
    Sim(SimDisk),
    Files(RealDisks<files::FileStore>),
    Thin(RealDisks<thin::ThinStore>),
}

fn no_real_vms() -> DriverError {
    DriverError {
        code: "unsupported",
        message: "this node's volumes are real disks, but it runs no real VMs".into(),
    }
}

fn no_sim() -> DriverError {
    DriverError {
        code: "unsupported",
        message: "this node's volumes are simulated, but it runs real VMs".into(),
    }
}

/// Runs `$sim` with the sim set's clock, or `$real` with the real disks and VM host.
macro_rules! dispatch {
    ($disks:expr, $drivers:expr, |$d:ident, $sim:ident| $on_sim:expr, |$r:ident, $host:ident| $on_real:expr) => {
        match ($disks, $drivers) {
            (Disks::Sim($d), DriverSet::Sim($sim)) => $on_sim,
            (Disks::Files($r), DriverSet::Qemu($host)) => $on_real,
            (Disks::Thin($r), DriverSet::Qemu($host)) => $on_real,
            (Disks::Files($r), DriverSet::CloudHypervisor($host)) => $on_real,
            (Disks::Thin($r), DriverSet::CloudHypervisor($host)) => $on_real,
            (Disks::Sim(_), _) => Err(no_sim()),
            (Disks::Files(_) | Disks::Thin(_), _) => Err(no_real_vms()),
        }
    };
}

impl Disks {
    pub fn kind(&self) -> DiskDriver {
        match self {
            Disks::Sim(_) => DiskDriver::Sim,
            Disks::Files(disks) => disks.store.kind(),
            Disks::Thin(disks) => disks.store.kind(),
        }
    }

    pub fn observe(&self, drivers: &DriverSet) -> StorageStatus {
        match (self, drivers) {
            (Disks::Sim(d), _) => d.observe(),
            (Disks::Files(r), DriverSet::Qemu(host)) => r.observe(host),
            (Disks::Thin(r), DriverSet::Qemu(host)) => r.observe(host),
            (Disks::Files(r), DriverSet::CloudHypervisor(host)) => r.observe(host),
            (Disks::Thin(r), DriverSet::CloudHypervisor(host)) => r.observe(host),
            (Disks::Files(_) | Disks::Thin(_), _) => StorageStatus::default(),
        }
    }

    /// The volumes a new server has from its start, as its VM opens them.
    pub fn server_volumes(
        &self,
        attachments: &[VolumeAttachment],
    ) -> Result<Vec<VolumeDisk>, DriverError> {
        match self {
            Disks::Sim(_) => Ok(Vec::new()),
            Disks::Files(r) => r.disks(attachments),
            Disks::Thin(r) => r.disks(attachments),
        }
    }

    pub async fn create(
        &self,
        drivers: &DriverSet,
        spec: VolumeSpec,
    ) -> Result<VolumeInventory, DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.create(sim, spec).await,
            |r, host| r.create(host, spec).await
        )
    }

    pub async fn delete(&self, drivers: &DriverSet, id: Uuid) -> Result<(), DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.delete(sim, id).await,
            |r, host| r.delete(host, id).await
        )
    }

    pub async fn extend(
        &self,
        drivers: &DriverSet,
        id: Uuid,
        size_gb: u64,
    ) -> Result<VolumeInventory, DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.extend(sim, id, size_gb).await,
            |r, host| r.extend(host, id, size_gb).await
        )
    }

    pub async fn attach(
        &self,
        drivers: &DriverSet,
        id: Uuid,
        attach: VolumeAttach,
    ) -> Result<VolumeInventory, DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.attach(sim, id, attach).await,
            |r, host| r.attach(host, id, attach).await
        )
    }

    pub async fn detach(
        &self,
        drivers: &DriverSet,
        id: Uuid,
        detach: VolumeDetach,
    ) -> Result<VolumeInventory, DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.detach(sim, id, detach).await,
            |r, host| r.detach(host, id, detach).await
        )
    }

    pub async fn snapshot_create(
        &self,
        drivers: &DriverSet,
        spec: SnapshotSpec,
    ) -> Result<SnapshotInventory, DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.snapshot_create(sim, spec).await,
            |r, host| r.snapshot_create(host, spec).await
        )
    }

    pub async fn snapshot_delete(&self, drivers: &DriverSet, id: Uuid) -> Result<(), DriverError> {
        dispatch!(
            self,
            drivers,
            |d, sim| d.snapshot_delete(sim, id).await,
            |r, _host| r.snapshot_delete(id).await
        )
    }
}
