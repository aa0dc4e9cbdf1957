//! Routers: an external gateway (a port on an external network, addressed by IPAM)
//! and interfaces (a port holding each attached subnet's gateway address). All of a
//! router's ports are bound to the node chosen for its NAT, so that node is pushed
//! every network the router touches through the ordinary per-node sync.

use chrono::Utc;

use super::ports::{allocate, port_not_found, port_write_error, random_mac};
use super::subnets::subnet_not_found;
use super::{
    FixedIpRequest, ListScope, QuotaResource, check_quota, check_text, list_scope, owner_project,
    page_limit,
};
use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::policy::{Access, authorize, require_admin};
use crate::model::{Caller, FixedIp, NodeState, Port, PortFilter, Router};
use crate::store::Tx;

pub const OWNER_GATEWAY: &str = "network:router_gateway";
pub const OWNER_INTERFACE: &str = "network:router_interface";

/// `external_gateway_info` as asked: `None` for no gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    pub external_fixed_ips: Option<Vec<FixedIpRequest>>,
}

#[derive(Debug, Clone, Default)]
pub struct RouterCreate {
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub gateway: Option<GatewayRequest>,
}

#[derive(Debug, Clone, Default)]
pub struct RouterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    /// `Some(None)`: remove the gateway.
    pub gateway: Option<Option<GatewayRequest>>,
}

#[derive(Debug, Clone, Default)]
pub struct RouterQuery {
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// A router with the addresses of its gateway port.
#[derive(Debug, Clone)]
pub struct RouterDetail {
    pub router: Router,
    pub gateway_ips: Vec<FixedIp>,
}

#[derive(Debug, Clone)]
pub struct RouterPage {
    pub routers: Vec<RouterDetail>,
    pub more: bool,
}

/// The answer to `add_router_interface` / `remove_router_interface`.
#[derive(Debug, Clone)]
pub struct RouterInterface {
    pub router_id: String,
    pub project_id: String,
    pub port_id: String,
    pub network_id: String,
    pub subnet_ids: Vec<String>,
}

pub(crate) fn router_not_found(id: &str) -> Error {
    Error::NotFound(format!("Router {id} could not be found."))
}

/// A port the router owns, built for a direct insert in the router's transaction.
fn router_port(router: &Router, network_id: &str, owner: &str, project_id: &str) -> Port {
    let now = Utc::now();
    Port {
        id: uuid::Uuid::new_v4().to_string(),
        network_id: network_id.to_string(),
        project_id: project_id.to_string(),
        name: String::new(),
        description: String::new(),
        mac_address: random_mac(),
        admin_state_up: true,
        status: "DOWN".into(),
        device_id: router.id.clone(),
        device_owner: owner.to_string(),
        // Router ports are the router's own; no security groups filter them.
        port_security_enabled: false,
        binding_host_id: router.host.clone(),
        allowed_address_pairs: Vec::new(),
        fixed_ips: Vec::new(),
        security_groups: Vec::new(),
        revision_number: 1,
        created_at: now,
        updated_at: now,
    }
}

fn router_ports(tx_or_db: &crate::store::Db, router_id: &str) -> crate::store::Result<Vec<Port>> {
    tx_or_db.ports_list(&PortFilter {
        device_id: Some(router_id.to_string()),
        ..PortFilter::default()
    })
}

/// Gives `router` the gateway `gateway` asks for (after removing any it had).
fn gateway_set(tx: &Tx, router: &mut Router, gateway: Option<&GatewayRequest>) -> Result<()> {
    if let Some(current) = &router.external_network_id
        && tx.router_floating_ips(&router.id, None)? > 0
    {
        return Err(Error::Conflict(format!(
            "Gateway cannot be updated for router {}, since a gateway to external network \
             {current} is required by one or more floating IPs; disassociate them first.",
            router.id
        )));
    }
    for old in router_ports(tx, &router.id)?
        .into_iter()
        .filter(|p| p.device_owner == OWNER_GATEWAY)
    {
        tx.port_delete(&old.id)?;
    }
    router.external_network_id = None;
    router.enable_snat = true;
    let Some(gateway) = gateway else {
        return Ok(());
    };
    let network = tx
        .network_get(&gateway.network_id)?
        .ok_or_else(|| super::networks::network_not_found(&gateway.network_id))?;
    if !network.external {
        return Err(Error::BadRequest(format!(
            "Bad router request: Network {} is not an external network; a router's gateway \
             goes on a network with router:external true.",
            network.id
        )));
    }
    if network.subnets.is_empty() {
        return Err(Error::BadRequest(format!(
            "Bad router request: external network {} has no subnet to give the gateway an \
             address; add one first.",
            network.id
        )));
    }
    // The gateway port belongs to no project, as in Neutron: it counts against no quota.
    let mut port = router_port(router, &network.id, OWNER_GATEWAY, "");
    while tx.mac_in_use(&port.network_id, &port.mac_address)? {
        port.mac_address = random_mac();
    }
    port.fixed_ips = allocate(
        tx,
        &network.id,
        &port,
        gateway.external_fixed_ips.as_deref(),
        &[],
    )?;
    tx.port_insert(&port)
        .map_err(|e| port_write_error(e, &port))?;
    router.external_network_id = Some(network.id);
    router.enable_snat = gateway.enable_snat.unwrap_or(true);
    Ok(())
}

fn detail(db: &crate::store::Db, router: Router) -> crate::store::Result<RouterDetail> {
    let gateway_ips = router_ports(db, &router.id)?
        .into_iter()
        .filter(|p| p.device_owner == OWNER_GATEWAY)
        .flat_map(|p| p.fixed_ips)
        .collect();
    Ok(RouterDetail {
        router,
        gateway_ips,
    })
}

impl Core {
    /// Checks what only administrators may ask of a gateway (Neutron's policy).
    fn check_gateway_policy(caller: &Caller, gateway: Option<&GatewayRequest>) -> Result<()> {
        if let Some(g) = gateway {
            if g.enable_snat == Some(false) {
                require_admin(caller, "disabling SNAT on a router gateway (enable_snat)")?;
            }
            if g.external_fixed_ips.is_some() {
                require_admin(caller, "choosing a router gateway's external_fixed_ips")?;
            }
        }
        Ok(())
    }

