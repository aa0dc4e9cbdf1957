//! Server queries: the servers, what they hold per project (quota usage) and per node
//! (placement).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Db, Result, StoreError, Tx, flag, json, json_opt, time, time_opt};
use crate::model::{
    Allocation, ComputeUsage, Fault, Flavor, Server, ServerFilter, TaskState, VmState,
};

fn corrupt(what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

fn server(r: &Row) -> rusqlite::Result<Server> {
    let id: String = r.get("id")?;
    let vm_state: String = r.get("vm_state")?;
    let task_state: Option<String> = r.get("task_state")?;
    Ok(Server {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("server id", &id))?,
        name: r.get("name")?,
        project_id: r.get("project_id")?,
        user_id: r.get("user_id")?,
        flavor: json::<Flavor>(r, "flavor")?,
        old_flavor: json_opt(r, "old_flavor")?,
        image_id: r.get("image_id")?,
        vm_state: VmState::parse(&vm_state).ok_or_else(|| corrupt("vm_state", &vm_state))?,
        task_state: match task_state {
            Some(t) => Some(TaskState::parse(&t).ok_or_else(|| corrupt("task_state", &t))?),
            None => None,
        },
        power_state: r.get("power_state")?,
        host: r.get("host")?,
        availability_zone: r.get("availability_zone")?,
        key_name: r.get("key_name")?,
        user_data: r.get("user_data")?,
        metadata: json(r, "metadata")?,
        tags: json(r, "tags")?,
        description: r.get("description")?,
        networks: json(r, "networks")?,
        block_devices: json(r, "block_devices")?,
        security_groups: json(r, "security_groups")?,
        fault: json_opt::<Fault>(r, "fault")?,
        counted: r.get("counted")?,
        locked: r.get("locked")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
        launched_at: time_opt(r, "launched_at")?,
        deleted_at: time_opt(r, "deleted_at")?,
    })
}

/// A time as rusqlite stores `DateTime<Utc>`, so comparisons in SQL order correctly.
fn sql_time(t: chrono::DateTime<Utc>) -> String {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    match rusqlite::ToSql::to_sql(&t) {
        Ok(ToSqlOutput::Owned(rusqlite::types::Value::Text(s))) => s,
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(s))) => String::from_utf8_lossy(s).into_owned(),
        _ => t.to_rfc3339(),
    }
}

/// What a server occupies on its host: during an unconfirmed resize, the larger of the
/// two flavors, so the host never over-commits while a revert is still possible.
fn footprint(s: &Server) -> (i64, i64, i64) {
    let max = |f: fn(&Flavor) -> u64| {
        let now = f(&s.flavor);
        s.old_flavor.as_ref().map_or(now, |old| now.max(f(old))) as i64
    };
    (
        max(|f| u64::from(f.vcpus)),
        max(|f| f.ram_mb),
        max(|f| f.disk_gb),
    )
}

