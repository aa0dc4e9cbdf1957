//! Nova flavors (clause B.2.2): create, delete, show, list (filters, sorting, paging),
//! flavor access and extra specs; from 2.55 a description an administrator may change.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ComputeRequest, next_links, parse_bool};
use crate::core::Core;
use crate::core::compute::{FlavorCreate, FlavorQuery, PublicFilter};
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{Caller, Flavor, FlavorSort};

/// Characters escaped when an id goes into a URL path.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { mut req, path, mv } = creq;
    // 2.55 shows a flavor's description and lets an administrator change it.
    let described = mv.at_least(2, 55);
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method.clone();
    match (&method, p.as_slice()) {
        (&M::GET, ["flavors"]) => list(core, &req, &caller, false, described).await,
        (&M::GET, ["flavors", "detail"]) => list(core, &req, &caller, true, described).await,
        (&M::POST, ["flavors"]) => create(core, &mut req, &caller, described).await,
        (&M::GET, ["flavors", id]) => {
            let flavor = core.flavor_get(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"flavor": detail(core, &flavor, described)}),
            ))
        }
        (&M::PUT, ["flavors", _]) if !described => Err(ApiError::not_found(format!(
            "PUT {} needs compute microversion 2.55 or later",
            req.path
        ))),
        (&M::PUT, ["flavors", id]) => {
            let body: Value = req.json().await?;
            let description = match body.get("flavor").and_then(Value::as_object) {
                Some(f) if f.len() == 1 => match f.get("description") {
                    Some(Value::String(d)) => Some(d.clone()),
                    Some(Value::Null) => None,
                    _ => return Err(update_body()),
                },
                _ => return Err(update_body()),
            };
            let flavor = core
                .flavor_description_set(&caller, id, description)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"flavor": detail(core, &flavor, true)}),
            ))
        }
        (&M::DELETE, ["flavors", id]) => {
            core.flavor_delete(&caller, id).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (&M::GET, ["flavors", id, "os-flavor-access"]) => {
            let projects = core.flavor_access_list(&caller, id).await?;
            Ok(access_view(id, &projects))
        }
        (&M::POST, ["flavors", id, "action"]) => action(core, &mut req, &caller, id).await,
        (&M::GET, ["flavors", id, "os-extra_specs"]) => {
            let specs = core.flavor_extra_specs(&caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"extra_specs": specs}),
            ))
        }
        (&M::POST, ["flavors", id, "os-extra_specs"]) => {
            let body: Value = req.json().await?;
            let specs = match body.get("extra_specs") {
                Some(Value::Object(specs)) => spec_values(specs)?,
                _ => {
                    return Err(ApiError::bad_request(
                        "the body must be {\"extra_specs\": {\"KEY\": \"VALUE\", …}}",
                    ));
                }
            };
            let set = core.flavor_extra_specs_set(&caller, id, specs).await?;
            Ok(json_response(StatusCode::OK, &json!({"extra_specs": set})))
        }
        (&M::GET, ["flavors", id, "os-extra_specs", key]) => {
            let value = core.flavor_extra_spec(&caller, id, key).await?;
            Ok(json_response(StatusCode::OK, &json!({ *key: value })))
        }
        (&M::PUT, ["flavors", id, "os-extra_specs", key]) => {
            let body: Value = req.json().await?;
            let specs = match &body {
                Value::Object(specs) if specs.len() == 1 && specs.contains_key(*key) => {
                    spec_values(specs)?
                }
                Value::Object(specs) if specs.len() > 1 => {
                    return Err(ApiError::bad_request(
                        "Request body contains too many items: send {\"KEY\": \"VALUE\"} for the key in the URL only",
                    ));
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Request body and URI mismatch: the body must be {{\"{key}\": \"VALUE\"}}"
                    )));
                }
            };
            let set = core.flavor_extra_specs_set(&caller, id, specs).await?;
            Ok(json_response(StatusCode::OK, &set))
        }
        (&M::DELETE, ["flavors", id, "os-extra_specs", key]) => {
            core.flavor_extra_spec_delete(&caller, id, key).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

fn links(core: &Core, id: &str) -> Value {
    let id = percent_encoding::utf8_percent_encode(id, SEGMENT);
    json!([
        {"href": format!("{}/compute/v2.1/flavors/{id}", core.public_url()), "rel": "self"},
        {"href": format!("{}/compute/flavors/{id}", core.public_url()), "rel": "bookmark"},
    ])
}

/// What `PUT /flavors/{id}` takes.
fn update_body() -> ApiError {
    ApiError::bad_request(
        "the body must be {\"flavor\": {\"description\": TEXT or null}}: a flavor's \
         description is the only thing that changes after it is created",
    )
}

/// Nova's flavor detail: exactly these keys, and from 2.55 `description`.
fn detail(core: &Core, f: &Flavor, described: bool) -> Value {
    let mut view = json!({
        "id": f.id,
        "name": f.name,
        "ram": f.ram_mb,
        "disk": f.disk_gb,
        "vcpus": f.vcpus,
        "swap": if f.swap_mb == 0 { json!("") } else { json!(f.swap_mb) },
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": false,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": f.rxtx_factor,
        "links": links(core, &f.id),
    });
    if described {
        view["description"] = json!(f.description);
    }
    view
}

fn summary(core: &Core, f: &Flavor, described: bool) -> Value {
    let mut view = json!({"id": f.id, "name": f.name, "links": links(core, &f.id)});
    if described {
        view["description"] = json!(f.description);
    }
    view
}

fn access_view(id: &str, projects: &[String]) -> crate::http::Response {
    let items: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    json_response(StatusCode::OK, &json!({"flavor_access": items}))
}

fn parse_sort(key: &str) -> Option<FlavorSort> {
    Some(match key {
        "id" | "created_at" | "updated_at" => FlavorSort::Created,
        "flavorid" => FlavorSort::FlavorId,
        "name" => FlavorSort::Name,
        "vcpus" => FlavorSort::Vcpus,
        "memory_mb" => FlavorSort::RamMb,
        "root_gb" => FlavorSort::DiskGb,
        "ephemeral_gb" => FlavorSort::EphemeralGb,
        "swap" => FlavorSort::SwapMb,
        "rxtx_factor" => FlavorSort::RxtxFactor,
        "is_public" => FlavorSort::IsPublic,
        "disabled" => FlavorSort::Disabled,
        "description" => FlavorSort::Description,
        _ => return None,
    })
}

fn query(req: &ApiRequest) -> Result<FlavorQuery, ApiError> {
    let size = |name: &str| -> Result<Option<u64>, ApiError> {
        match req.query_param(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(|n| Some(u64::try_from(n).unwrap_or(0)))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "Invalid {name} filter [{v}]: give a whole number"
                    ))
                }),
        }
    };
    let is_public = match req.query_param("is_public") {
        None => PublicFilter::Default,
        Some(v) if v.eq_ignore_ascii_case("none") => PublicFilter::All,
        Some(v) => PublicFilter::Only(parse_bool(&v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid is_public filter [{v}]: use true, false or none"
            ))
        })?),
    };
    let sort = match req.query_param("sort_key") {
        None => FlavorSort::FlavorId,
        Some(k) => parse_sort(&k).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Sort key supplied is invalid: {k}; use flavorid, name, memory_mb, vcpus, \
                 root_gb, ephemeral_gb, swap, rxtx_factor, is_public, disabled, description, \
                 id or created_at"
            ))
        })?,
    };
    let descending = match req.query_param("sort_dir").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(d) => {
            return Err(ApiError::bad_request(format!(
                "Unknown sort direction {d:?}, must be 'desc' or 'asc'"
            )));
        }
    };
    let limit = match req.query_param("limit") {
        None => None,
        Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "limit param must be a non-negative integer, not {v:?}"
            ))
        })?),
    };
    Ok(FlavorQuery {
        min_ram_mb: size("minRam")?,
        min_disk_gb: size("minDisk")?,
        is_public,
        sort,
        descending,
        limit,
        marker: req.query_param("marker"),
    })
}

