//! Floating IP queries.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::{FloatingIp, FloatingIpFilter};

fn floating_ip(r: &Row) -> rusqlite::Result<FloatingIp> {
    Ok(FloatingIp {
        id: r.get("id")?,
        project_id: r.get("project_id")?,
        floating_network_id: r.get("floating_network_id")?,
        floating_ip_address: r.get("floating_ip_address")?,
        port_id: r.get("port_id")?,
        fixed_ip_address: r.get("fixed_ip_address")?,
        router_id: r.get("router_id")?,
        status: r.get("status")?,
        description: r.get("description")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    pub fn floating_ip_get(&self, id: &str) -> Result<Option<FloatingIp>> {
        Ok(self
            .query_row(
                "SELECT * FROM floating_ips WHERE id = ?1",
                [id],
                floating_ip,
            )
            .optional()?)
    }

    pub fn floating_ips_list(&self, f: &FloatingIpFilter) -> Result<Vec<FloatingIp>> {
        let mut stmt = self.prepare(
            "SELECT * FROM floating_ips
              WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR floating_ip_address = ?2)
                AND (?3 IS NULL OR port_id = ?3) AND (?4 IS NULL OR router_id = ?4)
                AND (?5 IS NULL OR floating_network_id = ?5) AND (?6 IS NULL OR status = ?6)
              ORDER BY seq",
        )?;
        let rows = stmt.query_map(
            params![
                f.project_id,
                f.floating_ip_address,
                f.port_id,
                f.router_id,
                f.floating_network_id,
                f.status
            ],
            floating_ip,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn floating_ips_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM floating_ips WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// Floating IPs NATed through `router_id` to ports on `network_id` (or on any).
    pub fn router_floating_ips(&self, router_id: &str, network_id: Option<&str>) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM floating_ips f LEFT JOIN ports p ON p.id = f.port_id
              WHERE f.router_id = ?1 AND (?2 IS NULL OR p.network_id = ?2)",
            params![router_id, network_id],
            |r| r.get(0),
        )?)
    }
}

impl Tx<'_> {
    pub fn floating_ip_insert(&self, f: &FloatingIp) -> Result<()> {
        self.execute(
            "INSERT INTO floating_ips (id, project_id, floating_network_id, floating_ip_address,
                 port_id, fixed_ip_address, router_id, status, description, created_at,
                 updated_at, name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                f.id,
                f.project_id,
                f.floating_network_id,
                f.floating_ip_address,
                f.port_id,
                f.fixed_ip_address,
                f.router_id,
                f.status,
                f.description,
                f.created_at,
                f.updated_at,
                f.name
            ],
        )?;
        Ok(())
    }

    pub fn floating_ip_update(&self, f: &FloatingIp) -> Result<()> {
        self.execute(
            "UPDATE floating_ips SET port_id = ?2, fixed_ip_address = ?3, router_id = ?4,
                 status = ?5, description = ?6, updated_at = ?7
             WHERE id = ?1",
            params![
                f.id,
                f.port_id,
                f.fixed_ip_address,
                f.router_id,
                f.status,
                f.description,
                f.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn floating_ip_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM floating_ips WHERE id = ?1", [id])?;
        Ok(())
    }
}
