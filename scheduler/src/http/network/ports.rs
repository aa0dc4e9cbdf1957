//! `/v2.0/ports`: create, show, list (filters, paging), update, delete.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{member, page_links, query_limit, timestamp};
use crate::core::Core;
use crate::core::network::{AddressPairRequest, FixedIpRequest, PortCreate, PortQuery, PortUpdate};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{AddressPair, Caller, FixedIp, Port};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PortFixedIp)]
pub(crate) struct FixedIpBody {
    subnet_id: Option<String>,
    ip_address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AllowedAddressPair)]
pub(crate) struct PairBody {
    ip_address: String,
    mac_address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PortCreate)]
pub(crate) struct CreateBody {
    network_id: String,
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    admin_state_up: Option<bool>,
    mac_address: Option<String>,
    fixed_ips: Option<Vec<FixedIpBody>>,
    device_id: Option<String>,
    device_owner: Option<String>,
    port_security_enabled: Option<bool>,
    security_groups: Option<Vec<String>>,
    allowed_address_pairs: Option<Vec<PairBody>>,
    #[serde(rename = "binding:host_id")]
    binding_host_id: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    vnic_type: Option<String>,
    #[serde(rename = "binding:profile")]
    profile: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PortUpdate)]
pub(crate) struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    mac_address: Option<String>,
    fixed_ips: Option<Vec<FixedIpBody>>,
    device_id: Option<String>,
    device_owner: Option<String>,
    port_security_enabled: Option<bool>,
    security_groups: Option<Vec<String>>,
    allowed_address_pairs: Option<Vec<PairBody>>,
    #[serde(rename = "binding:host_id")]
    binding_host_id: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    vnic_type: Option<String>,
    #[serde(rename = "binding:profile")]
    profile: Option<Map<String, Value>>,
}

/// Only normal (virtio) ports exist here, with no binding profile.
fn check_binding(
    vnic_type: Option<&str>,
    profile: Option<&Map<String, Value>>,
) -> Result<(), ApiError> {
    if vnic_type.is_some_and(|v| v != "normal") {
        return Err(ApiError::bad_request(
            "Invalid input for binding:vnic_type. Reason: only 'normal' ports are offered by \
             this cloud.",
        ));
    }
    if profile.is_some_and(|p| !p.is_empty()) {
        return Err(ApiError::bad_request(
            "Invalid input for binding:profile. Reason: this cloud takes no binding profile; \
             send {} or leave it out.",
        ));
    }
    Ok(())
}

fn fixed_ips(body: Option<Vec<FixedIpBody>>) -> Option<Vec<FixedIpRequest>> {
    body.map(|ips| {
        ips.into_iter()
            .map(|f| FixedIpRequest {
                subnet_id: f.subnet_id,
                ip_address: f.ip_address,
            })
            .collect()
    })
}

