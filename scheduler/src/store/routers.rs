//! Router queries. A router's gateway and interfaces are `ports` rows with the router
//! as `device_id`; these queries read and write the router row itself.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::Router;

fn router(r: &Row) -> rusqlite::Result<Router> {
    Ok(Router {
        id: r.get("id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        admin_state_up: r.get("admin_state_up")?,
        status: r.get("status")?,
        external_network_id: r.get("external_network_id")?,
        enable_snat: r.get("enable_snat")?,
        host: r.get("host")?,
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    pub fn router_get(&self, id: &str) -> Result<Option<Router>> {
        Ok(self
            .query_row("SELECT * FROM routers WHERE id = ?1", [id], router)
            .optional()?)
    }

    /// Routers in creation order: a project's (or all, `None`), by name if given.
    pub fn routers_list(
        &self,
        project_id: Option<&str>,
        name: Option<&str>,
        marker: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Router>> {
        let mut stmt = self.prepare(
            "SELECT * FROM routers
              WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR name = ?2)
                AND (?3 IS NULL OR seq > (SELECT seq FROM routers WHERE id = ?3))
              ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![project_id, name, marker, limit.map_or(-1, |l| l as i64)],
            router,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The routers whose NAT `host` carries.
    pub fn routers_on_host(&self, host: &str) -> Result<Vec<Router>> {
        let mut stmt = self.prepare("SELECT * FROM routers WHERE host = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([host], router)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn routers_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM routers WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// How many routers each node carries, for placing a new one on the least loaded.
    pub fn routers_per_host(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.prepare("SELECT host, count(*) FROM routers GROUP BY host")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The router already holding an interface on `subnet_id`, if any.
    pub fn subnet_router(&self, subnet_id: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(
                "SELECT p.device_id FROM ports p JOIN port_fixed_ips f ON f.port_seq = p.seq
                  WHERE f.subnet_id = ?1 AND p.device_owner = 'network:router_interface'
                  LIMIT 1",
                [subnet_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

impl Tx<'_> {
    pub fn router_insert(&self, r: &Router) -> Result<()> {
        self.execute(
            "INSERT INTO routers (id, project_id, name, description, admin_state_up, status,
                 external_network_id, enable_snat, host, revision_number, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                r.id,
                r.project_id,
                r.name,
                r.description,
                r.admin_state_up,
                r.status,
                r.external_network_id,
                r.enable_snat,
                r.host,
                r.revision_number,
                r.created_at,
                r.updated_at
            ],
        )?;
        Ok(())
    }

    /// Writes a router's changeable fields.
    pub fn router_update(&self, r: &Router) -> Result<()> {
        self.execute(
            "UPDATE routers SET name = ?2, description = ?3, admin_state_up = ?4,
                 external_network_id = ?5, enable_snat = ?6, host = ?7,
                 revision_number = ?8, updated_at = ?9
             WHERE id = ?1",
            params![
                r.id,
                r.name,
                r.description,
                r.admin_state_up,
                r.external_network_id,
                r.enable_snat,
                r.host,
                r.revision_number,
                r.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn router_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM routers WHERE id = ?1", [id])?;
        Ok(())
    }
}
