//! Neutron v2.0 (clauses B.3.1, B.3.2, B.3.5): routing under `/network`, the resource
//! and extension lists, and what every network handler shares — the paging links,
//! query flags, and Neutron's exception names in error bodies.

pub(super) mod floating_ips;
pub(super) mod networks;
pub(super) mod ports;
pub(super) mod public_ips;
mod quotas;
pub(super) mod routers;
pub(super) mod security_groups;
pub(super) mod subnets;

use http::{Method, StatusCode};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{ApiError, ApiRequest, ApiResult, discovery, json_response};
use crate::core::Core;

/// The extensions this cloud offers, by Neutron's alias: what clients probe before
/// using an attribute or resource. One row per extension; services add theirs here
/// as they land (routers and floating IPs: `router`, `fip-port-details`; security
/// groups: `security-group`; `publicips`).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    (
        "provider",
        "Provider Network",
        "Expose mapping of virtual networks to physical networks",
    ),
    (
        "net-mtu",
        "Network MTU",
        "Provides MTU attribute for a network resource.",
    ),
    (
        "binding",
        "Port Binding",
        "Expose port bindings of a virtual port to external application",
    ),
    ("port-security", "Port Security", "Provides port security"),
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Provides allowed address pairs",
    ),
    (
        "quotas",
        "Quota management support",
        "Expose functions for quotas management per tenant",
    ),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron \
         standard attributes.",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access \
         to external networks via a NAT gateway.",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the \
         external gateway",
    ),
    (
        "fip-port-details",
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
    ),
    (
        "publicips",
        "Public IPs",
        "Public IP addresses from the default external network, bound to a server or a \
         private IP address; the same addresses and NAT as floating IPs.",
    ),
    (
        "security-group",
        "security-group",
        "The security groups extension.",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
];

