//! Port queries: ports with their fixed IPs and security groups, and what IPAM reads.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, params};

use super::{Db, Result, Tx};
use crate::model::{AddressPair, FixedIp, Port, PortFilter};

/// A port row without its addresses and groups, and its row number, which they name.
fn port(r: &Row) -> rusqlite::Result<(i64, Port)> {
    let pairs: String = r.get("allowed_address_pairs")?;
    let port = Port {
        id: r.get("id")?,
        network_id: r.get("network_id")?,
        project_id: r.get("project_id")?,
        name: r.get("name")?,
        description: r.get("description")?,
        mac_address: r.get("mac_address")?,
        admin_state_up: r.get("admin_state_up")?,
        status: r.get("status")?,
        device_id: r.get("device_id")?,
        device_owner: r.get("device_owner")?,
        port_security_enabled: r.get("port_security_enabled")?,
        binding_host_id: r.get("binding_host_id")?,
        allowed_address_pairs: serde_json::from_str::<Vec<AddressPair>>(&pairs).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?,
        fixed_ips: Vec::new(),
        security_groups: Vec::new(),
        revision_number: r.get("revision_number")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    };
    Ok((r.get("seq")?, port))
}

impl Db<'_> {
    /// Port rows with their fixed IPs (in allocation order) and security groups.
    fn port_details(&self, rows: Vec<(i64, Port)>) -> Result<Vec<Port>> {
        let mut ips = self.prepare(
            "SELECT subnet_id, ip_address FROM port_fixed_ips WHERE port_seq = ?1
              ORDER BY position",
        )?;
        let mut groups = self.prepare(
            "SELECT security_group_id FROM port_security_groups WHERE port_seq = ?1
              ORDER BY position",
        )?;
        let mut ports = Vec::with_capacity(rows.len());
        for (seq, mut p) in rows {
            p.fixed_ips = ips
                .query_map([seq], |r| {
                    Ok(FixedIp {
                        subnet_id: r.get(0)?,
                        ip_address: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            p.security_groups = groups
                .query_map([seq], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ports.push(p);
        }
        Ok(ports)
    }

    pub fn port_get(&self, id: &str) -> Result<Option<Port>> {
        let found = self
            .query_row("SELECT * FROM ports WHERE id = ?1", [id], port)
            .optional()?;
        let Some(row) = found else { return Ok(None) };
        Ok(self.port_details(vec![row])?.pop())
    }

    /// Ports matching `f` in creation order, at most `limit` after `marker`.
    pub fn ports_list(&self, f: &PortFilter) -> Result<Vec<Port>> {
        let mut stmt = self.prepare(
            "SELECT p.* FROM ports p
              WHERE (?1 IS NULL OR p.project_id = ?1)
                AND (?2 IS NULL OR p.id = ?2) AND (?3 IS NULL OR p.name = ?3)
                AND (?4 IS NULL OR p.network_id = ?4) AND (?5 IS NULL OR p.project_id = ?5)
                AND (?6 IS NULL OR p.device_id = ?6) AND (?7 IS NULL OR p.device_owner = ?7)
                AND (?8 IS NULL OR p.mac_address = ?8) AND (?9 IS NULL OR p.status = ?9)
                AND (?10 IS NULL OR p.binding_host_id = ?10)
                AND (?11 IS NULL OR p.seq > (SELECT seq FROM ports WHERE id = ?11))
              ORDER BY p.seq LIMIT ?12",
        )?;
        let rows = stmt.query_map(
            params![
                f.project_scope,
                f.id,
                f.name,
                f.network_id,
                f.project_id,
                f.device_id,
                f.device_owner,
                f.mac_address,
                f.status,
                f.binding_host_id,
                f.marker,
                f.limit.map_or(-1, |l| l as i64),
            ],
            port,
        )?;
        let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        self.port_details(rows)
    }

    /// How many ports a project owns.
    pub fn ports_count(&self, project_id: &str) -> Result<i64> {
        Ok(self.query_row(
            "SELECT count(*) FROM ports WHERE project_id = ?1",
            [project_id],
            |r| r.get(0),
        )?)
    }

    pub fn ipam_cursor_set(&self, subnet_id: &str, next: u128) -> Result<()> {
        self.execute(
            "UPDATE subnets SET ipam_cursor = ?2 WHERE id = ?1",
            [subnet_id, &next.to_string()],
        )?;
        Ok(())
    }

    /// The port holding an address on a subnet, if any.
    pub fn address_holder(&self, subnet_id: &str, ip: &str) -> Result<Option<String>> {
        Ok(self
            .query_row(
                "SELECT p.id FROM port_fixed_ips f JOIN ports p ON p.seq = f.port_seq
                  WHERE f.subnet_id = ?1 AND f.ip_address = ?2",
                [subnet_id, ip],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn mac_in_use(&self, network_id: &str, mac: &str) -> Result<bool> {
        Ok(self
            .query_row(
                "SELECT 1 FROM ports WHERE network_id = ?1 AND mac_address = ?2",
                [network_id, mac],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

impl Tx<'_> {
    /// Replaces the addresses and groups of the port numbered `seq`.
    fn port_children_replace(&self, seq: i64, p: &Port) -> Result<()> {
        self.execute("DELETE FROM port_fixed_ips WHERE port_seq = ?1", [seq])?;
        self.execute(
            "DELETE FROM port_security_groups WHERE port_seq = ?1",
            [seq],
        )?;
        self.port_children_insert(seq, p)
    }

    /// Writes the addresses and groups of the port numbered `seq`, which has none yet.
    fn port_children_insert(&self, seq: i64, p: &Port) -> Result<()> {
        let mut stmt = self.prepare(
            "INSERT INTO port_fixed_ips (subnet_id, ip_address, port_seq, position)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (position, ip) in (0_i64..).zip(&p.fixed_ips) {
            stmt.execute(params![ip.subnet_id, ip.ip_address, seq, position])?;
        }
        let mut stmt = self.prepare(
            "INSERT INTO port_security_groups (port_seq, security_group_id, position)
             VALUES (?1, ?2, ?3)",
        )?;
        for (position, group) in (0_i64..).zip(&p.security_groups) {
            stmt.execute(params![seq, group, position])?;
        }
        Ok(())
    }

    /// Inserts a port with its addresses; a taken address or MAC is `Duplicate`.
    pub fn port_insert(&self, p: &Port) -> Result<()> {
        self.execute(
            "INSERT INTO ports (id, network_id, project_id, name, description, mac_address,
                 admin_state_up, status, device_id, device_owner, port_security_enabled,
                 binding_host_id, allowed_address_pairs, revision_number, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                p.id,
                p.network_id,
                p.project_id,
                p.name,
                p.description,
                p.mac_address,
                p.admin_state_up,
                p.status,
                p.device_id,
                p.device_owner,
                p.port_security_enabled,
                p.binding_host_id,
                serde_json::to_string(&p.allowed_address_pairs)?,
                p.revision_number,
                p.created_at,
                p.updated_at
            ],
        )?;
        self.port_children_insert(self.conn.last_insert_rowid(), p)
    }

    /// Writes a port's changeable fields and its addresses; a port that is not there
    /// (any more) gets no children written for it.
    pub fn port_update(&self, p: &Port) -> Result<()> {
        let seq = self
            .query_row(
                "UPDATE ports SET name = ?2, description = ?3, mac_address = ?4,
                 admin_state_up = ?5, status = ?6, device_id = ?7, device_owner = ?8,
                 port_security_enabled = ?9, binding_host_id = ?10,
                 allowed_address_pairs = ?11, revision_number = ?12, updated_at = ?13
             WHERE id = ?1 RETURNING seq",
                params![
                    p.id,
                    p.name,
                    p.description,
                    p.mac_address,
                    p.admin_state_up,
                    p.status,
                    p.device_id,
                    p.device_owner,
                    p.port_security_enabled,
                    p.binding_host_id,
                    serde_json::to_string(&p.allowed_address_pairs)?,
                    p.revision_number,
                    p.updated_at
                ],
                |r| r.get(0),
            )
            .optional()?;
        match seq {
            Some(seq) => self.port_children_replace(seq, p),
            None => Ok(()),
        }
    }

    /// Deletes a port; its addresses return to their pools.
    pub fn port_delete(&self, id: &str) -> Result<()> {
        self.execute("DELETE FROM ports WHERE id = ?1", [id])?;
        Ok(())
    }
}

impl Db<'_> {
    /// The addresses of servers' ports, with their network's name, in port order: one
    /// query for all of a page's servers (their ids as a JSON array for `json_each`).
    pub fn server_addresses(
        &self,
        server_ids: &[String],
    ) -> Result<HashMap<String, Vec<crate::model::ServerAddress>>> {
        let ids = serde_json::json!(server_ids);
        let mut out: HashMap<String, Vec<crate::model::ServerAddress>> = HashMap::new();
        let mut fixed = self.prepare(
            "SELECT p.device_id, n.name, f.ip_address, s.ip_version, p.mac_address
               FROM json_each(?1) ids
               JOIN ports p ON p.device_id = ids.value AND p.device_id != ''
               JOIN networks n ON n.id = p.network_id
               JOIN port_fixed_ips f ON f.port_seq = p.seq
               JOIN subnets s ON s.id = f.subnet_id
              ORDER BY p.seq, f.position",
        )?;
        let rows = fixed.query_map([&ids], |r| {
            let address = crate::model::ServerAddress {
                network_name: r.get(1)?,
                addr: r.get(2)?,
                version: r.get(3)?,
                mac: r.get(4)?,
                floating: false,
            };
            Ok((r.get::<_, String>(0)?, address))
        })?;
        for row in rows {
            let (server, address) = row?;
            out.entry(server).or_default().push(address);
        }
        if out.is_empty() {
            // No fixed address, nothing a floating IP could be NATed to.
            return Ok(out);
        }
        // Floating and public IPs are one table (one mechanism, two views).
        let mut floating = self.prepare(
            "SELECT p.device_id, fip.fixed_ip_address, fip.floating_ip_address
               FROM json_each(?1) ids
               JOIN ports p ON p.device_id = ids.value AND p.device_id != ''
               JOIN floating_ips fip ON fip.port_id = p.id
              ORDER BY fip.seq",
        )?;
        let nats = floating.query_map([&ids], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for nat in nats {
            let (server, fixed_ip, floating_ip) = nat?;
            let Some(addresses) = out.get_mut(&server) else {
                continue;
            };
            // As Nova lists them: each floating IP right after the fixed one it maps to.
            let Some(at) = addresses
                .iter()
                .position(|a| !a.floating && Some(&a.addr) == fixed_ip.as_ref())
            else {
                continue;
            };
            let nat = crate::model::ServerAddress {
                addr: floating_ip,
                version: 4,
                floating: true,
                ..addresses[at].clone()
            };
            addresses.insert(at + 1, nat);
        }
        Ok(out)
    }
}

impl Db<'_> {
    /// The names of the security groups on each server's ports, as Nova shows a
    /// server's `security_groups`: once each, in port order. Servers without ports
    /// are left out. One query for all of a page's servers.
    pub fn server_security_group_names(
        &self,
        server_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>> {
        let mut stmt = self.prepare(
            "SELECT p.device_id, g.name
               FROM json_each(?1) ids
               JOIN ports p ON p.device_id = ids.value AND p.device_id != ''
               LEFT JOIN port_security_groups psg ON psg.port_seq = p.seq
               LEFT JOIN security_groups g ON g.id = psg.security_group_id
              ORDER BY p.seq, g.seq",
        )?;
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let rows = stmt.query_map([serde_json::json!(server_ids)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (server, name) = row?;
            let names = out.entry(server).or_default();
            if let Some(name) = name
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// Marks ports ACTIVE once `host` carries them (unless they moved meanwhile).
    pub fn ports_activate(&self, host: &str, port_ids: &[String]) -> Result<()> {
        let mut stmt = self.prepare(
            "UPDATE ports SET status = 'ACTIVE'
              WHERE id = ?1 AND binding_host_id = ?2 AND status <> 'ACTIVE'",
        )?;
        for id in port_ids {
            stmt.execute([id.as_str(), host])?;
        }
        Ok(())
    }
}

impl Db<'_> {
    /// The hosts carrying ports on a network.
    pub fn network_hosts(&self, network_id: &str) -> Result<Vec<String>> {
        let mut stmt = self.prepare(
            "SELECT DISTINCT binding_host_id FROM ports
              WHERE network_id = ?1 AND binding_host_id <> ''",
        )?;
        let rows = stmt.query_map([network_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
