//! Nova quotas and limits (clause B.1.3.1): `GET /limits` and `os-quota-sets`.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::ComputeRequest;
use crate::core::Core;
use crate::core::compute::{Limits, QuotaSet};
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::Caller;

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { mut req, path, mv } = creq;
    // 2.36 dropped the network quotas (Neutron keeps them); 2.39 the image metadata one.
    let hidden: &[&str] = if mv.at_least(2, 36) {
        NETWORK_QUOTAS
    } else {
        &[]
    };
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["limits"]) => {
            let tenant = req.query_param("tenant_id");
            let limits = core.limits(&caller, tenant.as_deref()).await?;
            Ok(json_response(StatusCode::OK, &limits_view(&limits, mv)))
        }
        (&M::GET, ["os-quota-sets", project]) => {
            let quota = core.quota_show(&caller, project).await?;
            Ok(quota_view(Some(project), &quota, hidden))
        }
        (&M::GET, ["os-quota-sets", project, "defaults"]) => {
            let quota = core.quota_defaults(&caller).await?;
            Ok(quota_view(Some(project), &quota, hidden))
        }
        (&M::GET, ["os-quota-sets", project, "detail"]) => {
            let detail = core.quota_detail(&caller, project).await?;
            let mut set = Map::new();
            set.insert("id".into(), json!(project));
            for (name, d) in detail {
                if hidden.contains(&name.as_str()) {
                    continue;
                }
                set.insert(
                    name,
                    json!({"limit": d.limit, "in_use": d.in_use, "reserved": d.reserved}),
                );
            }
            Ok(json_response(StatusCode::OK, &json!({"quota_set": set})))
        }
        (&M::PUT, ["os-quota-sets", project]) => {
            update(core, &mut req, &caller, project, hidden).await
        }
        (&M::DELETE, ["os-quota-sets", project]) => {
            no_user_quotas(&req)?;
            core.quota_delete(&caller, project).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// The quotas Nova's compute API stops showing (and taking) at 2.36.
const NETWORK_QUOTAS: &[&str] = &[
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
];

/// Nova's absolute limits: exactly these keys at 2.1, fewer from 2.36 and 2.39.
fn limits_view(l: &Limits, mv: Microversion) -> Value {
    let q = |name: &str| l.quota.get(name).copied().unwrap_or(-1);
    let mut view = json!({"limits": {
        "rate": [],
        "absolute": {
            "maxTotalInstances": q("instances"),
            "maxTotalCores": q("cores"),
            "maxTotalRAMSize": q("ram"),
            "maxTotalKeypairs": q("key_pairs"),
            "maxServerMeta": q("metadata_items"),
            "maxImageMeta": q("metadata_items"),
            "maxPersonality": q("injected_files"),
            "maxPersonalitySize": q("injected_file_content_bytes"),
            "maxSecurityGroups": q("security_groups"),
            "maxSecurityGroupRules": q("security_group_rules"),
            "maxTotalFloatingIps": q("floating_ips"),
            "maxServerGroups": q("server_groups"),
            "maxServerGroupMembers": q("server_group_members"),
            "totalInstancesUsed": l.usage.instances,
            "totalCoresUsed": l.usage.cores,
            "totalRAMUsed": l.usage.ram_mb,
            "totalFloatingIpsUsed": 0,
            "totalSecurityGroupsUsed": 0,
            "totalServerGroupsUsed": l.server_groups,
        },
    }});
    if let Some(Value::Object(absolute)) = view.pointer_mut("/limits/absolute") {
        if mv.at_least(2, 36) {
            for key in [
                "maxSecurityGroups",
                "maxSecurityGroupRules",
                "maxTotalFloatingIps",
                "totalFloatingIpsUsed",
                "totalSecurityGroupsUsed",
            ] {
                absolute.remove(key);
            }
        }
        if mv.at_least(2, 39) {
            absolute.remove("maxImageMeta");
        }
    }
    view
}

/// `{"quota_set": {…}}`, with the project's `id` except in an update's answer.
/// `hidden` names the quotas the microversion leaves out.
fn quota_view(id: Option<&str>, quota: &QuotaSet, hidden: &[&str]) -> crate::http::Response {
    let mut set: Map<String, Value> = quota
        .iter()
        .filter(|(k, _)| !hidden.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if let Some(id) = id {
        set.insert("id".into(), json!(id));
    }
    json_response(StatusCode::OK, &json!({"quota_set": set}))
}

fn no_user_quotas(req: &ApiRequest) -> Result<(), ApiError> {
    if req.query_param("user_id").is_some() {
        return Err(ApiError::bad_request(
            "per-user quotas are not offered: set the project's quotas without user_id",
        ));
    }
    Ok(())
}

async fn update(
    core: &Core,
    req: &mut ApiRequest,
    caller: &Caller,
    project: &str,
    hidden: &[&str],
) -> ApiResult {
    no_user_quotas(req)?;
    let body: Value = req.json().await?;
    let Some(obj) = body.get("quota_set").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"quota_set\": {\"instances\": N, …}}",
        ));
    };
    let mut changes = QuotaSet::new();
    let mut force = false;
    for (name, value) in obj {
        if name == "force" {
            force = match value {
                Value::Bool(b) => *b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return Err(ApiError::bad_request("force must be true or false")),
            };
            continue;
        }
        if hidden.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Additional properties are not allowed ('{name}' was unexpected): from compute \
                 microversion 2.36 network quotas are set through the network API \
                 (PUT /v2.0/quotas/{{project_id}})"
            )));
        }
        let bad = || {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute {name}: give an integer, -1 for unlimited"
            ))
        };
        let limit = match value {
            Value::Number(n) => n.as_i64().ok_or_else(bad)?,
            Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        changes.insert(name.clone(), limit);
    }
    let quota = core.quota_update(caller, project, changes, force).await?;
    Ok(quota_view(None, &quota, hidden))
}