async fn list(
    core: &Core,
    req: &ApiRequest,
    caller: &Caller,
    details: bool,
    described: bool,
) -> ApiResult {
    let page = core.flavors_list(caller, query(req)?).await?;
    let items: Vec<Value> = page
        .flavors
        .iter()
        .map(|f| {
            if details {
                detail(core, f, described)
            } else {
                summary(core, f, described)
            }
        })
        .collect();
    let mut body = json!({"flavors": items});
    if page.more
        && let Some(last) = page.flavors.last()
    {
        let path = if details { "flavors/detail" } else { "flavors" };
        body["flavors_links"] = next_links(core, req, path, &last.id);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// An integer field Nova accepts as a JSON integer or a string of digits.
fn int_field(obj: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute {name}: give a whole number"
        ))
    };
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_err(|_| bad())
        }
        Some(_) => Err(bad()),
    }
}

const CREATE_FIELDS: &[&str] = &[
    "name",
    "id",
    "ram",
    "vcpus",
    "disk",
    "OS-FLV-EXT-DATA:ephemeral",
    "swap",
    "rxtx_factor",
    "os-flavor-access:is_public",
    "description",
];

fn create_input(body: &Value, described: bool) -> Result<FlavorCreate, ApiError> {
    let Some(obj) = body.get("flavor").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"flavor\": {\"name\": …, \"ram\": …, \"vcpus\": …, \"disk\": …}}",
        ));
    };
    if obj.contains_key("description") && !described {
        return Err(ApiError::bad_request(
            "a flavor's description needs compute microversion 2.55 or later",
        ));
    }
    if let Some(unknown) = obj.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{unknown}' was unexpected); a flavor has {}",
            CREATE_FIELDS.join(", ")
        )));
    }
    let required = |name: &str| -> Result<i64, ApiError> {
        int_field(obj, name)?.ok_or_else(|| {
            ApiError::bad_request(format!("'{name}' is a required property of a flavor"))
        })
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "'name' is a required property of a flavor and must be a string",
            ));
        }
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute id: give a string, or leave it out for a UUID",
            ));
        }
    };
    let rxtx_factor = match obj.get("rxtx_factor") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.parse::<f64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute rxtx_factor: {s:?} is not a number"
            ))
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute rxtx_factor: give a number greater than 0",
            ));
        }
    };
    let is_public = match obj.get("os-flavor-access:is_public") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => false,
        Some(Value::Number(n)) if n.as_i64() == Some(1) => true,
        Some(Value::String(s)) => parse_bool(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute os-flavor-access:is_public: {s:?} is not a boolean"
            ))
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute os-flavor-access:is_public: give true or false",
            ));
        }
    };
    let description = match obj.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute description: give a string",
            ));
        }
    };
    Ok(FlavorCreate {
        id,
        name,
        ram_mb: required("ram")?,
        vcpus: required("vcpus")?,
        disk_gb: required("disk")?,
        ephemeral_gb: int_field(obj, "OS-FLV-EXT-DATA:ephemeral")?.unwrap_or(0),
        swap_mb: int_field(obj, "swap")?.unwrap_or(0),
        rxtx_factor,
        is_public,
        description,
    })
}

