//! Volume snapshots: create (from an available volume, or an in-use one with `force`),
//! show, list, update, delete; quota of snapshots and gigabytes.

use std::collections::BTreeMap;

use chrono::Utc;
use uuid::Uuid;
use yunji_common::agent_api::SnapshotSpec;

use super::{check_quota, volume_missing};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::error_chain;
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::model::{Caller, VolumeSnapshot, VolumeUsage, volume_status as st};

/// What `POST /snapshots` asks for.
#[derive(Debug, Clone, Default)]
pub struct SnapshotCreate {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub force: bool,
    pub metadata: BTreeMap<String, String>,
}

fn snapshot_missing(id: &str) -> Error {
    Error::NotFound(format!("Snapshot {id} could not be found."))
}

impl Core {
    pub async fn snapshot_get(&self, caller: &Caller, id: &str) -> Result<VolumeSnapshot> {
        let uuid = Uuid::parse_str(id).map_err(|_| snapshot_missing(id))?;
        let snapshot = self
            .store
            .read(move |db| db.snapshot_get(uuid))
            .await?
            .ok_or_else(|| snapshot_missing(id))?;
        authorize(
            caller,
            &snapshot.project_id,
            Access::Read,
            &format!("Snapshot {id}"),
        )?;
        Ok(snapshot)
    }

    /// The caller's project's snapshots, or all projects' for an administrator asking.
    pub async fn snapshots_list(
        &self,
        caller: &Caller,
        all_tenants: bool,
    ) -> Result<Vec<VolumeSnapshot>> {
        let project = if all_tenants {
            require_admin(caller, "listing the snapshots of all projects")?;
            None
        } else {
            Some(require_project(caller)?.to_string())
        };
        let mut snapshots = self
            .store
            .read(move |db| db.snapshots_list(project.as_deref()))
            .await?;
        snapshots.reverse();
        Ok(snapshots)
    }

    pub async fn snapshot_create(
        &self,
        caller: &Caller,
        input: SnapshotCreate,
    ) -> Result<VolumeSnapshot> {
        let volume = self
            .volume_get(caller, &input.volume_id, Access::Write)
            .await
            // Cinder answers a missing source volume with 404 too.
            ?;
        let allowed =
            volume.status == st::AVAILABLE || (input.force && volume.status == st::IN_USE);
        if !allowed {
            return Err(Error::BadRequest(format!(
                "Invalid volume: Volume {} status must be available{}, but current status is: {}.",
                volume.id,
                if volume.status == st::IN_USE {
                    " (an in-use volume needs force=true)"
                } else {
                    ""
                },
                volume.status
            )));
        }
        for (k, v) in &input.metadata {
            if k.is_empty() || k.len() > 255 || v.len() > 255 {
                return Err(Error::BadRequest(
                    "metadata keys must be 1 to 255 characters and values at most 255".into(),
                ));
            }
        }
        let now = Utc::now();
        let snapshot = VolumeSnapshot {
            id: Uuid::new_v4(),
            project_id: volume.project_id.clone(),
            user_id: caller.user_id.clone(),
            volume_id: volume.id,
            name: input.name,
            description: input.description,
            size_gb: volume.size_gb,
            status: st::CREATING.into(),
            metadata: input.metadata,
            counted: true,
            created_at: now,
            updated_at: now,
        };
        let defaults = self.config.volume.default_quota;
        let row = snapshot.clone();
        let force = input.force;
        self.store
            .write(move |tx| {
                let v = tx
                    .volume_get(row.volume_id)?
                    .ok_or_else(|| volume_missing(&row.volume_id.to_string()))?;
                if !(v.status == st::AVAILABLE || (force && v.status == st::IN_USE)) {
                    return Err(Error::BadRequest(format!(
                        "Invalid volume: Volume {} status changed to {} meanwhile.",
                        v.id, v.status
                    )));
                }
                super::migrate::refuse_while_moving(tx, &v, "snapshot")?;
                let quota = tx.volume_quota(&row.project_id, &defaults)?;
                let usage = tx.volume_usage(&row.project_id)?;
                check_quota(
                    &quota,
                    &usage,
                    &VolumeUsage {
                        volumes: 0,
                        snapshots: 1,
                        gigabytes: row.size_gb,
                    },
                )?;
                if super::lifecycle::place(
                    tx,
                    &v.availability_zone,
                    v.host.as_deref(),
                    row.size_gb,
                )?
                .is_none()
                {
                    return Err(Error::Conflict(format!(
                        "The node holding volume {} does not have {} GB free for a snapshot.",
                        v.id, row.size_gb
                    )));
                }
                tx.snapshot_insert(&row)?;
                Ok::<_, Error>(())
            })
            .await?;
        let core = self.arc()?;
        let (id, volume_id, host) = (snapshot.id, snapshot.volume_id, volume.host.clone());
        tokio::spawn(async move {
            let result = match &host {
                Some(h) => match core.node_named(h).await {
                    Ok(node) => {
                        let spec = SnapshotSpec { id, volume_id };
                        match core.agents.snapshot_create(&node, &spec).await {
                            Ok(_) => Ok(()),
                            Err(e) => {
                                let _ = core.agents.snapshot_delete(&node, id).await;
                                Err(error_chain(&e))
                            }
                        }
                    }
                    Err(e) => Err(error_chain(&e)),
                },
                None => Err("the volume has no node".into()),
            };
            if let Err(message) = &result {
                tracing::warn!(%id, %message, "creating a snapshot failed");
            }
            let ok = result.is_ok();
            let recorded = core
                .snapshot_record(id, move |s| {
                    if ok {
                        s.status = st::AVAILABLE.into();
                    } else {
                        s.status = st::ERROR.into();
                        s.counted = false;
                    }
                })
                .await;
            if let Err(error) = recorded {
                tracing::error!(%id, error = %error_chain(&error), "recording a snapshot failed");
            }
        });
        Ok(snapshot)
    }

