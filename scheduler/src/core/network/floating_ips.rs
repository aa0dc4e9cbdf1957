//! Floating IPs: an address on an external network, held by a port of its own, NATed
//! by a router to one fixed address of a port on a subnet attached to that router.
//! Public IPs (the `publicips` extension) are the same rows seen another way.

use chrono::Utc;

use super::networks::network_not_found;
use super::ports::{allocate, port_not_found, port_write_error, random_mac};
use super::{FixedIpRequest, QuotaResource, check_quota, check_text, owner_project};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::model::{Caller, FloatingIp, FloatingIpFilter, Port, PortFilter};
use crate::store::Tx;

pub const OWNER_FLOATING_IP: &str = "network:floatingip";

#[derive(Debug, Clone, Default)]
pub struct FloatingIpCreate {
    pub project_id: Option<String>,
    pub floating_network_id: String,
    pub floating_ip_address: Option<String>,
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub description: Option<String>,
    /// A public IP's name (`publicips`).
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FloatingIpUpdate {
    /// `Some(None)`: disassociate.
    pub port_id: Option<Option<String>>,
    pub fixed_ip_address: Option<String>,
    pub description: Option<String>,
}

/// A floating IP with the port it is associated with (`port_details`).
#[derive(Debug, Clone)]
pub struct FloatingIpDetail {
    pub floating_ip: FloatingIp,
    pub port: Option<Port>,
}

pub(crate) fn floating_ip_not_found(id: &str) -> Error {
    Error::NotFound(format!("Floating IP {id} could not be found."))
}

/// Points `fip` at `port_id` (and one of its addresses) through the router that joins
/// that address's subnet to the floating IP's external network.
fn associate(
    tx: &Tx,
    fip: &mut FloatingIp,
    port_id: &str,
    fixed_ip_address: Option<&str>,
) -> Result<()> {
    let port = tx
        .port_get(port_id)?
        .ok_or_else(|| port_not_found(port_id))?;
    let fixed = match fixed_ip_address {
        Some(ip) => port
            .fixed_ips
            .iter()
            .find(|f| f.ip_address == ip)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Bad floatingip request: Port {port_id} does not have fixed ip {ip}; pick \
                     one of its fixed_ips."
                ))
            })?,
        None => port
            .fixed_ips
            .iter()
            .find(|f| !f.ip_address.contains(':'))
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Bad floatingip request: Port {port_id} does not have any IPv4 address to \
                     associate with the floating IP."
                ))
            })?,
    };
    let router = tx
        .subnet_router(&fixed.subnet_id)?
        .and_then(|id| tx.router_get(&id).transpose())
        .transpose()?
        .filter(|r| r.external_network_id.as_deref() == Some(fip.floating_network_id.as_str()))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "External network {ext} is not reachable from subnet {subnet}. Therefore, \
                 cannot associate Port {port_id} with a Floating IP. Attach the subnet to a \
                 router (add_router_interface) whose external gateway is on network {ext}.",
                ext = fip.floating_network_id,
                subnet = fixed.subnet_id
            ))
        })?;
    let taken = tx.floating_ips_list(&FloatingIpFilter {
        port_id: Some(port_id.to_string()),
        ..FloatingIpFilter::default()
    })?;
    if let Some(other) = taken
        .iter()
        .find(|o| o.id != fip.id && o.fixed_ip_address.as_deref() == Some(&fixed.ip_address))
    {
        return Err(Error::Conflict(format!(
            "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {}, as that \
             fixed IP already has a floating IP on external network {}: {}.",
            fip.floating_ip_address, fip.id, fixed.ip_address, other.floating_network_id, other.id
        )));
    }
    fip.port_id = Some(port.id.clone());
    fip.fixed_ip_address = Some(fixed.ip_address.clone());
    fip.router_id = Some(router.id);
    fip.status = "ACTIVE".into();
    Ok(())
}

fn disassociate(fip: &mut FloatingIp) {
    fip.port_id = None;
    fip.fixed_ip_address = None;
    fip.router_id = None;
    fip.status = "DOWN".into();
}

fn detail(
    db: &crate::store::Db,
    floating_ip: FloatingIp,
) -> crate::store::Result<FloatingIpDetail> {
    let port = match &floating_ip.port_id {
        Some(id) => db.port_get(id)?,
        None => None,
    };
    Ok(FloatingIpDetail { floating_ip, port })
}

