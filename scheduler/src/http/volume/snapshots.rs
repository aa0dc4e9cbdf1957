//! Volume snapshots: create, show, list, update, delete.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{VolumeRequest, metadata_field, opt_string, parse_bool, time};
use crate::core::Core;
use crate::core::volumes::SnapshotCreate;
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiResult, empty, json_response};
use crate::model::{VolumeSnapshot, volume_status as st};

pub async fn route(core: &Core, vreq: VolumeRequest) -> ApiResult {
    use Method as M;
    let VolumeRequest {
        mut req,
        caller,
        mv,
        path,
    } = vreq;
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let caller = &caller;
    let method = req.method.clone();
    let one = |status: StatusCode, s: &VolumeSnapshot, extended: bool| {
        json_response(status, &json!({"snapshot": view(s, mv, extended)}))
    };
    match (&method, p.as_slice()) {
        (&M::GET, ["snapshots"]) | (&M::GET, ["snapshots", "detail"]) => {
            let extended = p.len() == 2;
            let snapshots = core
                .snapshots_list(caller, req.query_flag("all_tenants"))
                .await?;
            let items: Vec<Value> = snapshots.iter().map(|s| view(s, mv, extended)).collect();
            Ok(json_response(StatusCode::OK, &json!({"snapshots": items})))
        }
        (&M::POST, ["snapshots"]) => {
            let body: Value = req.json().await?;
            let Some(obj) = body.get("snapshot").and_then(Value::as_object) else {
                return Err(ApiError::bad_request(
                    "the body must be {\"snapshot\": {\"volume_id\": …, \"name\": …}}",
                ));
            };
            let volume_id = obj
                .get("volume_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid input received: 'volume_id' is a required property of a snapshot",
                    )
                })?;
            let force = match obj.get("force") {
                None | Some(Value::Null) => false,
                Some(v) => parse_bool(v).ok_or_else(|| {
                    ApiError::bad_request("Invalid input received: force must be true or false")
                })?,
            };
            let input = SnapshotCreate {
                volume_id: volume_id.to_string(),
                name: opt_string(obj, "name")?.flatten(),
                description: opt_string(obj, "description")?.flatten(),
                force,
                metadata: metadata_field(obj.get("metadata"), "metadata")?.unwrap_or_default(),
            };
            Ok(one(
                StatusCode::ACCEPTED,
                &core.snapshot_create(caller, input).await?,
                false,
            ))
        }
        (&M::GET, ["snapshots", id]) => Ok(one(
            StatusCode::OK,
            &core.snapshot_get(caller, id).await?,
            true,
        )),
        (&M::PUT, ["snapshots", id]) => {
            let body: Value = req.json().await?;
            let Some(obj) = body.get("snapshot").and_then(Value::as_object) else {
                return Err(ApiError::bad_request(
                    "the body must be {\"snapshot\": {\"name\": …, \"description\": …}}",
                ));
            };
            let name = opt_string(obj, "name")?;
            let description = opt_string(obj, "description")?;
            Ok(one(
                StatusCode::OK,
                &core.snapshot_update(caller, id, name, description).await?,
                false,
            ))
        }
        (&M::DELETE, ["snapshots", id]) => {
            core.snapshot_delete(caller, id).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// Cinder's snapshot view at `mv`; `extended` (show and the detail list) adds the
/// attributes of Cinder's extended-snapshot-attributes extension.
fn view(s: &VolumeSnapshot, mv: Microversion, extended: bool) -> Value {
    let mut v = json!({
        "id": s.id.to_string(),
        "created_at": time(s.created_at),
        "updated_at": time(s.updated_at),
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id.to_string(),
        "status": s.status,
        "size": s.size_gb,
        "metadata": s.metadata,
    });
    if extended {
        let progress = if s.status == st::AVAILABLE {
            "100%"
        } else {
            "0%"
        };
        v["os-extended-snapshot-attributes:progress"] = json!(progress);
        v["os-extended-snapshot-attributes:project_id"] = json!(s.project_id);
    }
    if mv.at_least(3, 14) {
        v["group_snapshot_id"] = Value::Null;
    }
    if mv.at_least(3, 41) {
        v["user_id"] = json!(s.user_id);
    }
    v
}
