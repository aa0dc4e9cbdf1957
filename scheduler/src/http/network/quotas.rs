//! `/v2.0/quotas`: a project's network limits, their defaults and details; set and
//! reset by administrators.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::member;
use crate::core::Core;
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};

pub async fn route(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    // Older clients put `.json` after the last segment.
    let last = p.last().map(|s| s.trim_end_matches(".json"));
    let p: Vec<&str> = match last {
        Some(last) => p[..p.len() - 1].iter().copied().chain([last]).collect(),
        None => Vec::new(),
    };
    match (&method, p.as_slice()) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            let quotas: Vec<Value> = core
                .network_quotas_list(&caller)
                .await?
                .into_iter()
                .map(|(project, set)| {
                    let mut v = json!(set);
                    v["project_id"] = json!(project);
                    v["tenant_id"] = json!(project);
                    v
                })
                .collect();
            Ok(json_response(StatusCode::OK, &json!({"quotas": quotas})))
        }
        (&M::GET, ["tenant"]) => {
            let caller = req.caller(core).await?;
            let project = core.network_quota_own_project(&caller)?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"tenant": {"tenant_id": project}}),
            ))
        }
        (&M::GET, [project]) => {
            let caller = req.caller(core).await?;
            let set = core.network_quota_get(&caller, project).await?;
            Ok(json_response(StatusCode::OK, &json!({"quota": set})))
        }
        (&M::GET, [project, "default"]) => {
            let caller = req.caller(core).await?;
            let set = core.network_quota_defaults(&caller, project)?;
            Ok(json_response(StatusCode::OK, &json!({"quota": set})))
        }
        (&M::GET, [project, "details"]) => {
            let caller = req.caller(core).await?;
            let details = core.network_quota_details(&caller, project).await?;
            let body: BTreeMap<String, Value> = details
                .into_iter()
                .map(|(name, d)| {
                    (
                        name,
                        json!({"limit": d.limit, "used": d.used, "reserved": d.reserved}),
                    )
                })
                .collect();
            Ok(json_response(StatusCode::OK, &json!({"quota": body})))
        }
        (&M::PUT, [project]) => {
            let caller = req.caller(core).await?;
            let body: BTreeMap<String, Value> = member(req.json().await?, "quota")?;
            let mut check_limit = false;
            let mut changes = BTreeMap::new();
            for (name, value) in body {
                if name == "check_limit" {
                    check_limit = value.as_bool().ok_or_else(|| {
                        ApiError::bad_request("Invalid input for check_limit: use true or false")
                    })?;
                    continue;
                }
                let limit = match &value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input for {name}. Reason: '{value}' is not an integer."
                    ))
                })?;
                changes.insert(name, limit);
            }
            let set = core
                .network_quota_update(&caller, project, changes, check_limit)
                .await?;
            Ok(json_response(StatusCode::OK, &json!({"quota": set})))
        }
        (&M::DELETE, [project]) => {
            let caller = req.caller(core).await?;
            core.network_quota_reset(&caller, project).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}