    /// The up node carrying the fewest routers; '' when none is up.
    async fn router_host_choice(&self) -> Result<String> {
        let load = self.store.read(|db| db.routers_per_host()).await?;
        self.least_loaded_up_node(load).await
    }

    /// `POST /v2.0/routers`.
    pub async fn router_create(
        &self,
        caller: &Caller,
        input: RouterCreate,
    ) -> Result<RouterDetail> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(caller, &project_id, Access::Write, "routers of the project")?;
        Self::check_gateway_policy(caller, input.gateway.as_ref())?;
        if let Some(g) = &input.gateway {
            // 404 for a network the caller cannot see, before anything is made.
            self.network_get(caller, &g.network_id).await?;
        }
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let now = Utc::now();
        let router = Router {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            name,
            description,
            admin_state_up: input.admin_state_up.unwrap_or(true),
            status: "ACTIVE".into(),
            external_network_id: None,
            enable_snat: true,
            host: self.router_host_choice().await?,
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let defaults = self.config.network.default_quota;
        let gateway = input.gateway;
        let detail = self
            .store
            .write(move |tx| {
                let mut router = router;
                check_quota(tx, &defaults, &router.project_id, QuotaResource::Router)?;
                tx.router_insert(&router)?;
                gateway_set(tx, &mut router, gateway.as_ref())?;
                tx.router_update(&router)?;
                Ok::<_, Error>(detail(tx, router)?)
            })
            .await?;
        tracing::info!(router = %detail.router.id, host = %detail.router.host, "router created");
        self.network_dirty(&detail.router.host);
        Ok(detail)
    }

