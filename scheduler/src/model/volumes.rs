//! Block storage (Cinder): volume types, volumes, their attachments and snapshots, and
//! the volume service's configuration.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

/// Cinder's volume and snapshot statuses.
pub mod volume_status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const RESERVED: &str = "reserved";
    pub const ATTACHING: &str = "attaching";
    pub const IN_USE: &str = "in-use";
    pub const DETACHING: &str = "detaching";
    pub const EXTENDING: &str = "extending";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const ERROR_EXTENDING: &str = "error_extending";
    /// What `os-reset_status` may set, as Cinder allows.
    pub const RESETTABLE: &[&str] = &[
        AVAILABLE,
        ERROR,
        CREATING,
        DELETING,
        IN_USE,
        ATTACHING,
        DETACHING,
        ERROR_DELETING,
        ERROR_EXTENDING,
        RESERVED,
        EXTENDING,
        "maintenance",
    ];
}

/// A volume type: a class of storage (`SATA`, `SSD`) with driver settings.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
}

/// One attachment of a volume to a server.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeAttachment {
    pub id: Uuid,
    pub volume_id: Uuid,
    pub server_id: Uuid,
    pub device: String,
    /// `rw` or `ro`.
    pub mode: String,
    /// The node the server runs on.
    pub host_name: Option<String>,
    /// `attaching`, `attached` or `detaching`.
    pub status: String,
    pub attached_at: Option<DateTime<Utc>>,
    /// Deleted with the server (boot from volume asked for it).
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub id: Uuid,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size_gb: i64,
    pub status: String,
    pub type_id: String,
    /// The type's name, which the API shows as `volume_type`.
    pub type_name: String,
    pub availability_zone: String,
    /// The node the volume lives on, once placed.
    pub host: Option<String>,
    pub multiattach: bool,
    pub bootable: bool,
    pub read_only: bool,
    pub metadata: BTreeMap<String, String>,
    pub image_id: Option<String>,
    pub snapshot_id: Option<Uuid>,
    /// Whether it counts against the project's quota (an errored build gives it back).
    pub counted: bool,
    pub attachments: Vec<VolumeAttachment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSnapshot {
    pub id: Uuid,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: Uuid,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size_gb: i64,
    pub status: String,
    pub metadata: BTreeMap<String, String>,
    pub counted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a project's volumes and snapshots use against its quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeUsage {
    pub volumes: i64,
    pub snapshots: i64,
    /// Volumes' and snapshots' sizes together, as Cinder counts `gigabytes`.
    pub gigabytes: i64,
}

/// Which volumes to list; sorting and paging are the store's too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeFilter {
    /// `None`: every project (administrators with `all_tenants`).
    pub project_id: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub availability_zone: Option<String>,
    pub bootable: Option<bool>,
    pub type_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// The volume service's settings (`[volume]` in the configuration file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeConfig {
    /// The type of a volume created without one (Cinder's `default_volume_type`).
    pub default_type: String,
    /// Quotas of a project that has none set (-1: unlimited).
    pub default_quota: VolumeQuota,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            default_type: "SATA".into(),
            default_quota: VolumeQuota::default(),
        }
    }
}

/// A project's enforced volume limits; -1 is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeQuota {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    /// The largest single volume.
    pub per_volume_gigabytes: i64,
}

impl Default for VolumeQuota {
    fn default() -> Self {
        // Cinder's defaults.
        VolumeQuota {
            volumes: 10,
            snapshots: 10,
            gigabytes: 1000,
            per_volume_gigabytes: -1,
        }
    }
}
