//! The compute side: create, act on, read the console of and delete servers.

use serde::{Deserialize, Serialize};

use super::PowerState;

/// What a node needs to create a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The server's network interfaces, in the order the guest sees them: one per port
    /// bound to it, each a tap on the port's network (see `NodeNetworkSpec`).
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// Volumes of this node the server has from its start: those it boots from
    /// (`/dev/vda`, in place of the image) and the data volumes of its block device
    /// mapping. Later attachments arrive through the volume API.
    #[serde(default)]
    pub volumes: Vec<VolumeAttachment>,
}

/// A volume attached to a server, as the node is told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeAttachment {
    pub volume_id: uuid::Uuid,
    /// The device name the API reports (`/dev/vda` is the boot volume).
    pub device: String,
    pub read_only: bool,
    #[serde(default)]
    pub limits: super::IoLimits,
}

/// A server's interface: the port it is and the MAC the guest's NIC has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NicSpec {
    pub port_id: String,
    pub mac: String,
}

/// The resources a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlavorSpec {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// Where a node finds a server's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageSpec {
    pub id: String,
    pub disk_format: String,
    pub size: u64,
    /// sha512, hex: the node verifies what it fetched.
    pub os_hash_value: Option<String>,
}

/// An operation on an existing server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerReply {
    pub id: uuid::Uuid,
    pub power_state: PowerState,
    #[serde(default)]
    pub migration_uri: Option<String>,
}

/// The tail of a server's console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsoleReply {
    pub output: String,
}

/// `GET /v1/images/{id}` tells whether the node has an image (404 when it lacks it);
/// `PUT /v1/images/{id}?disk_format=…&sha512=…` streams it there (the body is the data).
pub const IMAGES_PATH: &str = "/v1/images";

/// The query of an image push: what the node checks the data against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagePush {
    pub disk_format: String,
    /// sha512 (hex) of the data; the node refuses data that does not match.
    #[serde(default)]
    pub sha512: Option<String>,
}

/// `POST /v1/servers/{id}/snapshot` copies the server's root disk (consistently: a
/// running VM is paused for the copy) into a self-contained qcow2 the scheduler then
/// `GET`s from `/v1/snapshots/{name}` and `DELETE`s.
pub const DISK_COPIES_PATH: &str = "/v1/snapshots";

/// A snapshot of a server's disk, ready to be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotReply {
    pub name: String,
    pub disk_format: String,
    pub size: u64,
}

/// An image the node has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageOnNode {
    pub id: String,
    /// Bytes stored (the sim set, which keeps no images, says `None`).
    pub size: Option<u64>,
}
