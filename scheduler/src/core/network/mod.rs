//! Networking (Neutron v2.0, clauses B.3.1 and B.3.5): networks, subnets and the rules
//! users observe on them — who sees which network, VXLAN identifiers, subnet address
//! plans, and network quotas checked in the same transaction as each create.

pub mod cidr;
mod floating_ips;
mod networks;
pub(crate) mod ports;
mod public_ips;
mod quotas;
mod routers;
mod security_groups;
mod server_ports;
mod subnets;
mod sync;

pub use floating_ips::{FloatingIpCreate, FloatingIpDetail, FloatingIpUpdate};
pub use networks::{NetworkCreate, NetworkPage, NetworkQuery, NetworkUpdate};
pub use ports::{AddressPairRequest, FixedIpRequest, PortCreate, PortPage, PortQuery, PortUpdate};
pub use public_ips::PublicIpTarget;
pub use quotas::{NetworkQuotaDetail, NetworkQuotaSet};
pub use routers::{
    GatewayRequest, RouterCreate, RouterDetail, RouterInterface, RouterPage, RouterQuery,
    RouterUpdate,
};
pub(crate) use security_groups::{DEFAULT_GROUP, port_groups};
pub use security_groups::{
    RuleCreate, RulePage, RuleQuery, SecurityGroupCreate, SecurityGroupPage, SecurityGroupQuery,
    SecurityGroupUpdate,
};
pub(crate) use server_ports::plan_server_networks;
pub use subnets::{SubnetCreate, SubnetPage, SubnetQuery, SubnetUpdate};
pub use sync::NetworkSync;

use crate::core::error::{Error, Result};
use crate::core::policy::require_project;
use crate::model::{Caller, NetworkQuota};
use crate::store::{Db, Tx};

/// A network quota resource, by Neutron's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaResource {
    Network,
    Subnet,
    Port,
    Router,
    FloatingIp,
    SecurityGroup,
    SecurityGroupRule,
}

impl QuotaResource {
    pub const ALL: [QuotaResource; 7] = [
        QuotaResource::Network,
        QuotaResource::Subnet,
        QuotaResource::Port,
        QuotaResource::Router,
        QuotaResource::FloatingIp,
        QuotaResource::SecurityGroup,
        QuotaResource::SecurityGroupRule,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuotaResource::Network => "network",
            QuotaResource::Subnet => "subnet",
            QuotaResource::Port => "port",
            QuotaResource::Router => "router",
            QuotaResource::FloatingIp => "floatingip",
            QuotaResource::SecurityGroup => "security_group",
            QuotaResource::SecurityGroupRule => "security_group_rule",
        }
    }

    pub fn from_name(name: &str) -> Option<QuotaResource> {
        QuotaResource::ALL.into_iter().find(|r| r.name() == name)
    }

    fn default_limit(self, defaults: &NetworkQuota) -> i64 {
        match self {
            QuotaResource::Network => defaults.network,
            QuotaResource::Subnet => defaults.subnet,
            QuotaResource::Port => defaults.port,
            QuotaResource::Router => defaults.router,
            QuotaResource::FloatingIp => defaults.floatingip,
            QuotaResource::SecurityGroup => defaults.security_group,
            QuotaResource::SecurityGroupRule => defaults.security_group_rule,
        }
    }

    /// What a project holds of it.
    fn used(self, db: &Db, project_id: &str) -> crate::store::Result<i64> {
        Ok(match self {
            QuotaResource::Network => db.networks_count(project_id)?,
            QuotaResource::Subnet => db.subnets_count(project_id)?,
            QuotaResource::Port => db.ports_count(project_id)?,
            QuotaResource::Router => db.routers_count(project_id)?,
            QuotaResource::FloatingIp => db.floating_ips_count(project_id)?,
            QuotaResource::SecurityGroup => db.security_groups_count(project_id)?,
            QuotaResource::SecurityGroupRule => db.security_group_rules_count(project_id)?,
        })
    }
}

/// Refuses one more `resource` for `project_id` when its quota is used up; runs in the
/// create's own transaction, so parallel creates cannot exceed it together.
pub(crate) fn check_quota(
    tx: &Tx,
    defaults: &NetworkQuota,
    project_id: &str,
    resource: QuotaResource,
) -> Result<()> {
    let limit = tx
        .network_quota_limit(project_id, resource.name())?
        .unwrap_or_else(|| resource.default_limit(defaults));
    if limit >= 0 && resource.used(tx, project_id)? + 1 > limit {
        return Err(Error::OverQuota(format!(
            "Quota exceeded for resources: ['{}'].",
            resource.name()
        )));
    }
    Ok(())
}

/// Whose resources a list shows.
pub(crate) enum ListScope {
    /// Those of one project, or (`None`, administrators) of every project.
    Project(Option<String>),
    /// Nothing: a user asked for another project's.
    Nothing,
}

/// Administrators see the project they ask for (or all); others only their own, and
/// nothing when they ask for another project's — as Neutron filters.
pub(crate) fn list_scope(caller: &Caller, asked: Option<String>) -> Result<ListScope> {
    if caller.is_admin() {
        return Ok(ListScope::Project(asked));
    }
    let own = require_project(caller)?;
    Ok(match asked {
        Some(p) if p != own => ListScope::Nothing,
        _ => ListScope::Project(Some(own.to_string())),
    })
}

/// The project a create is for: the caller's own, or (administrators) the one named by
/// `project_id`/`tenant_id`.
pub(crate) fn owner_project(caller: &Caller, asked: Option<String>) -> Result<String> {
    let own = require_project(caller)?;
    match asked {
        None => Ok(own.to_string()),
        Some(p) if p == own => Ok(p),
        Some(p) if caller.is_admin() => Ok(p),
        Some(_) => Err(Error::BadRequest(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in \
             request requires admin privileges"
                .into(),
        )),
    }
}

/// A name or description as Neutron bounds them.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::BadRequest(format!(
            "Invalid input for {field}. Reason: '{value}' exceeds maximum length of {max}."
        )));
    }
    Ok(())
}

/// Neutron's `limit`: 0 or absent lists everything.
pub(crate) fn page_limit(limit: Option<usize>) -> Option<usize> {
    limit.filter(|l| *l > 0)
}
