//! The simulated disk driver: volumes and their snapshots as records with sizes, held
//! against the node's disk capacity, attached to the sim VMM's servers. Every operation
//! takes simulated time and can be made to fail through the sim set's faults
//! (`volume_create`, `volume_delete`, `volume_extend`, `volume_attach`, `volume_detach`,
//! `snapshot_create`, `snapshot_delete`).

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;
use yunji_common::agent_api::{
    AttachmentInventory, SnapshotInventory, SnapshotSpec, StorageStatus, VolumeAttach,
    VolumeDetach, VolumeInventory, VolumeSource, VolumeSpec,
};

use super::DriverError;
use super::sim::Sim;

#[derive(Default)]
struct Held {
    volumes: HashMap<Uuid, VolumeInventory>,
    snapshots: HashMap<Uuid, SnapshotInventory>,
}

impl Held {
    fn used_gb(&self) -> u64 {
        self.volumes.values().map(|v| v.size_gb).sum::<u64>()
            + self.snapshots.values().map(|s| s.size_gb).sum::<u64>()
    }
}

pub struct SimDisk {
    capacity_gb: u64,
    held: Mutex<Held>,
}

fn not_found(what: &str, id: Uuid) -> DriverError {
    DriverError {
        code: "not-found",
        message: format!("sim disk: no {what} {id} on this node"),
    }
}

fn state(message: String) -> DriverError {
    DriverError {
        code: "state",
        message: format!("sim disk: {message}"),
    }
}

