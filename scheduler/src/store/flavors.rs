//! Flavor queries: flavors, the projects that may use private ones, and extra specs.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx, flag};
use crate::model::{Flavor, FlavorFilter, FlavorSort};

/// A size column: SQLite holds it as a (checked non-negative) signed integer.
fn size(r: &Row, column: &str) -> rusqlite::Result<u64> {
    let v: i64 = r.get(column)?;
    u64::try_from(v).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, e.into())
    })
}

/// A size to store; sizes are checked to fit a signed 32-bit integer before.
fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn flavor(r: &Row) -> rusqlite::Result<Flavor> {
    Ok(Flavor {
        id: r.get("id")?,
        name: r.get("name")?,
        vcpus: r.get("vcpus")?,
        ram_mb: size(r, "ram_mb")?,
        disk_gb: size(r, "disk_gb")?,
        ephemeral_gb: size(r, "ephemeral_gb")?,
        swap_mb: size(r, "swap_mb")?,
        rxtx_factor: r.get("rxtx_factor")?,
        is_public: r.get("is_public")?,
        description: r.get("description")?,
        extra_specs: BTreeMap::new(),
    })
}

fn sort_column(sort: FlavorSort) -> &'static str {
    match sort {
        FlavorSort::Created => "seq",
        FlavorSort::FlavorId => "id",
        FlavorSort::Name => "name",
        FlavorSort::Vcpus => "vcpus",
        FlavorSort::RamMb => "ram_mb",
        FlavorSort::DiskGb => "disk_gb",
        FlavorSort::EphemeralGb => "ephemeral_gb",
        FlavorSort::SwapMb => "swap_mb",
        FlavorSort::RxtxFactor => "rxtx_factor",
        FlavorSort::IsPublic => "is_public",
        FlavorSort::Disabled => "disabled",
        FlavorSort::Description => "description",
    }
}

impl Db<'_> {
    /// A flavor by id, with its extra specs.
    pub fn flavor_get(&self, id: &str) -> Result<Option<Flavor>> {
        let found = self
            .query_row("SELECT * FROM flavors WHERE id = ?1", [id], flavor)
            .optional()?;
        match found {
            Some(mut f) => {
                f.extra_specs = self.flavor_extra_specs(id)?;
                Ok(Some(f))
            }
            None => Ok(None),
        }
    }

    pub fn flavor_name_taken(&self, name: &str) -> Result<bool> {
        Ok(self
            .query_row("SELECT 1 FROM flavors WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Flavors matching `f`, in its order (ties by creation), with extra specs.
    pub fn flavors_list(&self, f: &FlavorFilter) -> Result<Vec<Flavor>> {
        let dir = if f.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT f.* FROM flavors f
              WHERE (?1 IS NULL OR f.ram_mb >= ?1) AND (?2 IS NULL OR f.disk_gb >= ?2)
                AND (?3 IS NULL OR f.is_public = ?3
                     OR (?3 = 1 AND EXISTS (SELECT 1 FROM flavor_access a
                                            WHERE a.flavor_id = f.id AND a.project_id = ?4)))
              ORDER BY f.{col} {dir}, f.seq {dir}",
            col = sort_column(f.sort)
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                f.min_ram_mb.map(to_sql),
                f.min_disk_gb.map(to_sql),
                f.is_public.map(flag),
                f.project_id
            ],
            flavor,
        )?;
        let mut flavors = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut specs: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        let mut stmt = self.prepare("SELECT flavor_id, key, value FROM flavor_extra_specs")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, key, value) = row?;
            specs.entry(id).or_default().insert(key, value);
        }
        for f in &mut flavors {
            f.extra_specs = specs.remove(&f.id).unwrap_or_default();
        }
        Ok(flavors)
    }

    /// Whether `project_id` may use flavor `flavor_id`: it is public, or the project is
    /// on its access list.
    pub fn flavor_usable_by(&self, flavor_id: &str, project_id: &str) -> Result<bool> {
        Ok(self
            .query_row(
                "SELECT 1 FROM flavors f WHERE f.id = ?1 AND (f.is_public = 1 OR EXISTS
                   (SELECT 1 FROM flavor_access a WHERE a.flavor_id = f.id AND a.project_id = ?2))",
                [flavor_id, project_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The projects on a flavor's access list.
    pub fn flavor_access_list(&self, flavor_id: &str) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT project_id FROM flavor_access WHERE flavor_id = ?1 ORDER BY project_id",
        )?;
        let rows = stmt.query_map([flavor_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn flavor_extra_specs(&self, flavor_id: &str) -> Result<BTreeMap<String, String>> {
        let mut stmt =
            self.prepare("SELECT key, value FROM flavor_extra_specs WHERE flavor_id = ?1")?;
        let rows = stmt.query_map([flavor_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    /// Adds a flavor and its extra specs; a taken id or name is a duplicate.
    pub fn flavor_insert(&self, f: &Flavor) -> Result<()> {
        self.execute(
            "INSERT INTO flavors (id, name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb,
                                  rxtx_factor, is_public, description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                f.id,
                f.name,
                f.vcpus,
                to_sql(f.ram_mb),
                to_sql(f.disk_gb),
                to_sql(f.ephemeral_gb),
                to_sql(f.swap_mb),
                f.rxtx_factor,
                flag(f.is_public),
                f.description,
                Utc::now()
            ],
        )?;
        self.flavor_extra_specs_set(&f.id, &f.extra_specs)
    }

    /// Sets a flavor's description (2.55); false when there is no such flavor.
    pub fn flavor_description_set(&self, id: &str, description: Option<&str>) -> Result<bool> {
        Ok(self.execute(
            "UPDATE flavors SET description = ?2 WHERE id = ?1",
            params![id, description],
        )? == 1)
    }

    /// Deletes a flavor with its access list and extra specs; false when there is none.
    pub fn flavor_delete(&self, id: &str) -> Result<bool> {
        Ok(self.execute("DELETE FROM flavors WHERE id = ?1", [id])? == 1)
    }

    /// Lets a project use a private flavor; a duplicate when it already may.
    pub fn flavor_access_add(&self, flavor_id: &str, project_id: &str) -> Result<()> {
        self.execute(
            "INSERT INTO flavor_access (flavor_id, project_id) VALUES (?1, ?2)",
            [flavor_id, project_id],
        )?;
        Ok(())
    }

    /// False when the project was not on the list.
    pub fn flavor_access_remove(&self, flavor_id: &str, project_id: &str) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM flavor_access WHERE flavor_id = ?1 AND project_id = ?2",
            [flavor_id, project_id],
        )? == 1)
    }

    /// Sets (adds or replaces) the given extra specs, keeping the others.
    pub fn flavor_extra_specs_set(
        &self,
        flavor_id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut stmt = self.prepare(
            "INSERT INTO flavor_extra_specs (flavor_id, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (flavor_id, key) DO UPDATE SET value = excluded.value",
        )?;
        for (key, value) in specs {
            stmt.execute([flavor_id, key, value])?;
        }
        Ok(())
    }

    /// False when the flavor had no such key.
    pub fn flavor_extra_spec_delete(&self, flavor_id: &str, key: &str) -> Result<bool> {
        Ok(self.execute(
            "DELETE FROM flavor_extra_specs WHERE flavor_id = ?1 AND key = ?2",
            [flavor_id, key],
        )? == 1)
    }
}