/// The resources `GET /network/v2.0/` lists: (member name, collection).
const RESOURCES: &[(&str, &str)] = &[
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("quota", "quotas"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
    ("publicip", "publicips"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
];

/// Neutron's exception names, by status and the fixed part of the message core writes.
const FAULTS: &[(StatusCode, &str, &str)] = &[
    (StatusCode::NOT_FOUND, "Network ", "NetworkNotFound"),
    (
        StatusCode::NOT_FOUND,
        "Security group rule ",
        "SecurityGroupRuleNotFound",
    ),
    (
        StatusCode::NOT_FOUND,
        "Security group ",
        "SecurityGroupNotFound",
    ),
    (
        StatusCode::CONFLICT,
        "port(s) still use it",
        "SecurityGroupInUse",
    ),
    (
        StatusCode::CONFLICT,
        "Security group rule already exists",
        "SecurityGroupRuleExists",
    ),
    (
        StatusCode::CONFLICT,
        "removing default security group",
        "SecurityGroupCannotRemoveDefault",
    ),
    (
        StatusCode::CONFLICT,
        "Updating default security group",
        "SecurityGroupCannotUpdateDefault",
    ),
    (
        StatusCode::CONFLICT,
        "Default security group already exists",
        "SecurityGroupDefaultAlreadyExists",
    ),
    (StatusCode::NOT_FOUND, "Subnet ", "SubnetNotFound"),
    (StatusCode::NOT_FOUND, "Port ", "PortNotFound"),
    (StatusCode::NOT_FOUND, "Router ", "RouterNotFound"),
    (
        StatusCode::NOT_FOUND,
        "does not have an interface",
        "RouterInterfaceNotFound",
    ),
    (
        StatusCode::NOT_FOUND,
        "has no interface on subnet",
        "RouterInterfaceNotFoundForSubnet",
    ),
    (StatusCode::NOT_FOUND, "Floating IP ", "FloatingIPNotFound"),
    (
        StatusCode::NOT_FOUND,
        "is not reachable from subnet",
        "ExternalGatewayForFloatingIPNotFound",
    ),
    (
        StatusCode::CONFLICT,
        "already has a floating IP",
        "FloatingIPPortAlreadyAssociated",
    ),
    (
        StatusCode::CONFLICT,
        "required by one or more floating IPs",
        "RouterInterfaceInUseByFloatingIP",
    ),
    (StatusCode::CONFLICT, "still has ports", "RouterInUse"),
    (
        StatusCode::CONFLICT,
        "still has floating IPs",
        "RouterInUse",
    ),
    (StatusCode::CONFLICT, "is in use by device", "PortInUse"),
    (
        StatusCode::CONFLICT,
        "cannot be deleted directly",
        "ServicePortInUse",
    ),
    (
        StatusCode::CONFLICT,
        "already allocated in subnet",
        "IpAddressAlreadyAllocated",
    ),
    (
        StatusCode::CONFLICT,
        "No more IP addresses available",
        "IpAddressGenerationFailure",
    ),
    (StatusCode::CONFLICT, "The mac address", "MacAddressInUse"),
    (
        StatusCode::CONFLICT,
        "Cannot disable port security",
        "PortSecurityAndIPRequiredForSecurityGroups",
    ),
    (
        StatusCode::CONFLICT,
        "in order to have allowed address pairs",
        "AddressPairAndPortSecurityRequired",
    ),
    (
        StatusCode::CONFLICT,
        "ports still in use on the network",
        "NetworkInUse",
    ),
    (
        StatusCode::CONFLICT,
        "have an IP allocation from this subnet",
        "SubnetInUse",
    ),
    (
        StatusCode::CONFLICT,
        "conflicts with allocation pool",
        "GatewayConflictWithAllocationPools",
    ),
    (
        StatusCode::CONFLICT,
        "Quota exceeded for resources",
        "OverQuota",
    ),
];

/// Routes everything under `/network`.
pub async fn route(core: &Core, req: ApiRequest) -> ApiResult {
    resources(core, req).await.map_err(neutron_fault)
}

async fn resources(core: &Core, req: ApiRequest) -> ApiResult {
    use Method as M;
    let rest: Vec<String> = req.segments[1..].to_vec();
    let p: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (&req.method, p.as_slice()) {
        (&M::GET, []) => discovery::network(core, &req),
        (&M::GET, ["v2.0"]) => Ok(resource_list(core)),
        (&M::GET, ["v2.0", "extensions"]) => {
            req.caller(core).await?;
            let list: Vec<Value> = EXTENSIONS.iter().map(extension_view).collect();
            Ok(json_response(StatusCode::OK, &json!({"extensions": list})))
        }
        (&M::GET, ["v2.0", "extensions", alias]) => {
            req.caller(core).await?;
            let found = EXTENSIONS
                .iter()
                .find(|(a, _, _)| a == alias)
                .ok_or_else(|| ApiError::not_found(format!("Extension {alias} not found.")))?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"extension": extension_view(found)}),
            ))
        }
        (_, ["v2.0", "networks", ..]) => networks::route(core, req, &p[2..]).await,
        (_, ["v2.0", "subnets", ..]) => subnets::route(core, req, &p[2..]).await,
        (_, ["v2.0", "ports", ..]) => ports::route(core, req, &p[2..]).await,
        (_, ["v2.0", "quotas", ..]) => quotas::route(core, req, &p[2..]).await,
        (_, ["v2.0", "routers", ..]) => routers::route(core, req, &p[2..]).await,
        (_, ["v2.0", "floatingips", ..]) => floating_ips::route(core, req, &p[2..]).await,
        (_, ["v2.0", "publicips", ..]) => public_ips::route(core, req, &p[2..]).await,
        (_, ["v2.0", "security-groups", ..]) => security_groups::groups(core, req, &p[2..]).await,
        (_, ["v2.0", "security-group-rules", ..]) => {
            security_groups::rules(core, req, &p[2..]).await
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// A core error becomes 409 `OverQuota` as Neutron has it (core's quota errors are
/// Annex A's 413 elsewhere), and carries Neutron's exception name where one applies.
fn neutron_fault(mut e: ApiError) -> ApiError {
    if e.status == StatusCode::PAYLOAD_TOO_LARGE && e.message.starts_with("Quota exceeded") {
        e.status = StatusCode::CONFLICT;
    }
    e.neutron_type = FAULTS
        .iter()
        .find(|(status, phrase, _)| {
            e.status == *status
                && if phrase.ends_with(' ') {
                    e.message.starts_with(phrase) && e.message.ends_with("could not be found.")
                } else {
                    e.message.contains(phrase)
                }
        })
        .map(|(_, _, kind)| *kind);
    e
}

fn extension_view((alias, name, description): &(&str, &str, &str)) -> Value {
    json!({
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2013-01-01T00:00:00-00:00",
        "links": [],
    })
}

fn resource_list(core: &Core) -> super::Response {
    let list: Vec<Value> = RESOURCES
        .iter()
        .map(|(name, collection)| {
            json!({
                "name": name,
                "collection": collection,
                "links": [{
                    "rel": "self",
                    "href": format!("{}/network/v2.0/{collection}", core.public_url()),
                }],
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"resources": list}))
}

/// Neutron's timestamps: seconds, `Z`.
pub(super) fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A boolean query filter as Neutron reads it (`True`, `false`, `1`, …); 400 otherwise.
pub(super) fn query_bool(req: &ApiRequest, key: &str) -> Result<Option<bool>, ApiError> {
    match req.query_param(key) {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "yes" | "y" | "on" => Ok(Some(true)),
            "false" | "0" | "f" | "no" | "n" | "off" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(format!(
                "Invalid input for {key}. Reason: '{v}' cannot be converted to boolean."
            ))),
        },
    }
}