impl Core {
    /// The node of the router NATing `router_id`, re-pushed after a change.
    async fn router_node_dirty(&self, router_id: Option<&str>) {
        let Some(id) = router_id.map(str::to_string) else {
            return;
        };
        if let Ok(Some(router)) = self.store.read(move |db| db.router_get(&id)).await {
            self.network_dirty(&router.host);
        }
    }

    /// `POST /v2.0/floatingips`.
    pub async fn floating_ip_create(
        &self,
        caller: &Caller,
        input: FloatingIpCreate,
    ) -> Result<FloatingIpDetail> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(
            caller,
            &project_id,
            Access::Write,
            "floating IPs of the project",
        )?;
        if input.floating_ip_address.is_some() {
            require_admin(caller, "choosing a floating_ip_address")?;
        }
        let network = self.network_get(caller, &input.floating_network_id).await?;
        if !network.external {
            return Err(Error::BadRequest(format!(
                "Bad floatingip request: Network {} is not a valid external network; floating \
                 IPs come from a network with router:external true.",
                network.id
            )));
        }
        if let Some(port_id) = &input.port_id {
            let port = self.port_get(caller, port_id).await?;
            if !caller.is_admin() && port.project_id != project_id {
                return Err(port_not_found(port_id));
            }
        }
        let description = input.description.unwrap_or_default();
        check_text("description", &description, 255)?;
        let name = input.name.unwrap_or_default();
        check_text("name", &name, 255)?;
        let now = Utc::now();
        let fip = FloatingIp {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            floating_network_id: network.id.clone(),
            floating_ip_address: String::new(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: "DOWN".into(),
            description,
            name,
            created_at: now,
            updated_at: now,
        };
        let request = match (input.subnet_id, input.floating_ip_address) {
            (None, None) => None,
            (subnet_id, ip_address) => Some(vec![FixedIpRequest {
                subnet_id,
                ip_address,
            }]),
        };
        let defaults = self.config.network.default_quota;
        let (port_id, fixed_ip) = (input.port_id, input.fixed_ip_address);
        let made = self
            .store
            .write(move |tx| {
                let mut fip = fip;
                if tx.network_get(&fip.floating_network_id)?.is_none() {
                    return Err(network_not_found(&fip.floating_network_id));
                }
                check_quota(tx, &defaults, &fip.project_id, QuotaResource::FloatingIp)?;
                let now = Utc::now();
                // The address's holder belongs to no project: it counts against no port quota.
                let mut holder = Port {
                    id: uuid::Uuid::new_v4().to_string(),
                    network_id: fip.floating_network_id.clone(),
                    project_id: String::new(),
                    name: String::new(),
                    description: String::new(),
                    mac_address: random_mac(),
                    admin_state_up: true,
                    status: "N/A".into(),
                    device_id: fip.id.clone(),
                    device_owner: OWNER_FLOATING_IP.into(),
                    port_security_enabled: false,
                    binding_host_id: String::new(),
                    allowed_address_pairs: Vec::new(),
                    fixed_ips: Vec::new(),
                    security_groups: Vec::new(),
                    revision_number: 1,
                    created_at: now,
                    updated_at: now,
                };
                while tx.mac_in_use(&holder.network_id, &holder.mac_address)? {
                    holder.mac_address = random_mac();
                }
                holder.fixed_ips =
                    allocate(tx, &holder.network_id, &holder, request.as_deref(), &[])?;
                let address = holder
                    .fixed_ips
                    .first()
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "No more IP addresses available on network {}: it has no subnet to \
                             give a floating IP from.",
                            holder.network_id
                        ))
                    })?
                    .ip_address
                    .clone();
                tx.port_insert(&holder)
                    .map_err(|e| port_write_error(e, &holder))?;
                fip.floating_ip_address = address;
                if let Some(port_id) = &port_id {
                    associate(tx, &mut fip, port_id, fixed_ip.as_deref())?;
                }
                tx.floating_ip_insert(&fip)?;
                Ok(detail(tx, fip)?)
            })
            .await?;
        tracing::info!(floating_ip = %made.floating_ip.id, address = %made.floating_ip.floating_ip_address, "floating IP created");
        self.router_node_dirty(made.floating_ip.router_id.as_deref())
            .await;
        Ok(made)
    }

    /// A floating IP of the caller's project (any, for an admin); 404 otherwise.
    pub async fn floating_ip_get(&self, caller: &Caller, id: &str) -> Result<FloatingIpDetail> {
        let key = id.to_string();
        let found = self
            .store
            .read(move |db| match db.floating_ip_get(&key)? {
                Some(f) => Ok(Some(detail(db, f)?)),
                None => Ok(None),
            })
            .await?;
        found
            .filter(|d| {
                caller.is_admin() || caller.project_id() == Some(d.floating_ip.project_id.as_str())
            })
            .ok_or_else(|| floating_ip_not_found(id))
    }

    /// `GET /v2.0/floatingips`, with Neutron's filters.
    pub async fn floating_ips_list(
        &self,
        caller: &Caller,
        mut filter: FloatingIpFilter,
    ) -> Result<Vec<FloatingIpDetail>> {
        if !caller.is_admin() {
            let own = require_project(caller)?.to_string();
            if filter.project_id.as_ref().is_some_and(|p| *p != own) {
                return Ok(Vec::new());
            }
            filter.project_id = Some(own);
        }
        Ok(self
            .store
            .read(move |db| {
                db.floating_ips_list(&filter)?
                    .into_iter()
                    .map(|f| detail(db, f))
                    .collect::<crate::store::Result<Vec<_>>>()
            })
            .await?)
    }

    /// `PUT /v2.0/floatingips/{id}`: associate (`port_id`), disassociate (`null`).
    pub async fn floating_ip_update(
        &self,
        caller: &Caller,
        id: &str,
        change: FloatingIpUpdate,
    ) -> Result<FloatingIpDetail> {
        let fip = self.floating_ip_get(caller, id).await?.floating_ip;
        authorize(
            caller,
            &fip.project_id,
            Access::Write,
            &format!("floating IP {id}"),
        )?;
        if let Some(Some(port_id)) = &change.port_id {
            let port = self.port_get(caller, port_id).await?;
            if !caller.is_admin() && port.project_id != fip.project_id {
                return Err(port_not_found(port_id));
            }
        }
        if let Some(d) = &change.description {
            check_text("description", d, 255)?;
        }
        let old_router = fip.router_id.clone();
        let made = self
            .store
            .write(move |tx| {
                let mut fip = tx
                    .floating_ip_get(&fip.id)?
                    .ok_or_else(|| floating_ip_not_found(&fip.id))?;
                match &change.port_id {
                    None => {}
                    Some(None) => disassociate(&mut fip),
                    Some(Some(port_id)) => {
                        associate(tx, &mut fip, port_id, change.fixed_ip_address.as_deref())?
                    }
                }
                if let Some(d) = change.description {
                    fip.description = d;
                }
                fip.updated_at = Utc::now();
                tx.floating_ip_update(&fip)?;
                Ok::<_, Error>(detail(tx, fip)?)
            })
            .await?;
        self.router_node_dirty(old_router.as_deref()).await;
        self.router_node_dirty(made.floating_ip.router_id.as_deref())
            .await;
        Ok(made)
    }

    /// `DELETE /v2.0/floatingips/{id}`: the address returns to its pool.
    pub async fn floating_ip_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let fip = self.floating_ip_get(caller, id).await?.floating_ip;
        authorize(
            caller,
            &fip.project_id,
            Access::Write,
            &format!("floating IP {id}"),
        )?;
        let router = fip.router_id.clone();
        self.store
            .write(move |tx| {
                let holders = tx.ports_list(&PortFilter {
                    device_id: Some(fip.id.clone()),
                    device_owner: Some(OWNER_FLOATING_IP.into()),
                    ..PortFilter::default()
                })?;
                tx.floating_ip_delete(&fip.id)?;
                for p in holders {
                    tx.port_delete(&p.id)?;
                }
                Ok::<_, Error>(())
            })
            .await?;
        tracing::info!(floating_ip = %id, "floating IP deleted");
        self.router_node_dirty(router.as_deref()).await;
        Ok(())
    }
}
