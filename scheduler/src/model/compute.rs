//! Compute (Nova): flavors, key pairs, servers, quotas.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A flavor: the size of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u64,
    pub disk_gb: u64,
    pub ephemeral_gb: u64,
    pub swap_mb: u64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
}

/// Which flavors to list, as Nova filters them; paging happens above the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlavorFilter {
    pub min_ram_mb: Option<u64>,
    pub min_disk_gb: Option<u64>,
    /// `Some(true)`: public flavors, and the private ones `project_id` may use;
    /// `Some(false)`: private flavors only; `None`: every flavor.
    pub is_public: Option<bool>,
    pub project_id: Option<String>,
    pub sort: FlavorSort,
    pub descending: bool,
}

/// What a flavor list is ordered by (Nova's `sort_key`); ties go by creation order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlavorSort {
    /// Creation order (Nova's `id` and `created_at`).
    Created,
    /// The flavor's id (Nova's default, `flavorid`).
    #[default]
    FlavorId,
    Name,
    Vcpus,
    RamMb,
    DiskGb,
    EphemeralGb,
    SwapMb,
    RxtxFactor,
    IsPublic,
    Disabled,
    Description,
}

/// An SSH key pair, owned by a user.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPair {
    /// Nova's integer id, shown by `GET /os-keypairs/{name}`.
    pub id: i64,
    pub name: String,
    pub user_id: String,
    pub public_key: String,
    pub fingerprint: String,
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

/// A project's compute limits; -1 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeQuota {
    pub instances: i64,
    pub cores: i64,
    pub ram_mb: i64,
    pub key_pairs: i64,
    pub metadata_items: i64,
}

/// What a project's servers use now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComputeUsage {
    pub instances: i64,
    pub cores: i64,
    pub ram_mb: i64,
}

/// What the servers placed on one node hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocation {
    pub servers: i64,
    pub vcpus: i64,
    pub ram_mb: i64,
    pub disk_gb: i64,
}

impl Allocation {
    /// What remains of a node's `capacity` beside this: (vCPUs, RAM MiB, disk GiB),
    /// negative when overcommitted. Placement and the hypervisor views both use it.
    pub fn free_of(&self, capacity: &yunji_common::agent_api::Capacity) -> (i64, i64, i64) {
        (
            i64::from(capacity.vcpus) - self.vcpus,
            capacity.memory_mb as i64 - self.ram_mb,
            capacity.disk_gb as i64 - self.disk_gb,
        )
    }
}

/// Where a server group's servers run relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    Affinity,
    AntiAffinity,
    SoftAffinity,
    SoftAntiAffinity,
}

impl GroupPolicy {
    pub const ALL: [GroupPolicy; 4] = [
        GroupPolicy::Affinity,
        GroupPolicy::AntiAffinity,
        GroupPolicy::SoftAffinity,
        GroupPolicy::SoftAntiAffinity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupPolicy::Affinity => "affinity",
            GroupPolicy::AntiAffinity => "anti-affinity",
            GroupPolicy::SoftAffinity => "soft-affinity",
            GroupPolicy::SoftAntiAffinity => "soft-anti-affinity",
        }
    }

    pub fn parse(s: &str) -> Option<GroupPolicy> {
        GroupPolicy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A server group (`os-server-groups`) with its live members.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: GroupPolicy,
    pub members: Vec<String>,
    pub created_at: DateTime<Utc>,
}
