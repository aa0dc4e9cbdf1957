//! The scheduler↔agent API: every request and reply that crosses between them, defined
//! once here so both sides (and the sim and real driver sets) speak exactly the same thing.
//!
//! Transport: the agent serves these paths over mutual TLS; the scheduler is the only
//! client (its certificate carries the clientAuth usage, an agent's only serverAuth).
//! Joining is the one call the agent makes to the scheduler, on its public listener,
//! authenticated by the join token because the agent has no certificate yet.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Path of the join call on the scheduler's public listener.
pub const JOIN_PATH: &str = "/agent-join/v1";
/// Path of the agent's status (heartbeat) call: capacity, drivers and inventory.
pub const STATUS_PATH: &str = "/v1/status";
/// `POST` creates and boots a server; `/{id}` `DELETE`s it; `/{id}/action` acts on it;
/// `/{id}/console?length=N` reads its console.
pub const SERVERS_PATH: &str = "/v1/servers";

/// An agent asks to join the cloud under `node_name`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The scheduler's join token (`data-dir/join-token`).
    pub token: String,
    /// The node's name; its certificate is issued for this DNS name.
    pub node_name: String,
    /// Where the scheduler reaches this agent's API, `https://ADDR:PORT`.
    pub agent_url: String,
    /// A PKCS#10 request for the node's certificate; absent when the operator
    /// provides the agent's certificate and CA.
    #[serde(default)]
    pub csr_pem: Option<String>,
}

/// The scheduler's answer to a join.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JoinReply {
    /// The node's certificate (serverAuth, for `node_name`), when a CSR was sent.
    pub certificate_pem: Option<String>,
    /// The CA that signs node certificates and the scheduler's client certificate.
    pub ca_pem: String,
}

/// What an agent reports on every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStatus {
    pub node_name: String,
    /// The availability zone the node belongs to.
    #[serde(default = "default_zone")]
    pub availability_zone: String,
    pub agent_version: String,
    /// When this agent process started: a change tells the scheduler it restarted.
    pub started_at: DateTime<Utc>,
    pub drivers: Drivers,
    pub capacity: Capacity,
    pub inventory: Inventory,
    /// What the node's network side carries.
    #[serde(default)]
    pub network: NetworkInventory,
    /// The node's volume storage; absent from agents without a disk driver.
    #[serde(default)]
    pub storage: Option<StorageStatus>,
}

/// The zone of a node that names none, as in Nova.
pub fn default_zone() -> String {
    "nova".into()
}

/// The driver set a node runs, chosen at start-up from what the node offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Drivers {
    pub vmm: VmmDriver,
    pub network: NetworkDriver,
    pub disk: DiskDriver,
}

impl Drivers {
    /// The simulated driver set: state machines, no root, no VMs.
    pub const SIM: Drivers = Drivers {
        vmm: VmmDriver::Sim,
        network: NetworkDriver::Sim,
        disk: DiskDriver::Sim,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VmmDriver {
    Sim,
    Qemu,
    CloudHypervisor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkDriver {
    Sim,
    Linux,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DiskDriver {
    Sim,
    Files,
    DeviceMapper,
}

/// A node's total capacity, what placement divides among servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// What a node actually runs, as its drivers observe it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Inventory {
    pub servers: Vec<ServerInventory>,
}

/// One VM as the node's VMM sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerInventory {
    pub id: uuid::Uuid,
    pub power_state: PowerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    Running,
    Paused,
    Shutdown,
    Crashed,
}

/// An agent's error reply: a stable code and a message for the operator.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentError {
    pub code: String,
    pub message: String,
}

mod compute;
mod network;
pub mod routes;
mod volumes;
pub use compute::*;
pub use network::*;
pub use volumes::*;