/// `limit` as a whole number (400 otherwise).
pub(super) fn query_limit(req: &ApiRequest) -> Result<Option<usize>, ApiError> {
    req.query_param("limit")
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "Bad limit request: Limit must be an integer 0 or greater and not '{v}'."
                ))
            })
        })
        .transpose()
}

/// Neutron's `<collection>_links`: a `next` link repeating the filters, with the last
/// item as marker, when more items follow.
pub(super) fn page_links(
    core: &Core,
    req: &ApiRequest,
    collection: &str,
    last_id: Option<&str>,
    more: bool,
) -> Value {
    let (Some(last), true) = (last_id, more) else {
        return json!([]);
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query_pairs() {
        if k != "marker" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("marker", last);
    json!([{
        "rel": "next",
        "href": format!("{}/network/v2.0/{collection}?{}", core.public_url(), query.finish()),
    }])
}

/// For fields where JSON `null` differs from absent (`gateway_ip: null` is "none").
pub(super) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The resource a create or update body wraps (`{"network": {…}}`), with a 400 that
/// says what shape was expected.
pub(super) fn member<T: serde::de::DeserializeOwned>(
    body: Value,
    key: &str,
) -> Result<T, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object {{\"{key}\": {{…}}}}"
        )));
    };
    let inner = map.remove(key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Resource body required: the body must be {{\"{key}\": {{…}}}}"
        ))
    })?;
    if !inner.is_object() {
        return Err(ApiError::bad_request(format!(
            "Invalid input: \"{key}\" must be a JSON object of its attributes"
        )));
    }
    serde_json::from_value(inner)
        .map_err(|e| ApiError::bad_request(format!("Invalid input for {key}: {e}")))
}

/// Nova's `addresses` of a server: its ports' addresses by network name.
pub(crate) fn server_addresses_view(
    addresses: Option<&Vec<crate::model::ServerAddress>>,
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for a in addresses.into_iter().flatten() {
        let entry = json!({
            "addr": a.addr,
            "version": a.version,
            "OS-EXT-IPS:type": if a.floating { "floating" } else { "fixed" },
            "OS-EXT-IPS-MAC:mac_addr": a.mac,
        });
        match out.get_mut(&a.network_name) {
            Some(Value::Array(list)) => list.push(entry),
            _ => {
                out.insert(a.network_name.clone(), json!([entry]));
            }
        }
    }
    out
}

/// Nova's `GET /servers/{id}/ips[/{network}]`: addresses with `addr` and `version`.
pub(crate) async fn server_ips(
    core: &Core,
    caller: &crate::model::Caller,
    id: &str,
    network: Option<&str>,
) -> ApiResult {
    let server = core
        .server_get(caller, id, crate::core::policy::Access::Read)
        .await?;
    let found = core.server_addresses(&[server.id]).await?;
    let mut by_network = serde_json::Map::new();
    for a in found.get(&server.id).into_iter().flatten() {
        let entry = json!({"addr": a.addr, "version": a.version});
        match by_network.get_mut(&a.network_name) {
            Some(Value::Array(list)) => list.push(entry),
            _ => {
                by_network.insert(a.network_name.clone(), json!([entry]));
            }
        }
    }
    match network {
        None => Ok(json_response(
            StatusCode::OK,
            &json!({"addresses": by_network}),
        )),
        Some(name) => {
            let list = by_network.remove(name).ok_or_else(|| {
                ApiError::not_found(format!(
                    "Network {name} could not be found on server {id}; GET \
                     /servers/{id}/ips lists its networks."
                ))
            })?;
            Ok(json_response(StatusCode::OK, &json!({ name: list })))
        }
    }
}
