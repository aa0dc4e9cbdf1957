//! Server group queries: groups, their members, and the nodes those members run on.

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, StoreError, Tx};
use crate::model::{GroupPolicy, ServerGroup};

fn group(r: &Row) -> rusqlite::Result<ServerGroup> {
    let policy: String = r.get("policy")?;
    Ok(ServerGroup {
        id: r.get("id")?,
        name: r.get("name")?,
        project_id: r.get("project_id")?,
        user_id: r.get("user_id")?,
        // The column's CHECK admits only the four policies.
        policy: GroupPolicy::parse(&policy).unwrap_or(GroupPolicy::Affinity),
        members: Vec::new(),
        created_at: r.get("created_at")?,
    })
}

impl Db<'_> {
    fn with_members(&self, mut g: ServerGroup) -> Result<ServerGroup> {
        let mut stmt = self.prepare(
            "SELECT m.server_id FROM server_group_members m
               JOIN servers s ON s.id = m.server_id AND s.deleted = 0
              WHERE m.group_id = ?1 ORDER BY s.created_at, s.id",
        )?;
        let rows = stmt.query_map([&g.id], |r| r.get(0))?;
        g.members = rows.collect::<rusqlite::Result<_>>()?;
        Ok(g)
    }

    pub fn server_group_get(&self, id: &str) -> Result<Option<ServerGroup>> {
        let found = self
            .query_row("SELECT * FROM server_groups WHERE id = ?1", [id], group)
            .optional()?;
        found.map(|g| self.with_members(g)).transpose()
    }

    /// Groups in creation order: one project's, or every project's with `None`.
    pub fn server_groups_list(&self, project_id: Option<&str>) -> Result<Vec<ServerGroup>> {
        let mut stmt = self.prepare(
            "SELECT * FROM server_groups WHERE ?1 IS NULL OR project_id = ?1
              ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([project_id], group)?;
        rows.map(|g| self.with_members(g.map_err(StoreError::from)?))
            .collect()
    }

    pub fn server_group_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM server_groups WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// The group a server belongs to, if any.
    pub fn server_group_of(&self, server_id: &str) -> Result<Option<ServerGroup>> {
        let id: Option<String> = self
            .query_row(
                "SELECT group_id FROM server_group_members WHERE server_id = ?1",
                [server_id],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.server_group_get(&id),
            None => Ok(None),
        }
    }

    /// The nodes the group's live members are placed on, except `server_id` itself.
    pub fn server_group_hosts(&self, group_id: &str, server_id: &str) -> Result<BTreeSet<String>> {
        let mut stmt = self.prepare(
            "SELECT DISTINCT s.host FROM server_group_members m
               JOIN servers s ON s.id = m.server_id
              WHERE m.group_id = ?1 AND s.deleted = 0 AND s.host IS NOT NULL AND s.id != ?2",
        )?;
        let rows = stmt.query_map([group_id, server_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    pub fn server_group_insert(&self, g: &ServerGroup) -> Result<()> {
        self.execute(
            "INSERT INTO server_groups (id, name, project_id, user_id, policy, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                g.id,
                g.name,
                g.project_id,
                g.user_id,
                g.policy.as_str(),
                g.created_at
            ],
        )?;
        Ok(())
    }

    /// Deletes a group; its servers keep running, no longer members.
    pub fn server_group_delete(&self, id: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM server_groups WHERE id = ?1", [id])? > 0)
    }

    pub fn server_group_add_member(&self, group_id: &str, server_id: &str) -> Result<()> {
        self.execute(
            "INSERT INTO server_group_members (group_id, server_id) VALUES (?1, ?2)",
            [group_id, server_id],
        )?;
        Ok(())
    }
}