async fn create(core: &Core, req: &mut ApiRequest, caller: &Caller, described: bool) -> ApiResult {
    let body: Value = req.json().await?;
    let input = create_input(&body, described)?;
    let flavor = core.flavor_create(caller, input).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"flavor": detail(core, &flavor, described)}),
    ))
}

async fn action(core: &Core, req: &mut ApiRequest, caller: &Caller, id: &str) -> ApiResult {
    let body: Value = req.json().await?;
    let tenant = |inner: &Value| -> Result<String, ApiError> {
        inner
            .get("tenant")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request("the action needs {\"tenant\": PROJECT_ID}"))
    };
    let projects = match &body {
        Value::Object(o) if o.len() == 1 && o.contains_key("addTenantAccess") => {
            let project = tenant(&o["addTenantAccess"])?;
            core.flavor_access_add(caller, id, &project).await?
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("removeTenantAccess") => {
            let project = tenant(&o["removeTenantAccess"])?;
            core.flavor_access_remove(caller, id, &project).await?
        }
        _ => {
            return Err(ApiError::bad_request(
                "a flavor action is {\"addTenantAccess\": {\"tenant\": …}} or \
                 {\"removeTenantAccess\": {\"tenant\": …}}",
            ));
        }
    };
    Ok(access_view(id, &projects))
}

/// Extra spec values: strings, or numbers and booleans Nova turns into strings.
fn spec_values(specs: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    specs
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(true) => "True".into(),
                Value::Bool(false) => "False".into(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "the value of extra spec {k} must be a string, number or boolean"
                    )));
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}
