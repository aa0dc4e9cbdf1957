//! `/v2.0/security-groups` and `/v2.0/security-group-rules`.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, page_links, query_limit, timestamp};
use crate::core::Core;
use crate::core::network::{
    RuleCreate, RuleQuery, SecurityGroupCreate, SecurityGroupQuery, SecurityGroupUpdate,
};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{Caller, SecurityGroup, SecurityGroupRule};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SecurityGroup)]
pub(crate) struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    /// Stateless groups are not offered; `true` (the default) is accepted.
    stateful: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SecurityGroupRule)]
pub(crate) struct RuleBody {
    security_group_id: String,
    direction: String,
    ethertype: Option<String>,
    /// A name or a number, as a string or a JSON number.
    protocol: Option<Value>,
    port_range_min: Option<i64>,
    port_range_max: Option<i64>,
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
    /// Address groups are not offered; clients send `null`.
    remote_address_group_id: Option<Value>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

pub async fn groups(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            let query = SecurityGroupQuery {
                id: req.query_param("id"),
                name: req.query_param("name"),
                project_id: req
                    .query_param("project_id")
                    .or_else(|| req.query_param("tenant_id")),
                limit: query_limit(&req)?,
                marker: req.query_param("marker"),
            };
            let page = core.security_groups_list(&caller, query).await?;
            let items: Vec<Value> = page.groups.iter().map(group_view).collect();
            let links = page_links(
                core,
                &req,
                "security-groups",
                page.groups.last().map(|g| g.id.as_str()),
                page.more,
            );
            Ok(json_response(
                StatusCode::OK,
                &json!({"security_groups": items, "security_groups_links": links}),
            ))
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: GroupBody = member(req.json().await?, "security_group")?;
            if body.stateful == Some(false) {
                return Err(ApiError::bad_request(
                    "Invalid input for stateful. Reason: stateless security groups are not \
                     offered by this cloud; leave stateful out.",
                ));
            }
            let group = core
                .security_group_create(
                    &caller,
                    SecurityGroupCreate {
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"security_group": group_view(&group)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let group = core.security_group_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"security_group": group_view(&group)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: GroupBody = member(req.json().await?, "security_group")?;
            if body.project_id.is_some() || body.tenant_id.is_some() || body.stateful.is_some() {
                return Err(ApiError::bad_request(
                    "Invalid input: only name and description of a security group can change.",
                ));
            }
            let group = core
                .security_group_update(
                    &caller,
                    id,
                    SecurityGroupUpdate {
                        name: body.name,
                        description: body.description,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"security_group": group_view(&group)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.security_group_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

pub async fn rules(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            list_rules(core, &req, &caller).await
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: RuleBody = member(req.json().await?, "security_group_rule")?;
            if body
                .remote_address_group_id
                .as_ref()
                .is_some_and(|v| !v.is_null())
            {
                return Err(ApiError::bad_request(
                    "Invalid input for remote_address_group_id. Reason: address groups are \
                     not offered by this cloud; use remote_ip_prefix or remote_group_id.",
                ));
            }
            let protocol = match body.protocol {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input for protocol. Reason: {other} is not a protocol name or \
                         number."
                    )));
                }
            };
            let rule = core
                .security_group_rule_create(
                    &caller,
                    RuleCreate {
                        security_group_id: body.security_group_id,
                        project_id: body.project_id.or(body.tenant_id),
                        direction: body.direction,
                        ethertype: body.ethertype,
                        protocol,
                        port_range_min: body.port_range_min,
                        port_range_max: body.port_range_max,
                        remote_ip_prefix: body.remote_ip_prefix,
                        remote_group_id: body.remote_group_id,
                        description: body.description,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"security_group_rule": rule_view(&rule)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let rule = core.security_group_rule_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"security_group_rule": rule_view(&rule)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.security_group_rule_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn list_rules(core: &Core, req: &ApiRequest, caller: &Caller) -> ApiResult {
    let query = RuleQuery {
        security_group_id: req.query_param("security_group_id"),
        project_id: req
            .query_param("project_id")
            .or_else(|| req.query_param("tenant_id")),
        direction: req.query_param("direction"),
        ethertype: req.query_param("ethertype"),
        protocol: req.query_param("protocol"),
        limit: query_limit(req)?,
        marker: req.query_param("marker"),
    };
    let page = core.security_group_rules_list(caller, query).await?;
    let items: Vec<Value> = page.rules.iter().map(rule_view).collect();
    let links = page_links(
        core,
        req,
        "security-group-rules",
        page.rules.last().map(|r| r.id.as_str()),
        page.more,
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({"security_group_rules": items, "security_group_rules_links": links}),
    ))
}

fn group_view(g: &SecurityGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "project_id": g.project_id,
        "tenant_id": g.project_id,
        "security_group_rules": g.rules.iter().map(rule_view).collect::<Vec<_>>(),
        "stateful": true,
        "shared": false,
        "tags": [],
        "revision_number": g.revision_number,
        "created_at": timestamp(&g.created_at),
        "updated_at": timestamp(&g.updated_at),
    })
}

fn rule_view(r: &SecurityGroupRule) -> Value {
    json!({
        "id": r.id,
        "security_group_id": r.security_group_id,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "normalized_cidr": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "description": r.description,
        "revision_number": r.revision_number,
        "created_at": timestamp(&r.created_at),
        "updated_at": timestamp(&r.updated_at),
    })
}
