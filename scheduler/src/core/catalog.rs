//! The service catalog: the six services at the URLs `API-BINDING.md` fixes, under the
//! configured public base URL, with ids that stay the same across restarts.

use serde_json::{Value, json};

/// (type, name, path under the public URL) of every service.
pub const SERVICES: &[(&str, &str, &str)] = &[
    ("identity", "keystone", "/identity/v3"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3"),
    ("volumev3", "cinderv3", "/volume/v3"),
    ("load-balancer", "octavia", "/load-balancer"),
];

const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

fn stable_id(what: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("yunji:{what}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// One catalog entry per service, each endpoint with `id`, `interface`, `region`,
/// `region_id` and `url` (clients refuse endpoints without them).
pub fn catalog(public_url: &str, region: &str) -> Value {
    Value::Array(
        SERVICES
            .iter()
            .map(|(kind, name, path)| {
                json!({
                    "id": stable_id(&format!("service:{kind}")),
                    "type": kind,
                    "name": name,
                    "endpoints": endpoints(public_url, region, kind, path),
                })
            })
            .collect(),
    )
}

fn endpoints(public_url: &str, region: &str, kind: &str, path: &str) -> Vec<Value> {
    INTERFACES
        .iter()
        .map(|interface| {
            json!({
                "id": stable_id(&format!("endpoint:{kind}:{interface}")),
                "interface": interface,
                "region": region,
                "region_id": region,
                "url": format!("{public_url}{path}"),
            })
        })
        .collect()
}

/// `GET /v3/services`: the catalog's services without their endpoints.
pub fn services() -> Vec<Value> {
    SERVICES
        .iter()
        .map(|(kind, name, _)| {
            json!({
                "id": stable_id(&format!("service:{kind}")),
                "type": kind,
                "name": name,
                "enabled": true,
                "description": format!("yunji {kind} service"),
            })
        })
        .collect()
}

/// `GET /v3/endpoints`: every endpoint with its `service_id`.
pub fn endpoint_list(public_url: &str, region: &str) -> Vec<Value> {
    SERVICES
        .iter()
        .flat_map(|(kind, _, path)| {
            endpoints(public_url, region, kind, path)
                .into_iter()
                .map(move |mut e| {
                    e["service_id"] = Value::String(stable_id(&format!("service:{kind}")));
                    e["enabled"] = Value::Bool(true);
                    e
                })
        })
        .collect()
}
