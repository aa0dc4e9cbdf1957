//! Networking queries: networks (with their subnet list), subnets, and network quotas.

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx, flag, json};
use crate::model::{
    AllocationPool, HostRoute, IpamSubnet, Network, NetworkFilter, Subnet, SubnetFilter, SubnetRef,
};

/// The largest VXLAN network identifier (24 bits).
const VNI_MAX: u32 = 16_777_215;

fn network(r: &Row) -> rusqlite::Result<Network> {
    Ok(Network {
        id: r.get("id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        admin_state_up: r.get("admin_state_up")?,
        shared: r.get("shared")?,
        external: r.get("external")?,
        mtu: r.get("mtu")?,
        port_security_enabled: r.get("port_security_enabled")?,
        vni: r.get("vni")?,
        status: r.get("status")?,
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        subnets: Vec::new(),
    })
}

fn subnet(r: &Row) -> rusqlite::Result<Subnet> {
    Ok(Subnet {
        id: r.get("id")?,
        network_id: r.get("network_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        ip_version: r.get("ip_version")?,
        cidr: r.get("cidr")?,
        gateway_ip: r.get("gateway_ip")?,
        enable_dhcp: r.get("enable_dhcp")?,
        dns_nameservers: json::<Vec<String>>(r, "dns_nameservers")?,
        host_routes: json::<Vec<HostRoute>>(r, "host_routes")?,
        allocation_pools: json::<Vec<AllocationPool>>(r, "allocation_pools")?,
        ipv6_ra_mode: r.get("ipv6_ra_mode")?,
        ipv6_address_mode: r.get("ipv6_address_mode")?,
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// Whether a network is visible to a project: its own, shared or external.
const VISIBLE: &str = "(n.project_id = ?1 OR n.shared = 1 OR n.external = 1)";

impl Db<'_> {
    fn network_subnets(&self, network_id: &str) -> Result<Vec<SubnetRef>> {
        let mut stmt =
            self.prepare("SELECT id, name, cidr FROM subnets WHERE network_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([network_id], |r| {
            Ok(SubnetRef {
                id: r.get(0)?,
                name: r.get(1)?,
                cidr: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A network by id, with its subnets.
    pub fn network_get(&self, id: &str) -> Result<Option<Network>> {
        match self.network_without_subnets(id)? {
            Some(mut n) => {
                n.subnets = self.network_subnets(&n.id)?;
                Ok(Some(n))
            }
            None => Ok(None),
        }
    }

    /// A network by id, its `subnets` left empty: for checks of the network alone,
    /// without a query for its subnets.
    pub fn network_without_subnets(&self, id: &str) -> Result<Option<Network>> {
        Ok(self
            .query_row("SELECT * FROM networks WHERE id = ?1", [id], network)
            .optional()?)
    }

    /// The first `limit` networks a project may put a server on unasked (Nova's `auto`):
    /// its own and shared ones, not external.
    pub fn networks_usable(&self, project_id: &str, limit: i64) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT id FROM networks
              WHERE external = 0 AND (project_id = ?1 OR shared = 1)
              ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![project_id, limit], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Networks matching `f` in creation order, at most `limit` after `marker`.
    pub fn networks_list(&self, f: &NetworkFilter) -> Result<Vec<Network>> {
        let sql = format!(
            "SELECT n.* FROM networks n
              WHERE (?1 IS NULL OR {VISIBLE})
                AND (?2 IS NULL OR n.id = ?2) AND (?3 IS NULL OR n.name = ?3)
                AND (?4 IS NULL OR n.project_id = ?4) AND (?5 IS NULL OR n.shared = ?5)
                AND (?6 IS NULL OR n.external = ?6) AND (?7 IS NULL OR n.status = ?7)
                AND (?8 IS NULL OR n.admin_state_up = ?8)
                AND (?9 IS NULL OR n.seq > (SELECT seq FROM networks WHERE id = ?9))
              ORDER BY n.seq LIMIT ?10"
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                f.visible_to,
                f.id,
                f.name,
                f.project_id,
                f.shared.map(flag),
                f.external.map(flag),
                f.status,
                f.admin_state_up.map(flag),
                f.marker,
                f.limit.map_or(-1, |l| l as i64),
            ],
            network,
        )?;
        let mut networks = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for n in &mut networks {
            n.subnets = self.network_subnets(&n.id)?;
        }
        Ok(networks)
    }

    /// How many networks a project owns.
    pub fn networks_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM networks WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// Ports on a network other than its own DHCP ports, which keep it from being
    /// deleted: servers', and routers' interfaces and gateways and floating IPs too, as
    /// in Neutron (deleting those silently would cut a router off).
    pub fn network_user_ports(&self, network_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM ports WHERE network_id = ?1 AND device_owner != 'network:dhcp'",
            [network_id],
            |r| r.get(0),
        )?)
    }

    /// A subnet by id.
    pub fn subnet_get(&self, id: &str) -> Result<Option<Subnet>> {
        Ok(self
            .query_row("SELECT * FROM subnets WHERE id = ?1", [id], subnet)
            .optional()?)
    }

    /// What IPAM needs of a network's subnets, in creation order. Port creates read it
    /// on the writer, so it reads only those columns, by position.
    pub fn network_ipam_subnets(&self, network_id: &str) -> Result<Vec<IpamSubnet>> {
        let mut stmt = self.prepare(
            "SELECT id, ip_version, cidr, gateway_ip, allocation_pools, ipv6_address_mode,
                    ipam_cursor
               FROM subnets WHERE network_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([network_id], |r| {
            let cursor: Option<String> = r.get(6)?;
            Ok(IpamSubnet {
                id: r.get(0)?,
                ip_version: r.get(1)?,
                cidr: r.get(2)?,
                gateway_ip: r.get(3)?,
                allocation_pools: json(r, 4)?,
                ipv6_address_mode: r.get(5)?,
                cursor: cursor.and_then(|c| c.parse().ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A network's subnets in creation order.
    pub fn network_subnet_list(&self, network_id: &str) -> Result<Vec<Subnet>> {
        let mut stmt = self.prepare("SELECT * FROM subnets WHERE network_id = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([network_id], subnet)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Subnets matching `f` in creation order, at most `limit` after `marker`.
    pub fn subnets_list(&self, f: &SubnetFilter) -> Result<Vec<Subnet>> {
        let sql = format!(
            "SELECT s.* FROM subnets s JOIN networks n ON n.id = s.network_id
              WHERE (?1 IS NULL OR s.project_id = ?1 OR {VISIBLE})
                AND (?2 IS NULL OR s.id = ?2) AND (?3 IS NULL OR s.name = ?3)
                AND (?4 IS NULL OR s.network_id = ?4) AND (?5 IS NULL OR s.project_id = ?5)
                AND (?6 IS NULL OR s.cidr = ?6) AND (?7 IS NULL OR s.ip_version = ?7)
                AND (?8 IS NULL OR s.enable_dhcp = ?8)
                AND (?9 IS NULL OR s.seq > (SELECT seq FROM subnets WHERE id = ?9))
              ORDER BY s.seq LIMIT ?10"
        );
        let mut stmt = self.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                f.visible_to,
                f.id,
                f.name,
                f.network_id,
                f.project_id,
                f.cidr,
                f.ip_version,
                f.enable_dhcp.map(flag),
                f.marker,
                f.limit.map_or(-1, |l| l as i64),
            ],
            subnet,
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many subnets a project owns.
    pub fn subnets_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM subnets WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    /// How many addresses ports hold on a subnet.
    pub fn subnet_allocated(&self, subnet_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM port_fixed_ips WHERE subnet_id = ?1",
            [subnet_id],
            |r| r.get(0),
        )?)
    }

    /// A project's network limit on `resource`, if an administrator set one.
    pub fn network_quota_limit(&self, project_id: &str, resource: &str) -> Result<Option<i64>> {
        Ok(self
            .query_row(
                "SELECT hard_limit FROM network_quotas WHERE project_id = ?1 AND resource = ?2",
                [project_id, resource],
                |r| r.get(0),
            )
            .optional()?)
    }
}

impl Tx<'_> {
    /// The lowest VXLAN network identifier no network holds, if any is left.
    pub fn vni_free(&self) -> Result<Option<u32>> {
        let next: Option<u32> = self.query_row(
            "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM networks WHERE vni = 1) THEN 1
                    ELSE (SELECT min(a.vni) + 1 FROM networks a
                           WHERE NOT EXISTS (SELECT 1 FROM networks b WHERE b.vni = a.vni + 1))
                    END",
            [],
            |r| r.get(0),
        )?;
        Ok(next.filter(|v| *v <= VNI_MAX))
    }

    pub fn network_insert(&self, n: &Network) -> Result<()> {
        self.execute(
            "INSERT INTO networks (id, project_id, name, description, admin_state_up, shared,
                 external, mtu, port_security_enabled, vni, status, revision_number,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                n.id,
                n.project_id,
                n.name,
                n.description,
                n.admin_state_up,
                n.shared,
                n.external,
                n.mtu,
                n.port_security_enabled,
                n.vni,
                n.status,
                n.revision_number,
                n.created_at,
                n.updated_at
            ],
        )?;
        Ok(())
    }

    /// Writes a network's changeable fields.
    pub fn network_update(&self, n: &Network) -> Result<()> {
        self.execute(
            "UPDATE networks SET name = ?2, description = ?3, admin_state_up = ?4, shared = ?5,
                 external = ?6, mtu = ?7, port_security_enabled = ?8,
                 revision_number = ?9, updated_at = ?10
             WHERE id = ?1",
            params![
                n.id,
                n.name,
                n.description,
                n.admin_state_up,
                n.shared,
                n.external,
                n.mtu,
                n.port_security_enabled,
                n.revision_number,
                n.updated_at
            ],
        )?;
        Ok(())
    }

    /// Deletes a network with its subnets and its network-owned ports.
    pub fn network_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM ports WHERE network_id = ?1", [id])?;
        self.execute("DELETE FROM subnets WHERE network_id = ?1", [id])?;
        self.execute("DELETE FROM networks WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn subnet_insert(&self, s: &Subnet) -> Result<()> {
        self.execute(
            "INSERT INTO subnets (id, network_id, project_id, name, description, ip_version,
                 cidr, gateway_ip, enable_dhcp, dns_nameservers, host_routes, allocation_pools,
                 ipv6_ra_mode, ipv6_address_mode, revision_number, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                s.id,
                s.network_id,
                s.project_id,
                s.name,
                s.description,
                s.ip_version,
                s.cidr,
                s.gateway_ip,
                s.enable_dhcp,
                serde_json::to_string(&s.dns_nameservers)?,
                serde_json::to_string(&s.host_routes)?,
                serde_json::to_string(&s.allocation_pools)?,
                s.ipv6_ra_mode,
                s.ipv6_address_mode,
                s.revision_number,
                s.created_at,
                s.updated_at
            ],
        )?;
        Ok(())
    }

    /// Writes a subnet's changeable fields.
    pub fn subnet_update(&self, s: &Subnet) -> Result<()> {
        self.execute(
            "UPDATE subnets SET name = ?2, description = ?3, gateway_ip = ?4, enable_dhcp = ?5,
                 dns_nameservers = ?6, host_routes = ?7, allocation_pools = ?8,
                 revision_number = ?9, updated_at = ?10
             WHERE id = ?1",
            params![
                s.id,
                s.name,
                s.description,
                s.gateway_ip,
                s.enable_dhcp,
                serde_json::to_string(&s.dns_nameservers)?,
                serde_json::to_string(&s.host_routes)?,
                serde_json::to_string(&s.allocation_pools)?,
                s.revision_number,
                s.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn subnet_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM subnets WHERE id = ?1", [id])?;
        Ok(())
    }
}

/// Network quotas an administrator set.
impl Db<'_> {
    /// The limits set for a project, by resource.
    pub fn network_quota_limits(
        &self,
        project_id: &str,
    ) -> Result<std::collections::BTreeMap<String, i64>> {
        let mut stmt =
            self.prepare("SELECT resource, hard_limit FROM network_quotas WHERE project_id = ?1")?;
        let rows = stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Projects with limits set, in id order.
    pub fn network_quota_projects(&self) -> Result<Vec<String>> {
        let mut stmt =
            self.prepare("SELECT DISTINCT project_id FROM network_quotas ORDER BY project_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Tx<'_> {
    pub fn network_quota_set(&self, project_id: &str, resource: &str, limit: i64) -> Result<()> {
        self.execute(
            "INSERT INTO network_quotas (project_id, resource, hard_limit) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
            params![project_id, resource, limit],
        )?;
        Ok(())
    }

    pub fn network_quota_delete(&self, project_id: &str) -> Result<()> {
        self.execute(
            "DELETE FROM network_quotas WHERE project_id = ?1",
            [project_id],
        )?;
        Ok(())
    }
}