impl SimDisk {
    pub fn new(capacity_gb: u64) -> SimDisk {
        SimDisk {
            capacity_gb,
            held: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ensure_room(&self, held: &Held, extra_gb: u64) -> Result<(), DriverError> {
        let free = self.capacity_gb.saturating_sub(held.used_gb());
        if extra_gb > free {
            return Err(DriverError {
                code: "no-space",
                message: format!("sim disk: {extra_gb} GB asked, {free} GB free on this node"),
            });
        }
        Ok(())
    }

    fn volume(&self, id: Uuid) -> Result<VolumeInventory, DriverError> {
        self.held()
            .volumes
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found("volume", id))
    }

    pub fn observe(&self) -> StorageStatus {
        let held = self.held();
        let mut volumes: Vec<VolumeInventory> = held.volumes.values().cloned().collect();
        volumes.sort_by_key(|v| v.id);
        let mut snapshots: Vec<SnapshotInventory> = held.snapshots.values().copied().collect();
        snapshots.sort_by_key(|s| s.id);
        StorageStatus {
            capacity_gb: self.capacity_gb,
            free_gb: self.capacity_gb.saturating_sub(held.used_gb()),
            volumes,
            snapshots,
        }
    }

    /// Makes a volume; making one that exists already answers it (a retried call).
    pub async fn create(
        &self,
        sim: &Sim,
        spec: VolumeSpec,
    ) -> Result<VolumeInventory, DriverError> {
        if let Ok(existing) = self.volume(spec.id) {
            return Ok(existing);
        }
        {
            let held = self.held();
            self.ensure_room(&held, spec.size_gb)?;
            if let VolumeSource::Snapshot { snapshot_id } = &spec.source {
                let snapshot = held
                    .snapshots
                    .get(snapshot_id)
                    .ok_or_else(|| not_found("snapshot", *snapshot_id))?;
                if snapshot.size_gb > spec.size_gb {
                    return Err(state(format!(
                        "snapshot {snapshot_id} holds {} GB, more than the {} GB volume",
                        snapshot.size_gb, spec.size_gb
                    )));
                }
            }
        }
        // Copying an image or a snapshot takes longer than allocating a blank volume.
        let units = match spec.source {
            VolumeSource::Blank => 1,
            _ => 2,
        };
        sim.step("volume_create", units).await?;
        let mut held = self.held();
        // Checked again: another volume may have taken the room meanwhile.
        self.ensure_room(&held, spec.size_gb)?;
        let volume = VolumeInventory {
            id: spec.id,
            size_gb: spec.size_gb,
            attachments: Vec::new(),
        };
        held.volumes.insert(spec.id, volume.clone());
        Ok(volume)
    }

    /// Deletes a volume; one that is not here is already deleted.
    pub async fn delete(&self, sim: &Sim, id: Uuid) -> Result<(), DriverError> {
        {
            let held = self.held();
            let Some(volume) = held.volumes.get(&id) else {
                return Ok(());
            };
            if !volume.attachments.is_empty() {
                return Err(state(format!("volume {id} is attached")));
            }
            if held.snapshots.values().any(|s| s.volume_id == id) {
                return Err(state(format!("volume {id} has snapshots")));
            }
        }
        sim.step("volume_delete", 1).await?;
        self.held().volumes.remove(&id);
        Ok(())
    }

    pub async fn extend(
        &self,
        sim: &Sim,
        id: Uuid,
        size_gb: u64,
    ) -> Result<VolumeInventory, DriverError> {
        let current = self.volume(id)?;
        if size_gb <= current.size_gb {
            return Err(state(format!(
                "volume {id} has {} GB; it can only grow",
                current.size_gb
            )));
        }
        self.ensure_room(&self.held(), size_gb - current.size_gb)?;
        sim.step("volume_extend", 1).await?;
        let mut held = self.held();
        self.ensure_room(&held, size_gb - current.size_gb)?;
        let volume = held
            .volumes
            .get_mut(&id)
            .ok_or_else(|| not_found("volume", id))?;
        volume.size_gb = size_gb;
        Ok(volume.clone())
    }

    /// Attaches a volume to a server this node runs; attaching it again to the same
    /// server answers the attachment that exists.
    pub async fn attach(
        &self,
        sim: &Sim,
        id: Uuid,
        attach: VolumeAttach,
    ) -> Result<VolumeInventory, DriverError> {
        let volume = self.volume(id)?;
        if volume
            .attachments
            .iter()
            .any(|a| a.server_id == attach.server_id)
        {
            return Ok(volume);
        }
        if !sim.has_server(attach.server_id) {
            return Err(not_found("server", attach.server_id));
        }
        sim.step("volume_attach", 1).await?;
        let mut held = self.held();
        let volume = held
            .volumes
            .get_mut(&id)
            .ok_or_else(|| not_found("volume", id))?;
        volume.attachments.push(AttachmentInventory {
            server_id: attach.server_id,
            device: attach.device,
            read_only: attach.read_only,
        });
        Ok(volume.clone())
    }

    /// Detaches a volume from a server; a volume not attached there is detached already.
    pub async fn detach(
        &self,
        sim: &Sim,
        id: Uuid,
        detach: VolumeDetach,
    ) -> Result<VolumeInventory, DriverError> {
        let volume = self.volume(id)?;
        if !volume
            .attachments
            .iter()
            .any(|a| a.server_id == detach.server_id)
        {
            return Ok(volume);
        }
        sim.step("volume_detach", 1).await?;
        let mut held = self.held();
        let volume = held
            .volumes
            .get_mut(&id)
            .ok_or_else(|| not_found("volume", id))?;
        volume
            .attachments
            .retain(|a| a.server_id != detach.server_id);
        Ok(volume.clone())
    }

    pub async fn snapshot_create(
        &self,
        sim: &Sim,
        spec: SnapshotSpec,
    ) -> Result<SnapshotInventory, DriverError> {
        if let Some(existing) = self.held().snapshots.get(&spec.id) {
            return Ok(*existing);
        }
        let volume = self.volume(spec.volume_id)?;
        self.ensure_room(&self.held(), volume.size_gb)?;
        sim.step("snapshot_create", 1).await?;
        let mut held = self.held();
        self.ensure_room(&held, volume.size_gb)?;
        let snapshot = SnapshotInventory {
            id: spec.id,
            volume_id: spec.volume_id,
            size_gb: volume.size_gb,
        };
        held.snapshots.insert(spec.id, snapshot);
        Ok(snapshot)
    }

    /// Deletes a snapshot; one that is not here is already deleted.
    pub async fn snapshot_delete(&self, sim: &Sim, id: Uuid) -> Result<(), DriverError> {
        if !self.held().snapshots.contains_key(&id) {
            return Ok(());
        }
        sim.step("snapshot_delete", 1).await?;
        self.held().snapshots.remove(&id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use yunji_common::agent_api::Capacity;

    use super::*;

    fn sim() -> Sim {
        let capacity = Capacity {
            vcpus: 1,
            memory_mb: 1024,
            disk_gb: 10,
        };
        Sim::new("node-1".into(), capacity, Duration::ZERO)
    }

    fn blank(size_gb: u64) -> VolumeSpec {
        VolumeSpec {
            id: Uuid::new_v4(),
            size_gb,
            source: VolumeSource::Blank,
            shared: false,
        }
    }

    #[tokio::test]
    async fn volumes_and_snapshots_hold_capacity_until_deleted() {
        let (sim, disk) = (sim(), SimDisk::new(10));
        let volume = disk.create(&sim, blank(6)).await.unwrap();
        assert_eq!(disk.observe().free_gb, 4);
        let err = disk.create(&sim, blank(5)).await.unwrap_err();
        assert_eq!(err.code, "no-space");
        let snap = SnapshotSpec {
            id: Uuid::new_v4(),
            volume_id: volume.id,
        };
        assert_eq!(
            disk.snapshot_create(&sim, snap).await.unwrap_err().code,
            "no-space"
        );
        disk.delete(&sim, volume.id).await.unwrap();
        assert_eq!(disk.observe().free_gb, 10);
    }

    #[tokio::test]
    async fn a_volume_with_a_snapshot_is_not_deleted() {
        let (sim, disk) = (sim(), SimDisk::new(10));
        let volume = disk.create(&sim, blank(2)).await.unwrap();
        let snap = SnapshotSpec {
            id: Uuid::new_v4(),
            volume_id: volume.id,
        };
        disk.snapshot_create(&sim, snap).await.unwrap();
        assert_eq!(
            disk.delete(&sim, volume.id).await.unwrap_err().code,
            "state"
        );
        disk.snapshot_delete(&sim, snap.id).await.unwrap();
        disk.delete(&sim, volume.id).await.unwrap();
    }

    #[tokio::test]
    async fn attaching_to_a_server_of_another_node_is_refused() {
        let (sim, disk) = (sim(), SimDisk::new(10));
        let volume = disk.create(&sim, blank(1)).await.unwrap();
        let attach = VolumeAttach {
            server_id: Uuid::new_v4(),
            device: "/dev/vdb".into(),
            read_only: false,
            limits: Default::default(),
        };
        let err = disk.attach(&sim, volume.id, attach).await.unwrap_err();
        assert_eq!(err.code, "not-found");
    }

    #[tokio::test]
    async fn an_injected_fault_fails_the_operation_and_keeps_nothing() {
        let (sim, disk) = (sim(), SimDisk::new(10));
        sim.set_fault(
            "volume_create",
            Some(super::super::sim::Fault {
                fail_times: Some(1),
                delay_ms: 0,
            }),
        );
        assert_eq!(
            disk.create(&sim, blank(1)).await.unwrap_err().code,
            "injected"
        );
        assert!(disk.observe().volumes.is_empty());
        disk.create(&sim, blank(1)).await.unwrap();
    }
}
