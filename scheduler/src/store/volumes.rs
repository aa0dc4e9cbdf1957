//! Block-storage queries: volume types, volumes with their attachments, snapshots,
//! what each project uses (quota) and what each node holds (placement).

use std::collections::{BTreeMap, HashMap};

use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Db, Result, StoreError, Tx, flag};
use crate::model::{
    Volume, VolumeAttachment, VolumeFilter, VolumeQuota, VolumeSnapshot, VolumeType, VolumeUsage,
};

fn uuid_col(r: &Row, col: &str) -> rusqlite::Result<Uuid> {
    let text: String = r.get(col)?;
    Uuid::parse_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn map_col(r: &Row, col: &str) -> rusqlite::Result<BTreeMap<String, String>> {
    let text: String = r.get(col)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn volume_type(r: &Row) -> rusqlite::Result<VolumeType> {
    Ok(VolumeType {
        id: r.get("id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        is_public: r.get("is_public")?,
        extra_specs: map_col(r, "extra_specs")?,
    })
}

fn volume(r: &Row) -> rusqlite::Result<Volume> {
    let snapshot: Option<String> = r.get("snapshot_id")?;
    Ok(Volume {
        id: uuid_col(r, "id")?,
        project_id: r.get("project_id")?,
        user_id: r.get("user_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        size_gb: r.get("size_gb")?,
        status: r.get("status")?,
        type_id: r.get("type_id")?,
        type_name: r.get("type_name")?,
        availability_zone: r.get("availability_zone")?,
        host: r.get("host")?,
        multiattach: r.get("multiattach")?,
        bootable: r.get("bootable")?,
        read_only: r.get("read_only")?,
        metadata: map_col(r, "metadata")?,
        image_id: r.get("image_id")?,
        snapshot_id: snapshot.and_then(|s| Uuid::parse_str(&s).ok()),
        counted: r.get("counted")?,
        attachments: Vec::new(),
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn attachment(r: &Row) -> rusqlite::Result<VolumeAttachment> {
    Ok(VolumeAttachment {
        id: uuid_col(r, "id")?,
        volume_id: uuid_col(r, "volume_id")?,
        server_id: uuid_col(r, "server_id")?,
        device: r.get("device")?,
        mode: r.get("mode")?,
        host_name: r.get("host_name")?,
        status: r.get("status")?,
        attached_at: r.get("attached_at")?,
        delete_on_termination: r.get("delete_on_termination")?,
    })
}

fn snapshot(r: &Row) -> rusqlite::Result<VolumeSnapshot> {
    Ok(VolumeSnapshot {
        id: uuid_col(r, "id")?,
        project_id: r.get("project_id")?,
        user_id: r.get("user_id")?,
        volume_id: uuid_col(r, "volume_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        size_gb: r.get("size_gb")?,
        status: r.get("status")?,
        metadata: map_col(r, "metadata")?,
        counted: r.get("counted")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    /// A volume type by id, or else by name (Cinder accepts either).
    pub fn volume_type_get(&self, id_or_name: &str) -> Result<Option<VolumeType>> {
        Ok(self
            .query_row(
                "SELECT * FROM volume_types WHERE id = ?1
                 UNION ALL SELECT * FROM volume_types WHERE name = ?1 LIMIT 1",
                [id_or_name],
                volume_type,
            )
            .optional()?)
    }

    pub fn volume_types_list(&self) -> Result<Vec<VolumeType>> {
        let mut stmt = self.prepare("SELECT * FROM volume_types ORDER BY created_at, name")?;
        let rows = stmt.query_map([], volume_type)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn volume_type_in_use(&self, id: &str) -> Result<bool> {
        Ok(self
            .query_row(
                "SELECT 1 FROM volumes WHERE type_id = ?1 LIMIT 1",
                [id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn attachments_of(&self, volume_id: Uuid) -> Result<Vec<VolumeAttachment>> {
        let mut stmt = self.prepare(
            "SELECT * FROM volume_attachments WHERE volume_id = ?1 ORDER BY attached_at, id",
        )?;
        let rows = stmt.query_map([volume_id.to_string()], attachment)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn volume_get(&self, id: Uuid) -> Result<Option<Volume>> {
        let found = self
            .query_row(
                "SELECT v.*, t.name AS type_name FROM volumes v
                 JOIN volume_types t ON t.id = v.type_id WHERE v.id = ?1",
                [id.to_string()],
                volume,
            )
            .optional()?;
        match found {
            Some(mut v) => {
                v.attachments = self.attachments_of(v.id)?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// The volumes matching `filter`, oldest first, with their attachments.
    pub fn volumes_list(&self, filter: &VolumeFilter) -> Result<Vec<Volume>> {
        let mut stmt = self.prepare(
            "SELECT v.*, t.name AS type_name FROM volumes v JOIN volume_types t ON t.id = v.type_id
             WHERE (?1 IS NULL OR v.project_id = ?1)
               AND (?2 IS NULL OR v.name = ?2) AND (?3 IS NULL OR v.status = ?3)
               AND (?4 IS NULL OR v.availability_zone = ?4) AND (?5 IS NULL OR v.bootable = ?5)
               AND (?6 IS NULL OR v.type_id = ?6)
             ORDER BY v.created_at, v.id",
        )?;
        let rows = stmt.query_map(
            params![
                filter.project_id,
                filter.name,
                filter.status,
                filter.availability_zone,
                filter.bootable.map(flag),
                filter.type_id
            ],
            volume,
        )?;
        let mut volumes: Vec<Volume> = rows.collect::<rusqlite::Result<_>>()?;
        volumes.retain(|v| {
            filter
                .metadata
                .iter()
                .all(|(k, val)| v.metadata.get(k) == Some(val))
        });
        let mut attachments: HashMap<Uuid, Vec<VolumeAttachment>> = HashMap::new();
        let mut stmt = self.prepare("SELECT * FROM volume_attachments ORDER BY attached_at, id")?;
        for a in stmt.query_map([], attachment)? {
            let a = a?;
            attachments.entry(a.volume_id).or_default().push(a);
        }
        for v in &mut volumes {
            v.attachments = attachments.remove(&v.id).unwrap_or_default();
        }
        Ok(volumes)
    }

    /// The attachments of each of `servers`, by device name.
    pub fn volume_attachments_of_servers(
        &self,
        servers: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<VolumeAttachment>>> {
        let mut out: HashMap<Uuid, Vec<VolumeAttachment>> = HashMap::new();
        let mut stmt =
            self.prepare("SELECT * FROM volume_attachments WHERE server_id = ?1 ORDER BY device")?;
        for id in servers {
            for a in stmt.query_map([id.to_string()], attachment)? {
                out.entry(*id).or_default().push(a?);
            }
        }
        Ok(out)
    }

    /// The attachments of one server, by device name.
    pub fn volume_attachments_of_server(&self, server_id: Uuid) -> Result<Vec<VolumeAttachment>> {
        let mut stmt =
            self.prepare("SELECT * FROM volume_attachments WHERE server_id = ?1 ORDER BY device")?;
        let rows = stmt.query_map([server_id.to_string()], attachment)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What a project's counted volumes and snapshots use.
    pub fn volume_usage(&self, project_id: &str) -> Result<VolumeUsage> {
        let (volumes, volume_gb): (i64, i64) = self.query_row(
            "SELECT count(*), coalesce(sum(size_gb), 0) FROM volumes
             WHERE project_id = ?1 AND counted = 1",
            [project_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (snapshots, snapshot_gb): (i64, i64) = self.query_row(
            "SELECT count(*), coalesce(sum(size_gb), 0) FROM volume_snapshots
             WHERE project_id = ?1 AND counted = 1",
            [project_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(VolumeUsage {
            volumes,
            snapshots,
            gigabytes: volume_gb + snapshot_gb,
        })
    }

    /// The limits set for a project, by Cinder resource name.
    pub fn volume_quota_limits(&self, project_id: &str) -> Result<BTreeMap<String, i64>> {
        let mut stmt =
            self.prepare("SELECT resource, hard_limit FROM volume_quotas WHERE project_id = ?1")?;
        let rows = stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A project's enforced limits: what was set, else `defaults`. In a write
    /// transaction this reads the snapshot the change commits on.
    pub fn volume_quota(&self, project_id: &str, defaults: &VolumeQuota) -> Result<VolumeQuota> {
        let set = self.volume_quota_limits(project_id)?;
        let get = |name: &str, default: i64| set.get(name).copied().unwrap_or(default);
        Ok(VolumeQuota {
            volumes: get("volumes", defaults.volumes),
            snapshots: get("snapshots", defaults.snapshots),
            gigabytes: get("gigabytes", defaults.gigabytes),
            per_volume_gigabytes: get("per_volume_gigabytes", defaults.per_volume_gigabytes),
        })
    }

    /// Gigabytes of volumes and snapshots held on each node.
    pub fn volume_gb_by_host(&self) -> Result<HashMap<String, i64>> {
        let mut stmt = self.prepare(
            "SELECT host, sum(gb) FROM (
                 SELECT host, size_gb AS gb FROM volumes WHERE host IS NOT NULL
                 UNION ALL
                 SELECT v.host, s.size_gb FROM volume_snapshots s JOIN volumes v ON v.id = s.volume_id
                 WHERE v.host IS NOT NULL)
             GROUP BY host",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn snapshot_get(&self, id: Uuid) -> Result<Option<VolumeSnapshot>> {
        Ok(self
            .query_row(
                "SELECT * FROM volume_snapshots WHERE id = ?1",
                [id.to_string()],
                snapshot,
            )
            .optional()?)
    }

    /// Snapshots of a project (`None`: all), oldest first.
    pub fn snapshots_list(&self, project_id: Option<&str>) -> Result<Vec<VolumeSnapshot>> {
        let mut stmt = self.prepare(
            "SELECT * FROM volume_snapshots WHERE (?1 IS NULL OR project_id = ?1)
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([project_id], snapshot)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn snapshot_count_of_volume(&self, volume_id: Uuid) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM volume_snapshots WHERE volume_id = ?1",
            [volume_id.to_string()],
            |r| r.get(0),
        )?)
    }
}

impl Tx<'_> {
    pub fn volume_type_insert(&self, t: &VolumeType) -> Result<()> {
        self.execute(
            "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                t.id,
                t.name,
                t.description,
                flag(t.is_public),
                serde_json::to_string(&t.extra_specs)?,
                chrono::Utc::now()
            ],
        )?;
        Ok(())
    }

    pub fn volume_type_update(&self, t: &VolumeType) -> Result<()> {
        self.execute(
            "UPDATE volume_types SET name = ?2, description = ?3, is_public = ?4,
             extra_specs = ?5 WHERE id = ?1",
            params![
                t.id,
                t.name,
                t.description,
                flag(t.is_public),
                serde_json::to_string(&t.extra_specs)?
            ],
        )?;
        Ok(())
    }

    pub fn volume_type_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM volume_types WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn volume_insert(&self, v: &Volume) -> Result<()> {
        self.execute(
            "INSERT INTO volumes (id, project_id, user_id, name, description, size_gb, status,
                 type_id, availability_zone, host, multiattach, bootable, read_only, metadata,
                 image_id, snapshot_id, counted, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19)",
            params![
                v.id.to_string(),
                v.project_id,
                v.user_id,
                v.name,
                v.description,
                v.size_gb,
                v.status,
                v.type_id,
                v.availability_zone,
                v.host,
                flag(v.multiattach),
                flag(v.bootable),
                flag(v.read_only),
                serde_json::to_string(&v.metadata)?,
                v.image_id,
                v.snapshot_id.map(|s| s.to_string()),
                flag(v.counted),
                v.created_at,
                v.updated_at
            ],
        )?;
        Ok(())
    }

    /// Writes a volume's own columns (not its attachments), stamping `updated_at`.
    pub fn volume_update(&self, v: &Volume) -> Result<()> {
        let changed = self.execute(
            "UPDATE volumes SET name = ?2, description = ?3, size_gb = ?4, status = ?5,
                 host = ?6, multiattach = ?7, bootable = ?8, read_only = ?9, metadata = ?10,
                 counted = ?11, availability_zone = ?12, updated_at = ?13
             WHERE id = ?1",
            params![
                v.id.to_string(),
                v.name,
                v.description,
                v.size_gb,
                v.status,
                v.host,
                flag(v.multiattach),
                flag(v.bootable),
                flag(v.read_only),
                serde_json::to_string(&v.metadata)?,
                flag(v.counted),
                v.availability_zone,
                chrono::Utc::now()
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::Corrupt(format!("volume {} vanished", v.id)));
        }
        Ok(())
    }

    pub fn volume_delete(&self, id: Uuid) -> Result<()> {
        self.execute("DELETE FROM volumes WHERE id = ?1", [id.to_string()])?;
        Ok(())
    }

    /// Inserts or rewrites an attachment.
    pub fn attachment_put(&self, a: &VolumeAttachment) -> Result<()> {
        self.execute(
            "INSERT INTO volume_attachments (id, volume_id, server_id, device, mode, host_name,
                 status, attached_at, delete_on_termination)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET device = excluded.device, mode = excluded.mode,
                 host_name = excluded.host_name, status = excluded.status,
                 attached_at = excluded.attached_at,
                 delete_on_termination = excluded.delete_on_termination",
            params![
                a.id.to_string(),
                a.volume_id.to_string(),
                a.server_id.to_string(),
                a.device,
                a.mode,
                a.host_name,
                a.status,
                a.attached_at,
                flag(a.delete_on_termination)
            ],
        )?;
        Ok(())
    }

    pub fn attachment_delete(&self, id: Uuid) -> Result<()> {
        self.execute(
            "DELETE FROM volume_attachments WHERE id = ?1",
            [id.to_string()],
        )?;
        Ok(())
    }

    pub fn snapshot_insert(&self, s: &VolumeSnapshot) -> Result<()> {
        self.execute(
            "INSERT INTO volume_snapshots (id, project_id, user_id, volume_id, name, description,
                 size_gb, status, metadata, counted, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                s.id.to_string(),
                s.project_id,
                s.user_id,
                s.volume_id.to_string(),
                s.name,
                s.description,
                s.size_gb,
                s.status,
                serde_json::to_string(&s.metadata)?,
                flag(s.counted),
                s.created_at,
                s.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn snapshot_update(&self, s: &VolumeSnapshot) -> Result<()> {
        self.execute(
            "UPDATE volume_snapshots SET name = ?2, description = ?3, status = ?4,
                 metadata = ?5, counted = ?6, updated_at = ?7 WHERE id = ?1",
            params![
                s.id.to_string(),
                s.name,
                s.description,
                s.status,
                serde_json::to_string(&s.metadata)?,
                flag(s.counted),
                chrono::Utc::now()
            ],
        )?;
        Ok(())
    }

    pub fn snapshot_delete(&self, id: Uuid) -> Result<()> {
        self.execute(
            "DELETE FROM volume_snapshots WHERE id = ?1",
            [id.to_string()],
        )?;
        Ok(())
    }

    pub fn volume_quota_set(&self, project_id: &str, limits: &BTreeMap<String, i64>) -> Result<()> {
        let mut stmt = self.prepare(
            "INSERT INTO volume_quotas (project_id, resource, hard_limit) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
        )?;
        for (resource, limit) in limits {
            stmt.execute(params![project_id, resource, limit])?;
        }
        Ok(())
    }

    pub fn volume_quota_delete(&self, project_id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM volume_quotas WHERE project_id = ?1",
            [project_id],
        )?;
        Ok(())
    }
}
