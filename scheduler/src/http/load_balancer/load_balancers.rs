//! `/v2/lbaas/loadbalancers`: create, show, list (filters, paging), update, delete.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, page_links, paging, timestamp};
use crate::core::Core;
use crate::core::load_balancers::{
    LbRelations, LoadBalancerCreate, LoadBalancerUpdate, NodeAdd, NodeRemove,
};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{LoadBalancer, LoadBalancerFilter};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoadBalancerNode)]
pub(crate) struct NodeBody {
    server_id: Option<String>,
    address: Option<String>,
    protocol_port: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoadBalancerNodes)]
pub(crate) struct NodesBody {
    #[serde(default)]
    add: Vec<NodeBody>,
    #[serde(default)]
    remove: Vec<NodeBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoadBalancerCreate)]
pub(crate) struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    vip_subnet_id: Option<String>,
    vip_network_id: Option<String>,
    vip_address: Option<String>,
    admin_state_up: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    /// Only this cloud's own provider is accepted.
    provider: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LoadBalancerUpdate)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
}

pub async fn route(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            let (limit, marker) = paging(&req)?;
            let filter = LoadBalancerFilter {
                project_id: req.query_param("project_id"),
                name: req.query_param("name"),
                provisioning_status: req.query_param("provisioning_status"),
                marker,
                limit,
            };
            let list = core.load_balancers_list(&caller, filter).await?;
            let full = limit.is_some_and(|l| list.len() == l);
            let links = page_links(core, &req, list.last().map(|lb| lb.id.as_str()), full);
            let mut items = Vec::with_capacity(list.len());
            for lb in &list {
                items.push(view(lb, &core.load_balancer_relations(&lb.id).await?));
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"loadbalancers": items, "loadbalancers_links": links}),
            ))
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: CreateBody = member(req.json().await?, "loadbalancer")?;
            if let Some(provider) = body.provider.as_deref().filter(|p| *p != "yunji") {
                return Err(ApiError::bad_request(format!(
                    "Provider '{provider}' is not enabled; leave provider out or give \"yunji\""
                )));
            }
            let made = core
                .load_balancer_create(
                    &caller,
                    LoadBalancerCreate {
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                        vip_subnet_id: body.vip_subnet_id,
                        vip_network_id: body.vip_network_id,
                        vip_address: body.vip_address,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"loadbalancer": view(&made, &LbRelations::default())}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let found = core.load_balancer_get(&caller, id).await?;
            let relations = core.load_balancer_relations(&found.id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"loadbalancer": view(&found, &relations)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "loadbalancer")?;
            let changed = core
                .load_balancer_update(
                    &caller,
                    id,
                    LoadBalancerUpdate {
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                    },
                )
                .await?;
            let relations = core.load_balancer_relations(&changed.id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"loadbalancer": view(&changed, &relations)}),
            ))
        }
        // The standard's nodes extension (B.3.4.5-6): members of the default pool.
        (&M::PATCH, [id, "nodes"]) => {
            let caller = req.caller(core).await?;
            let body: NodesBody = serde_json::from_value(req.json().await?).map_err(|e| {
                ApiError::bad_request(format!(
                    "Invalid input for nodes: {e}; send {{\"add\": [{{\"server_id\" or \
                     \"address\", \"protocol_port\"}}]}} and/or {{\"remove\": [{{\"server_id\" \
                     or \"address\"}}]}}"
                ))
            })?;
            if body.add.is_empty() && body.remove.is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid input for nodes: give at least one node to add or remove",
                ));
            }
            let mut add = Vec::with_capacity(body.add.len());
            for n in body.add {
                add.push(NodeAdd {
                    server_id: n.server_id,
                    address: n.address,
                    protocol_port: n.protocol_port.ok_or_else(|| {
                        ApiError::bad_request("each node to add needs its protocol_port")
                    })?,
                });
            }
            let remove = body
                .remove
                .into_iter()
                .map(|n| NodeRemove {
                    server_id: n.server_id,
                    address: n.address,
                })
                .collect();
            core.load_balancer_nodes_change(&caller, id, add, remove)
                .await?;
            let found = core.load_balancer_get(&caller, id).await?;
            let relations = core.load_balancer_relations(&found.id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"loadbalancer": view(&found, &relations)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.load_balancer_delete(&caller, id, req.query_flag("cascade"))
                .await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// Octavia's load balancer, with the standard's `nodes` (its default pool's members).
fn view(lb: &LoadBalancer, r: &LbRelations) -> Value {
    let nodes: Vec<Value> = r
        .nodes
        .iter()
        .map(|n| {
            json!({"id": n.server_id, "name": n.name, "address": n.address,
                   "protocol_port": n.protocol_port})
        })
        .collect();
    json!({
        "id": lb.id,
        "name": lb.name,
        "description": lb.description,
        "project_id": lb.project_id,
        "tenant_id": lb.project_id,
        "vip_address": lb.vip_address,
        "vip_port_id": lb.vip_port_id,
        "vip_subnet_id": lb.vip_subnet_id,
        "vip_network_id": lb.vip_network_id,
        "vip_qos_policy_id": null,
        "provisioning_status": lb.provisioning_status,
        "operating_status": lb.operating_status,
        "admin_state_up": lb.admin_state_up,
        "listeners": r.listeners.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "pools": r.pools.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "nodes": nodes,
        "flavor_id": null,
        "provider": "yunji",
        "availability_zone": null,
        "tags": [],
        "created_at": timestamp(&lb.created_at),
        "updated_at": timestamp(&lb.updated_at),
    })
}