fn pairs(body: Option<Vec<PairBody>>) -> Option<Vec<AddressPairRequest>> {
    body.map(|pairs| {
        pairs
            .into_iter()
            .map(|p| AddressPairRequest {
                ip_address: p.ip_address,
                mac_address: p.mac_address,
            })
            .collect()
    })
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
            let body: CreateBody = member(req.json().await?, "port")?;
            check_binding(body.vnic_type.as_deref(), body.profile.as_ref())?;
            let port = core
                .port_create(
                    &caller,
                    PortCreate {
                        network_id: body.network_id,
                        project_id: body.project_id.or(body.tenant_id),
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        mac_address: body.mac_address,
                        fixed_ips: fixed_ips(body.fixed_ips),
                        device_id: body.device_id,
                        device_owner: body.device_owner,
                        port_security_enabled: body.port_security_enabled,
                        security_groups: body.security_groups,
                        allowed_address_pairs: pairs(body.allowed_address_pairs),
                        binding_host_id: body.binding_host_id,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &One {
                    port: view(&caller, &port),
                },
            ))
        }
        (&M::GET, [id]) => {
            let caller = req.caller(core).await?;
            let port = core.port_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &One {
                    port: view(&caller, &port),
                },
            ))
        }
        (&M::PUT, [id]) => {
            let caller = req.caller(core).await?;
            let body: UpdateBody = member(req.json().await?, "port")?;
            check_binding(body.vnic_type.as_deref(), body.profile.as_ref())?;
            let port = core
                .port_update(
                    &caller,
                    id,
                    PortUpdate {
                        name: body.name,
                        description: body.description,
                        admin_state_up: body.admin_state_up,
                        mac_address: body.mac_address,
                        fixed_ips: fixed_ips(body.fixed_ips),
                        device_id: body.device_id,
                        device_owner: body.device_owner,
                        port_security_enabled: body.port_security_enabled,
                        security_groups: body.security_groups,
                        allowed_address_pairs: pairs(body.allowed_address_pairs),
                        binding_host_id: body.binding_host_id,
                    },
                )
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &One {
                    port: view(&caller, &port),
                },
            ))
        }
        (&M::DELETE, [id]) => {
            let caller = req.caller(core).await?;
            core.port_delete(&caller, id).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

async fn list(core: &Core, req: &ApiRequest, caller: &Caller) -> ApiResult {
    let query = PortQuery {
        id: req.query_param("id"),
        name: req.query_param("name"),
        network_id: req.query_param("network_id"),
        project_id: req
            .query_param("project_id")
            .or_else(|| req.query_param("tenant_id")),
        device_id: req.query_param("device_id"),
        device_owner: req.query_param("device_owner"),
        mac_address: req.query_param("mac_address"),
        status: req.query_param("status"),
        binding_host_id: req.query_param("binding:host_id"),
        limit: query_limit(req)?,
        marker: req.query_param("marker"),
    };
    // `fixed_ips=ip_address=…` / `fixed_ips=subnet_id=…`, as the CLI's --fixed-ip sends.
    let wanted: Vec<(String, String)> = req
        .query_pairs()
        .into_iter()
        .filter(|(k, _)| k == "fixed_ips")
        .filter_map(|(_, v)| {
            v.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let page = core.ports_list(caller, query).await?;
    let items: Vec<PortView> = page
        .ports
        .iter()
        .filter(|p| {
            wanted.iter().all(|(key, value)| {
                p.fixed_ips.iter().any(|f| match key.as_str() {
                    "ip_address" => f.ip_address == *value,
                    "subnet_id" => f.subnet_id == *value,
                    _ => true,
                })
            })
        })
        .map(|p| view(caller, p))
        .collect();
    let links = page_links(
        core,
        req,
        "ports",
        page.ports.last().map(|p| p.id.as_str()),
        page.more,
    );
    /// The list body, serialised straight from the ports.
    #[derive(Serialize)]
    struct Page<'a> {
        ports: Vec<PortView<'a>>,
        ports_links: Value,
    }
    Ok(json_response(
        StatusCode::OK,
        &Page {
            ports: items,
            ports_links: links,
        },
    ))
}

/// Neutron's port, serialised straight from the port (no `Value` map in between): the
/// binding's host and details for administrators only.
#[derive(Serialize)]
pub(super) struct PortView<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    network_id: &'a str,
    project_id: &'a str,
    tenant_id: &'a str,
    mac_address: &'a str,
    admin_state_up: bool,
    status: &'a str,
    device_id: &'a str,
    device_owner: &'a str,
    fixed_ips: &'a [FixedIp],
    security_groups: &'a [String],
    port_security_enabled: bool,
    allowed_address_pairs: &'a [AddressPair],
    #[serde(rename = "binding:vnic_type")]
    vnic_type: &'static str,
    revision_number: i64,
    created_at: String,
    updated_at: String,
    #[serde(flatten)]
    binding: Option<Binding<'a>>,
}

/// What only administrators see of a port's binding.
#[derive(Serialize)]
struct Binding<'a> {
    #[serde(rename = "binding:host_id")]
    host_id: &'a str,
    #[serde(rename = "binding:vif_type")]
    vif_type: &'static str,
    #[serde(rename = "binding:vif_details")]
    vif_details: Empty,
    #[serde(rename = "binding:profile")]
    profile: Empty,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

/// `{"port": …}`.
#[derive(Serialize)]
struct One<'a> {
    port: PortView<'a>,
}

pub(super) fn view<'a>(caller: &Caller, p: &'a Port) -> PortView<'a> {
    PortView {
        id: &p.id,
        name: &p.name,
        description: &p.description,
        network_id: &p.network_id,
        project_id: &p.project_id,
        tenant_id: &p.project_id,
        mac_address: &p.mac_address,
        admin_state_up: p.admin_state_up,
        status: &p.status,
        device_id: &p.device_id,
        device_owner: &p.device_owner,
        fixed_ips: &p.fixed_ips,
        security_groups: &p.security_groups,
        port_security_enabled: p.port_security_enabled,
        allowed_address_pairs: &p.allowed_address_pairs,
        vnic_type: "normal",
        revision_number: p.revision_number,
        created_at: timestamp(&p.created_at),
        updated_at: timestamp(&p.updated_at),
        binding: caller.is_admin().then(|| Binding {
            host_id: &p.binding_host_id,
            vif_type: if p.binding_host_id.is_empty() {
                "unbound"
            } else {
                "bridge"
            },
            vif_details: Empty {},
            profile: Empty {},
        }),
    }
}