    async fn snapshot_record(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut VolumeSnapshot) + Send + 'static,
    ) -> Result<Option<VolumeSnapshot>> {
        self.store
            .write(move |tx| {
                let Some(mut s) = tx.snapshot_get(id)? else {
                    return Ok::<_, Error>(None);
                };
                change(&mut s);
                tx.snapshot_update(&s)?;
                Ok(Some(s))
            })
            .await
    }

    /// `PUT /snapshots/{id}`: name and description.
    pub async fn snapshot_update(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<Option<String>>,
        description: Option<Option<String>>,
    ) -> Result<VolumeSnapshot> {
        let snapshot = self.snapshot_get(caller, id).await?;
        authorize(
            caller,
            &snapshot.project_id,
            Access::Write,
            &format!("Snapshot {id}"),
        )?;
        self.snapshot_record(snapshot.id, move |s| {
            if let Some(n) = name {
                s.name = n;
            }
            if let Some(d) = description {
                s.description = d;
            }
        })
        .await?
        .ok_or_else(|| snapshot_missing(id))
    }

    /// Accepts a delete; the node drops the snapshot and the row (and quota) goes.
    pub async fn snapshot_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let snapshot = self.snapshot_get(caller, id).await?;
        authorize(
            caller,
            &snapshot.project_id,
            Access::Write,
            &format!("Snapshot {id}"),
        )?;
        let sid = snapshot.id;
        let volume_id = snapshot.volume_id;
        self.store
            .write(move |tx| {
                let mut s = tx
                    .snapshot_get(sid)?
                    .ok_or_else(|| snapshot_missing(&sid.to_string()))?;
                if !matches!(
                    s.status.as_str(),
                    st::AVAILABLE | st::ERROR | st::ERROR_DELETING
                ) {
                    return Err(Error::BadRequest(format!(
                        "Invalid snapshot: Volume Snapshot status must be available or error, \
                         currently {}.",
                        s.status
                    )));
                }
                s.status = st::DELETING.into();
                tx.snapshot_update(&s)?;
                Ok::<_, Error>(())
            })
            .await?;
        let host = self
            .store
            .read(move |db| db.volume_get(volume_id))
            .await?
            .and_then(|v| v.host);
        let core = self.arc()?;
        tokio::spawn(async move {
            let result = match &host {
                Some(h) => match core.node_named(h).await {
                    Ok(node) => core
                        .agents
                        .snapshot_delete(&node, sid)
                        .await
                        .map_err(|e| error_chain(&e)),
                    Err(e) => Err(error_chain(&e)),
                },
                None => Ok(()),
            };
            let outcome = match result {
                Ok(()) => {
                    core.store
                        .write(move |tx| Ok::<_, Error>(tx.snapshot_delete(sid)?))
                        .await
                }
                Err(message) => {
                    tracing::warn!(id = %sid, %message, "deleting a snapshot failed on its node");
                    core.snapshot_record(sid, |s| s.status = st::ERROR_DELETING.into())
                        .await
                        .map(|_| ())
                }
            };
            if let Err(error) = outcome {
                tracing::error!(id = %sid, error = %error_chain(&error), "recording a snapshot delete failed");
            }
        });
        Ok(())
    }
}
