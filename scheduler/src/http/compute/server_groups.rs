//! Nova server groups: create, list, show, delete. Up to 2.63 a group has a one-item
//! `policies` list; the soft policies exist from 2.15, `project_id`/`user_id` in the
//! view from 2.13.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ComputeRequest;
use crate::core::Core;
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiResult, empty, json_response};
use crate::model::{GroupPolicy, ServerGroup};

#[derive(Deserialize)]
struct CreateBody {
    server_group: CreateGroup,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    policies: Vec<String>,
}

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { mut req, path, mv } = creq;
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["os-server-groups"]) => {
            let groups = core
                .server_groups_list(&caller, req.query_flag("all_projects"))
                .await?;
            let offset = page_param(req.query_param("offset"), "offset")?.unwrap_or(0);
            let limit = page_param(req.query_param("limit"), "limit")?;
            let views: Vec<Value> = groups
                .iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .map(|g| view(g, mv))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"server_groups": views}),
            ))
        }
        (&M::POST, ["os-server-groups"]) => {
            let body: CreateBody = req.json().await?;
            let policy = match body.server_group.policies.as_slice() {
                [one] => GroupPolicy::parse(one)
                    .filter(|p| {
                        mv.at_least(2, 15)
                            || matches!(p, GroupPolicy::Affinity | GroupPolicy::AntiAffinity)
                    })
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid input for field/attribute policies: {one:?} is not one of {}",
                            if mv.at_least(2, 15) {
                                "affinity, anti-affinity, soft-affinity, soft-anti-affinity"
                            } else {
                                "affinity, anti-affinity (the soft ones need microversion 2.15)"
                            }
                        ))
                    })?,
                _ => {
                    return Err(ApiError::bad_request(
                        "Invalid input for field/attribute policies: give exactly one policy",
                    ));
                }
            };
            let group = core
                .server_group_create(&caller, body.server_group.name, policy)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"server_group": view(&group, mv)}),
            ))
        }
        (&M::GET, ["os-server-groups", id]) => {
            let group = core.server_group_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"server_group": view(&group, mv)}),
            ))
        }
        (&M::DELETE, ["os-server-groups", id]) => {
            core.server_group_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

fn page_param(value: Option<String>, name: &str) -> Result<Option<usize>, ApiError> {
    value
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a non-negative integer"))
            })
        })
        .transpose()
}

fn view(g: &ServerGroup, mv: Microversion) -> Value {
    let mut v = json!({
        "id": g.id,
        "name": g.name,
        "policies": [g.policy.as_str()],
        "members": g.members,
        "metadata": {},
    });
    if mv.at_least(2, 13) {
        v["project_id"] = json!(g.project_id);
        v["user_id"] = json!(g.user_id);
    }
    v
}
