//! `/v2.0/routers`: create, show, list, update, delete, and add/remove interfaces.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, nullable, page_links, query_limit, timestamp};
use crate::core::Core;
use crate::core::network::{
    FixedIpRequest, GatewayRequest, RouterCreate, RouterDetail, RouterInterface, RouterQuery,
    RouterUpdate,
};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::Caller;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GatewayFixedIp)]
pub(crate) struct FixedIpBody {
    subnet_id: Option<String>,
    ip_address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ExternalGateway)]
pub(crate) struct GatewayBody {
    network_id: Option<String>,
    enable_snat: Option<bool>,
    external_fixed_ips: Option<Vec<FixedIpBody>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RouterCreate)]
pub(crate) struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    admin_state_up: Option<bool>,
    external_gateway_info: Option<GatewayBody>,
    /// Sent by clients as `[]`; zones are not offered.
    #[serde(default)]
    availability_zone_hints: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RouterUpdate)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    external_gateway_info: Option<Option<GatewayBody>>,
    routes: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RouterInterface)]
pub(crate) struct InterfaceBody {
    subnet_id: Option<String>,
    port_id: Option<String>,
}

/// A gateway body to core's request; `{}` (no `network_id`) means "no gateway".
fn gateway(body: GatewayBody) -> Result<Option<GatewayRequest>, ApiError> {
    let Some(network_id) = body.network_id else {
        if body.enable_snat.is_some() || body.external_fixed_ips.is_some() {
            return Err(ApiError::bad_request(
                "Invalid input for external_gateway_info. Reason: network_id is required; \
                 give the external network the gateway goes on.",
            ));
        }
        return Ok(None);
    };
    Ok(Some(GatewayRequest {
        network_id,
        enable_snat: body.enable_snat,
        external_fixed_ips: body.external_fixed_ips.map(|ips| {
            ips.into_iter()
                .map(|f| FixedIpRequest {
                    subnet_id: f.subnet_id,
                    ip_address: f.ip_address,
                })
                .collect()
        }),
    }))
}

pub async fn route(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            list(core, &req, &caller).await
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: CreateBody = member(req.json().await?, "router")?;
            if !body.availability_zone_hints.is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid input for availability_zone_hints. Reason: this cloud has no \
                     network availability zones; leave it out.",
                ));
            }
            let router = core
                .router_create(
                    &caller,
                    RouterCreate {
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        gateway: body
                            .external_gateway_info
                            .map(gateway)
                            .transpose()?
                            .flatten(),
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"router": view(&caller, &router)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let router = core.router_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"router": view(&caller, &router)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "router")?;
            if body.routes.as_ref().is_some_and(|r| !r.is_empty()) {
                return Err(ApiError::bad_request(
                    "Invalid input for routes. Reason: extra routes are not offered by this \
                     cloud yet; leave routes empty.",
                ));
            }
            let gateway = match body.external_gateway_info {
                None => None,
                Some(None) => Some(None),
                Some(Some(g)) => Some(gateway(g)?),
            };
            let router = core
                .router_update(
                    &caller,
                    id,
                    RouterUpdate {
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        gateway,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"router": view(&caller, &router)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.router_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (
            &M::PUT,
            [
                id,
                action @ ("add_router_interface" | "remove_router_interface"),
            ],
        ) => {
            let caller = req.caller(core).await?;
            let body: InterfaceBody = serde_json::from_value(req.json().await?).map_err(|e| {
                ApiError::bad_request(format!(
                    "Invalid input for {action}: {e}; send {{\"subnet_id\": …}} or \
                     {{\"port_id\": …}}"
                ))
            })?;
            let done = if *action == "add_router_interface" {
                core.router_interface_add(&caller, id, body.subnet_id, body.port_id)
                    .await?
            } else {
                core.router_interface_remove(&caller, id, body.subnet_id, body.port_id)
                    .await?
            };
            Ok(json_response(StatusCode::OK, &interface_view(&done)))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn list(core: &Core, req: &ApiRequest, caller: &Caller) -> ApiResult {
    let query = RouterQuery {
        name: req.query_param("name"),
        project_id: req
            .query_param("project_id")
            .or_else(|| req.query_param("tenant_id")),
        limit: query_limit(req)?,
        marker: req.query_param("marker"),
    };
    let page = core.routers_list(caller, query).await?;
    let items: Vec<Value> = page.routers.iter().map(|r| view(caller, r)).collect();
    let links = page_links(
        core,
        req,
        "routers",
        page.routers.last().map(|r| r.router.id.as_str()),
        page.more,
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({"routers": items, "routers_links": links}),
    ))
}

fn interface_view(i: &RouterInterface) -> Value {
    json!({
        "id": i.router_id,
        "tenant_id": i.project_id,
        "project_id": i.project_id,
        "port_id": i.port_id,
        "network_id": i.network_id,
        "subnet_id": i.subnet_ids.first(),
        "subnet_ids": i.subnet_ids,
    })
}

/// Neutron's router; administrators also see `binding:host_id`, the node carrying its
/// NAT.
fn view(caller: &Caller, d: &RouterDetail) -> Value {
    let r = &d.router;
    let gateway = r.external_network_id.as_ref().map(|network_id| {
        json!({
            "network_id": network_id,
            "enable_snat": r.enable_snat,
            "external_fixed_ips": d.gateway_ips.iter()
                .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
                .collect::<Vec<_>>(),
        })
    });
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "admin_state_up": r.admin_state_up,
        "status": r.status,
        "external_gateway_info": gateway,
        "routes": [],
        "availability_zone_hints": [],
        "availability_zones": [],
        "distributed": false,
        "ha": false,
        "revision_number": r.revision_number,
        "created_at": timestamp(&r.created_at),
        "updated_at": timestamp(&r.updated_at),
    });
    if caller.is_admin() {
        v["binding:host_id"] = json!(r.host);
    }
    v
}
