//! After a scheduler restart: volume and snapshot operations that were in flight died
//! with the old process. Each is settled so nothing stays in a transitional status:
//! deletes are taken up again, the rest end where the node's last report puts them.

use std::collections::HashMap;

use uuid::Uuid;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::model::{VolumeFilter, volume_status as st};

impl Core {
    pub async fn volumes_recover(&self) -> Result<()> {
        // What each node last said it holds: volume id → size.
        let mut on_nodes: HashMap<Uuid, u64> = HashMap::new();
        for node in self.nodes().await? {
            if let Some(storage) = node.status.and_then(|s| s.storage) {
                on_nodes.extend(storage.volumes.iter().map(|v| (v.id, v.size_gb)));
            }
        }
        let volumes = self
            .store
            .read(|db| db.volumes_list(&VolumeFilter::default()))
            .await?;
        for volume in volumes {
            let id = volume.id;
            let status = volume.status.as_str();
            if status == st::DELETING {
                let core = self.arc()?;
                tokio::spawn(async move { core.volume_destroy(id, volume.host).await });
                continue;
            }
            if !matches!(
                status,
                st::CREATING | st::ATTACHING | st::DETACHING | st::EXTENDING
            ) {
                continue;
            }
            tracing::warn!(%id, status, "volume operation interrupted by a scheduler restart");
            let reported = on_nodes.get(&id).copied();
            self.store
                .write(move |tx| {
                    let Some(mut v) = tx.volume_get(id)? else {
                        return Ok::<_, Error>(());
                    };
                    // Attachments half made are dropped; half undone ones stay attached.
                    for mut a in v.attachments.clone() {
                        match a.status.as_str() {
                            "attaching" => tx.attachment_delete(a.id)?,
                            "detaching" => {
                                a.status = "attached".into();
                                tx.attachment_put(&a)?;
                            }
                            _ => {}
                        }
                    }
                    let attached = tx.volume_get(id)?.map(|v| v.attachments.len()).unwrap_or(0);
                    if v.status == st::CREATING {
                        // The build's outcome is unknown: error, quota given back.
                        v.status = st::ERROR.into();
                        v.counted = false;
                    } else {
                        if let Some(size) = reported {
                            v.size_gb = size as i64;
                        }
                        v.status = if attached > 0 {
                            st::IN_USE
                        } else {
                            st::AVAILABLE
                        }
                        .into();
                    }
                    tx.volume_update(&v)?;
                    Ok(())
                })
                .await?;
        }
        let snapshots = self.store.read(|db| db.snapshots_list(None)).await?;
        for snapshot in snapshots.into_iter().filter(|s| s.status == st::CREATING) {
            tracing::warn!(id = %snapshot.id, "snapshot interrupted by a scheduler restart");
            let sid = snapshot.id;
            self.store
                .write(move |tx| {
                    if let Some(mut s) = tx.snapshot_get(sid)? {
                        s.status = st::ERROR.into();
                        s.counted = false;
                        tx.snapshot_update(&s)?;
                    }
                    Ok::<_, Error>(())
                })
                .await?;
        }
        Ok(())
    }
}
