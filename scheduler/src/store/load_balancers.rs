//! Load balancer queries. The VIP port is an ordinary `ports` row.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::{HealthMonitor, Listener, LoadBalancer, LoadBalancerFilter, Member, Pool};

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
            .query_row(
                "SELECT * FROM load_balancers WHERE id = ?1",
                [id],
                load_balancer,
            )
            .optional()?)
    }

    /// Load balancers in creation order, after `marker`.
    pub fn load_balancers_list(&self, f: &LoadBalancerFilter) -> Result<Vec<LoadBalancer>> {
        let mut stmt = self.prepare(
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
        Ok(self.query_row(
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

fn listener(r: &Row) -> rusqlite::Result<Listener> {
    Ok(Listener {
        id: r.get("id")?,
        load_balancer_id: r.get("load_balancer_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        protocol: r.get("protocol")?,
        protocol_port: r.get("protocol_port")?,
        default_pool_id: r.get("default_pool_id")?,
        connection_limit: r.get("connection_limit")?,
        admin_state_up: r.get("admin_state_up")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn pool(r: &Row) -> rusqlite::Result<Pool> {
    Ok(Pool {
        id: r.get("id")?,
        load_balancer_id: r.get("load_balancer_id")?,
        listener_id: r.get("listener_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        protocol: r.get("protocol")?,
        lb_algorithm: r.get("lb_algorithm")?,
        admin_state_up: r.get("admin_state_up")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn member(r: &Row) -> rusqlite::Result<Member> {
    Ok(Member {
        id: r.get("id")?,
        pool_id: r.get("pool_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        address: r.get("address")?,
        protocol_port: r.get("protocol_port")?,
        weight: r.get("weight")?,
        subnet_id: r.get("subnet_id")?,
        server_id: r.get("server_id")?,
        admin_state_up: r.get("admin_state_up")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn health_monitor(r: &Row) -> rusqlite::Result<HealthMonitor> {
    Ok(HealthMonitor {
        id: r.get("id")?,
        pool_id: r.get("pool_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        kind: r.get("kind")?,
        delay: r.get("delay")?,
        timeout: r.get("timeout")?,
        max_retries: r.get("max_retries")?,
        max_retries_down: r.get("max_retries_down")?,
        http_method: r.get("http_method")?,
        url_path: r.get("url_path")?,
        expected_codes: r.get("expected_codes")?,
        admin_state_up: r.get("admin_state_up")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

impl Db<'_> {
    pub fn listener_get(&self, id: &str) -> Result<Option<Listener>> {
        Ok(self
            .query_row("SELECT * FROM lb_listeners WHERE id = ?1", [id], listener)
            .optional()?)
    }

    /// Listeners of a load balancer, or of a project (`None` for every one).
    /// How many load balancer VIPs each node carries, for placing a new one.
    pub fn load_balancers_per_host(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.prepare(
            "SELECT binding_host_id, count(*) FROM ports
              WHERE device_owner = 'Octavia' AND binding_host_id != '' GROUP BY 1",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The load balancers whose VIP port is bound to `host`.
    pub fn load_balancers_on_host(&self, host: &str) -> Result<Vec<LoadBalancer>> {
        let mut stmt = self.prepare(
            "SELECT l.* FROM load_balancers l JOIN ports p ON p.id = l.vip_port_id
              WHERE p.binding_host_id = ?1 AND p.binding_host_id != '' ORDER BY l.seq",
        )?;
        let rows = stmt.query_map([host], load_balancer)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn listeners_list(&self, lb: Option<&str>, project: Option<&str>) -> Result<Vec<Listener>> {
        let mut stmt = self.prepare(
            "SELECT * FROM lb_listeners
              WHERE (?1 IS NULL OR load_balancer_id = ?1) AND (?2 IS NULL OR project_id = ?2)
              ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![lb, project], listener)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn pool_get(&self, id: &str) -> Result<Option<Pool>> {
        Ok(self
            .query_row("SELECT * FROM lb_pools WHERE id = ?1", [id], pool)
            .optional()?)
    }

    pub fn pools_list(&self, lb: Option<&str>, project: Option<&str>) -> Result<Vec<Pool>> {
        let mut stmt = self.prepare(
            "SELECT * FROM lb_pools
              WHERE (?1 IS NULL OR load_balancer_id = ?1) AND (?2 IS NULL OR project_id = ?2)
              ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![lb, project], pool)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn member_get(&self, id: &str) -> Result<Option<Member>> {
        Ok(self
            .query_row("SELECT * FROM lb_members WHERE id = ?1", [id], member)
            .optional()?)
    }

    pub fn members_list(&self, pool_id: &str) -> Result<Vec<Member>> {
        let mut stmt = self.prepare("SELECT * FROM lb_members WHERE pool_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([pool_id], member)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn health_monitor_get(&self, id: &str) -> Result<Option<HealthMonitor>> {
        Ok(self
            .query_row(
                "SELECT * FROM lb_health_monitors WHERE id = ?1",
                [id],
                health_monitor,
            )
            .optional()?)
    }

    pub fn health_monitor_of_pool(&self, pool_id: &str) -> Result<Option<HealthMonitor>> {
        Ok(self
            .query_row(
                "SELECT * FROM lb_health_monitors WHERE pool_id = ?1",
                [pool_id],
                health_monitor,
            )
            .optional()?)
    }

    pub fn health_monitors_list(&self, project: Option<&str>) -> Result<Vec<HealthMonitor>> {
        let mut stmt = self.prepare(
            "SELECT * FROM lb_health_monitors WHERE (?1 IS NULL OR project_id = ?1) ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![project], health_monitor)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl Tx<'_> {
    pub fn listener_write(&self, l: &Listener) -> Result<()> {
        self.execute(
            "INSERT INTO lb_listeners (id, load_balancer_id, project_id, name, description,
                 protocol, protocol_port, default_pool_id, connection_limit, admin_state_up,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO UPDATE SET name = ?4, description = ?5,
                 default_pool_id = ?8, connection_limit = ?9, admin_state_up = ?10,
                 updated_at = ?12",
            params![
                l.id,
                l.load_balancer_id,
                l.project_id,
                l.name,
                l.description,
                l.protocol,
                l.protocol_port,
                l.default_pool_id,
                l.connection_limit,
                l.admin_state_up,
                l.created_at,
                l.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn pool_write(&self, p: &Pool) -> Result<()> {
        self.execute(
            "INSERT INTO lb_pools (id, load_balancer_id, listener_id, project_id, name,
                 description, protocol, lb_algorithm, admin_state_up, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (id) DO UPDATE SET name = ?5, description = ?6, lb_algorithm = ?8,
                 admin_state_up = ?9, updated_at = ?11",
            params![
                p.id,
                p.load_balancer_id,
                p.listener_id,
                p.project_id,
                p.name,
                p.description,
                p.protocol,
                p.lb_algorithm,
                p.admin_state_up,
                p.created_at,
                p.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn member_write(&self, m: &Member) -> Result<()> {
        self.execute(
            "INSERT INTO lb_members (id, pool_id, project_id, name, address, protocol_port,
                 weight, subnet_id, server_id, admin_state_up, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO UPDATE SET name = ?4, weight = ?7, admin_state_up = ?10,
                 updated_at = ?12",
            params![
                m.id,
                m.pool_id,
                m.project_id,
                m.name,
                m.address,
                m.protocol_port,
                m.weight,
                m.subnet_id,
                m.server_id,
                m.admin_state_up,
                m.created_at,
                m.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn health_monitor_write(&self, h: &HealthMonitor) -> Result<()> {
        self.execute(
            "INSERT INTO lb_health_monitors (id, pool_id, project_id, name, kind, delay,
                 timeout, max_retries, max_retries_down, http_method, url_path,
                 expected_codes, admin_state_up, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (id) DO UPDATE SET name = ?4, delay = ?6, timeout = ?7,
                 max_retries = ?8, max_retries_down = ?9, http_method = ?10, url_path = ?11,
                 expected_codes = ?12, admin_state_up = ?13, updated_at = ?15",
            params![
                h.id,
                h.pool_id,
                h.project_id,
                h.name,
                h.kind,
                h.delay,
                h.timeout,
                h.max_retries,
                h.max_retries_down,
                h.http_method,
                h.url_path,
                h.expected_codes,
                h.admin_state_up,
                h.created_at,
                h.updated_at
            ],
        )?;
        Ok(())
    }

    /// Deletes a listener, pool, member or health monitor row (what hangs below goes by
    /// the schema's cascades).
    pub fn lb_child_delete(&self, table: LbChild, id: &str) -> Result<()> {
        let sql = match table {
            LbChild::Listener => "DELETE FROM lb_listeners WHERE id = ?1",
            LbChild::Pool => "DELETE FROM lb_pools WHERE id = ?1",
            LbChild::Member => "DELETE FROM lb_members WHERE id = ?1",
            LbChild::HealthMonitor => "DELETE FROM lb_health_monitors WHERE id = ?1",
        };
        self.execute(sql, [id])?;
        Ok(())
    }
}

/// The kinds of rows below a load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbChild {
    Listener,
    Pool,
    Member,
    HealthMonitor,
}
