//! Load balancer queries. The VIP port is an ordinary `ports` row.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::{LoadBalancer, LoadBalancerFilter};

fn load_balancer(r: &Row) -> rusqlite::Result<LoadBalancer> {
    Ok(LoadBalancer {
        id: r.get("id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        vip_port_id: r.get("vip_port_id")?,
        vip_network_id: r.get("vip_network_id")?,
        vip_subnet_id: r.get("vip_subnet_id")?,
        vip_address: r.get("vip_address")?,
        provisioning_status: r.get("provisioning_status")?,
        operating_status: r.get("operating_status")?,
        admin_state_up: r.get("admin_state_up")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    pub fn load_balancer_get(&self, id: &str) -> Result<Option<LoadBalancer>> {
        Ok(self
            .conn
            .query_row(
                "SELECT * FROM load_balancers WHERE id = ?1",
                [id],
                load_balancer,
            )
            .optional()?)
    }

    /// Load balancers in creation order, after `marker`.
    pub fn load_balancers_list(&self, f: &LoadBalancerFilter) -> Result<Vec<LoadBalancer>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM load_balancers
              WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR name = ?2)
                AND (?3 IS NULL OR provisioning_status = ?3)
                AND (?4 IS NULL OR seq > (SELECT seq FROM load_balancers WHERE id = ?4))
              ORDER BY seq LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                f.project_id,
                f.name,
                f.provisioning_status,
                f.marker,
                f.limit.map_or(-1, |l| l as i64)
            ],
            load_balancer,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn load_balancers_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM load_balancers WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }
}

impl Tx<'_> {
    pub fn load_balancer_insert(&self, lb: &LoadBalancer) -> Result<()> {
        self.execute(
            "INSERT INTO load_balancers (id, project_id, name, description, vip_port_id,
                 vip_network_id, vip_subnet_id, vip_address, provisioning_status,
                 operating_status, admin_state_up, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                lb.id,
                lb.project_id,
                lb.name,
                lb.description,
                lb.vip_port_id,
                lb.vip_network_id,
                lb.vip_subnet_id,
                lb.vip_address,
                lb.provisioning_status,
                lb.operating_status,
                lb.admin_state_up,
                lb.created_at,
                lb.updated_at
            ],
        )?;
        Ok(())
    }

    /// Writes every mutable column of `lb`.
    pub fn load_balancer_update(&self, lb: &LoadBalancer) -> Result<()> {
        self.execute(
            "UPDATE load_balancers SET name = ?2, description = ?3, admin_state_up = ?4,
                 provisioning_status = ?5, operating_status = ?6, updated_at = ?7
              WHERE id = ?1",
            params![
                lb.id,
                lb.name,
                lb.description,
                lb.admin_state_up,
                lb.provisioning_status,
                lb.operating_status,
                lb.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn load_balancer_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM load_balancers WHERE id = ?1", [id])?;
        Ok(())
    }
}
