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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinReply {
    /// The node's certificate (serverAuth, for `node_name`), when a CSR was sent.
    pub certificate_pem: Option<String>,
    /// The CA that signs node certificates and the scheduler's client certificate.
    pub ca_pem: String,
}

/// What an agent reports on every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// The zone of a node that names none, as in Nova.
pub fn default_zone() -> String {
    "nova".into()
}

/// The driver set a node runs, chosen at start-up from what the node offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VmmDriver {
    Sim,
    Qemu,
    CloudHypervisor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkDriver {
    Sim,
    Linux,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskDriver {
    Sim,
    Files,
    DeviceMapper,
}

/// A node's total capacity, what placement divides among servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// What a node actually runs, as its drivers observe it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub servers: Vec<ServerInventory>,
}

/// One VM as the node's VMM sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInventory {
    pub id: uuid::Uuid,
    pub power_state: PowerState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    Running,
    Paused,
    Shutdown,
    Crashed,
}

/// An agent's error reply: a stable code and a message for the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentError {
    pub code: String,
    pub message: String,
}

/// What a node needs to create a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub id: uuid::Uuid,
    pub name: String,
    /// Host name the guest is given (derived from the name).
    pub hostname: String,
    pub project_id: String,
    pub flavor: FlavorSpec,
    /// The image to boot from; `None` when booting from a volume.
    pub image: Option<ImageSpec>,
    /// Base64, as the API received it.
    pub user_data: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The public key of the server's key pair, for the config drive.
    pub public_key: Option<String>,
}

/// The resources a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlavorSpec {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// Where a node finds a server's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub id: String,
    pub disk_format: String,
    pub size: u64,
    /// sha512, hex: the node verifies what it fetched.
    pub os_hash_value: Option<String>,
}

/// An operation on an existing server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerAction {
    Start,
    /// Ask the guest to power down; force it off after `timeout_secs`.
    Stop {
        timeout_secs: u64,
    },
    Reboot {
        hard: bool,
    },
    /// Cold resize in place; the node keeps what it needs to revert.
    Resize {
        flavor: FlavorSpec,
    },
    ConfirmResize,
    RevertResize,
    /// On the target node: get ready to receive the server; replies with the
    /// migration address in `ServerReply::migration_uri`.
    PrepareIncoming {
        spec: Box<ServerSpec>,
    },
    /// On the source node: send the running server to `uri`; the server keeps running
    /// here if it fails.
    MigrateOut {
        uri: String,
    },
    /// On the target node: the migration completed; the server runs here now.
    FinishIncoming,
    /// On the target node: the migration failed; forget the prepared server.
    AbortIncoming,
}

impl ServerAction {
    /// The operation's name, for logs and sim fault injection.
    pub fn name(&self) -> &'static str {
        match self {
            ServerAction::Start => "start",
            ServerAction::Stop { .. } => "stop",
            ServerAction::Reboot { .. } => "reboot",
            ServerAction::Resize { .. } => "resize",
            ServerAction::ConfirmResize => "confirm_resize",
            ServerAction::RevertResize => "revert_resize",
            ServerAction::PrepareIncoming { .. } => "prepare_incoming",
            ServerAction::MigrateOut { .. } => "migrate_out",
            ServerAction::FinishIncoming => "finish_incoming",
            ServerAction::AbortIncoming => "abort_incoming",
        }
    }
}

/// A node's answer about one server after an operation: what it observes now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerReply {
    pub id: uuid::Uuid,
    pub power_state: PowerState,
    #[serde(default)]
    pub migration_uri: Option<String>,
}

/// The tail of a server's console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleReply {
    pub output: String,
}
