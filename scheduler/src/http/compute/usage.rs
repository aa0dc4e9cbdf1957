//! Nova usage (`os-simple-tenant-usage`): vCPU, memory and disk hours per project over
//! a period (`start`, `end`; both default to now, as in Nova).

use chrono::{DateTime, NaiveDateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::{ComputeRequest, next_links};
use crate::core::Core;
use crate::core::compute::usage::{ProjectUsage, ServerUsage};
use crate::http::{ApiError, ApiResult, json_response};

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Nova's accepted forms: `2026-11-01T00:00:00[.ffffff]` or with a space.
fn parse_time(name: &str, value: Option<String>) -> Result<DateTime<Utc>, ApiError> {
    let Some(value) = value else {
        return Ok(Utc::now());
    };
    let trimmed = value.trim_end_matches('Z');
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(trimmed, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid {name} time {value:?}: use the form 2026-11-01T00:00:00"
            ))
        })
}

/// Nova's `max_limit`: the page size when none is given.
const MAX_LIMIT: usize = 1000;

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    let ComputeRequest { req, path, mv } = creq;
    let caller = req.caller(core).await?;
    let start = parse_time("start", req.query_param("start"))?;
    let end = parse_time("end", req.query_param("end"))?;
    let paged = mv.at_least(2, 40);
    let (limit, marker) = if paged {
        let limit = req
            .query_param("limit")
            .map(|l| {
                l.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!("limit {l:?} must be a non-negative integer"))
                })
            })
            .transpose()?;
        (
            limit.unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            req.query_param("marker"),
        )
    } else {
        // Before 2.40 Nova pages silently at max_limit.
        (MAX_LIMIT, None)
    };
    let (project, key) = match path.as_slice() {
        [_] => (None, "tenant_usages"),
        [_, project] => (Some(project.as_str()), "tenant_usage"),
        _ => return Err(ApiError::unrouted(&req)),
    };
    let mut usages = core.usage(&caller, project, start, end).await?;
    let full = page(&mut usages, marker.as_deref(), limit)?;
    let mut body = match project {
        None => {
            let detailed = req.query_flag("detailed");
            let views: Vec<Value> = usages.iter().map(|u| view(u, detailed)).collect();
            json!({ key: views })
        }
        // A project with no servers in the period: Nova answers an empty object.
        Some(_) => json!({ key: usages.first().map_or_else(|| json!({}), |u| view(u, true)) }),
    };
    if paged && let Some(last) = full {
        let path = project.map_or_else(
            || "os-simple-tenant-usage".to_string(),
            |p| format!("os-simple-tenant-usage/{p}"),
        );
        body[format!("{key}_links")] = next_links(core, &req, &path, &last);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// Keeps the servers after `marker` (a server id), at most `limit` of them, in the
/// order the usages list them, and drops the projects left without any. Nova pages by
/// server, so a project's usage may span pages. The last server's id when the page is
/// full (there may be more).
fn page(
    usages: &mut Vec<ProjectUsage>,
    marker: Option<&str>,
    limit: usize,
) -> Result<Option<String>, ApiError> {
    let mut skipping = marker.is_some();
    if let Some(marker) = marker
        && !usages
            .iter()
            .flat_map(|u| &u.servers)
            .any(|s| s.server.id.to_string() == marker)
    {
        return Err(ApiError::bad_request(format!(
            "marker [{marker}] not found"
        )));
    }
    let mut kept = 0;
    let mut last = None;
    for usage in usages.iter_mut() {
        usage.servers.retain(|s| {
            if skipping {
                skipping = marker != Some(s.server.id.to_string().as_str());
                return false;
            }
            if kept == limit {
                return false;
            }
            kept += 1;
            last = Some(s.server.id.to_string());
            true
        });
    }
    usages.retain(|u| !u.servers.is_empty());
    Ok(last.filter(|_| kept == limit))
}

fn view(u: &ProjectUsage, detailed: bool) -> Value {
    let mut v = json!({
        "tenant_id": u.project_id,
        "total_hours": u.total_hours(),
        "total_vcpus_usage": u.total(|s| f64::from(s.flavor.vcpus)),
        "total_memory_mb_usage": u.total(|s| s.flavor.ram_mb as f64),
        "total_local_gb_usage": u.total(|s| s.flavor.disk_gb as f64),
        "start": time(u.start),
        "stop": time(u.stop),
    });
    if detailed {
        v["server_usages"] = u.servers.iter().map(server_view).collect();
    }
    v
}

fn server_view(s: &ServerUsage) -> Value {
    let server = &s.server;
    let until = s.ended_at.unwrap_or_else(Utc::now);
    json!({
        "instance_id": server.id,
        "name": server.name,
        "tenant_id": server.project_id,
        "hours": s.hours,
        "vcpus": server.flavor.vcpus,
        "memory_mb": server.flavor.ram_mb,
        "local_gb": server.flavor.disk_gb,
        "flavor": server.flavor.name,
        "state": server.vm_state.as_str(),
        "started_at": time(s.started_at),
        "ended_at": s.ended_at.map(time),
        "uptime": (until - s.started_at).num_seconds().max(0),
    })
}
