//! Volume types: list, show, default, create, update, delete, extra specs.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{VolumeRequest, opt_string, parse_bool};
use crate::core::Core;
use crate::core::volumes::VolumeTypeCreate;
use crate::http::{ApiError, ApiResult, empty, json_response};
use crate::model::{Caller, VolumeType};

/// Extra specs every user may see (Cinder's user-visible keys); the rest are the
/// operator's driver settings.
const USER_VISIBLE_SPECS: &[&str] = &["multiattach", "RESKEY:availability_zones"];

pub async fn route(core: &Core, vreq: VolumeRequest) -> ApiResult {
    use Method as M;
    let VolumeRequest {
        mut req,
        caller,
        mv: _,
        path,
    } = vreq;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let caller = &caller;
    let method = req.method.clone();
    let one = |t: &VolumeType, answer: Answer| {
        json_response(
            StatusCode::OK,
            &json!({"volume_type": view(t, caller, answer)}),
        )
    };
    match (&method, p.as_slice()) {
        (&M::GET, ["types"]) => {
            let types = core.volume_types_list(caller).await?;
            let items: Vec<Value> = types
                .iter()
                .map(|t| view(t, caller, Answer::Show))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({"volume_types": items}),
            ))
        }
        (&M::GET, ["types", "default"]) => {
            Ok(one(&core.volume_type_default(caller).await?, Answer::Show))
        }
        (&M::GET, ["types", id]) => Ok(one(&core.volume_type_get(caller, id).await?, Answer::Show)),
        (&M::POST, ["types"]) => {
            let body: Value = req.json().await?;
            let input = create_input(&body)?;
            Ok(one(
                &core.volume_type_create(caller, input).await?,
                Answer::Create,
            ))
        }
        (&M::PUT, ["types", id]) => {
            let body: Value = req.json().await?;
            let Some(obj) = body.get("volume_type").and_then(Value::as_object) else {
                return Err(ApiError::bad_request(
                    "the body must be {\"volume_type\": {\"name\": …, \"description\": …, \"is_public\": …}}",
                ));
            };
            let is_public = match obj.get("is_public") {
                None | Some(Value::Null) => None,
                Some(v) => Some(parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid input for field/attribute is_public: give true or false",
                    )
                })?),
            };
            let name = opt_string(obj, "name")?.flatten();
            let description = opt_string(obj, "description")?;
            let updated = core
                .volume_type_update(caller, id, name, description, is_public)
                .await?;
            Ok(one(&updated, Answer::Update))
        }
        (&M::DELETE, ["types", id]) => {
            core.volume_type_delete(caller, id).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (&M::GET, ["types", id, "extra_specs"]) => {
            let t = core.volume_type_get(caller, id).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"extra_specs": visible_specs(&t, caller)}),
            ))
        }
        (&M::POST, ["types", id, "extra_specs"]) => {
            let body: Value = req.json().await?;
            let specs = match body.get("extra_specs") {
                Some(Value::Object(specs)) => spec_values(specs)?,
                _ => {
                    return Err(ApiError::bad_request(
                        "the body must be {\"extra_specs\": {\"KEY\": \"VALUE\", …}}",
                    ));
                }
            };
            core.volume_type_specs_set(caller, id, specs.clone())
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"extra_specs": specs}),
            ))
        }
        (&M::GET, ["types", id, "extra_specs", key]) => {
            let t = core.volume_type_get(caller, id).await?;
            let value = visible_specs(&t, caller).remove(*key).ok_or_else(|| {
                ApiError::not_found(format!(
                    "Volume Type {id} has no extra specs with key {key}."
                ))
            })?;
            Ok(json_response(StatusCode::OK, &json!({ *key: value })))
        }
        (&M::PUT, ["types", id, "extra_specs", key]) => {
            let body: Value = req.json().await?;
            let specs = match &body {
                Value::Object(specs) if specs.len() == 1 && specs.contains_key(*key) => {
                    spec_values(specs)?
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Request body and URI mismatch: the body must be {{\"{key}\": \"VALUE\"}}"
                    )));
                }
            };
            core.volume_type_specs_set(caller, id, specs.clone())
                .await?;
            Ok(json_response(StatusCode::OK, &specs))
        }
        (&M::DELETE, ["types", id, "extra_specs", key]) => {
            core.volume_type_spec_delete(caller, id, key).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

fn visible_specs(t: &VolumeType, caller: &Caller) -> BTreeMap<String, String> {
    t.extra_specs
        .iter()
        .filter(|(k, _)| caller.is_admin() || USER_VISIBLE_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Which answer a type is rendered for: Cinder's keys differ between them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Show,
    Create,
    Update,
}

/// Cinder's volume type view: `qos_specs_id` only in show and list answers to
/// administrators; no access attribute in update answers.
fn view(t: &VolumeType, caller: &Caller, answer: Answer) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "extra_specs": visible_specs(t, caller),
    });
    if answer != Answer::Update {
        v["os-volume-type-access:is_public"] = json!(t.is_public);
    }
    if answer == Answer::Show && caller.is_admin() {
        v["qos_specs_id"] = Value::Null;
    }
    v
}

fn spec_values(specs: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    specs
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), if *b { "True" } else { "False" }.to_string())),
            _ => Err(ApiError::bad_request(format!(
                "the value of extra spec {k} must be a string, number or boolean"
            ))),
        })
        .collect()
}

fn create_input(body: &Value) -> Result<VolumeTypeCreate, ApiError> {
    let Some(obj) = body.get("volume_type").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"volume_type\": {\"name\": …, \"extra_specs\": {…}}}",
        ));
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "Invalid input received: 'name' is a required property of a volume type and must be a string",
            ));
        }
    };
    let is_public = match obj
        .get("os-volume-type-access:is_public")
        .or_else(|| obj.get("is_public"))
    {
        None | Some(Value::Null) => true,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_request("Invalid input for field/attribute is_public: give true or false")
        })?,
    };
    let extra_specs = match obj.get("extra_specs") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(specs)) => spec_values(specs)?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute extra_specs: give an object",
            ));
        }
    };
    Ok(VolumeTypeCreate {
        name,
        description: opt_string(obj, "description")?.flatten(),
        is_public,
        extra_specs,
    })
}
