//! Servers' ports: what a server create's `networks` asks for, checked before the
//! create is accepted; the ports made (or bound) when the server is placed, and
//! deleted (or unbound) with it; and the addresses its views show.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};
use uuid::Uuid;
use yunji_common::agent_api::NicSpec;

use super::ports::PortCreate;
use super::{FixedIpRequest, cidr::Cidr};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::model::{Caller, Node, Port, Server, ServerAddress};
use crate::store::Db;

/// A server's network request once checked: a network to make a port on (with an
/// optional address), or a port the user made before.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Nic {
    Network {
        id: String,
        fixed_ip: Option<String>,
    },
    Port {
        id: String,
    },
}

impl Nic {
    fn to_value(&self) -> Value {
        match self {
            Nic::Network { id, fixed_ip } => json!({"uuid": id, "fixed_ip": fixed_ip}),
            Nic::Port { id } => json!({"port": id}),
        }
    }

    fn from_value(v: &Value) -> Option<Nic> {
        if let Some(port) = v.get("port").and_then(Value::as_str) {
            return Some(Nic::Port { id: port.into() });
        }
        Some(Nic::Network {
            id: v.get("uuid")?.as_str()?.into(),
            fixed_ip: v.get("fixed_ip").and_then(Value::as_str).map(String::from),
        })
    }
}

fn nics_of(server: &Server) -> Vec<Nic> {
    server
        .networks
        .as_array()
        .map(|a| a.iter().filter_map(Nic::from_value).collect())
        .unwrap_or_default()
}

fn bad(message: impl Into<String>) -> Error {
    Error::BadRequest(message.into())
}

/// Checks a create's `networks` for `project_id` and resolves it to the list the
/// build acts on: 404 for an unknown network or port, 409 for a port or address in
/// use, 400 for a malformed entry. Without `networks` (or with `auto`), the one
/// network the project may use; several, a 409 as Nova says; none, no NIC when
/// `networks` was left out, and a 400 for `auto`: Nova would build the project a
/// network there, which this cloud does not do.
pub(crate) fn plan_server_networks(
    db: &Db,
    caller: &Caller,
    project_id: &str,
    networks: &Value,
) -> Result<Value> {
    let nics = match networks {
        Value::Null => auto_network(db, project_id)?,
        Value::String(s) if s == "auto" => {
            let nics = auto_network(db, project_id)?;
            if nics.is_empty() {
                return Err(bad(format!(
                    "Unable to automatically allocate a network for project {project_id}: it \
                     has no network to use and this cloud does not make one; create a network \
                     with a subnet, or ask for networks \"none\""
                )));
            }
            nics
        }
        Value::String(s) if s == "none" => Vec::new(),
        Value::Array(entries) => {
            let mut nics = Vec::with_capacity(entries.len());
            for entry in entries {
                nics.push(nic_of(db, caller, entry)?);
            }
            nics
        }
        _ => return Err(bad("networks must be a list, \"auto\" or \"none\"")),
    };
    let mut ports = std::collections::HashSet::new();
    for nic in &nics {
        if let Nic::Port { id } = nic
            && !ports.insert(id.clone())
        {
            return Err(bad(format!("Port {id} is requested more than once.")));
        }
    }
    Ok(Value::Array(nics.iter().map(Nic::to_value).collect()))
}

fn auto_network(db: &Db, project_id: &str) -> Result<Vec<Nic>> {
    // Two are enough to tell "exactly one" from "several".
    let usable = db.networks_usable(project_id, 2)?;
    match usable.as_slice() {
        [] => Ok(Vec::new()),
        [one] => Ok(vec![Nic::Network {
            id: one.clone(),
            fixed_ip: None,
        }]),
        _ => Err(Error::Conflict(
            "Multiple possible networks found, use a Network ID to be more specific.".into(),
        )),
    }
}