impl Db<'_> {
    /// Servers (deleted ones too) that ran at some time in [`start`, `end`), of one
    /// project or all: what usage is computed from.
    pub fn servers_launched_in(
        &self,
        project_id: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Server>> {
        let mut stmt = self.prepare(
            "SELECT * FROM servers
              WHERE (?1 IS NULL OR project_id = ?1) AND launched_at IS NOT NULL
                AND launched_at < ?3 AND (deleted_at IS NULL OR deleted_at > ?2)
              ORDER BY project_id, created_at, id",
        )?;
        let rows = stmt.query_map(params![project_id, start, end], server)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A server, also once deleted (its row stays, marked).
    pub fn server_get_even_deleted(&self, id: Uuid) -> Result<Option<Server>> {
        Ok(self
            .query_row(
                "SELECT * FROM servers WHERE id = ?1",
                [id.to_string()],
                server,
            )
            .optional()?)
    }

    /// A server that is not deleted.
    pub fn server_get(&self, id: Uuid) -> Result<Option<Server>> {
        Ok(self
            .query_row(
                "SELECT * FROM servers WHERE id = ?1 AND deleted = 0",
                [id.to_string()],
                server,
            )
            .optional()?)
    }

    /// Servers matching `f`, newest first. The project and deletion predicates are
    /// written out only when they apply, so SQLite walks `servers_project` in order
    /// and stops after `limit` rows instead of sorting every server.
    pub fn servers_list(&self, f: &ServerFilter) -> Result<Vec<Server>> {
        use rusqlite::types::Value as Sql;
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<Sql> = Vec::new();
        let mut arg = |clause: &'static str, value: Sql, clauses: &mut Vec<&str>| {
            clauses.push(clause);
            args.push(value);
        };
        if let Some(project) = &f.project_id {
            arg("project_id = ?", Sql::Text(project.clone()), &mut clauses);
        }
        match f.changes_since {
            None => clauses.push("deleted = 0"),
            Some(t) => arg("updated_at >= ?", Sql::Text(sql_time(t)), &mut clauses),
        }
        if let Some(name) = &f.name {
            arg("name REGEXP ?", Sql::Text(name.clone()), &mut clauses);
        }
        if let Some(states) = &f.vm_states {
            let list =
                serde_json::to_string(&states.iter().map(|v| v.as_str()).collect::<Vec<_>>())?;
            arg(
                "vm_state IN (SELECT value FROM json_each(?))",
                Sql::Text(list),
                &mut clauses,
            );
        }
        if let Some(flavor) = &f.flavor_id {
            arg(
                "json_extract(flavor, '$.id') = ?",
                Sql::Text(flavor.clone()),
                &mut clauses,
            );
        }
        if let Some(image) = &f.image_id {
            arg("image_id = ?", Sql::Text(image.clone()), &mut clauses);
        }
        if let Some(host) = &f.host {
            arg("host = ?", Sql::Text(host.clone()), &mut clauses);
        }
        // Nova's tag filters; each list is bound as JSON, once per `?`.
        const ALL_OF: &str = "(SELECT COUNT(DISTINCT t.value) FROM json_each(servers.tags) t
               WHERE t.value IN (SELECT value FROM json_each(?))) = json_array_length(?)";
        const ANY_OF: &str = "EXISTS (SELECT 1 FROM json_each(servers.tags) t
               WHERE t.value IN (SELECT value FROM json_each(?)))";
        const NOT_ALL_OF: &str = "(SELECT COUNT(DISTINCT t.value) FROM json_each(servers.tags) t
               WHERE t.value IN (SELECT value FROM json_each(?))) < json_array_length(?)";
        const NOT_ANY_OF: &str = "NOT EXISTS (SELECT 1 FROM json_each(servers.tags) t
               WHERE t.value IN (SELECT value FROM json_each(?)))";
        for (tags, clause) in [
            (&f.tags, ALL_OF),
            (&f.tags_any, ANY_OF),
            (&f.not_tags, NOT_ALL_OF),
            (&f.not_tags_any, NOT_ANY_OF),
        ] {
            if tags.is_empty() {
                continue;
            }
            let list = serde_json::to_string(tags)?;
            clauses.push(clause);
            args.extend((0..clause.matches('?').count()).map(|_| Sql::Text(list.clone())));
        }
        if let Some((t, id)) = &f.marker {
            clauses.push("(created_at < ? OR (created_at = ? AND id < ?))");
            args.push(Sql::Text(sql_time(*t)));
            args.push(Sql::Text(sql_time(*t)));
            args.push(Sql::Text(id.to_string()));
        }
        args.push(Sql::Integer(f.limit as i64));
        let sql = format!(
            "SELECT * FROM servers WHERE {} ORDER BY created_at DESC, id DESC LIMIT ?",
            clauses.join(" AND ")
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), server)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Servers with an operation in flight (a task state, or still building).
    pub fn servers_in_flight(&self) -> Result<Vec<Server>> {
        let mut stmt = self.prepare(
            "SELECT * FROM servers WHERE deleted = 0
               AND (task_state IS NOT NULL OR vm_state = 'building')",
        )?;
        let rows = stmt.query_map([], server)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a project's servers hold against its quota.
    pub fn server_usage(&self, project_id: &str) -> Result<ComputeUsage> {
        Ok(self.query_row(
            "SELECT count(*), coalesce(sum(vcpus), 0), coalesce(sum(ram_mb), 0) FROM servers
              WHERE project_id = ?1 AND deleted = 0 AND counted = 1",
            [project_id],
            |r| {
                Ok(ComputeUsage {
                    instances: r.get(0)?,
                    cores: r.get(1)?,
                    ram_mb: r.get(2)?,
                })
            },
        )?)
    }

    /// What the servers on each node hold.
    pub fn allocations_by_node(&self) -> Result<HashMap<String, Allocation>> {
        let mut stmt = self.prepare(
            "SELECT host, count(*), sum(vcpus), sum(ram_mb), sum(disk_gb) FROM servers
              WHERE host IS NOT NULL AND deleted = 0 GROUP BY host",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Allocation {
                    servers: r.get(1)?,
                    vcpus: r.get(2)?,
                    ram_mb: r.get(3)?,
                    disk_gb: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    pub fn server_insert(&self, s: &Server) -> Result<()> {
        let (vcpus, ram, disk) = footprint(s);
        self.execute(
            "INSERT INTO servers (id, name, project_id, user_id, flavor, old_flavor, image_id,
                 vm_state, task_state, power_state, host, availability_zone, key_name,
                 user_data, metadata, description, networks, block_devices, security_groups,
                 fault, counted, vcpus, ram_mb, disk_gb, created_at, updated_at, launched_at,
                 tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
            params![
                s.id.to_string(),
                s.name,
                s.project_id,
                s.user_id,
                serde_json::to_string(&s.flavor)?,
                s.old_flavor
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                s.image_id,
                s.vm_state.as_str(),
                s.task_state.map(TaskState::as_str),
                s.power_state,
                s.host,
                s.availability_zone,
                s.key_name,
                s.user_data,
                serde_json::to_string(&s.metadata)?,
                s.description,
                serde_json::to_string(&s.networks)?,
                serde_json::to_string(&s.block_devices)?,
                serde_json::to_string(&s.security_groups)?,
                s.fault.as_ref().map(serde_json::to_string).transpose()?,
                flag(s.counted),
                vcpus,
                ram,
                disk,
                s.created_at,
                s.updated_at,
                s.launched_at,
                serde_json::to_string(&s.tags)?
            ],
        )?;
        Ok(())
    }

    /// Writes every field of a server back (and stamps `updated_at`); `false` if it is
    /// gone.
    pub fn server_update(&self, s: &Server) -> Result<bool> {
        let (vcpus, ram, disk) = footprint(s);
        let deleted = s.vm_state == VmState::Deleted;
        let n = self.execute(
            "UPDATE servers SET name = ?2, flavor = ?3, old_flavor = ?4, vm_state = ?5,
                 task_state = ?6, power_state = ?7, host = ?8, availability_zone = ?9,
                 metadata = ?10, description = ?11, security_groups = ?12, fault = ?13,
                 counted = ?14, vcpus = ?15, ram_mb = ?16, disk_gb = ?17, updated_at = ?18,
                 launched_at = ?19, deleted_at = ?20, deleted = ?21, locked = ?22, tags = ?23
             WHERE id = ?1 AND deleted = 0",
            params![
                s.id.to_string(),
                s.name,
                serde_json::to_string(&s.flavor)?,
                s.old_flavor
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?,
                s.vm_state.as_str(),
                s.task_state.map(TaskState::as_str),
                s.power_state,
                s.host,
                s.availability_zone,
                serde_json::to_string(&s.metadata)?,
                s.description,
                serde_json::to_string(&s.security_groups)?,
                s.fault.as_ref().map(serde_json::to_string).transpose()?,
                flag(s.counted && !deleted),
                vcpus,
                ram,
                disk,
                Utc::now(),
                s.launched_at,
                s.deleted_at,
                flag(deleted),
                flag(s.locked),
                serde_json::to_string(&s.tags)?
            ],
        )?;
        match n {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(StoreError::Corrupt(format!("{n} servers with one id"))),
        }
    }
}
