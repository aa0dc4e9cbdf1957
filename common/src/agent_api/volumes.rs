//! The storage side: volumes (blank, from an image, from a snapshot), their snapshots,
//! growing them, and attaching them to the node's servers.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ImageSpec;

/// `POST` creates a volume; `/{id}` `DELETE`s it; `/{id}/extend`, `/{id}/attach` and
/// `/{id}/detach` act on it.
pub const VOLUMES_PATH: &str = "/v1/volumes";
/// `POST` snapshots a volume; `/{id}` `DELETE`s the snapshot.
pub const VOLUME_SNAPSHOTS_PATH: &str = "/v1/volume-snapshots";

/// What a volume starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VolumeSource {
    Blank,
    /// The image's bytes are written at the start of the volume.
    Image {
        image: ImageSpec,
    },
    /// A copy of a snapshot held on the same node.
    Snapshot {
        snapshot_id: Uuid,
    },
}

/// A volume to make on the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    pub id: Uuid,
    pub size_gb: u64,
    pub source: VolumeSource,
}

/// Grow a volume to `size_gb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeExtend {
    pub size_gb: u64,
}

/// Attach a volume to a server of this node as `device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeAttach {
    pub server_id: Uuid,
    pub device: String,
    pub read_only: bool,
}

/// Detach a volume from a server of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDetach {
    pub server_id: Uuid,
}

/// A snapshot of a volume to make on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    pub id: Uuid,
    pub volume_id: Uuid,
}

/// One attachment as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInventory {
    pub server_id: Uuid,
    pub device: String,
    pub read_only: bool,
}

/// One volume as the node sees it (also the reply to every volume operation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInventory {
    pub id: Uuid,
    pub size_gb: u64,
    #[serde(default)]
    pub attachments: Vec<AttachmentInventory>,
}

/// One snapshot as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInventory {
    pub id: Uuid,
    pub volume_id: Uuid,
    pub size_gb: u64,
}

/// The node's storage: its capacity and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub capacity_gb: u64,
    pub free_gb: u64,
    #[serde(default)]
    pub volumes: Vec<VolumeInventory>,
    #[serde(default)]
    pub snapshots: Vec<SnapshotInventory>,
}
