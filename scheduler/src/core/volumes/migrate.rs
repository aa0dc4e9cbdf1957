//! Volumes that move with a live-migrating server. A volume lives on one node's disks,
//! so the server's volumes go along: the target makes blank volumes of the same sizes,
//! the VMM copies their contents with the VM's state (QEMU's block migration), and once
//! the server runs on the target the volumes' records name it and the source's copies
//! are deleted. A failed migration deletes the blank copies and leaves everything on the
//! source.

use uuid::Uuid;
use yunji_common::agent_api::{VolumeAttach, VolumeAttachment as VolumeAttachmentSpec};
use yunji_common::agent_api::{VolumeSource, VolumeSpec};

use super::lifecycle::place;
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::model::{Node, TaskState, Volume};
use crate::store::Tx;

/// Whether the server's volumes can move to `target` with it; decided in the
/// transaction that starts the migration, so no attach, snapshot or extend slips in
/// between (those refuse a migrating server's volumes, see [`refuse_while_moving`]).
pub(crate) fn volumes_movable(tx: &Tx, server_id: Uuid, target: &str) -> Result<()> {
    let mut needed_gb = 0;
    for attachment in tx.volume_attachments_of_server(server_id)? {
        let id = attachment.volume_id;
        let cannot = |why: String| {
            Error::Conflict(format!(
                "Cannot live-migrate server {server_id}: volume {id} {why}."
            ))
        };
        if attachment.status != "attached" {
            return Err(cannot(format!(
                "is {} (attaching or detaching); try again once that is done",
                attachment.status
            )));
        }
        // QEMU's block migration copies only the disks the VM can write.
        if attachment.mode == "ro" {
            return Err(cannot(
                "is attached read-only, and a live migration copies only writable disks; \
                 detach it first"
                    .into(),
            ));
        }
        let volume = tx
            .volume_get(id)?
            .ok_or_else(|| cannot("is missing".into()))?;
        if volume.attachments.len() > 1 {
            return Err(cannot(
                "is attached to other servers too, and it moves with the server that \
                 migrates; detach it from the others first"
                    .into(),
            ));
        }
        if tx.snapshot_count_of_volume(id)? > 0 {
            return Err(cannot(
                "has snapshots, which stay on its node; delete them or detach the volume first"
                    .into(),
            ));
        }
        needed_gb += volume.size_gb;
        if place(tx, &volume.availability_zone, Some(target), needed_gb)?.is_none() {
            return Err(cannot(format!(
                "cannot move to {target}: it is not in the volume's availability zone {} or \
                 has not {needed_gb} GB free for the server's volumes",
                volume.availability_zone
            )));
        }
    }
    Ok(())
}

/// Refuses an operation on a volume attached to a server that is live-migrating: the
/// volume is being copied to another node.
pub(super) fn refuse_while_moving(tx: &Tx, volume: &Volume, operation: &str) -> Result<()> {
    for attachment in &volume.attachments {
        if let Some(server) = tx.server_get(attachment.server_id)?
            && server.task_state == Some(TaskState::Migrating)
        {
            return Err(Error::Conflict(format!(
                "Cannot {operation} volume {}: server {} it is attached to is live-migrating, \
                 and the volume moves with it. Try again once the migration is done.",
                volume.id, server.id
            )));
        }
    }
    Ok(())
}

impl Core {
    /// Makes a blank copy of each volume on `target`, for the VMM to fill; on failure
    /// the copies made are deleted again.
    pub(crate) async fn volumes_make_copies(
        &self,
        target: &Node,
        volumes: &[VolumeAttachmentSpec],
    ) -> std::result::Result<(), String> {
        for (made, volume) in volumes.iter().enumerate() {
            if let Err(e) = self.volume_make_copy(target, volume.volume_id).await {
                self.volumes_drop_copies(target, &volumes[..made]).await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn volume_make_copy(&self, target: &Node, id: Uuid) -> std::result::Result<(), String> {
        let volume = self
            .store
            .read(move |db| db.volume_get(id))
            .await
            .map_err(|e| error_chain(&e))?
            .ok_or_else(|| format!("volume {id} was deleted"))?;
        let spec = VolumeSpec {
            id,
            size_gb: volume.size_gb as u64,
            source: VolumeSource::Blank,
            shared: volume.multiattach,
        };
        self.agents
            .volume_create(target, &spec)
            .await
            .map(drop)
            .map_err(|e| {
                format!(
                    "volume {id} could not be made on {}: {}",
                    target.name,
                    error_chain(&e)
                )
            })
    }

    /// Deletes the copies a failed migration made on `target`.
    pub(crate) async fn volumes_drop_copies(
        &self,
        target: &Node,
        volumes: &[VolumeAttachmentSpec],
    ) {
        for volume in volumes {
            if let Err(e) = self.agents.volume_delete(target, volume.volume_id).await {
                tracing::warn!(volume = %volume.volume_id, node = %target.name, error = %error_chain(&e),
                    "the copy of a volume a failed live migration made stays on its node");
            }
        }
    }

    /// After the server arrived on `target`: its volumes are recorded there, the
    /// target's disk layer is told the attachments (a no-op where the VM's record
    /// already holds them), and the source's copies are deleted.
    pub(crate) async fn volumes_moved(
        &self,
        server_id: Uuid,
        source: &Node,
        target: &Node,
        volumes: &[VolumeAttachmentSpec],
    ) -> Result<()> {
        if volumes.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = volumes.iter().map(|v| v.volume_id).collect();
        let name = target.name.clone();
        self.store
            .write(move |tx| {
                for id in ids {
                    let Some(mut volume) = tx.volume_get(id)? else {
                        continue;
                    };
                    volume.host = Some(name.clone());
                    tx.volume_update(&volume)?;
                    for mut a in volume.attachments {
                        if a.server_id == server_id {
                            a.host_name = Some(name.clone());
                            tx.attachment_put(&a)?;
                        }
                    }
                }
                Ok::<_, Error>(())
            })
            .await?;
        for volume in volumes {
            let id = volume.volume_id;
            let attach = VolumeAttach {
                server_id,
                device: volume.device.clone(),
                read_only: volume.read_only,
                limits: volume.limits,
            };
            if let Err(e) = self.agents.volume_attach(target, id, &attach).await {
                tracing::warn!(volume = %id, node = %target.name, error = %error_chain(&e),
                    "the target did not take the moved volume's attachment");
            }
            let dropped = match self.agents.volume_detach(source, id, server_id).await {
                Ok(_) => self.agents.volume_delete(source, id).await,
                Err(e) => Err(e),
            };
            if let Err(e) = dropped {
                tracing::warn!(volume = %id, node = %source.name, error = %error_chain(&e),
                    "the source's copy of a moved volume could not be deleted; it stays as \
                     an orphan file in the node's volume store");
            }
        }
        Ok(())
    }
}
