//! Octavia v2 load balancers (clause B.3.4): a VIP port from IPAM made in the same
//! transaction as the load balancer and its quota check, and Octavia's provisioning
//! state machine — every change leaves the load balancer PENDING_* (immutable, 409)
//! until a background task has applied it and marked it ACTIVE or ERROR.

mod children;

pub use children::{
    ChildUpdate, HealthMonitorCreate, LbNode, LbRelations, ListenerCreate, MemberCreate, NodeAdd,
    NodeRemove, PoolCreate,
};

use chrono::Utc;

use crate::core::Core;
use crate::core::error::{Error, Result};
use crate::core::network::FixedIpRequest;
use crate::core::network::ports::{allocate, port_write_error, random_mac};
use crate::core::network::{check_text, owner_project};
use crate::core::policy::{Access, authorize};
use crate::model::{Caller, LoadBalancer, LoadBalancerFilter, Port};

/// The VIP port's `device_owner`, as Octavia's.
pub const OWNER_LOAD_BALANCER: &str = "Octavia";

pub const ACTIVE: &str = "ACTIVE";
pub const ERROR: &str = "ERROR";
pub const PENDING_CREATE: &str = "PENDING_CREATE";
pub const PENDING_UPDATE: &str = "PENDING_UPDATE";

#[derive(Debug, Clone, Default)]
pub struct LoadBalancerCreate {
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub vip_subnet_id: Option<String>,
    pub vip_network_id: Option<String>,
    pub vip_address: Option<String>,
    pub admin_state_up: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadBalancerUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
}

pub(crate) fn load_balancer_not_found(id: &str) -> Error {
    Error::NotFound(format!("Load Balancer {id} not found."))
}

/// Octavia refuses changes to a load balancer being provisioned.
fn require_mutable(lb: &LoadBalancer) -> Result<()> {
    if lb.provisioning_status.starts_with("PENDING_") {
        return Err(Error::Conflict(format!(
            "Invalid state {} of loadbalancer resource {}: it is being provisioned; wait until \
             its provisioning_status is ACTIVE and retry.",
            lb.provisioning_status, lb.id
        )));
    }
    Ok(())
}

fn operating_status(admin_state_up: bool) -> &'static str {
    if admin_state_up { "ONLINE" } else { "OFFLINE" }
}

impl Core {
    /// A load balancer the caller may see: 404 for another project's.
    pub async fn load_balancer_get(&self, caller: &Caller, id: &str) -> Result<LoadBalancer> {
        let key = id.to_string();
        self.store
            .read(move |db| db.load_balancer_get(&key))
            .await?
            .filter(|lb| caller.is_admin() || caller.project_id() == Some(lb.project_id.as_str()))
            .ok_or_else(|| load_balancer_not_found(id))
    }

    /// `GET /v2/lbaas/loadbalancers`: a project's own; administrators see all.
    pub async fn load_balancers_list(
        &self,
        caller: &Caller,
        mut filter: LoadBalancerFilter,
    ) -> Result<Vec<LoadBalancer>> {
        if !caller.is_admin() {
            filter.project_id = Some(crate::core::policy::require_project(caller)?.to_string());
        }
        Ok(self
            .store
            .read(move |db| db.load_balancers_list(&filter))
            .await?)
    }