    /// A router the caller may see (its project's, or an admin): 404 otherwise.
    pub async fn router_get(&self, caller: &Caller, id: &str) -> Result<RouterDetail> {
        let key = id.to_string();
        let found = self
            .store
            .read(move |db| match db.router_get(&key)? {
                Some(r) => Ok(Some(detail(db, r)?)),
                None => Ok(None),
            })
            .await?;
        found
            .filter(|d| {
                caller.is_admin() || caller.project_id() == Some(d.router.project_id.as_str())
            })
            .ok_or_else(|| router_not_found(id))
    }

    async fn router_for_change(&self, caller: &Caller, id: &str) -> Result<RouterDetail> {
        let found = self.router_get(caller, id).await?;
        authorize(
            caller,
            &found.router.project_id,
            Access::Write,
            &format!("router {id}"),
        )?;
        Ok(found)
    }

    /// `GET /v2.0/routers`.
    pub async fn routers_list(&self, caller: &Caller, query: RouterQuery) -> Result<RouterPage> {
        let scope = match list_scope(caller, query.project_id)? {
            ListScope::Project(scope) => scope,
            ListScope::Nothing => {
                return Ok(RouterPage {
                    routers: Vec::new(),
                    more: false,
                });
            }
        };
        let limit = page_limit(query.limit);
        let (name, marker) = (query.name, query.marker);
        let mut routers = self
            .store
            .read(move |db| {
                db.routers_list(
                    scope.as_deref(),
                    name.as_deref(),
                    marker.as_deref(),
                    limit.map(|l| l + 1),
                )?
                .into_iter()
                .map(|r| detail(db, r))
                .collect::<crate::store::Result<Vec<_>>>()
            })
            .await?;
        let more = limit.is_some_and(|l| routers.len() > l);
        if let Some(l) = limit {
            routers.truncate(l);
        }
        Ok(RouterPage { routers, more })
    }

    /// `PUT /v2.0/routers/{id}`.
    pub async fn router_update(
        &self,
        caller: &Caller,
        id: &str,
        change: RouterUpdate,
    ) -> Result<RouterDetail> {
        let mut router = self.router_for_change(caller, id).await?.router;
        if let Some(Some(g)) = &change.gateway {
            Self::check_gateway_policy(caller, Some(g))?;
            self.network_get(caller, &g.network_id).await?;
        }
        if let Some(name) = change.name {
            check_text("name", &name, 255)?;
            router.name = name;
        }
        if let Some(description) = change.description {
            check_text("description", &description, 255)?;
            router.description = description;
        }
        router.admin_state_up = change.admin_state_up.unwrap_or(router.admin_state_up);
        // A router whose node is gone is placed again; its ports follow it.
        let old_host = router.host.clone();
        let host_up = !old_host.is_empty()
            && self
                .nodes()
                .await?
                .iter()
                .any(|n| n.name == old_host && n.state == NodeState::Up);
        if !host_up {
            router.host = self.router_host_choice().await?;
        }
        router.revision_number += 1;
        router.updated_at = Utc::now();
        let gateway = change.gateway;
        let previous_host = old_host.clone();
        let detail = self
            .store
            .write(move |tx| {
                let mut router = router;
                if tx.router_get(&router.id)?.is_none() {
                    return Err(router_not_found(&router.id));
                }
                match gateway {
                    None => {}
                    Some(None) => gateway_set(tx, &mut router, None)?,
                    Some(Some(g)) => gateway_set(tx, &mut router, Some(&g))?,
                }
                if router.host != previous_host {
                    for mut port in router_ports(tx, &router.id)? {
                        port.binding_host_id = router.host.clone();
                        tx.port_update(&port)?;
                    }
                }
                tx.router_update(&router)?;
                Ok::<_, Error>(detail(tx, router)?)
            })
            .await?;
        self.network_dirty(&old_host);
        self.network_dirty(&detail.router.host);
        Ok(detail)
    }

