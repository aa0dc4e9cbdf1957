//! Nova hosts (clauses B.1.2, B.1.3.1): `os-hypervisors` (with the data centre's
//! statistics; paged from 2.33, UUIDs from 2.53), `os-services`, `os-availability-zone`,
//! and the (empty) `os-aggregates`.

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ComputeRequest, next_links, parse_bool};
use crate::core::Core;
use crate::core::compute::{ComputeService, Hypervisor};
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiRequest, ApiResult, json_response};
use crate::model::Caller;
use std::collections::HashMap;

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { req, path, mv } = creq;
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match (&req.method, p.as_slice()) {
        (&M::GET, ["os-hypervisors"]) => hypervisors(core, &req, &caller, mv, false).await,
        (&M::GET, ["os-hypervisors", "detail"]) => hypervisors(core, &req, &caller, mv, true).await,
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
            let h = core.hypervisor_get(&caller, id, mv.at_least(2, 53)).await?;
            let servers = with_servers(core, &req, &caller, mv, std::slice::from_ref(&h)).await?;
            Ok(ok(
                json!({"hypervisor": hypervisor_view(&h, mv, true, servers.get(&h.node.name))}),
            ))
        }
        // 2.53 replaced the search with `hypervisor_hostname_pattern`.
        (&M::GET, ["os-hypervisors", pattern, "search"]) if !mv.at_least(2, 53) => {
            let list: Vec<Value> = core
                .hypervisors_search(&caller, pattern)
                .await?
                .iter()
                .map(|h| hypervisor_view(h, mv, false, None))
                .collect();
            Ok(ok(json!({"hypervisors": list})))
        }
        (&M::GET, ["os-hypervisors", id, "uptime"]) => {
            let h = core.hypervisor_get(&caller, id, mv.at_least(2, 53)).await?;
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
                    let mut view = json!({
                        "id": a.id,
                        "name": a.name,
                        "availability_zone": a.availability_zone,
                        "hosts": a.hosts,
                        "metadata": {},
                        "created_at": null,
                        "updated_at": null,
                        "deleted_at": null,
                        "deleted": false,
                    });
                    if mv.at_least(2, 41) {
                        view["uuid"] = json!(a.uuid());
                    }
                    view
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

/// A hypervisor as Nova shows it at `mv`: the summary, or (`detailed`) with capacity
/// and use; from 2.28 `cpu_info` is an object, from 2.53 ids are UUIDs; `servers` when
/// asked for (2.53) and the node has some.
fn hypervisor_view(
    h: &Hypervisor,
    mv: Microversion,
    detailed: bool,
    servers: Option<&Vec<Value>>,
) -> Value {
    let uuids = mv.at_least(2, 53);
    let mut view = json!({
        "id": if uuids { json!(h.uuid()) } else { json!(h.id) },
        "hypervisor_hostname": h.node.name,
        "state": state(h.up()),
        "status": "enabled",
    });
    if detailed {
        let kind = h.kind();
        let extra = json!({
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
            "service": {
                "host": h.node.name,
                "id": if uuids { json!(h.service_uuid()) } else { json!(h.service_id) },
                "disabled_reason": null,
            },
            "cpu_info": if mv.at_least(2, 28) { json!({}) } else { json!("{}") },
        });
        if let (Value::Object(view), Value::Object(extra)) = (&mut view, extra) {
            view.extend(extra);
        }
    }
    if let Some(servers) = servers.filter(|s| !s.is_empty()) {
        view["servers"] = json!(servers);
    }
    view
}

/// `GET /os-hypervisors[/detail]`: paged from 2.33 (`limit`, `marker`), filtered by
/// `hypervisor_hostname_pattern` and with `with_servers` from 2.53.
async fn hypervisors(
    core: &Core,
    req: &ApiRequest,
    caller: &Caller,
    mv: Microversion,
    detailed: bool,
) -> ApiResult {
    let uuids = mv.at_least(2, 53);
    let pattern = req
        .query_param("hypervisor_hostname_pattern")
        .filter(|_| uuids);
    let (limit, marker) = if mv.at_least(2, 33) {
        (
            req.query_param("limit")
                .map(|l| {
                    l.parse::<usize>().ok().filter(|l| *l > 0).ok_or_else(|| {
                        ApiError::bad_request(format!("limit {l:?} must be a positive integer"))
                    })
                })
                .transpose()?,
            req.query_param("marker"),
        )
    } else {
        (None, None)
    };
    if pattern.is_some() && (limit.is_some() || marker.is_some()) {
        return Err(ApiError::bad_request(
            "Paging over a list of hypervisors using the hypervisor_hostname_pattern query \
             parameter is not supported.",
        ));
    }
    let mut list = match &pattern {
        Some(p) => core.hypervisors_search(caller, p).await?,
        None => core.hypervisors(caller).await?,
    };
    let id_of = |h: &Hypervisor| {
        if uuids {
            h.uuid().to_string()
        } else {
            h.id.to_string()
        }
    };
    if let Some(marker) = &marker {
        let at = list
            .iter()
            .position(|h| id_of(h) == *marker)
            .ok_or_else(|| ApiError::bad_request(format!("marker [{marker}] not found")))?;
        list.drain(..=at);
    }
    let more = limit.is_some_and(|l| list.len() > l);
    if let Some(l) = limit {
        list.truncate(l);
    }
    let servers = with_servers(core, req, caller, mv, &list).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|h| hypervisor_view(h, mv, detailed, servers.get(&h.node.name)))
        .collect();
    let mut body = json!({"hypervisors": items});
    if more && let Some(last) = list.last() {
        let path = if detailed {
            "os-hypervisors/detail"
        } else {
            "os-hypervisors"
        };
        body["hypervisors_links"] = next_links(core, req, path, &id_of(last));
    }
    Ok(ok(body))
}

/// The servers on each of `hypervisors` (`{name, uuid}`), when `with_servers` (2.53)
/// asks for them.
async fn with_servers(
    core: &Core,
    req: &ApiRequest,
    caller: &Caller,
    mv: Microversion,
    hypervisors: &[Hypervisor],
) -> Result<HashMap<String, Vec<Value>>, ApiError> {
    let asked = match req.query_param("with_servers") {
        Some(v) if mv.at_least(2, 53) => parse_bool(&v).ok_or_else(|| {
            ApiError::bad_request(format!("with_servers {v:?} must be true or false"))
        })?,
        _ => false,
    };
    let mut out = HashMap::new();
    if !asked {
        return Ok(out);
    }
    for h in hypervisors {
        let servers = core.servers_on_host(caller, &h.node.name).await?;
        out.insert(
            h.node.name.clone(),
            servers
                .iter()
                .map(|s| json!({"name": s.name, "uuid": s.id}))
                .collect(),
        );
    }
    Ok(out)
}

/// A service as Nova shows it (`forced_down` from 2.11).
fn service(s: &ComputeService, mv: Microversion) -> Value {
    let mut view = json!({
        "id": if mv.at_least(2, 53) { json!(s.uuid()) } else { json!(s.id) },
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
