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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    pub id: Uuid,
    pub size_gb: u64,
    pub source: VolumeSource,
    /// Several servers may have it attached at once (Cinder's `multiattach`): the node
    /// keeps it in a format two VMs can write together (raw) and lets them share it.
    #[serde(default)]
    pub shared: bool,
}

/// Grow a volume to `size_gb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeExtend {
    pub size_gb: u64,
}

/// Attach a volume to a server of this node as `device`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeAttach {
    pub server_id: Uuid,
    pub device: String,
    pub read_only: bool,
    /// The volume type's I/O limits.
    #[serde(default)]
    pub limits: IoLimits,
}

/// I/O limits of a volume in a VM, from its volume type's `disk:*` extra specs (the
/// names of Nova's `quota:disk_*` flavor keys). 0 is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IoLimits {
    pub total_bytes_sec: u64,
    pub read_bytes_sec: u64,
    pub write_bytes_sec: u64,
    pub total_iops_sec: u64,
    pub read_iops_sec: u64,
    pub write_iops_sec: u64,
}

impl IoLimits {
    /// The limits a volume type's extra specs set (`disk:write_bytes_sec`, …); keys
    /// that are not numbers set none.
    pub fn from_extra_specs<'a>(specs: impl IntoIterator<Item = (&'a str, &'a str)>) -> IoLimits {
        let mut limits = IoLimits::default();
        for (key, value) in specs {
            let Ok(value) = value.trim().parse::<u64>() else {
                continue;
            };
            let field = match key.strip_prefix("disk:") {
                Some("total_bytes_sec") => &mut limits.total_bytes_sec,
                Some("read_bytes_sec") => &mut limits.read_bytes_sec,
                Some("write_bytes_sec") => &mut limits.write_bytes_sec,
                Some("total_iops_sec") => &mut limits.total_iops_sec,
                Some("read_iops_sec") => &mut limits.read_iops_sec,
                Some("write_iops_sec") => &mut limits.write_iops_sec,
                _ => continue,
            };
            *field = value;
        }
        limits
    }

    pub fn is_unlimited(&self) -> bool {
        *self == IoLimits::default()
    }
}

/// Detach a volume from a server of this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeDetach {
    pub server_id: Uuid,
}

/// A snapshot of a volume to make on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    pub id: Uuid,
    pub volume_id: Uuid,
}

/// One attachment as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachmentInventory {
    pub server_id: Uuid,
    pub device: String,
    pub read_only: bool,
}

/// One volume as the node sees it (also the reply to every volume operation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolumeInventory {
    pub id: Uuid,
    pub size_gb: u64,
    #[serde(default)]
    pub attachments: Vec<AttachmentInventory>,
}

/// One snapshot as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotInventory {
    pub id: Uuid,
    pub volume_id: Uuid,
    pub size_gb: u64,
}

/// The node's storage: its capacity and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageStatus {
    pub capacity_gb: u64,
    pub free_gb: u64,
    #[serde(default)]
    pub volumes: Vec<VolumeInventory>,
    #[serde(default)]
    pub snapshots: Vec<SnapshotInventory>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_limits_come_from_the_disk_keys_of_a_types_extra_specs() {
        let specs = [
            ("volume_backend_name", "sata"),
            ("disk:read_bytes_sec", "209715200"),
            ("disk:write_bytes_sec", " 104857600 "),
            ("disk:total_iops_sec", "lots"),
            ("quota:disk_write_iops_sec", "5"),
        ];
        let limits = IoLimits::from_extra_specs(specs);
        assert_eq!(
            limits,
            IoLimits {
                read_bytes_sec: 209_715_200,
                write_bytes_sec: 104_857_600,
                ..IoLimits::default()
            }
        );
        assert!(!limits.is_unlimited());
        assert!(IoLimits::from_extra_specs([]).is_unlimited());
    }
}
