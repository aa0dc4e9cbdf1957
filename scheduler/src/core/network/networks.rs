//! Networks: each is one VXLAN segment with a cloud-wide VNI. A project sees its own,
//! shared and external ones; only administrators share, mark external, or see the
//! provider attributes.

use chrono::Utc;

use super::{QuotaResource, check_quota, check_text, owner_project, page_limit};
use crate::core::Core;
use crate::core::error::{Error, OrConflict, Result};
use crate::core::policy::{Access, authorize, require_admin, require_project};
use crate::model::{Caller, Network, NetworkFilter};

/// The smallest MTU a network may have (IPv4's minimum).
const MIN_MTU: u32 = 68;

/// A new network, as a user asks for it.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub mtu: Option<u32>,
    pub port_security_enabled: Option<bool>,
    /// `provider:network_type`: only `vxlan` exists here.
    pub network_type: Option<String>,
    /// `provider:physical_network`: tenant networks have none.
    pub physical_network: Option<String>,
    /// `provider:segmentation_id`: a VNI an administrator asks for.
    pub segmentation_id: Option<u32>,
}

/// The changes a network update asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub mtu: Option<u32>,
    pub port_security_enabled: Option<bool>,
}

/// A network list request: Neutron's filters and paging.
#[derive(Debug, Clone, Default)]
pub struct NetworkQuery {
    pub id: Option<String>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub status: Option<String>,
    pub admin_state_up: Option<bool>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
}

/// One page of networks, and whether more follow it.
#[derive(Debug, Clone)]
pub struct NetworkPage {
    pub networks: Vec<Network>,
    pub more: bool,
}

pub(crate) fn network_not_found(id: &str) -> Error {
    Error::NotFound(format!("Network {id} could not be found."))
}

/// Whether a caller may see a network: its project's, shared, external, or an admin.
pub(crate) fn visible(caller: &Caller, network: &Network) -> bool {
    caller.is_admin()
        || network.shared
        || network.external
        || caller.project_id() == Some(network.project_id.as_str())
}

impl Core {
    fn check_mtu(&self, mtu: u32) -> Result<()> {
        let max = self.config.network.mtu;
        if !(MIN_MTU..=max).contains(&mtu) {
            return Err(Error::BadRequest(format!(
                "Invalid input for mtu. Reason: {mtu} is out of range; tenant networks here \
                 take an MTU from {MIN_MTU} to {max}."
            )));
        }
        Ok(())
    }

