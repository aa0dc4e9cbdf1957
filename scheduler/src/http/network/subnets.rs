//! `/v2.0/subnets`: create, show, list (filters, paging), update, delete.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{member, nullable, page_links, query_bool, query_limit, timestamp};
use crate::core::Core;
use crate::core::network::{SubnetCreate, SubnetQuery, SubnetUpdate};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{AllocationPool, Caller, HostRoute, Subnet};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SubnetCreate)]
pub(crate) struct CreateBody {
    network_id: String,
    ip_version: u8,
    cidr: Option<String>,
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<AllocationPool>>,
    enable_dhcp: Option<bool>,
    dns_nameservers: Option<Vec<String>>,
    host_routes: Option<Vec<HostRoute>>,
    ipv6_ra_mode: Option<String>,
    ipv6_address_mode: Option<String>,
    /// Subnet pools are not offered: only `null` is accepted.
    #[serde(default, deserialize_with = "nullable")]
    subnetpool_id: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SubnetUpdate)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<AllocationPool>>,
    enable_dhcp: Option<bool>,
    dns_nameservers: Option<Vec<String>>,
    host_routes: Option<Vec<HostRoute>>,
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
            let body: CreateBody = member(req.json().await?, "subnet")?;
            if matches!(body.subnetpool_id, Some(Some(_))) {
                return Err(ApiError::bad_request(
                    "Invalid input for subnetpool_id. Reason: this cloud has no subnet pools; \
                     give a cidr instead.",
                ));
            }
            let cidr = body.cidr.ok_or_else(|| {
                ApiError::bad_request(
                    "Bad subnets request: a cidr must be specified in the absence of a subnet \
                     pool (e.g. \"cidr\": \"10.0.0.0/24\").",
                )
            })?;
            let subnet = core
                .subnet_create(
                    &caller,
                    SubnetCreate {
                        network_id: body.network_id,
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                        ip_version: body.ip_version,
                        cidr,
                        gateway_ip: body.gateway_ip,
                        allocation_pools: body.allocation_pools,
                        enable_dhcp: body.enable_dhcp,
                        dns_nameservers: body.dns_nameservers,
                        host_routes: body.host_routes,
                        ipv6_ra_mode: body.ipv6_ra_mode,
                        ipv6_address_mode: body.ipv6_address_mode,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({"subnet": view(&subnet)}),
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let subnet = core.subnet_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"subnet": view(&subnet)}),
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "subnet")?;
            let subnet = core
                .subnet_update(
                    &caller,
                    id,
                    SubnetUpdate {
                        name: body.name,
                        description: body.description,
                        gateway_ip: body.gateway_ip,
                        allocation_pools: body.allocation_pools,
                        enable_dhcp: body.enable_dhcp,
                        dns_nameservers: body.dns_nameservers,
                        host_routes: body.host_routes,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"subnet": view(&subnet)}),
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.subnet_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn list(core: &Core, req: &ApiRequest, caller: &Caller) -> ApiResult {
    let ip_version = req
        .query_param("ip_version")
        .map(|v| {
            v.parse::<u8>().map_err(|_| {
                ApiError::bad_request(format!(
                    "Invalid input for ip_version. Reason: '{v}' is not 4 or 6."
                ))
            })
        })
        .transpose()?;
    let query = SubnetQuery {
        id: req.query_param("id"),
        name: req.query_param("name"),
        network_id: req.query_param("network_id"),
        project_id: req
            .query_param("project_id")
            .or_else(|| req.query_param("tenant_id")),
        cidr: req.query_param("cidr"),
        ip_version,
        enable_dhcp: query_bool(req, "enable_dhcp")?,
        limit: query_limit(req)?,
        marker: req.query_param("marker"),
    };
    let page = core.subnets_list(caller, query).await?;
    let items: Vec<Value> = page.subnets.iter().map(view).collect();
    let links = page_links(
        core,
        req,
        "subnets",
        page.subnets.last().map(|s| s.id.as_str()),
        page.more,
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({"subnets": items, "subnets_links": links}),
    ))
}

fn view(s: &Subnet) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "network_id": s.network_id,
        "project_id": s.project_id,
        "tenant_id": s.project_id,
        "ip_version": s.ip_version,
        "cidr": s.cidr,
        "gateway_ip": s.gateway_ip,
        "allocation_pools": s.allocation_pools,
        "enable_dhcp": s.enable_dhcp,
        "dns_nameservers": s.dns_nameservers,
        "host_routes": s.host_routes,
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "subnetpool_id": null,
        "service_types": [],
        "revision_number": s.revision_number,
        "created_at": timestamp(&s.created_at),
        "updated_at": timestamp(&s.updated_at),
    })
}
