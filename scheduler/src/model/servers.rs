//! Servers: their desired and observed state, as Nova shows it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Flavor;

/// Nova's vm_state: where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmState {
    Building,
    Active,
    Stopped,
    Resized,
    Error,
    Deleted,
}

/// Nova's task_state: what is being done to the server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Scheduling,
    Spawning,
    PoweringOff,
    PoweringOn,
    Rebooting,
    RebootingHard,
    ResizePrep,
    ResizeReverting,
    ResizeConfirming,
    Migrating,
    ImageSnapshot,
    Deleting,
}

macro_rules! names {
    ($ty:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<$ty> {
                match s { $($s => Some(<$ty>::$v),)* _ => None }
            }
        }
    };
}

names!(VmState {
    Building = "building",
    Active = "active",
    Stopped = "stopped",
    Resized = "resized",
    Error = "error",
    Deleted = "deleted",
});

names!(TaskState {
    Scheduling = "scheduling",
    Spawning = "spawning",
    PoweringOff = "powering-off",
    PoweringOn = "powering-on",
    Rebooting = "rebooting",
    RebootingHard = "rebooting_hard",
    ResizePrep = "resize_prep",
    ResizeReverting = "resize_reverting",
    ResizeConfirming = "resize_confirming",
    Migrating = "migrating",
    ImageSnapshot = "image_snapshot",
    Deleting = "deleting",
});

/// Nova's power_state numbers.
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
}

/// Why a server is in ERROR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: Uuid,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub flavor: Flavor,
    /// The flavor before an unconfirmed resize.
    pub old_flavor: Option<Flavor>,
    pub image_id: Option<String>,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power_state: i64,
    /// The node it runs on.
    pub host: Option<String>,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Tags (compute 2.26), in the order they were first given, without repeats.
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// `networks` as requested (the network service acts on it).
    pub networks: Value,
    pub block_devices: Value,
    pub security_groups: Vec<String>,
    pub fault: Option<Fault>,
    /// Holds quota (a failed build gives it back).
    pub counted: bool,
    /// Locked by an administrator: only admins may act on it.
    pub locked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Server {
    /// The status the API shows, derived as Nova derives it.
    pub fn status(&self) -> &'static str {
        match (self.vm_state, self.task_state) {
            (VmState::Building, _) => "BUILD",
            (VmState::Deleted, _) => "DELETED",
            (VmState::Error, _) => "ERROR",
            (VmState::Resized, Some(TaskState::ResizeReverting)) => "REVERT_RESIZE",
            (VmState::Resized, _) => "VERIFY_RESIZE",
            (_, Some(TaskState::Rebooting)) => "REBOOT",
            (_, Some(TaskState::RebootingHard)) => "HARD_REBOOT",
            (_, Some(TaskState::ResizePrep)) => "RESIZE",
            (_, Some(TaskState::Migrating)) => "MIGRATING",
            (VmState::Active, _) => "ACTIVE",
            (VmState::Stopped, _) => "SHUTOFF",
        }
    }

    /// The vm_states a status filter matches.
    pub fn vm_states_for_status(status: &str) -> Vec<VmState> {
        match status.to_ascii_uppercase().as_str() {
            "BUILD" => vec![VmState::Building],
            "ACTIVE" | "REBOOT" | "HARD_REBOOT" | "MIGRATING" | "RESIZE" => vec![VmState::Active],
            "SHUTOFF" => vec![VmState::Stopped],
            "VERIFY_RESIZE" | "REVERT_RESIZE" => vec![VmState::Resized],
            "ERROR" => vec![VmState::Error],
            "DELETED" => vec![VmState::Deleted],
            _ => vec![],
        }
    }
}

/// Which servers to list.
#[derive(Debug, Clone, Default)]
pub struct ServerFilter {
    /// `None`: every project (admins with `all_tenants`).
    pub project_id: Option<String>,
    /// A regular expression the name must contain a match of (Nova's filter).
    pub name: Option<String>,
    pub vm_states: Option<Vec<VmState>>,
    pub flavor_id: Option<String>,
    pub image_id: Option<String>,
    pub host: Option<String>,
    /// Nova's tag filters (2.26): servers with all of `tags`, with any of `tags_any`,
    /// without all of `not_tags`, without any of `not_tags_any`.
    pub tags: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags: Vec<String>,
    pub not_tags_any: Vec<String>,
    /// Also deleted servers changed since then.
    pub changes_since: Option<DateTime<Utc>>,
    /// Start after this server (its `created_at`, `id`).
    pub marker: Option<(DateTime<Utc>, Uuid)>,
    pub limit: usize,
}

/// One thing done to a server (`os-instance-actions`), with its one event.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceAction {
    pub server_id: Uuid,
    pub request_id: String,
    /// Nova's action name: `create`, `stop`, `reboot`, `live-migration`, …
    pub action: String,
    /// Nova's event name: `compute__do_build_and_run_instance`, `compute_stop_instance`, …
    pub event: String,
    pub user_id: String,
    pub project_id: String,
    pub start_time: DateTime<Utc>,
    pub finish_time: Option<DateTime<Utc>>,
    /// `Success` or `Error` once finished.
    pub result: Option<String>,
    /// Why it failed, for administrators (Nova's `traceback`).
    pub message: Option<String>,
}

/// A live migration or resize of a server (`os-migrations`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMigration {
    pub id: i64,
    pub server_id: Uuid,
    /// `live-migration` or `resize`.
    pub kind: String,
    pub source_node: String,
    pub dest_node: String,
    /// Live: `running` → `completed` | `failed`. Resize: `migrating` → `finished` →
    /// `confirmed` | `reverted`, or `error`.
    pub status: String,
    /// Nova's integer ids of the flavors (the flavors' creation order).
    pub old_flavor_seq: Option<i64>,
    pub new_flavor_seq: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServerMigration {
    /// Whether it is still under way.
    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "running" | "migrating")
    }
}

/// What `GET /os-migrations` filters on.
#[derive(Debug, Clone, Default)]
pub struct MigrationFilter {
    pub server_id: Option<String>,
    pub status: Option<String>,
    /// Source or destination node.
    pub host: Option<String>,
    pub kind: Option<String>,
}