    /// `POST /v2.0/networks`.
    pub async fn network_create(&self, caller: &Caller, input: NetworkCreate) -> Result<Network> {
        let project_id = owner_project(caller, input.project_id)?;
        authorize(
            caller,
            &project_id,
            Access::Write,
            "networks of the project",
        )?;
        let shared = input.shared.unwrap_or(false);
        let external = input.external.unwrap_or(false);
        if shared {
            require_admin(caller, "creating a shared network")?;
        }
        if external {
            require_admin(caller, "creating an external network (router:external)")?;
        }
        let provider_given = input.network_type.is_some()
            || input.physical_network.is_some()
            || input.segmentation_id.is_some();
        if provider_given {
            require_admin(caller, "setting provider attributes")?;
        }
        match input.network_type.as_deref() {
            None | Some("vxlan") => {}
            Some(other) => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for provider:network_type. Reason: network type {other} is \
                     not offered by this cloud; tenant networks are vxlan."
                )));
            }
        }
        if input.physical_network.is_some() {
            return Err(Error::BadRequest(
                "Invalid input for provider:physical_network. Reason: vxlan networks have no \
                 physical network; leave it out."
                    .into(),
            ));
        }
        if let Some(vni) = input.segmentation_id
            && !(1..=16_777_215).contains(&vni)
        {
            return Err(Error::BadRequest(format!(
                "Invalid input for provider:segmentation_id. Reason: {vni} is not a VXLAN \
                 identifier (1 to 16777215)."
            )));
        }
        let name = input.name.unwrap_or_default();
        let description = input.description.unwrap_or_default();
        check_text("name", &name, 255)?;
        check_text("description", &description, 255)?;
        let mtu = input.mtu.unwrap_or(self.config.network.mtu);
        self.check_mtu(mtu)?;
        let now = Utc::now();
        let mut network = Network {
            id: uuid::Uuid::new_v4().to_string(),
            project_id,
            name,
            description,
            admin_state_up: input.admin_state_up.unwrap_or(true),
            shared,
            external,
            mtu,
            port_security_enabled: input.port_security_enabled.unwrap_or(true),
            vni: 0,
            status: "ACTIVE".into(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
            subnets: Vec::new(),
        };
        let defaults = self.config.network.default_quota;
        let asked_vni = input.segmentation_id;
        let row = network.clone();
        network.vni = self
            .store
            .write(move |tx| {
                check_quota(tx, &defaults, &row.project_id, QuotaResource::Network)?;
                let vni = match asked_vni {
                    Some(v) => v,
                    None => tx.vni_free()?.ok_or_else(|| {
                        Error::Conflict(
                            "Unable to create the network. No tenant network is available for \
                             allocation: every VXLAN identifier is in use."
                                .into(),
                        )
                    })?,
                };
                let row = Network { vni, ..row };
                tx.network_insert(&row).or_conflict(|| {
                    format!("Unable to create the network. The VNI {vni} is in use.")
                })?;
                Ok::<_, Error>(vni)
            })
            .await?;
        tracing::info!(network = %network.id, vni = network.vni, "network created");
        Ok(network)
    }

    /// A network the caller may see (404 otherwise).
    pub async fn network_get(&self, caller: &Caller, id: &str) -> Result<Network> {
        let key = id.to_string();
        let network = self
            .store
            .read(move |db| db.network_get(&key))
            .await?
            .filter(|n| visible(caller, n))
            .ok_or_else(|| network_not_found(id))?;
        Ok(network)
    }

    /// A network the caller may change: 404 when it cannot see it, 403 when it can but
    /// may not change it (another project's shared network, or a reader).
    async fn network_for_change(&self, caller: &Caller, id: &str) -> Result<Network> {
        let network = self.network_get(caller, id).await?;
        if !caller.is_admin() && caller.project_id() != Some(network.project_id.as_str()) {
            return Err(Error::Forbidden(format!(
                "network {id} belongs to another project; only its project or an \
                 administrator may change it"
            )));
        }
        authorize(
            caller,
            &network.project_id,
            Access::Write,
            &format!("network {id}"),
        )?;
        Ok(network)
    }

    /// `GET /v2.0/networks`.
    pub async fn networks_list(&self, caller: &Caller, query: NetworkQuery) -> Result<NetworkPage> {
        let visible_to = if caller.is_admin() {
            None
        } else {
            Some(require_project(caller)?.to_string())
        };
        let limit = page_limit(query.limit);
        let filter = NetworkFilter {
            visible_to,
            id: query.id,
            name: query.name,
            project_id: query.project_id,
            shared: query.shared,
            external: query.external,
            status: query.status,
            admin_state_up: query.admin_state_up,
            marker: query.marker,
            limit: limit.map(|l| l + 1),
        };
        let mut networks = self.store.read(move |db| db.networks_list(&filter)).await?;
        let more = limit.is_some_and(|l| networks.len() > l);
        if let Some(l) = limit {
            networks.truncate(l);
        }
        Ok(NetworkPage { networks, more })
    }

    /// `PUT /v2.0/networks/{id}`.
    pub async fn network_update(
        &self,
        caller: &Caller,
        id: &str,
        change: NetworkUpdate,
    ) -> Result<Network> {
        let mut network = self.network_for_change(caller, id).await?;
        if change.shared.is_some_and(|s| s != network.shared) {
            require_admin(caller, "sharing or unsharing a network")?;
        }
        if change.external.is_some_and(|e| e != network.external) {
            require_admin(caller, "changing router:external")?;
        }
        if let Some(name) = change.name {
            check_text("name", &name, 255)?;
            network.name = name;
        }
        if let Some(description) = change.description {
            check_text("description", &description, 255)?;
            network.description = description;
        }
        if let Some(mtu) = change.mtu {
            self.check_mtu(mtu)?;
            network.mtu = mtu;
        }
        network.admin_state_up = change.admin_state_up.unwrap_or(network.admin_state_up);
        network.shared = change.shared.unwrap_or(network.shared);
        network.external = change.external.unwrap_or(network.external);
        network.port_security_enabled = change
            .port_security_enabled
            .unwrap_or(network.port_security_enabled);
        network.revision_number += 1;
        network.updated_at = Utc::now();
        let row = network.clone();
        self.store
            .write(move |tx| {
                if tx.network_get(&row.id)?.is_none() {
                    return Err(network_not_found(&row.id));
                }
                tx.network_update(&row)?;
                Ok(())
            })
            .await?;
        self.network_dirty_for_network(&network.id).await;
        Ok(network)
    }

    /// `DELETE /v2.0/networks/{id}`: refused while ports other than the network's own
    /// are on it; its subnets go with it.
    pub async fn network_delete(&self, caller: &Caller, id: &str) -> Result<()> {
        let network = self.network_for_change(caller, id).await?;
        self.store
            .write(move |tx| {
                if tx.network_user_ports(&network.id)? > 0 {
                    return Err(Error::Conflict(format!(
                        "Unable to complete operation on network {}. There are one or more \
                         ports still in use on the network.",
                        network.id
                    )));
                }
                tx.network_delete(&network.id)?;
                Ok(())
            })
            .await?;
        tracing::info!(network = %id, "network deleted");
        Ok(())
    }
}
