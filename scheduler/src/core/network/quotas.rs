//! Network quotas (Neutron's `quotas` and `quota_details`): each project's limits, set
//! by an administrator over the configured defaults, and what it uses against them.

use std::collections::BTreeMap;

use super::QuotaResource;
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{require_admin, require_project};
use crate::model::{Caller, NetworkQuota};

/// A project's limits by Neutron resource name; -1 is unlimited.
pub type NetworkQuotaSet = BTreeMap<String, i64>;

/// One resource's line in `quotas/{id}/details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkQuotaDetail {
    pub limit: i64,
    pub used: i64,
    pub reserved: i64,
}

fn defaults_set(defaults: &NetworkQuota) -> NetworkQuotaSet {
    QuotaResource::ALL
        .iter()
        .map(|r| (r.name().to_string(), r.default_limit(defaults)))
        .collect()
}

fn merged(defaults: &NetworkQuota, set: BTreeMap<String, i64>) -> NetworkQuotaSet {
    let mut out = defaults_set(defaults);
    for (resource, limit) in set {
        if out.contains_key(&resource) {
            out.insert(resource, limit);
        }
    }
    out
}

/// Reading a project's quotas: an administrator, or someone of that project.
fn may_read(caller: &Caller, project_id: &str) -> Result<()> {
    if caller.is_admin() || caller.project_id() == Some(project_id) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "reading the network quotas of project {project_id} requires the admin role; you \
             may read your own project's"
        )))
    }
}

impl Core {
    /// `GET /v2.0/quotas/{project_id}`.
    pub async fn network_quota_get(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<NetworkQuotaSet> {
        may_read(caller, project_id)?;
        let defaults = self.config.network.default_quota;
        let key = project_id.to_string();
        let set = self
            .store
            .read(move |db| db.network_quota_limits(&key))
            .await?;
        Ok(merged(&defaults, set))
    }

    /// `GET /v2.0/quotas/{project_id}/default`.
    pub fn network_quota_defaults(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<NetworkQuotaSet> {
        may_read(caller, project_id)?;
        Ok(defaults_set(&self.config.network.default_quota))
    }

    /// `GET /v2.0/quotas/{project_id}/details`: limit, used and reserved per resource.
    pub async fn network_quota_details(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<BTreeMap<String, NetworkQuotaDetail>> {
        may_read(caller, project_id)?;
        let defaults = self.config.network.default_quota;
        let key = project_id.to_string();
        self.store
            .read(move |db| {
                let limits = merged(&defaults, db.network_quota_limits(&key)?);
                let mut out = BTreeMap::new();
                for resource in QuotaResource::ALL {
                    let used = resource.used(db, &key)?;
                    out.insert(
                        resource.name().to_string(),
                        NetworkQuotaDetail {
                            limit: limits[resource.name()],
                            used,
                            reserved: 0,
                        },
                    );
                }
                Ok(out)
            })
            .await
            .map_err(Error::from)
    }

    /// `PUT /v2.0/quotas/{project_id}` (administrators): sets the given limits.
    pub async fn network_quota_update(
        &self,
        caller: &Caller,
        project_id: &str,
        changes: BTreeMap<String, i64>,
        check_limit: bool,
    ) -> Result<NetworkQuotaSet> {
        require_admin(caller, "setting network quotas")?;
        let mut resolved = Vec::with_capacity(changes.len());
        for (name, limit) in changes {
            let resource = QuotaResource::from_name(&name).ok_or_else(|| {
                Error::BadRequest(format!(
                    "Unrecognized attribute(s) '{name}': network quotas are {}",
                    QuotaResource::ALL.map(QuotaResource::name).join(", ")
                ))
            })?;
            if !(-1..=i64::from(i32::MAX)).contains(&limit) {
                return Err(Error::BadRequest(format!(
                    "Invalid input for {name}. Reason: '{limit}' is not a limit; use -1 \
                     (unlimited) or a number from 0."
                )));
            }
            resolved.push((resource, limit));
        }
        let key = project_id.to_string();
        self.store
            .write(move |tx| {
                for (resource, limit) in &resolved {
                    if check_limit && *limit >= 0 {
                        let used = resource.used(tx, &key)?;
                        if used > *limit {
                            return Err(Error::BadRequest(format!(
                                "Change would make usage less than 0 for the following \
                                 resources: ['{}']: the project uses {used}.",
                                resource.name()
                            )));
                        }
                    }
                    tx.network_quota_set(&key, resource.name(), *limit)?;
                }
                Ok(())
            })
            .await?;
        tracing::info!(project = project_id, "network quotas set");
        let defaults = self.config.network.default_quota;
        let key = project_id.to_string();
        let set = self
            .store
            .read(move |db| db.network_quota_limits(&key))
            .await?;
        Ok(merged(&defaults, set))
    }

    /// `DELETE /v2.0/quotas/{project_id}` (administrators): back to the defaults.
    pub async fn network_quota_reset(&self, caller: &Caller, project_id: &str) -> Result<()> {
        require_admin(caller, "resetting network quotas")?;
        let key = project_id.to_string();
        self.store
            .write(move |tx| Ok::<_, Error>(tx.network_quota_delete(&key)?))
            .await
    }

    /// `GET /v2.0/quotas` (administrators): projects whose quotas were set.
    pub async fn network_quotas_list(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(String, NetworkQuotaSet)>> {
        require_admin(caller, "listing every project's network quotas")?;
        let defaults = self.config.network.default_quota;
        Ok(self
            .store
            .read(move |db| {
                let mut out = Vec::new();
                for project in db.network_quota_projects()? {
                    let set = db.network_quota_limits(&project)?;
                    out.push((project, merged(&defaults, set)));
                }
                Ok(out)
            })
            .await?)
    }

    /// `GET /v2.0/quotas/tenant`: the caller's own project.
    pub fn network_quota_own_project<'a>(&self, caller: &'a Caller) -> Result<&'a str> {
        require_project(caller)
    }
}
