//! Volume quotas and capacity (clause B.1.3.2): each project's limits (set by an
//! administrator, else `[volume] default_quota`), what it uses, `limits`, and the pools
//! (one per node) with their capacity.
//!
//! volumes, snapshots, gigabytes and per_volume_gigabytes are enforced; backups,
//! backup_gigabytes and groups are kept and shown (the cloud has neither backups nor
//! groups) so clients that set them round-trip.

use std::collections::BTreeMap;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{require_admin, require_project};
use crate::model::{Caller, NodeState, VolumeQuota, VolumeUsage};

/// A project's limits by Cinder resource name; -1 is unlimited.
pub type VolumeQuotaSet = BTreeMap<String, i64>;

const OTHER_RESOURCES: &[(&str, i64)] =
    &[("backups", 10), ("backup_gigabytes", 1000), ("groups", 10)];
const MAX_LIMIT: i64 = i32::MAX as i64;

/// `GET /limits`.
#[derive(Debug, Clone)]
pub struct VolumeLimits {
    pub quota: VolumeQuotaSet,
    pub usage: VolumeUsage,
}

/// One node's storage, as `get_pools` shows it.
#[derive(Debug, Clone)]
pub struct VolumePool {
    pub node: String,
    pub up: bool,
    pub total_gb: i64,
    pub allocated_gb: i64,
    pub free_gb: i64,
}

fn defaults(configured: &VolumeQuota) -> VolumeQuotaSet {
    let mut set: VolumeQuotaSet = OTHER_RESOURCES
        .iter()
        .map(|(name, limit)| (name.to_string(), *limit))
        .collect();
    set.insert("volumes".into(), configured.volumes);
    set.insert("snapshots".into(), configured.snapshots);
    set.insert("gigabytes".into(), configured.gigabytes);
    set.insert(
        "per_volume_gigabytes".into(),
        configured.per_volume_gigabytes,
    );
    set
}

fn may_read(caller: &Caller, project_id: &str) -> Result<()> {
    if caller.is_admin() || caller.project_id() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "reading the volume quotas of project {project_id} requires the admin role; you \
             may read your own project's"
        )))
    }
}

impl Core {
    fn volume_quota_defaults_set(&self) -> VolumeQuotaSet {
        defaults(&self.config.volume.default_quota)
    }

    async fn volume_quota_of(&self, project_id: &str) -> Result<VolumeQuotaSet> {
        let project = project_id.to_string();
        let set = self
            .store
            .read(move |db| db.volume_quota_limits(&project))
            .await?;
        let mut quota = self.volume_quota_defaults_set();
        for (resource, limit) in set {
            if let Some(slot) = quota.get_mut(&resource) {
                *slot = limit;
            }
        }
        Ok(quota)
    }

    async fn volume_usage_of(&self, project_id: &str) -> Result<VolumeUsage> {
        let project = project_id.to_string();
        Ok(self.store.read(move |db| db.volume_usage(&project)).await?)
    }

    /// `GET /os-quota-sets/{project_id}` (with `usage`: what is in use of each).
    pub async fn volume_quota_show(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<(VolumeQuotaSet, VolumeQuotaSet)> {
        may_read(caller, project_id)?;
        let quota = self.volume_quota_of(project_id).await?;
        let usage = self.volume_usage_of(project_id).await?;
        let mut used: VolumeQuotaSet = quota.keys().map(|k| (k.clone(), 0)).collect();
        used.insert("volumes".into(), usage.volumes);
        used.insert("snapshots".into(), usage.snapshots);
        used.insert("gigabytes".into(), usage.gigabytes);
        Ok((quota, used))
    }

    pub fn volume_quota_defaults(&self) -> VolumeQuotaSet {
        self.volume_quota_defaults_set()
    }

    /// `PUT /os-quota-sets/{project_id}` (admin). A limit below what is in use is refused.
    pub async fn volume_quota_update(
        &self,
        caller: &Caller,
        project_id: &str,
        changes: VolumeQuotaSet,
    ) -> Result<VolumeQuotaSet> {
        require_admin(caller, "setting volume quotas")?;
        let known = self.volume_quota_defaults_set();
        for (name, limit) in &changes {
            if !known.contains_key(name) {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Bad key(s) in quota set: {name}; the resources are {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if *limit < -1 || *limit > MAX_LIMIT {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Quota limit {limit} for {name} must be -1 \
                     (unlimited) or an integer from 0 to {MAX_LIMIT}."
                )));
            }
        }
        let project = project_id.to_string();
        if self
            .store
            .read(move |db| db.project_get(&project))
            .await?
            .is_none()
        {
            return Err(Error::BadRequest(format!(
                "Project ID {project_id} is not a valid project; give an id from GET /identity/v3/projects."
            )));
        }
        let usage = self.volume_usage_of(project_id).await?;
        for (name, in_use) in [
            ("volumes", usage.volumes),
            ("snapshots", usage.snapshots),
            ("gigabytes", usage.gigabytes),
        ] {
            if let Some(&limit) = changes.get(name)
                && limit >= 0
                && limit < in_use
            {
                return Err(Error::BadRequest(format!(
                    "Invalid input received: Quota limit {limit} for {name} must be equal or \
                     greater than existing resources, {in_use} in use."
                )));
            }
        }
        let project = project_id.to_string();
        self.store
            .write(move |tx| tx.volume_quota_set(&project, &changes))
            .await?;
        tracing::info!(project = %project_id, "volume quotas set");
        self.volume_quota_of(project_id).await
    }

    /// `DELETE /os-quota-sets/{project_id}` (admin): back to the defaults.
    pub async fn volume_quota_delete(&self, caller: &Caller, project_id: &str) -> Result<()> {
        require_admin(caller, "resetting volume quotas")?;
        let project = project_id.to_string();
        self.store
            .write(move |tx| tx.volume_quota_delete(&project))
            .await?;
        Ok(())
    }

    /// `GET /limits`: the caller's project's limits and usage.
    pub async fn volume_limits(&self, caller: &Caller) -> Result<VolumeLimits> {
        let project_id = require_project(caller)?.to_string();
        Ok(VolumeLimits {
            quota: self.volume_quota_of(&project_id).await?,
            usage: self.volume_usage_of(&project_id).await?,
        })
    }

    /// `GET /scheduler-stats/get_pools` (admin): one pool per node with storage.
    pub async fn volume_pools(&self, caller: &Caller) -> Result<Vec<VolumePool>> {
        require_admin(caller, "listing storage pools")?;
        let held = self.store.read(|db| db.volume_gb_by_host()).await?;
        Ok(self
            .nodes()
            .await?
            .into_iter()
            .filter_map(|node| {
                let storage = node.status.as_ref()?.storage.as_ref()?;
                let total = storage.capacity_gb as i64;
                let allocated = held.get(&node.name).copied().unwrap_or(0);
                Some(VolumePool {
                    up: node.state == NodeState::Up,
                    total_gb: total,
                    allocated_gb: allocated,
                    free_gb: (total - allocated).max(0),
                    node: node.name,
                })
            })
            .collect())
    }
}
