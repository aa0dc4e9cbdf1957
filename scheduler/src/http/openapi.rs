//! The OpenAPI 3.1 document of the whole API, rendered from the route table
//! (`routes.rs`) and, for request bodies, from the very types the handlers parse
//! (their `utoipa::ToSchema`). Served at `/openapi.json` and committed as
//! `docs/openapi.json`; a test fails when the two drift apart.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::Bytes;
use http::Method;
use serde_json::{Map, Value, json};
use yunji_common::openapi::{Schemas, path_parameters};

use super::discovery::{COMPUTE_MAX, COMPUTE_MIN, VOLUME_MAX, VOLUME_MIN};
use super::routes::{ROUTES, Route};

/// The services, as the document's tags, in the order the table lists them.
const SERVICES: &[(&str, &str)] = &[
    ("discovery", "Version discovery: what each service offers"),
    (
        "identity",
        "Keystone v3: tokens, projects, users, roles, regions (B.1.1, B.1.2)",
    ),
    (
        "compute",
        "Nova 2.1: servers, flavors, key pairs, quotas, hypervisors (B.1.2, B.1.3.1, B.2.1, B.2.2)",
    ),
    ("image", "Glance v2: images (B.2.3)"),
    (
        "network",
        "Neutron v2.0 with the publicips extension: networks, floating and public IPs, security groups (B.3.1–B.3.3, B.3.5)",
    ),
    (
        "volume",
        "Cinder v3: volumes, snapshots, types, quotas (B.1.3.2, B.4.1)",
    ),
    (
        "load-balancer",
        "Octavia v2 with the nodes extension: load balancers (B.3.4)",
    ),
    ("nodes", "Agents joining the cloud"),
];

fn tag(route: &Route) -> &'static str {
    let segments: Vec<&str> = route.path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["agent-join", ..] => "nodes",
        [_, _, _, ..] => SERVICES
            .iter()
            .find(|(name, _)| *name == segments[0])
            .map_or("discovery", |(name, _)| name),
        _ => "discovery",
    }
}

/// `get /compute/v2.1/servers/{server_id}` → `get_compute_v2.1_servers_server_id`.
fn operation_id(route: &Route) -> String {
    let mut id = route.method.as_str().to_ascii_lowercase();
    for segment in route.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.push_str(segment.trim_start_matches('{').trim_end_matches('}'));
    }
    id
}

fn parameters(route: &Route, service: &str) -> Vec<Value> {
    let mut list = path_parameters(route.path);
    let microversions = match service {
        "compute" if route.path.matches('/').count() > 2 => {
            Some(("compute", COMPUTE_MIN, COMPUTE_MAX))
        }
        "volume" if route.path.matches('/').count() > 2 => Some(("volume", VOLUME_MIN, VOLUME_MAX)),
        _ => None,
    };
    if let Some((name, min, max)) = microversions {
        list.push(json!({
            "name": "OpenStack-API-Version",
            "in": "header",
            "required": false,
            "description": format!("`{name} X.Y`, from {min} to {max}; {min} when absent"),
            "schema": {"type": "string"},
        }));
    }
    list
}

fn responses(route: &Route, service: &str) -> Value {
    let mut map = Map::new();
    for status in route.statuses {
        let description = status.canonical_reason().unwrap_or("Success");
        map.insert(status.as_str().into(), json!({"description": description}));
    }
    let error = match service {
        "identity" | "nodes" | "discovery" => "IdentityError",
        "compute" | "volume" => "ComputeError",
        "image" => "ImageError",
        "network" => "NeutronError",
        _ => "OctaviaError",
    };
    map.insert(
        "default".into(),
        json!({"$ref": format!("#/components/responses/{error}")}),
    );
    Value::Object(map)
}

fn request_body(route: &Route, schemas: &mut Schemas) -> Option<Value> {
    let body = route.body.as_ref()?;
    let inner = serde_json::to_value((body.schema)(schemas)).unwrap_or(Value::Null);
    let schema = match body.envelope {
        Some(key) => json!({"type": "object", "required": [key], "properties": {key: inner}}),
        None => inner,
    };
    Some(json!({"required": true, "content": {"application/json": {"schema": schema}}}))
}

