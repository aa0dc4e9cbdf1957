//! Block storage (Cinder v3, clauses B.1.3.2 and B.4.1): volume types, volumes on the
//! nodes' disks, attaching them to servers (shared by Nova's `os-volume_attachments`
//! and Cinder's `os-attach`), snapshots, quotas and capacity.
//!
//! Like servers, an operation is accepted in one transaction — policy, state, quota,
//! placement, the new status — and answered at once; a background task then drives the
//! volume's node and records what it observed. Every failure puts the volume back in a
//! state it can leave (never stuck in `attaching` or `detaching`) and gives back the
//! quota of what was not made.

mod attach;
mod boot;
mod lifecycle;
mod migrate;
mod quotas;
mod recover;
mod snapshots;
mod types;

pub use attach::AttachRequest;
pub(crate) use boot::boot_volume_host;
pub use lifecycle::{VolumeAction, VolumeCreate, VolumeListQuery, VolumePage, VolumeUpdate};
pub(crate) use migrate::volumes_movable;
pub use quotas::{VolumeLimits, VolumePool, VolumeQuotaSet};
pub use snapshots::SnapshotCreate;
pub use types::VolumeTypeCreate;

use uuid::Uuid;

use crate::core::error::{Error, Result};
use crate::model::{VolumeQuota, VolumeUsage};

/// Cinder's message for an id that names no volume the caller may see.
fn volume_missing(id: &str) -> Error {
    Error::NotFound(format!("Volume {id} could not be found."))
}

fn parse_volume_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| volume_missing(id))
}

/// Checks `usage + extra` against `quota` as Cinder words it, naming the resource.
fn check_quota(quota: &VolumeQuota, usage: &VolumeUsage, extra: &VolumeUsage) -> Result<()> {
    for (name, limit, used, want) in [
        ("volumes", quota.volumes, usage.volumes, extra.volumes),
        (
            "snapshots",
            quota.snapshots,
            usage.snapshots,
            extra.snapshots,
        ),
        (
            "gigabytes",
            quota.gigabytes,
            usage.gigabytes,
            extra.gigabytes,
        ),
    ] {
        if want > 0 && limit >= 0 && used + want > limit {
            return Err(Error::OverQuota(format!(
                "VolumeLimitExceeded: Maximum number of {name} allowed ({limit}) exceeded for \
                 quota '{name}': requested {want}, already used {used}. Delete volumes or \
                 snapshots, or ask an administrator to raise the quota."
            )));
        }
    }
    Ok(())
}

/// The per-volume size limit.
fn check_volume_size(quota: &VolumeQuota, size_gb: i64) -> Result<()> {
    if quota.per_volume_gigabytes >= 0 && size_gb > quota.per_volume_gigabytes {
        return Err(Error::OverQuota(format!(
            "Requested volume size {size_gb}G is larger than maximum allowed limit {}G.",
            quota.per_volume_gigabytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_names_the_resource_over_its_limit() {
        let quota = VolumeQuota {
            volumes: 2,
            snapshots: 1,
            gigabytes: 10,
            per_volume_gigabytes: 5,
        };
        let used = VolumeUsage {
            volumes: 1,
            snapshots: 0,
            gigabytes: 8,
        };
        let err = check_quota(
            &quota,
            &used,
            &VolumeUsage {
                volumes: 1,
                snapshots: 0,
                gigabytes: 3,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("quota 'gigabytes'"), "{err}");
        assert!(matches!(
            check_volume_size(&quota, 6),
            Err(Error::OverQuota(_))
        ));
        assert!(check_volume_size(&quota, 5).is_ok());
    }
}