    /// `DELETE /v2.0/routers/{id}`: refused while it has interfaces; its gateway goes
    /// with it.
    pub async fn router_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let router = self.router_for_change(caller, id).await?.router;
        let host = router.host.clone();
        self.store
            .write(move |tx| {
                let ports = router_ports(tx, &router.id)?;
                if tx.router_floating_ips(&router.id, None)? > 0 {
                    return Err(Error::Conflict(format!(
                        "Router {} still has floating IPs associated through it; disassociate \
                         them first (PUT /v2.0/floatingips/{{id}} with port_id null).",
                        router.id
                    )));
                }
                if ports.iter().any(|p| p.device_owner == OWNER_INTERFACE) {
                    return Err(Error::Conflict(format!(
                        "Router {} still has ports: remove its interfaces first (PUT \
                         /v2.0/routers/{}/remove_router_interface).",
                        router.id, router.id
                    )));
                }
                for p in ports {
                    tx.port_delete(&p.id)?;
                }
                tx.router_delete(&router.id)?;
                Ok(())
            })
            .await?;
        tracing::info!(router = %id, "router deleted");
        self.network_dirty(&host);
        Ok(())
    }

    /// `PUT /v2.0/routers/{id}/add_router_interface`: by subnet (the router takes its
    /// gateway address) or by an unused port of the caller's.
    pub async fn router_interface_add(
        &self,
        caller: &Caller,
        id: &str,
        subnet_id: Option<String>,
        port_id: Option<String>,
    ) -> Result<RouterInterface> {
        let router = self.router_for_change(caller, id).await?.router;
        let owns = |project: &str| caller.is_admin() || caller.project_id() == Some(project);
        let port = match (&subnet_id, &port_id) {
            (Some(_), Some(_)) => {
                return Err(Error::BadRequest(
                    "Bad router request: Cannot specify both subnet-id and port-id; give one."
                        .into(),
                ));
            }
            (None, None) => {
                return Err(Error::BadRequest(
                    "Bad router request: Either subnet_id or port_id must be specified.".into(),
                ));
            }
            (Some(subnet_id), None) => {
                let subnet = self.subnet_get(caller, subnet_id).await?;
                if !owns(&subnet.project_id) {
                    return Err(subnet_not_found(subnet_id));
                }
                let Some(gateway_ip) = subnet.gateway_ip.clone() else {
                    return Err(Error::BadRequest(format!(
                        "Bad router request: Subnet {subnet_id} for router interface must have \
                         a gateway IP; set gateway_ip on it or attach a port instead."
                    )));
                };
                let mut port = router_port(
                    &router,
                    &subnet.network_id,
                    OWNER_INTERFACE,
                    &router.project_id,
                );
                port.fixed_ips = vec![FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: gateway_ip,
                }];
                port
            }
            (None, Some(port_id)) => {
                let mut port = self.port_get(caller, port_id).await?;
                if !owns(&port.project_id) {
                    return Err(port_not_found(port_id));
                }
                if !port.device_id.is_empty() || !port.device_owner.is_empty() {
                    return Err(Error::Conflict(format!(
                        "Unable to complete operation on port {port_id}: it is in use by \
                         device {} ({}); attach an unused port.",
                        port.device_id, port.device_owner
                    )));
                }
                if port.fixed_ips.is_empty() {
                    return Err(Error::BadRequest(format!(
                        "Bad router request: Router port {port_id} must have at least one fixed \
                         IP."
                    )));
                }
                port.device_id = router.id.clone();
                port.device_owner = OWNER_INTERFACE.into();
                port.binding_host_id = router.host.clone();
                port.revision_number += 1;
                port.updated_at = Utc::now();
                port
            }
        };
        let by_port = port_id.is_some();
        let router_id = router.id.clone();
        let row = port;
        let port = self
            .store
            .write(move |tx| {
                let mut port = row;
                if tx.router_get(&router_id)?.is_none() {
                    return Err(router_not_found(&router_id));
                }
                for f in &port.fixed_ips {
                    if let Some(other) = tx.subnet_router(&f.subnet_id)? {
                        return Err(Error::Conflict(format!(
                            "Subnet {} is already attached to router {other}; a subnet has one \
                             router. Remove that interface first.",
                            f.subnet_id
                        )));
                    }
                }
                if by_port {
                    tx.port_update(&port)?;
                } else {
                    let f = &port.fixed_ips[0];
                    if let Some(holder) = tx.address_holder(&f.subnet_id, &f.ip_address)? {
                        return Err(Error::Conflict(format!(
                            "IP address {} already allocated in subnet {}: port {holder} holds \
                             the subnet's gateway address.",
                            f.ip_address, f.subnet_id
                        )));
                    }
                    while tx.mac_in_use(&port.network_id, &port.mac_address)? {
                        port.mac_address = random_mac();
                    }
                    tx.port_insert(&port)
                        .map_err(|e| port_write_error(e, &port))?;
                }
                Ok(port)
            })
            .await?;
        tracing::info!(router = %router.id, port = %port.id, "router interface added");
        self.network_dirty(&router.host);
        Ok(RouterInterface {
            router_id: router.id,
            project_id: router.project_id,
            port_id: port.id,
            network_id: port.network_id,
            subnet_ids: port.fixed_ips.into_iter().map(|f| f.subnet_id).collect(),
        })
    }

    /// `PUT /v2.0/routers/{id}/remove_router_interface`: the interface port goes.
    pub async fn router_interface_remove(
        &self,
        caller: &Caller,
        id: &str,
        subnet_id: Option<String>,
        port_id: Option<String>,
    ) -> Result<RouterInterface> {
        let router = self.router_for_change(caller, id).await?.router;
        if subnet_id.is_none() && port_id.is_none() {
            return Err(Error::BadRequest(
                "Bad router request: Either subnet_id or port_id must be specified.".into(),
            ));
        }
        let router_id = router.id.clone();
        let port = self
            .store
            .write(move |tx| {
                let interfaces: Vec<Port> = router_ports(tx, &router_id)?
                    .into_iter()
                    .filter(|p| p.device_owner == OWNER_INTERFACE)
                    .collect();
                let found = interfaces.into_iter().find(|p| {
                    port_id.as_ref().is_none_or(|id| p.id == *id)
                        && subnet_id
                            .as_ref()
                            .is_none_or(|s| p.fixed_ips.iter().any(|f| f.subnet_id == *s))
                });
                let Some(port) = found else {
                    return Err(Error::NotFound(match (&port_id, &subnet_id) {
                        (Some(p), _) => format!(
                            "Router {router_id} does not have an interface with id {p}; GET \
                             /v2.0/ports?device_id={router_id} lists its interfaces."
                        ),
                        (None, s) => format!(
                            "Router {router_id} has no interface on subnet {}; GET \
                             /v2.0/ports?device_id={router_id} lists its interfaces.",
                            s.as_deref().unwrap_or_default()
                        ),
                    }));
                };
                if tx.router_floating_ips(&router_id, Some(&port.network_id))? > 0 {
                    return Err(Error::Conflict(format!(
                        "Router interface for port {} on router {router_id} cannot be deleted, \
                         as it is required by one or more floating IPs; disassociate them first.",
                        port.id
                    )));
                }
                tx.port_delete(&port.id)?;
                Ok::<_, Error>(port)
            })
            .await?;
        tracing::info!(router = %router.id, port = %port.id, "router interface removed");
        self.network_dirty(&router.host);
        Ok(RouterInterface {
            router_id: router.id,
            project_id: router.project_id,
            port_id: port.id,
            network_id: port.network_id,
            subnet_ids: port.fixed_ips.into_iter().map(|f| f.subnet_id).collect(),
        })
    }
}
