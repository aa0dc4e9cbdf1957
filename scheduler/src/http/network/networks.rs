//! `/v2.0/networks`: create, show, list (filters, paging), update, delete.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, page_links, query_bool, query_limit, timestamp};
use crate::core::Core;
use crate::core::network::{NetworkCreate, NetworkQuery, NetworkUpdate};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{Caller, Network};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NetworkCreate)]
pub(crate) struct CreateBody {
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    #[serde(rename = "router:external")]
    external: Option<bool>,
    mtu: Option<u32>,
    port_security_enabled: Option<bool>,
    #[serde(rename = "provider:network_type")]
    network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    segmentation_id: Option<u32>,
    /// Sent by clients as `[]`; zones are not offered.
    #[serde(default)]
    availability_zone_hints: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NetworkUpdate)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    #[serde(rename = "router:external")]
    external: Option<bool>,
    mtu: Option<u32>,
    port_security_enabled: Option<bool>,
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
            let body: CreateBody = member(req.json().await?, "network")?;
            if !body.availability_zone_hints.is_empty() {
                return Err(ApiError::bad_request(
                    "Invalid input for availability_zone_hints. Reason: this cloud has no \
                     network availability zones; leave it out.",
                ));
            }
            let network = core
                .network_create(
                    &caller,
                    NetworkCreate {
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        shared: body.shared,
                        external: body.external,
                        mtu: body.mtu,
                        port_security_enabled: body.port_security_enabled,
                        network_type: body.network_type,
                        physical_network: body.physical_network,
                        segmentation_id: body.segmentation_id,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"network": view(&caller, &network)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let network = core.network_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"network": view(&caller, &network)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "network")?;
            let network = core
                .network_update(
                    &caller,
                    id,
                    NetworkUpdate {
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        shared: body.shared,
                        external: body.external,
                        mtu: body.mtu,
                        port_security_enabled: body.port_security_enabled,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"network": view(&caller, &network)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.network_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn list(core: &Core, req: &ApiRequest, caller: &Caller) -> ApiResult {
    let query = NetworkQuery {
        id: req.query_param("id"),
        name: req.query_param("name"),
        project_id: req
            .query_param("project_id")
            .or_else(|| req.query_param("tenant_id")),
        shared: query_bool(req, "shared")?,
        external: query_bool(req, "router:external")?,
        status: req.query_param("status"),
        admin_state_up: query_bool(req, "admin_state_up")?,
        limit: query_limit(req)?,
        marker: req.query_param("marker"),
    };
    let page = core.networks_list(caller, query).await?;
    let items: Vec<Value> = page.networks.iter().map(|n| view(caller, n)).collect();
    let links = page_links(
        core,
        req,
        "networks",
        page.networks.last().map(|n| n.id.as_str()),
        page.more,
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({"networks": items, "networks_links": links}),
    ))
}

/// Neutron's network, with the standard's `subnet_details`; the provider attributes
/// for administrators only.
fn view(caller: &Caller, n: &Network) -> Value {
    let mut v = json!({
        "id": n.id,
        "name": n.name,
        "description": n.description,
        "project_id": n.project_id,
        "tenant_id": n.project_id,
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "shared": n.shared,
        "router:external": n.external,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "subnets": n.subnets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        "subnet_details": n.subnets.iter()
            .map(|s| json!({"id": s.id, "name": s.name, "cidr": s.cidr}))
            .collect::<Vec<_>>(),
        "revision_number": n.revision_number,
        "created_at": timestamp(&n.created_at),
        "updated_at": timestamp(&n.updated_at),
    });
    if caller.is_admin() {
        v["provider:network_type"] = json!("vxlan");
        v["provider:physical_network"] = Value::Null;
        v["provider:segmentation_id"] = json!(n.vni);
    }
    v
}
