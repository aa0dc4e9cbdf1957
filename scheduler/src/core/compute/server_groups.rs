//! Server groups (`os-server-groups`): a project's policy for where a set of servers
//! runs relative to each other. Placement honours it when a server joins at create
//! (`os:scheduler_hints.group`) and when a member live-migrates.

use std::collections::BTreeSet;

use chrono::Utc;

use super::quotas::other_limit;
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_project};
use crate::model::{Caller, GroupPolicy, ServerGroup};
use crate::store::Db;

/// A group a new server joins, with the nodes its members run on now.
pub(crate) struct JoinedGroup {
    pub policy: GroupPolicy,
    pub hosts: BTreeSet<String>,
}

/// Checks, inside a server create's transaction, that the caller's project owns the
/// group and the group has room under the `server_group_members` quota.
pub(crate) fn server_group_for_create(db: &Db, caller: &Caller, id: &str) -> Result<JoinedGroup> {
    let group = db
        .server_group_get(id)?
        .filter(|g| caller.is_admin() || caller.project_id() == Some(g.project_id.as_str()))
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid server group {id}: it does not exist in this project (openstack server group list)."
            ))
        })?;
    let limit = other_limit(
        &db.compute_quota_limits(&group.project_id)?,
        "server_group_members",
    );
    if limit >= 0 && group.members.len() as i64 >= limit {
        return Err(Error::OverQuota(format!(
            "Quota exceeded for server_group_members: server group {id} already has {limit} members."
        )));
    }
    Ok(JoinedGroup {
        policy: group.policy,
        hosts: db.server_group_hosts(&group.id, "")?,
    })
}

impl Core {
    /// `POST /os-server-groups`.
    pub async fn server_group_create(
        &self,
        caller: &Caller,
        name: String,
        policy: GroupPolicy,
    ) -> Result<ServerGroup> {
        let project_id = require_project(caller)?.to_string();
        authorize(
            caller,
            &project_id,
            Access::Write,
            "server groups of this project",
        )?;
        if name.trim().is_empty() || name.len() > 255 {
            return Err(Error::BadRequest(
                "Invalid input: a server group name must be 1 to 255 characters".into(),
            ));
        }
        let group = ServerGroup {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            project_id,
            user_id: caller.user_id.clone(),
            policy,
            members: Vec::new(),
            created_at: Utc::now(),
        };
        let row = group.clone();
        self.store
            .write(move |tx| {
                let limit =
                    other_limit(&tx.compute_quota_limits(&row.project_id)?, "server_groups");
                let used = tx.server_group_count(&row.project_id)?;
                if limit >= 0 && used >= limit {
                    return Err(Error::OverQuota(format!(
                        "Quota exceeded for server_groups: Requested 1, but already used {used} of {limit} server_groups. Delete a group or ask an administrator to raise the quota."
                    )));
                }
                tx.server_group_insert(&row)?;
                Ok(())
            })
            .await?;
        tracing::info!(id = %group.id, policy = group.policy.as_str(), "server group created");
        Ok(group)
    }

    /// `GET /os-server-groups`: the caller's project's, or every project's for an admin
    /// asking with `all_projects`.
    pub async fn server_groups_list(
        &self,
        caller: &Caller,
        all_projects: bool,
    ) -> Result<Vec<ServerGroup>> {
        let project = if all_projects && caller.is_admin() {
            None
        } else {
            Some(require_project(caller)?.to_string())
        };
        Ok(self
            .store
            .read(move |db| db.server_groups_list(project.as_deref()))
            .await?)
    }

    /// `GET /os-server-groups/{id}`.
    pub async fn server_group_get(&self, caller: &Caller, id: &str) -> Result<ServerGroup> {
        let key = id.to_string();
        let group = self
            .store
            .read(move |db| db.server_group_get(&key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("Server group {id} could not be found.")))?;
        authorize(
            caller,
            &group.project_id,
            Access::Read,
            &format!("Server group {id}"),
        )?;
        Ok(group)
    }

    /// `DELETE /os-server-groups/{id}`: its servers keep running, in no group.
    pub async fn server_group_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let group = self.server_group_get(caller, id).await?;
        authorize(
            caller,
            &group.project_id,
            Access::Write,
            &format!("Server group {id}"),
        )?;
        let key = group.id.clone();
        self.store
            .write(move |tx| tx.server_group_delete(&key))
            .await?;
        tracing::info!(%id, "server group deleted");
        Ok(())
    }
}
