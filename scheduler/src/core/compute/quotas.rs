//! Compute quotas and limits (clause B.1.3.1): each project's limits (set by an
//! administrator, else the configured defaults) and what its servers use against them.
//!
//! The cloud enforces instances, cores, ram, key_pairs and metadata_items; Nova's other
//! 2.1 resources are kept and shown so clients that set them round-trip.

use std::collections::BTreeMap;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{require_admin, require_project};
use crate::model::{Caller, ComputeQuota, ComputeUsage};

/// A project's limits by Nova resource name (`instances`, `ram`, …); -1 is unlimited.
pub type QuotaSet = BTreeMap<String, i64>;

/// The resources of Nova 2.1's `quota_set`, with the defaults of those the
/// configuration does not hold.
const OTHER_RESOURCES: &[(&str, i64)] = &[
    ("fixed_ips", -1),
    ("floating_ips", 10),
    ("injected_file_content_bytes", 10_240),
    ("injected_file_path_bytes", 255),
    ("injected_files", 5),
    ("security_group_rules", 20),
    ("security_groups", 10),
    ("server_group_members", 10),
    ("server_groups", 10),
];

/// A limit Nova keeps beside the configured five (`server_groups`, …): what was set
/// for the project, else its default.
pub(crate) fn other_limit(set: &BTreeMap<String, i64>, name: &str) -> i64 {
    set.get(name).copied().unwrap_or_else(|| {
        OTHER_RESOURCES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(-1, |(_, limit)| *limit)
    })
}

/// The largest limit Nova stores.
const MAX_LIMIT: i64 = i32::MAX as i64;

/// One resource's line in `os-quota-sets/{id}/detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDetail {
    pub limit: i64,
    pub in_use: i64,
    pub reserved: i64,
}

/// `GET /limits`: a project's limits and usage.
#[derive(Debug, Clone)]
pub struct Limits {
    pub quota: QuotaSet,
    pub usage: ComputeUsage,
    pub server_groups: i64,
}

fn defaults(configured: &ComputeQuota) -> QuotaSet {
    let mut set: QuotaSet = OTHER_RESOURCES
        .iter()
        .map(|(name, limit)| (name.to_string(), *limit))
        .collect();
    set.insert("instances".into(), configured.instances);
    set.insert("cores".into(), configured.cores);
    set.insert("ram".into(), configured.ram_mb);
    set.insert("key_pairs".into(), configured.key_pairs);
    set.insert("metadata_items".into(), configured.metadata_items);
    set
}

/// Reading a project's quotas: an administrator, or a member of that project.
fn may_read(caller: &Caller, project_id: &str) -> Result<()> {
    if caller.is_admin() || caller.project_id() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "reading the quotas of project {project_id} requires the admin role; you may read \
             your own project's"
        )))
    }
}

impl Core {
    /// Nova 2.1's default quota set.
    fn quota_defaults_set(&self) -> QuotaSet {
        defaults(&self.config.compute.default_quota)
    }

    /// A project's limits: what was set over the defaults.
    async fn quota_of(&self, project_id: &str) -> Result<QuotaSet> {
        let project = project_id.to_string();
        let set = self
            .store
            .read(move |db| db.compute_quota_limits(&project))
            .await?;
        let mut quota = self.quota_defaults_set();
        for (resource, limit) in set {
            if let Some(slot) = quota.get_mut(&resource) {
                *slot = limit;
            }
        }
        Ok(quota)
    }

    /// What a project uses of each resource (0 for those the cloud does not count).
    async fn quota_usage(&self, caller: &Caller, project_id: &str) -> Result<QuotaSet> {
        let usage = self.compute_usage(project_id).await?;
        let mut used: QuotaSet = self
            .quota_defaults_set()
            .into_keys()
            .map(|k| (k, 0))
            .collect();
        used.insert("instances".into(), usage.instances);
        used.insert("cores".into(), usage.cores);
        used.insert("ram".into(), usage.ram_mb);
        used.insert(
            "server_groups".into(),
            self.server_group_count(project_id).await?,
        );
        // Key pairs belong to users: count the caller's own when it is their project.
        if caller.project_id() == Some(project_id) {
            let user = caller.user_id.clone();
            let pairs = self.store.read(move |db| db.keypair_count(&user)).await?;
            used.insert("key_pairs".into(), pairs);
        }
        Ok(used)
    }

