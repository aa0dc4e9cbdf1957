//! Nova usage (`os-simple-tenant-usage`): vCPU, memory and disk hours per project over
//! a period (`start`, `end`; both default to now, as in Nova).

use chrono::{DateTime, NaiveDateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};

use super::ComputeRequest;
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

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    let ComputeRequest { req, path, .. } = creq;
    let caller = req.caller(core).await?;
    let start = parse_time("start", req.query_param("start"))?;
    let end = parse_time("end", req.query_param("end"))?;
    match path.as_slice() {
        [_] => {
            let detailed = req.query_flag("detailed");
            let usages = core.usage(&caller, None, start, end).await?;
            let views: Vec<Value> = usages.iter().map(|u| view(u, detailed)).collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"tenant_usages": views}),
            ))
        }
        [_, project] => {
            let usages = core.usage(&caller, Some(project), start, end).await?;
            // A project with no servers in the period: Nova answers an empty object.
            let view = usages.first().map_or_else(|| json!({}), |u| view(u, true));
            Ok(json_response(
                StatusCode::OK,
                &json!({"tenant_usage": view}),
            ))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
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
