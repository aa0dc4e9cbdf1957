//! Compute (Nova): flavors, key pairs, quotas and limits, hosts and zones, servers and
//! their placement on nodes.

mod flavors;
mod hosts;
mod instance_actions;
mod keypairs;
mod migrations;
mod quotas;
mod server_groups;
pub mod server_tags;
pub mod servers;
pub mod usage;

pub use flavors::{FlavorCreate, FlavorPage, FlavorQuery, MAX_PAGE, PublicFilter};
pub use hosts::{
    AvailabilityZone, ComputeService, HostAggregate, Hypervisor, HypervisorStatistics,
};
pub use instance_actions::Requester;
pub use keypairs::{KeyPairCreate, KeyPairCreated};
pub use quotas::{Limits, QuotaDetail, QuotaSet};
