//! Limits, quota sets, storage pools, availability zones and extensions.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::VolumeRequest;
use super::volumes::pool_name;
use crate::core::Core;
use crate::http::{ApiError, ApiResult, empty, json_response};

pub async fn route(core: &Core, vreq: VolumeRequest) -> ApiResult {
    use Method as M;
    let VolumeRequest {
        mut req,
        caller,
        mv: _,
        path,
    } = vreq;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let caller = &caller;
    let method = req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["limits"]) => {
            let limits = core.volume_limits(caller).await?;
            let q = |k: &str| limits.quota.get(k).copied().unwrap_or(-1);
            Ok(json_response(
                StatusCode::OK,
                &json!({"limits": {"rate": [], "absolute": {
                    "maxTotalVolumes": q("volumes"),
                    "maxTotalSnapshots": q("snapshots"),
                    "maxTotalVolumeGigabytes": q("gigabytes"),
                    "maxTotalBackups": q("backups"),
                    "maxTotalBackupGigabytes": q("backup_gigabytes"),
                    "totalVolumesUsed": limits.usage.volumes,
                    "totalSnapshotsUsed": limits.usage.snapshots,
                    "totalGigabytesUsed": limits.usage.gigabytes,
                    "totalBackupsUsed": 0,
                    "totalBackupGigabytesUsed": 0,
                }}}),
            ))
        }
        (&M::GET, ["os-quota-sets", project, "defaults"]) => {
            let mut set = json!(core.volume_quota_defaults());
            set["id"] = json!(project);
            Ok(json_response(StatusCode::OK, &json!({"quota_set": set})))
        }
        (&M::GET, ["os-quota-sets", project]) => {
            let (quota, used) = core.volume_quota_show(caller, project).await?;
            let mut set = if req.query_flag("usage") {
                json!(quota
                    .iter()
                    .map(|(k, limit)| {
                        let in_use = used.get(k).copied().unwrap_or(0);
                        (k.clone(), json!({"limit": limit, "in_use": in_use, "reserved": 0, "allocated": 0}))
                    })
                    .collect::<BTreeMap<_, _>>())
            } else {
                json!(quota)
            };
            set["id"] = json!(project);
            Ok(json_response(StatusCode::OK, &json!({"quota_set": set})))
        }
        (&M::PUT, ["os-quota-sets", project]) => {
            let body: Value = req.json().await?;
            let Some(obj) = body.get("quota_set").and_then(Value::as_object) else {
                return Err(ApiError::bad_request(
                    "the body must be {\"quota_set\": {\"volumes\": N, \"gigabytes\": N, …}}",
                ));
            };
            let mut changes = BTreeMap::new();
            for (k, v) in obj {
                if k == "id" || k == "tenant_id" {
                    continue;
                }
                let limit = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input received: Quota limit for {k} must be an integer"
                    ))
                })?;
                changes.insert(k.clone(), limit);
            }
            let set = core.volume_quota_update(caller, project, changes).await?;
            Ok(json_response(StatusCode::OK, &json!({"quota_set": set})))
        }
        (&M::DELETE, ["os-quota-sets", project]) => {
            core.volume_quota_delete(caller, project).await?;
            Ok(empty(StatusCode::OK))
        }
        (&M::GET, ["scheduler-stats", "get_pools"]) => {
            let pools = core.volume_pools(caller).await?;
            let detail = req.query_flag("detail");
            let items: Vec<Value> = pools
                .iter()
                .map(|p| {
                    let name = pool_name(&p.node);
                    if !detail {
                        return json!({"name": name});
                    }
                    json!({"name": name, "capabilities": {
                        "pool_name": "sim",
                        "volume_backend_name": "sim",
                        "vendor_name": "yunji",
                        "driver_version": env!("CARGO_PKG_VERSION"),
                        "storage_protocol": "local",
                        "total_capacity_gb": p.total_gb,
                        "free_capacity_gb": p.free_gb,
                        "allocated_capacity_gb": p.allocated_gb,
                        "reserved_percentage": 0,
                        "thin_provisioning_support": false,
                        "QoS_support": false,
                        "multiattach": true,
                        "backend_state": if p.up { "up" } else { "down" },
                        "timestamp": null,
                    }})
                })
                .collect();
            Ok(json_response(StatusCode::OK, &json!({"pools": items})))
        }
        (&M::GET, ["os-availability-zone"]) => {
            let zones = core.volume_zones(caller).await?;
            let items: Vec<Value> = zones
                .iter()
                .map(|(name, up)| json!({"zoneName": name, "zoneState": {"available": up}}))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"availabilityZoneInfo": items}),
            ))
        }
        (&M::GET, ["extensions"]) => Ok(json_response(StatusCode::OK, &json!({"extensions": []}))),
        _ => Err(ApiError::unrouted(&req)),
    }
}