    /// `POST /v2/lbaas/loadbalancers`: answered PENDING_CREATE; ACTIVE shortly after.
    pub async fn load_balancer_create(
        &self,
        caller: &Caller,
        input: LoadBalancerCreate,
    ) -> Result<LoadBalancer> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(
            caller,
            &project_id,
            Access::Write,
            "load balancers of the project",
        )?;
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let (network, subnet_id) = match (&input.vip_subnet_id, &input.vip_network_id) {
            (Some(subnet_id), _) => {
                let subnet = self.subnet_get(caller, subnet_id).await?;
                if input
                    .vip_network_id
                    .as_ref()
                    .is_some_and(|n| *n != subnet.network_id)
                {
                    return Err(Error::BadRequest(format!(
                        "Validation failure: vip_subnet_id {subnet_id} is not on vip_network_id \
                         {}; give one of them, or a subnet of that network.",
                        input.vip_network_id.unwrap_or_default()
                    )));
                }
                (
                    self.network_get(caller, &subnet.network_id).await?,
                    Some(subnet.id),
                )
            }
            (None, Some(network_id)) => (self.network_get(caller, network_id).await?, None),
            (None, None) => {
                return Err(Error::BadRequest(
                    "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, \
                     vip_subnet_id. Give vip_subnet_id (or vip_network_id) of the network the \
                     load balancer listens on."
                        .into(),
                ));
            }
        };
        if !caller.is_admin() && network.project_id != project_id && !network.shared {
            return Err(Error::Forbidden(format!(
                "network {} belongs to another project and is not shared; a load balancer's \
                 VIP goes on your own or a shared network",
                network.id
            )));
        }
        let request = match (subnet_id, input.vip_address) {
            (None, None) => None,
            (subnet_id, ip_address) => Some(vec![FixedIpRequest {
                subnet_id,
                ip_address,
            }]),
        };
        let admin_state_up = input.admin_state_up.unwrap_or(true);
        // The node that will carry the VIP and run the listeners, as Octavia's amphora.
        let load = self.store.read(|db| db.load_balancers_per_host()).await?;
        let host = self.least_loaded_up_node(load).await?;
        if host.is_empty() {
            return Err(Error::Conflict(
                "No node is up to carry the load balancer; start an agent (or wait for one to                  come back) and retry."
                    .into(),
            ));
        }
        let now = Utc::now();
        let row = LoadBalancer {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            name,
            description,
            vip_port_id: uuid::Uuid::new_v4().to_string(),
            vip_network_id: network.id.clone(),
            vip_subnet_id: String::new(),
            vip_address: String::new(),
            provisioning_status: PENDING_CREATE.into(),
            operating_status: "OFFLINE".into(),
            admin_state_up,
            created_at: now,
            updated_at: now,
        };
        let limit = self.config.load_balancer.default_quota.load_balancer;
        let made = self
            .store
            .write(move |tx| {
                let mut lb = row;
                if limit >= 0 && tx.load_balancers_count(&lb.project_id)? + 1 > limit {
                    // Octavia answers a met quota with 403, not Nova's 413.
                    return Err(Error::Forbidden(format!(
                        "Quota has been met for resources: load_balancer (limit {limit}) of \
                         project {}; delete one or ask an administrator to raise the quota.",
                        lb.project_id
                    )));
                }
                let mut vip = Port {
                    id: lb.vip_port_id.clone(),
                    network_id: lb.vip_network_id.clone(),
                    project_id: lb.project_id.clone(),
                    name: format!("octavia-lb-{}", lb.id),
                    description: String::new(),
                    mac_address: random_mac(),
                    admin_state_up: false,
                    status: "DOWN".into(),
                    device_id: lb.id.clone(),
                    device_owner: OWNER_LOAD_BALANCER.into(),
                    port_security_enabled: false,
                    binding_host_id: host,
                    allowed_address_pairs: Vec::new(),
                    fixed_ips: Vec::new(),
                    security_groups: Vec::new(),
                    revision_number: 1,
                    created_at: lb.created_at,
                    updated_at: lb.created_at,
                };
                while tx.mac_in_use(&vip.network_id, &vip.mac_address)? {
                    vip.mac_address = random_mac();
                }
                vip.fixed_ips = allocate(tx, &vip.network_id, &vip, request.as_deref(), &[])?;
                let fixed = vip.fixed_ips.first().ok_or_else(|| {
                    Error::BadRequest(format!(
                        "Network {} has no subnet to give the load balancer's VIP an address \
                         from; create a subnet on it first.",
                        vip.network_id
                    ))
                })?;
                lb.vip_subnet_id = fixed.subnet_id.clone();
                lb.vip_address = fixed.ip_address.clone();
                tx.port_insert(&vip)
                    .map_err(|e| port_write_error(e, &vip))?;
                tx.load_balancer_insert(&lb)?;
                Ok(lb)
            })
            .await?;
        tracing::info!(load_balancer = %made.id, vip = %made.vip_address, "load balancer created");
        self.load_balancer_apply_later(&made.id)?;
        Ok(made)
    }

    /// `PUT /v2/lbaas/loadbalancers/{id}`: answered PENDING_UPDATE.
    pub async fn load_balancer_update(
        &self,
        caller: &Caller,
        id: &str,
        change: LoadBalancerUpdate,
    ) -> Result<LoadBalancer> {
        let found = self.load_balancer_get(caller, id).await?;
        authorize(
            caller,
            &found.project_id,
            Access::Write,
            &format!("load balancer {id}"),
        )?;
        if let Some(name) = &change.name {
            check_text("name", name, 255)?;
        }
        if let Some(description) = &change.description {
            check_text("description", description, 255)?;
        }
        let key = id.to_string();
        let changed = self
            .store
            .write(move |tx| {
                let mut lb = tx
                    .load_balancer_get(&key)?
                    .ok_or_else(|| load_balancer_not_found(&key))?;
                require_mutable(&lb)?;
                lb.name = change.name.unwrap_or(lb.name);
                lb.description = change.description.unwrap_or(lb.description);
                lb.admin_state_up = change.admin_state_up.unwrap_or(lb.admin_state_up);
                lb.provisioning_status = PENDING_UPDATE.into();
                lb.updated_at = Utc::now();
                tx.load_balancer_update(&lb)?;
                Ok::<_, Error>(lb)
            })
            .await?;
        self.load_balancer_apply_later(&changed.id)?;
        Ok(changed)
    }

    /// `DELETE /v2/lbaas/loadbalancers/{id}`: the load balancer and its VIP port go in
    /// one transaction; with `cascade`, everything below it too (else 409 while any).
    pub async fn load_balancer_delete(
        &self,
        caller: &Caller,
        id: &str,
        cascade: bool,
    ) -> Result<()> {
        let found = self.load_balancer_get(caller, id).await?;
        authorize(
            caller,
            &found.project_id,
            Access::Write,
            &format!("load balancer {id}"),
        )?;
        let key = id.to_string();
        let host = self
            .store
            .write(move |tx| {
                let lb = tx
                    .load_balancer_get(&key)?
                    .ok_or_else(|| load_balancer_not_found(&key))?;
                require_mutable(&lb)?;
                let host = tx
                    .port_get(&lb.vip_port_id)?
                    .map(|p| p.binding_host_id)
                    .unwrap_or_default();
                let children = tx.listeners_list(Some(&lb.id), None)?.len()
                    + tx.pools_list(Some(&lb.id), None)?.len();
                if children > 0 && !cascade {
                    return Err(Error::Conflict(format!(
                        "Load balancer {} still has listeners or pools; delete them first, or                          delete with ?cascade=true (openstack loadbalancer delete --cascade).",
                        lb.id
                    )));
                }
                // Listeners, pools, members and health monitors go by the schema's cascades.
                tx.load_balancer_delete(&lb.id)?;
                tx.port_delete(&lb.vip_port_id)?;
                Ok::<_, Error>(host)
            })
            .await?;
        self.network_dirty(&host);
        tracing::info!(load_balancer = %id, "load balancer deleted");
        Ok(())
    }

    fn load_balancer_apply_later(&self, id: &str) -> Result<()> {
        let core = self.arc()?;
        let id = id.to_string();
        tokio::spawn(async move { core.load_balancer_apply(id).await });
        Ok(())
    }

    /// Pushes a load balancer's configuration to the node carrying its VIP and marks it
    /// ACTIVE once the node applied it, or ERROR when the node could not (after a few
    /// tries; the node's network sync keeps pushing it meanwhile).
    async fn load_balancer_apply(&self, id: String) {
        let delay = self.config.load_balancer.apply_delay_ms;
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        let key = id.clone();
        let host = self
            .store
            .read(move |db| {
                let Some(lb) = db.load_balancer_get(&key)? else {
                    return Ok(None);
                };
                Ok(db.port_get(&lb.vip_port_id)?.map(|p| p.binding_host_id))
            })
            .await;
        let applied = match host {
            Ok(None) => return,
            Ok(Some(host)) => self.push_with_retries(&host).await,
            Err(error) => Err(error.into()),
        };
        if let Err(error) = &applied {
            tracing::warn!(load_balancer = %id, error = %crate::core::error_chain(error),
                "the node did not apply the load balancer");
        }
        let outcome = self
            .store
            .write(move |tx| {
                let Some(mut lb) = tx.load_balancer_get(&id)? else {
                    return Ok::<_, Error>(());
                };
                match applied {
                    Ok(()) => {
                        lb.provisioning_status = ACTIVE.into();
                        lb.operating_status = operating_status(lb.admin_state_up).into();
                    }
                    Err(_) => lb.provisioning_status = ERROR.into(),
                }
                lb.updated_at = Utc::now();
                tx.load_balancer_update(&lb)?;
                Ok(())
            })
            .await;
        if let Err(error) = outcome {
            tracing::error!(%error, "recording a load balancer's provisioning failed");
        }
    }

    /// Pushes `host`'s network spec, trying three times a second apart.
    async fn push_with_retries(&self, host: &str) -> Result<()> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.network_push(host).await {
                Ok(_) => return Ok(()),
                Err(error) if tries >= 3 => return Err(error),
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
        }
    }
}