fn nic_of(db: &Db, caller: &Caller, entry: &Value) -> Result<Nic> {
    let Value::Object(map) = entry else {
        return Err(bad(
            "each entry of networks must be an object: {\"uuid\": …}, {\"port\": …} or \
             {\"uuid\": …, \"fixed_ip\": …}",
        ));
    };
    for key in map.keys() {
        if !matches!(key.as_str(), "uuid" | "port" | "fixed_ip" | "tag") {
            return Err(bad(format!(
                "Invalid input for field/attribute networks: additional property {key} is \
                 not allowed; use uuid, port, fixed_ip or tag"
            )));
        }
    }
    let text = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!(
                "Invalid input for field/attribute {key}: {other} is not a string"
            ))),
        }
    };
    if let Some(port_id) = text("port")? {
        let port = db
            .port_get(&port_id)?
            .filter(|p| caller.is_admin() || caller.project_id() == Some(p.project_id.as_str()))
            .ok_or_else(|| Error::NotFound(format!("Port {port_id} could not be found.")))?;
        if !port.device_id.is_empty() {
            return Err(Error::Conflict(format!(
                "Port {port_id} is still in use by {}; detach it or pick another port.",
                port.device_id
            )));
        }
        return Ok(Nic::Port { id: port.id });
    }
    let Some(network_id) = text("uuid")? else {
        return Err(bad(
            "each entry of networks needs a uuid (a network id) or a port",
        ));
    };
    let network = db
        .network_without_subnets(&network_id)?
        .filter(|n| super::networks::visible(caller, n))
        .ok_or_else(|| super::networks::network_not_found(&network_id))?;
    if network.external && !network.shared && !caller.is_admin() {
        return Err(Error::Forbidden(format!(
            "network {network_id} is external; servers attach to it through floating IPs, \
             not ports"
        )));
    }
    let fixed_ip = text("fixed_ip")?;
    if let Some(ip) = &fixed_ip {
        let parsed: IpAddr = ip
            .parse()
            .map_err(|_| bad(format!("Invalid fixed IP address ({ip})")))?;
        let canonical = parsed.to_string();
        let mut holder = None;
        for subnet in db.network_subnet_list(&network.id)? {
            let inside = Cidr::parse(&subnet.cidr).is_ok_and(|c| {
                super::cidr::parse_ip(&canonical).is_some_and(|(v, value)| c.contains(v, value))
            });
            if inside {
                holder = Some(db.address_holder(&subnet.id, &canonical)?);
                break;
            }
        }
        match holder {
            None => {
                return Err(bad(format!(
                    "Fixed IP address {ip} is in no subnet of network {network_id}."
                )));
            }
            Some(Some(_)) => {
                return Err(Error::Conflict(format!(
                    "Fixed IP address {ip} is already in use on network {network_id}."
                )));
            }
            Some(None) => {}
        }
    }
    Ok(Nic::Network {
        id: network.id,
        fixed_ip,
    })
}