    async fn server_group_count(&self, project_id: &str) -> Result<i64> {
        let project = project_id.to_string();
        Ok(self
            .store
            .read(move |db| db.server_group_count(&project))
            .await?)
    }

    /// `GET /os-quota-sets/{project_id}`.
    pub async fn quota_show(&self, caller: &Caller, project_id: &str) -> Result<QuotaSet> {
        may_read(caller, project_id)?;
        self.quota_of(project_id).await
    }

    /// `GET /os-quota-sets/{project_id}/defaults`: anyone may read the defaults.
    pub async fn quota_defaults(&self, _caller: &Caller) -> Result<QuotaSet> {
        Ok(self.quota_defaults_set())
    }

    /// `GET /os-quota-sets/{project_id}/detail`: limit, in use and reserved (always 0:
    /// usage is counted, never reserved).
    pub async fn quota_detail(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<BTreeMap<String, QuotaDetail>> {
        may_read(caller, project_id)?;
        let quota = self.quota_of(project_id).await?;
        let used = self.quota_usage(caller, project_id).await?;
        Ok(quota
            .into_iter()
            .map(|(name, limit)| {
                let in_use = used.get(&name).copied().unwrap_or(0);
                (
                    name,
                    QuotaDetail {
                        limit,
                        in_use,
                        reserved: 0,
                    },
                )
            })
            .collect())
    }

    /// `PUT /os-quota-sets/{project_id}` (admin): sets the given limits. A limit below
    /// what the project uses now is refused unless `force`.
    pub async fn quota_update(
        &self,
        caller: &Caller,
        project_id: &str,
        changes: QuotaSet,
        force: bool,
    ) -> Result<QuotaSet> {
        require_admin(caller, "setting quotas")?;
        let known = self.quota_defaults_set();
        for (name, limit) in &changes {
            if !known.contains_key(name) {
                return Err(Error::BadRequest(format!(
                    "{name} is not a compute quota; the resources are {}",
                    known.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if *limit < -1 || *limit > MAX_LIMIT {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {name}: {limit} must be -1 (unlimited) or \
                     an integer from 0 to {MAX_LIMIT}."
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
        if !force {
            let used = self.compute_usage(project_id).await?;
            for (name, in_use) in [
                ("instances", used.instances),
                ("cores", used.cores),
                ("ram", used.ram_mb),
            ] {
                if let Some(&limit) = changes.get(name)
                    && limit >= 0
                    && limit < in_use
                {
                    return Err(Error::BadRequest(format!(
                        "Quota limit {limit} for {name} must be greater than or equal to already \
                         used and reserved {in_use}; delete servers first, or set force to true."
                    )));
                }
            }
        }
        let project = project_id.to_string();
        self.store
            .write(move |tx| tx.compute_quota_set(&project, &changes))
            .await?;
        tracing::info!(project = %project_id, "compute quotas set");
        self.quota_of(project_id).await
    }

    /// `DELETE /os-quota-sets/{project_id}` (admin): back to the defaults.
    pub async fn quota_delete(&self, caller: &Caller, project_id: &str) -> Result<()> {
        require_admin(caller, "resetting quotas")?;
        let project = project_id.to_string();
        self.store
            .write(move |tx| tx.compute_quota_delete(&project))
            .await?;
        tracing::info!(project = %project_id, "compute quotas reset to the defaults");
        Ok(())
    }

    /// `GET /limits[?tenant_id=]`: the caller's project, or (administrators) another.
    pub async fn limits(&self, caller: &Caller, tenant_id: Option<&str>) -> Result<Limits> {
        let own = require_project(caller)?;
        let project_id = tenant_id.unwrap_or(own);
        may_read(caller, project_id)?;
        Ok(Limits {
            quota: self.quota_of(project_id).await?,
            usage: self.compute_usage(project_id).await?,
            server_groups: self.server_group_count(project_id).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_every_nova_resource() {
        let set = defaults(&crate::config::ComputeConfig::default().default_quota);
        assert_eq!(set.len(), 14);
        assert_eq!(set["ram"], 51_200);
        assert_eq!(set["fixed_ips"], -1);
    }
}