fn method_key(method: &Method) -> String {
    method.as_str().to_ascii_lowercase()
}

/// The error bodies of the services.
fn error_schemas() -> Map<String, Value> {
    let message = json!({"type": "string"});
    let code = json!({"type": "integer"});
    let keyed = |inner: Value| {
        json!({"type": "object", "minProperties": 1, "maxProperties": 1,
               "description": "One key naming the error (badRequest, itemNotFound, conflictingRequest, …)",
               "additionalProperties": inner})
    };
    let mut map = Map::new();
    map.insert(
        "IdentityError".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": code, "title": {"type": "string"}, "message": message}}}}),
    );
    map.insert(
        "ComputeError".into(),
        keyed(json!({"type": "object", "required": ["code", "message"],
                     "properties": {"code": code, "message": message}})),
    );
    map.insert(
        "ImageError".into(),
        json!({"type": "object", "required": ["code", "message"],
               "properties": {"code": code, "title": {"type": "string"}, "message": message}}),
    );
    map.insert(
        "NeutronError".into(),
        json!({"type": "object", "required": ["NeutronError"], "properties": {"NeutronError": {
            "type": "object", "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": message, "detail": {"type": "string"}}}}}),
    );
    map.insert(
        "OctaviaError".into(),
        json!({"type": "object", "required": ["faultcode", "faultstring"],
               "properties": {"faultcode": {"type": "string", "enum": ["Client", "Server"]},
                              "faultstring": message, "debuginfo": {"type": ["string", "null"]}}}),
    );
    map
}

/// The document.
pub fn document() -> Value {
    let mut schemas = Schemas::new();
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for route in ROUTES {
        let service = tag(route);
        let mut operation = json!({
            "operationId": operation_id(route),
            "summary": route.summary,
            "tags": [service],
            "parameters": parameters(route, service),
            "responses": responses(route, service),
        });
        if let Some(body) = request_body(route, &mut schemas) {
            operation["requestBody"] = body;
        }
        if route.public {
            operation["security"] = json!([]);
        }
        if !route.clauses.is_empty() {
            operation["x-clauses"] = json!(route.clauses);
        }
        paths
            .entry(route.path)
            .or_default()
            .insert(method_key(&route.method), operation);
    }
    let mut components = error_schemas();
    let error_responses: Map<String, Value> = components
        .keys()
        .map(|name| {
            let response = json!({
                "description": "An error in the service's own body shape, with a message that says what to do",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}},
            });
            (name.clone(), response)
        })
        .collect();
    for (name, schema) in schemas {
        let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
        if let Some(existing) = components.get(&name) {
            // Two types under one name would silently document the wrong one.
            assert_eq!(existing, &schema, "two request types are both named {name}");
        }
        components.insert(name, schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "yunji",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The IaaS interfaces of CH/Z 云计算服务地理信息系统开发接口规范 — \
                基础设施即服务, on OpenStack's wire format. `x-clauses` names the clauses of \
                Annex B an operation implements. Every path after `/compute/v2.1` is also \
                served under `/compute/v2.1/{project_id}`, every `/volume/v3/{project_id}` \
                path also without the project, and `/load-balancer/v2.0` as `/load-balancer/v2`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": SERVICES.iter().map(|(name, description)| json!({"name": name, "description": description})).collect::<Vec<_>>(),
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {
                "type": "apiKey", "in": "header", "name": "X-Auth-Token",
                "description": "A Keystone token from POST /identity/v3/auth/tokens (X-Subject-Token)",
            }},
            "responses": error_responses,
            "schemas": components,
        },
    })
}

/// The document as served, rendered once.
pub fn document_json() -> Bytes {
    static JSON: LazyLock<Bytes> =
        LazyLock::new(|| Bytes::from(serde_json::to_vec_pretty(&document()).unwrap_or_default()));
    JSON.clone()
}