impl Core {
    /// Makes the server's ports on `node` (and binds the ports it was given); on
    /// failure, takes back what it made.
    pub(crate) async fn server_ports_bind(&self, server: &Server, node: &Node) -> Result<()> {
        let zone = server
            .availability_zone
            .clone()
            .unwrap_or_else(|| "nova".into());
        let device_id = server.id.to_string();
        for nic in nics_of(server) {
            let made = match nic {
                Nic::Network { id, fixed_ip } => self
                    .port_create_checked(
                        server.project_id.clone(),
                        None,
                        PortCreate {
                            network_id: id,
                            device_id: Some(device_id.clone()),
                            device_owner: Some(format!("compute:{zone}")),
                            binding_host_id: Some(node.name.clone()),
                            security_groups: Some(server.security_groups.clone()),
                            fixed_ips: fixed_ip.map(|ip| {
                                vec![FixedIpRequest {
                                    subnet_id: None,
                                    ip_address: Some(ip),
                                }]
                            }),
                            ..PortCreate::default()
                        },
                    )
                    .await
                    .map(|_| ()),
                Nic::Port { id } => {
                    self.port_bind(&id, &device_id, &format!("compute:{zone}"), &node.name)
                        .await
                }
            };
            if let Err(e) = made {
                if let Err(cleanup) = self.server_ports_release(server).await {
                    tracing::warn!(server = %server.id, error = %cleanup, "releasing ports failed");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Binds a user's port to a server, unless another device took it meanwhile.
    async fn port_bind(&self, id: &str, device_id: &str, owner: &str, host: &str) -> Result<()> {
        let (id, device_id, owner, node) = (
            id.to_string(),
            device_id.to_string(),
            owner.to_string(),
            host.to_string(),
        );
        let groups = self
            .store
            .write(move |tx| {
                let mut port: Port = tx
                    .port_get(&id)?
                    .ok_or_else(|| Error::NotFound(format!("Port {id} could not be found.")))?;
                if !port.device_id.is_empty() && port.device_id != device_id {
                    return Err(Error::Conflict(format!("Port {id} is still in use.")));
                }
                port.device_id = device_id;
                port.device_owner = owner;
                port.binding_host_id = node;
                port.revision_number += 1;
                port.updated_at = chrono::Utc::now();
                tx.port_update(&port)?;
                Ok(port.security_groups)
            })
            .await?;
        self.network_dirty(host);
        self.security_groups_dirty(groups);
        Ok(())
    }

    /// Deletes the ports made for a server and unbinds the ones it was given.
    pub(crate) async fn server_ports_release(&self, server: &Server) -> Result<()> {
        let given: Vec<String> = nics_of(server)
            .into_iter()
            .filter_map(|n| match n {
                Nic::Port { id } => Some(id),
                Nic::Network { .. } => None,
            })
            .collect();
        let device_id = server.id.to_string();
        let (hosts, groups) = self
            .store
            .write(move |tx| {
                let ports = tx.ports_list(&crate::model::PortFilter {
                    device_id: Some(device_id),
                    ..Default::default()
                })?;
                let hosts: Vec<String> = ports.iter().map(|p| p.binding_host_id.clone()).collect();
                let mut groups: Vec<String> = ports
                    .iter()
                    .flat_map(|p| p.security_groups.clone())
                    .collect();
                groups.sort();
                groups.dedup();
                for mut port in ports {
                    if given.contains(&port.id) {
                        port.device_id.clear();
                        port.device_owner.clear();
                        port.binding_host_id.clear();
                        port.status = "DOWN".into();
                        port.revision_number += 1;
                        port.updated_at = chrono::Utc::now();
                        tx.port_update(&port)?;
                    } else {
                        tx.port_delete(&port.id)?;
                    }
                }
                Ok::<_, Error>((hosts, groups))
            })
            .await?;
        hosts.iter().for_each(|h| self.network_dirty(h));
        self.security_groups_dirty(groups);
        Ok(())
    }

    /// The server's interfaces for its node, in port order: the ports bound to it.
    pub(crate) async fn server_nics(&self, server_id: Uuid) -> Result<Vec<NicSpec>> {
        let device_id = server_id.to_string();
        let ports = self
            .store
            .read(move |db| {
                db.ports_list(&crate::model::PortFilter {
                    device_id: Some(device_id),
                    ..Default::default()
                })
            })
            .await?;
        Ok(ports
            .into_iter()
            .map(|p| NicSpec {
                port_id: p.id,
                mac: p.mac_address,
            })
            .collect())
    }

    /// Servers' addresses by server id, for their views.
    pub async fn server_addresses(
        &self,
        server_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<ServerAddress>>> {
        let ids: Vec<String> = server_ids.iter().map(Uuid::to_string).collect();
        let found = self.store.read(move |db| db.server_addresses(&ids)).await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, a)| Some((Uuid::parse_str(&id).ok()?, a)))
            .collect())
    }

    /// The names of the security groups of each server's ports (servers without
    /// ports are left out).
    pub async fn server_security_group_names(
        &self,
        server_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<String>>> {
        let ids: Vec<String> = server_ids.iter().map(Uuid::to_string).collect();
        let found = self
            .store
            .read(move |db| db.server_security_group_names(&ids))
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, names)| Some((Uuid::parse_str(&id).ok()?, names)))
            .collect())
    }
}
