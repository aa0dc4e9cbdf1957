//! Nova key pairs: import or generate, list, show, delete — each user's own. From 2.2
//! they carry a `type` and create/delete answer 201/204; from 2.10 administrators name
//! another user with `user_id`.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{ComputeRequest, next_links};
use crate::core::Core;
use crate::core::compute::KeyPairCreate;
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::KeyPair;

pub async fn route(core: &Core, creq: ComputeRequest) -> ApiResult {
    use Method as M;
    let ComputeRequest { mut req, path, mv } = creq;
    let caller = req.caller(core).await?;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let method = req.method.clone();
    let user_id = user_param(&req, mv);
    match (&method, p.as_slice()) {
        (&M::GET, ["os-keypairs"]) => {
            let mut keypairs = core.keypairs_list(&caller, user_id.as_deref()).await?;
            let limit = page(&req, mv, &mut keypairs)?;
            let items: Vec<Value> = keypairs
                .iter()
                .map(|k| {
                    let mut view = json!({
                        "name": k.name,
                        "public_key": k.public_key,
                        "fingerprint": k.fingerprint,
                    });
                    if mv.at_least(2, 2) {
                        view["type"] = json!(k.kind);
                    }
                    json!({ "keypair": view })
                })
                .collect();
            let mut body = json!({"keypairs": items});
            // Nova links the next page only when this one is full.
            if let Some(last) = keypairs.last().filter(|_| limit == Some(keypairs.len())) {
                body["keypairs_links"] = next_links(core, &req, "os-keypairs", &last.name);
            }
            Ok(json_response(StatusCode::OK, &body))
        }
        (&M::POST, ["os-keypairs"]) => {
            let body: Value = req.json().await?;
            let input = create_input(&body, mv)?;
            let created = core.keypair_create(&caller, input).await?;
            let k = &created.keypair;
            let mut view = json!({
                "name": k.name,
                "public_key": k.public_key,
                "fingerprint": k.fingerprint,
                "user_id": k.user_id,
            });
            if mv.at_least(2, 2) {
                view["type"] = json!(k.kind);
            }
            if let Some(private) = created.private_key {
                view["private_key"] = json!(private);
            }
            let status = if mv.at_least(2, 2) {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(status, &json!({ "keypair": view })))
        }
        (&M::GET, ["os-keypairs", name]) => {
            let k = core.keypair_get(&caller, name, user_id.as_deref()).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"keypair": show(&k, mv)}),
            ))
        }
        (&M::DELETE, ["os-keypairs", name]) => {
            core.keypair_delete(&caller, name, user_id.as_deref())
                .await?;
            Ok(empty(if mv.at_least(2, 2) {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::ACCEPTED
            }))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// Pages a key pair list from 2.35 (`limit`, `marker`: a key pair's name, in name
/// order); the limit it applied.
fn page(
    req: &ApiRequest,
    mv: Microversion,
    keypairs: &mut Vec<KeyPair>,
) -> Result<Option<usize>, ApiError> {
    if !mv.at_least(2, 35) {
        return Ok(None);
    }
    keypairs.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(marker) = req.query_param("marker") {
        let at = keypairs
            .iter()
            .position(|k| k.name == marker)
            .ok_or_else(|| {
                ApiError::bad_request(format!("Marker keypair {marker} could not be found."))
            })?;
        keypairs.drain(..=at);
    }
    let limit = req
        .query_param("limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("limit {l:?} must be a non-negative integer"))
            })
        })
        .transpose()?;
    if let Some(l) = limit {
        keypairs.truncate(l);
    }
    Ok(limit)
}

/// `?user_id=` (2.10); an unknown parameter before.
fn user_param(req: &ApiRequest, mv: Microversion) -> Option<String> {
    if mv.at_least(2, 10) {
        req.query_param("user_id")
    } else {
        None
    }
}

/// Nova's key pair `show`: exactly these keys (`type` from 2.2).
fn show(k: &KeyPair, mv: Microversion) -> Value {
    let mut view = json!({
        "id": k.id,
        "name": k.name,
        "user_id": k.user_id,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "created_at": k.created_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        "updated_at": null,
        "deleted_at": null,
        "deleted": false,
    });
    if mv.at_least(2, 2) {
        view["type"] = json!(k.kind);
    }
    view
}

/// `{"keypair": {"name": …, "public_key": …}}`, plus `type` from 2.2 and `user_id`
/// from 2.10.
fn create_input(body: &Value, mv: Microversion) -> Result<KeyPairCreate, ApiError> {
    let Some(obj) = body.get("keypair").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"keypair\": {\"name\": …}}, with \"public_key\" to import a key",
        ));
    };
    let allowed = |k: &str| match k {
        "name" | "public_key" => true,
        "type" => mv.at_least(2, 2),
        "user_id" => mv.at_least(2, 10),
        _ => false,
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed(k)) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{unknown}' was unexpected) at microversion \
             {mv}: a key pair has a name, optionally a public_key, a type (2.2) and a user_id (2.10)"
        )));
    }
    let string = |field: &str| -> Result<Option<String>, ApiError> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {field}: give a string"
            ))),
        }
    };
    let name = string("name")?
        .ok_or_else(|| ApiError::bad_request("'name' is a required property of a key pair"))?;
    Ok(KeyPairCreate {
        name,
        public_key: string("public_key")?,
        kind: string("type")?,
        user_id: string("user_id")?,
    })
}
