//! Security groups and their rules, and which ports use which group.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx, flag};
use crate::model::{SecurityGroup, SecurityGroupRule};

fn group(r: &Row) -> rusqlite::Result<SecurityGroup> {
    Ok(SecurityGroup {
        id: r.get("id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        is_default: r.get("is_default")?,
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        rules: Vec::new(),
    })
}

fn rule(r: &Row) -> rusqlite::Result<SecurityGroupRule> {
    Ok(SecurityGroupRule {
        id: r.get("id")?,
        security_group_id: r.get("security_group_id")?,
        project_id: r.get("project_id")?,
        direction: r.get("direction")?,
        ethertype: r.get("ethertype")?,
        protocol: r.get("protocol")?,
        port_range_min: r.get("port_range_min")?,
        port_range_max: r.get("port_range_max")?,
        remote_ip_prefix: r.get("remote_ip_prefix")?,
        remote_group_id: r.get("remote_group_id")?,
        description: r.get("description")?,
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// What `security_group_rules_list` filters on; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct RuleFilter<'a> {
    pub project_id: Option<&'a str>,
    pub security_group_id: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub ethertype: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub marker: Option<&'a str>,
    pub limit: Option<usize>,
}

impl Db<'_> {
    fn with_rules(&self, mut g: SecurityGroup) -> Result<SecurityGroup> {
        g.rules = self.security_group_rules_list(&RuleFilter {
            security_group_id: Some(&g.id),
            ..RuleFilter::default()
        })?;
        Ok(g)
    }

    pub fn security_group_get(&self, id: &str) -> Result<Option<SecurityGroup>> {
        let found = self
            .query_row("SELECT * FROM security_groups WHERE id = ?1", [id], group)
            .optional()?;
        found.map(|g| self.with_rules(g)).transpose()
    }

    /// A project's `default` group, if it was made.
    pub fn security_group_default(&self, project_id: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(
                "SELECT id FROM security_groups WHERE project_id = ?1 AND is_default = 1",
                [project_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The ids of a project's groups called `name`.
    pub fn security_groups_named(&self, project_id: &str, name: &str) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT id FROM security_groups WHERE project_id = ?1 AND name = ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map([project_id, name], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Groups in creation order, with their rules: a project's (or all), by name or id.
    pub fn security_groups_list(
        &self,
        project_id: Option<&str>,
        name: Option<&str>,
        id: Option<&str>,
        marker: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<SecurityGroup>> {
        let mut stmt = self.prepare(
            "SELECT * FROM security_groups
              WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR name = ?2)
                AND (?3 IS NULL OR id = ?3)
                AND (?4 IS NULL OR seq > (SELECT seq FROM security_groups WHERE id = ?4))
              ORDER BY seq LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![project_id, name, id, marker, limit.map_or(-1, |l| l as i64)],
            group,
        )?;
        rows.map(|g| self.with_rules(g?))
            .collect::<Result<Vec<_>>>()
    }

    pub fn security_groups_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM security_groups WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// How many ports use a group.
    pub fn security_group_ports(&self, id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM port_security_groups WHERE security_group_id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    pub fn security_group_rule_get(&self, id: &str) -> Result<Option<SecurityGroupRule>> {
        Ok(self
            .query_row(
                "SELECT * FROM security_group_rules WHERE id = ?1",
                [id],
                rule,
            )
            .optional()?)
    }

    /// Rules in creation order.
    pub fn security_group_rules_list(&self, f: &RuleFilter) -> Result<Vec<SecurityGroupRule>> {
        let mut stmt = self.prepare(
            "SELECT * FROM security_group_rules
              WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR security_group_id = ?2)
                AND (?3 IS NULL OR direction = ?3) AND (?4 IS NULL OR ethertype = ?4)
                AND (?5 IS NULL OR protocol = ?5)
                AND (?6 IS NULL OR seq > (SELECT seq FROM security_group_rules WHERE id = ?6))
              ORDER BY seq LIMIT ?7",
        )?;
        let rows = stmt.query_map(
            params![
                f.project_id,
                f.security_group_id,
                f.direction,
                f.ethertype,
                f.protocol,
                f.marker,
                f.limit.map_or(-1, |l| l as i64)
            ],
            rule,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The addresses of every port in a group, on any node: its fixed IPs and the
    /// addresses of its allowed address pairs — what a rule naming the group matches.
    pub fn security_group_members(&self, group_id: &str) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT f.ip_address FROM port_fixed_ips f
               JOIN port_security_groups g ON g.port_seq = f.port_seq
              WHERE g.security_group_id = ?1
              ORDER BY f.ip_address",
        )?;
        let mut members = stmt
            .query_map([group_id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut stmt = self.prepare(
            "SELECT p.allowed_address_pairs FROM ports p
               JOIN port_security_groups g ON g.port_seq = p.seq
              WHERE g.security_group_id = ?1 AND p.allowed_address_pairs != '[]'",
        )?;
        let pairs = stmt
            .query_map([group_id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for json in pairs {
            let pairs: Vec<crate::model::AddressPair> = serde_json::from_str(&json)?;
            members.extend(pairs.into_iter().map(|p| p.ip_address));
        }
        members.sort();
        members.dedup();
        Ok(members)
    }

    /// The nodes whose network rendering involves `group_id`: those with ports in it,
    /// and those with ports in groups whose rules name it as remote.
    pub fn security_group_nodes(&self, group_id: &str) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT p.binding_host_id FROM ports p
               JOIN port_security_groups g ON g.port_seq = p.seq
              WHERE g.security_group_id = ?1 AND p.binding_host_id != ''
             UNION
             SELECT p.binding_host_id FROM ports p
               JOIN port_security_groups g ON g.port_seq = p.seq
               JOIN security_group_rules r ON r.security_group_id = g.security_group_id
              WHERE r.remote_group_id = ?1 AND p.binding_host_id != ''",
        )?;
        let rows = stmt.query_map([group_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn security_group_rules_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM security_group_rules WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }
}

impl Tx<'_> {
    /// Inserts a group and the rules it comes with.
    pub fn security_group_insert(&self, g: &SecurityGroup) -> Result<()> {
        self.execute(
            "INSERT INTO security_groups (id, project_id, name, description, is_default,
                 revision_number, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                g.id,
                g.project_id,
                g.name,
                g.description,
                flag(g.is_default),
                g.revision_number,
                g.created_at,
                g.updated_at
            ],
        )?;
        for r in &g.rules {
            self.security_group_rule_insert(r)?;
        }
        Ok(())
    }

    pub fn security_group_update(&self, g: &SecurityGroup) -> Result<()> {
        self.execute(
            "UPDATE security_groups SET name = ?2, description = ?3, revision_number = ?4,
                 updated_at = ?5
             WHERE id = ?1",
            params![g.id, g.name, g.description, g.revision_number, g.updated_at],
        )?;
        Ok(())
    }

    /// Deletes a group, its rules, and the rules of other groups that refer to it.
    pub fn security_group_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM security_groups WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn security_group_rule_insert(&self, r: &SecurityGroupRule) -> Result<()> {
        self.execute(
            "INSERT INTO security_group_rules (id, security_group_id, project_id, direction,
                 ethertype, protocol, port_range_min, port_range_max, remote_ip_prefix,
                 remote_group_id, description, revision_number, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.id,
                r.security_group_id,
                r.project_id,
                r.direction,
                r.ethertype,
                r.protocol,
                r.port_range_min,
                r.port_range_max,
                r.remote_ip_prefix,
                r.remote_group_id,
                r.description,
                r.revision_number,
                r.created_at,
                r.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn security_group_rule_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM security_group_rules WHERE id = ?1", [id])?;
        Ok(())
    }

    /// A group's revision moves on when its rules change, as Neutron's does.
    pub fn security_group_touch(&self, id: &str, at: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.execute(
            "UPDATE security_groups SET revision_number = revision_number + 1, updated_at = ?2
              WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }
}
