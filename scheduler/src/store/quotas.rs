//! Compute quota queries: the limits administrators set per project (a resource without
//! a row has the configured default), and Nova's integer ids for hypervisors.

use std::collections::{BTreeMap, HashMap};

use rusqlite::params;

use super::{Db, Result, Tx};
use crate::model::ComputeQuota;

impl Db<'_> {
    /// The limits set for a project, by Nova resource name (`instances`, `ram`, …).
    pub fn compute_quota_limits(&self, project_id: &str) -> Result<BTreeMap<String, i64>> {
        let mut stmt =
            self.prepare("SELECT resource, hard_limit FROM compute_quotas WHERE project_id = ?1")?;
        let rows = stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A project's enforced compute limits: what was set, else `defaults`. Inside a
    /// write transaction ([`Tx`] derefs here) it reads the same snapshot the change
    /// commits on, so a quota check there is atomic with the change.
    pub fn compute_quota(&self, project_id: &str, defaults: &ComputeQuota) -> Result<ComputeQuota> {
        let set = self.compute_quota_limits(project_id)?;
        let get = |name: &str, default: i64| set.get(name).copied().unwrap_or(default);
        Ok(ComputeQuota {
            instances: get("instances", defaults.instances),
            cores: get("cores", defaults.cores),
            ram_mb: get("ram", defaults.ram_mb),
            key_pairs: get("key_pairs", defaults.key_pairs),
            metadata_items: get("metadata_items", defaults.metadata_items),
        })
    }

    /// Nova's integer id of every node (never reused), by node name.
    pub fn hypervisor_ids(&self) -> Result<HashMap<String, i64>> {
        let mut stmt = self.prepare("SELECT node_name, id FROM hypervisors")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    /// Sets the given limits of a project, keeping the others.
    pub fn compute_quota_set(
        &self,
        project_id: &str,
        limits: &BTreeMap<String, i64>,
    ) -> Result<()> {
        let mut stmt = self.prepare(
            "INSERT INTO compute_quotas (project_id, resource, hard_limit) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
        )?;
        for (resource, limit) in limits {
            stmt.execute(params![project_id, resource, limit])?;
        }
        Ok(())
    }

    /// Forgets every limit set for a project: it has the defaults again.
    pub fn compute_quota_delete(&self, project_id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM compute_quotas WHERE project_id = ?1",
            [project_id],
        )?;
        Ok(())
    }
}
