//! `/v2.0/floatingips`: create, show, list (filters), associate/disassociate, delete.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, nullable, timestamp};
use crate::core::Core;
use crate::core::network::{FloatingIpCreate, FloatingIpDetail, FloatingIpUpdate};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::FloatingIpFilter;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FloatingIpCreate)]
pub(crate) struct CreateBody {
    floating_network_id: Option<String>,
    floating_ip_address: Option<String>,
    subnet_id: Option<String>,
    port_id: Option<String>,
    fixed_ip_address: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FloatingIpUpdate)]
pub(crate) struct UpdateBody {
    #[serde(default, deserialize_with = "nullable")]
    port_id: Option<Option<String>>,
    fixed_ip_address: Option<String>,
    description: Option<String>,
}

pub async fn route(core: &Core, mut req: ApiRequest, p: &[&str]) -> ApiResult {
    use Method as M;
    let method = req.method.clone();
    match (&method, p) {
        (&M::GET, []) => {
            let caller = req.caller(core).await?;
            let filter = FloatingIpFilter {
                project_id: req
                    .query_param("project_id")
                    .or_else(|| req.query_param("tenant_id")),
                floating_ip_address: req.query_param("floating_ip_address"),
                port_id: req.query_param("port_id"),
                router_id: req.query_param("router_id"),
                floating_network_id: req.query_param("floating_network_id"),
                status: req.query_param("status"),
            };
            let list = core.floating_ips_list(&caller, filter).await?;
            let items: Vec<Value> = list.iter().map(view).collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"floatingips": items}),
            ))
        }
        (&M::POST, []) => {
            let caller = req.caller(core).await?;
            let body: CreateBody = member(req.json().await?, "floatingip")?;
            let floating_network_id = body.floating_network_id.ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input for floating_network_id. Reason: it is required; give the \
                     external network the address comes from.",
                )
            })?;
            let made = core
                .floating_ip_create(
                    &caller,
                    FloatingIpCreate {
                        project_id: body.project_id.or(body.tenant_id),
                        floating_network_id,
                        floating_ip_address: body.floating_ip_address,
                        subnet_id: body.subnet_id,
                        port_id: body.port_id,
                        fixed_ip_address: body.fixed_ip_address,
                        description: body.description,
                        name: None,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"floatingip": view(&made)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let found = core.floating_ip_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"floatingip": view(&found)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "floatingip")?;
            let changed = core
                .floating_ip_update(
                    &caller,
                    id,
                    FloatingIpUpdate {
                        port_id: body.port_id,
                        fixed_ip_address: body.fixed_ip_address,
                        description: body.description,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"floatingip": view(&changed)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.floating_ip_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// Neutron's floating IP with `port_details` (the `fip-port-details` extension).
fn view(d: &FloatingIpDetail) -> Value {
    let f = &d.floating_ip;
    json!({
        "id": f.id,
        "floating_ip_address": f.floating_ip_address,
        "floating_network_id": f.floating_network_id,
        "fixed_ip_address": f.fixed_ip_address,
        "port_id": f.port_id,
        "router_id": f.router_id,
        "status": f.status,
        "project_id": f.project_id,
        "tenant_id": f.project_id,
        "description": f.description,
        "tags": [],
        "revision_number": 1,
        "created_at": timestamp(&f.created_at),
        "updated_at": timestamp(&f.updated_at),
        "port_details": d.port.as_ref().map(|p| json!({
            "name": p.name,
            "network_id": p.network_id,
            "mac_address": p.mac_address,
            "admin_state_up": p.admin_state_up,
            "status": p.status,
            "device_id": p.device_id,
            "device_owner": p.device_owner,
        })),
    })
}
