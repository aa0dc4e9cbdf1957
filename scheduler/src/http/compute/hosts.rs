//! Nova 2.1 hosts (clauses B.1.2, B.1.3.1): `os-hypervisors` (with the data centre's
//! statistics), `os-services`, `os-availability-zone`, and the (empty) `os-aggregates`.

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::ComputeRequest;
use crate::core::Core;
use crate::core::compute::{ComputeService, Hypervisor};
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiResult, json_response};

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { req, path, mv } = creq;
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (&req.method, p.as_slice()) {
        (&M::GET, ["os-hypervisors"]) => {
            let list: Vec<Value> = core
                .hypervisors(&caller)
                .await?
                .iter()
                .map(summary)
                .collect();
            Ok(ok(json!({"hypervisors": list})))
        }
        (&M::GET, ["os-hypervisors", "detail"]) => {
            let list: Vec<Value> = core
                .hypervisors(&caller)
                .await?
                .iter()
                .map(detail)
                .collect();
            Ok(ok(json!({"hypervisors": list})))
        }
        (&M::GET, ["os-hypervisors", "statistics"]) => {
            let s = core.hypervisor_statistics(&caller).await?;
            Ok(ok(json!({"hypervisor_statistics": {
                "count": s.count,
                "vcpus": s.vcpus,
                "memory_mb": s.memory_mb,
                "local_gb": s.local_gb,
                "vcpus_used": s.vcpus_used,
                "memory_mb_used": s.memory_mb_used,
                "local_gb_used": s.local_gb_used,
                "free_ram_mb": s.free_ram_mb,
                "free_disk_gb": s.free_disk_gb,
                "running_vms": s.running_vms,
                "current_workload": s.current_workload,
                "disk_available_least": s.disk_available_least,
            }})))
        }
        (&M::GET, ["os-hypervisors", id]) => {
            let h = core.hypervisor_get(&caller, id).await?;
            Ok(ok(json!({"hypervisor": detail(&h)})))
        }
        (&M::GET, ["os-hypervisors", pattern, "search"]) => {
            let list: Vec<Value> = core
                .hypervisors_search(&caller, pattern)
                .await?
                .iter()
                .map(summary)
                .collect();
            Ok(ok(json!({"hypervisors": list})))
        }
        (&M::GET, ["os-hypervisors", id, "uptime"]) => {
            let h = core.hypervisor_get(&caller, id).await?;
            Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "node {} does not report its uptime; its state ({}) is in GET /os-hypervisors/{id}",
                    h.node.name,
                    state(h.up())
                ),
            ))
        }
        (&M::GET, ["os-aggregates"]) => {
            let list: Vec<Value> = core
                .host_aggregates(&caller)
                .await?
                .iter()
                .map(|a| {
                    json!({
                        "id": a.id,
                        "name": a.name,
                        "availability_zone": a.availability_zone,
                        "hosts": a.hosts,
                        "metadata": {},
                        "created_at": null,
                        "updated_at": null,
                        "deleted_at": null,
                        "deleted": false,
                    })
                })
                .collect();
            Ok(ok(json!({"aggregates": list})))
        }
        (&M::GET, ["os-services"]) => {
            let host = req.query_param("host");
            let binary = req.query_param("binary");
            let list: Vec<Value> = core
                .compute_services(&caller, host.as_deref(), binary.as_deref())
                .await?
                .iter()
                .map(|s| service(s, mv))
                .collect();
            Ok(ok(json!({"services": list})))
        }
        (&M::GET, ["os-availability-zone"]) => zones(core, &caller, false).await,
        (&M::GET, ["os-availability-zone", "detail"]) => zones(core, &caller, true).await,
        _ => Err(ApiError::not_found(format!(
            "{} is not offered; see Nova's os-hypervisors, os-services and os-availability-zone APIs",
            req.path
        ))),
    }
}

fn ok(body: Value) -> crate::http::Response {
    json_response(StatusCode::OK, &body)
}

/// Nova's time format in these views (no zone suffix).
fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
    })
}

fn state(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

fn summary(h: &Hypervisor) -> Value {
    json!({
        "id": h.id,
        "hypervisor_hostname": h.node.name,
        "state": state(h.up()),
        "status": "enabled",
    })
}

/// Nova 2.1's hypervisor detail: exactly these keys.
fn detail(h: &Hypervisor) -> Value {
    let kind = h.kind();
    json!({
        "id": h.id,
        "hypervisor_hostname": h.node.name,
        "state": state(h.up()),
        "status": "enabled",
        "vcpus": h.capacity.vcpus,
        "memory_mb": h.capacity.memory_mb,
        "local_gb": h.capacity.disk_gb,
        "vcpus_used": h.used.vcpus,
        "memory_mb_used": h.used.ram_mb,
        "local_gb_used": h.used.disk_gb,
        "free_ram_mb": h.free_ram_mb(),
        "free_disk_gb": h.free_disk_gb(),
        "running_vms": h.used.servers,
        "current_workload": 0,
        "disk_available_least": h.free_disk_gb(),
        "hypervisor_type": kind,
        // Nova's fake driver reports 1000; real drivers' versions are not reported yet.
        "hypervisor_version": if kind == "fake" { 1000 } else { 0 },
        "host_ip": h.host_ip(),
        "service": {"host": h.node.name, "id": h.service_id, "disabled_reason": null},
        "cpu_info": "{}",
    })
}

/// A service as Nova shows it (`forced_down` from 2.11).
fn service(s: &ComputeService, mv: Microversion) -> Value {
    let mut view = json!({
        "id": s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": "enabled",
        "state": state(s.up),
        "updated_at": time(s.updated_at),
        "disabled_reason": null,
    });
    if mv.at_least(2, 11) {
        view["forced_down"] = json!(false);
    }
    view
}

async fn zones(core: &Core, caller: &crate::model::Caller, detail: bool) -> ApiResult {
    let zones = core.availability_zones(caller, detail).await?;
    let items: Vec<Value> = zones
        .iter()
        .map(|z| {
            let hosts = z.hosts.as_ref().map_or(Value::Null, |hosts| {
                let map: Map<String, Value> = hosts
                    .iter()
                    .map(|(host, services)| {
                        let per: Map<String, Value> = services
                            .iter()
                            .map(|s| {
                                (
                                    s.binary.to_string(),
                                    json!({
                                        "available": s.up,
                                        "active": true,
                                        "updated_at": time(s.updated_at),
                                    }),
                                )
                            })
                            .collect();
                        (host.clone(), Value::Object(per))
                    })
                    .collect();
                Value::Object(map)
            });
            json!({
                "zoneName": z.name,
                "zoneState": {"available": z.available},
                "hosts": hosts,
            })
        })
        .collect();
    Ok(ok(json!({"availabilityZoneInfo": items})))
}
