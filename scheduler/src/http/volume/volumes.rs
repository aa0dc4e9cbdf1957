//! Volumes: create, show, list (summary, detail, filters, sorting, paging), update,
//! delete, metadata and the actions of `POST /volumes/{id}/action`.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{VolumeRequest, links, metadata_field, opt_string, parse_bool, time};
use crate::core::Core;
use crate::core::policy::Access;
use crate::core::volumes::{
    AttachRequest, VolumeAction, VolumeCreate, VolumeListQuery, VolumeUpdate,
};
use crate::http::microversion::Microversion;
use crate::http::{ApiError, ApiRequest, ApiResult, empty, json_response};
use crate::model::{Caller, Volume, VolumeFilter};

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
    match (&method, p.as_slice()) {
        (&M::GET, ["volumes"]) => list(core, &req, caller, mv, false).await,
        (&M::GET, ["volumes", "detail"]) => list(core, &req, caller, mv, true).await,
        (&M::GET, ["volumes", "summary"]) if mv.at_least(3, 12) => {
            summary(core, &req, caller, mv).await
        }
        (&M::POST, ["volumes"]) => create(core, &mut req, caller, mv).await,
        (&M::GET, ["volumes", id]) => {
            let volume = core.volume_get(caller, id, Access::Read).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"volume": detail(core, &volume, caller, mv, true)}),
            ))
        }
        (&M::PUT, ["volumes", id]) => update(core, &mut req, caller, mv, id).await,
        (&M::DELETE, ["volumes", id]) => {
            // `cascade` would delete snapshots too; this cloud refuses instead (400).
            core.volume_delete(caller, id, false).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (&M::POST, ["volumes", id, "action"]) => action(core, &mut req, caller, mv, id).await,
        (&M::GET, ["volumes", id, "metadata"]) => {
            let volume = core.volume_get(caller, id, Access::Read).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"metadata": volume.metadata}),
            ))
        }
        (&M::POST | &M::PUT, ["volumes", id, "metadata"]) => {
            let body: Value = req.json().await?;
            let items = metadata_field(body.get("metadata"), "metadata")?.ok_or_else(|| {
                ApiError::bad_request("the body must be {\"metadata\": {\"KEY\": \"VALUE\", …}}")
            })?;
            let replace = method == M::PUT;
            let set = core.volume_metadata_set(caller, id, items, replace).await?;
            Ok(json_response(StatusCode::OK, &json!({"metadata": set})))
        }
        (&M::GET, ["volumes", id, "metadata", key]) => {
            let volume = core.volume_get(caller, id, Access::Read).await?;
            let value = volume.metadata.get(*key).ok_or_else(|| {
                ApiError::not_found(format!("Volume {id} has no metadata with key {key}."))
            })?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"meta": {*key: value}}),
            ))
        }
        (&M::PUT, ["volumes", id, "metadata", key]) => {
            let body: Value = req.json().await?;
            let items = metadata_field(body.get("meta"), "meta")?.unwrap_or_default();
            if items.len() != 1 || !items.contains_key(*key) {
                return Err(ApiError::bad_request(format!(
                    "Request body and URI mismatch: the body must be {{\"meta\": {{\"{key}\": \"VALUE\"}}}}"
                )));
            }
            core.volume_metadata_set(caller, id, items.clone(), false)
                .await?;
            Ok(json_response(StatusCode::OK, &json!({"meta": items})))
        }
        (&M::DELETE, ["volumes", id, "metadata", key]) => {
            core.volume_metadata_delete(caller, id, key).await?;
            Ok(empty(StatusCode::OK))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// Cinder's volume detail at `mv`: the 20 base keys, what later microversions add, and
/// with `extended` (show and detail lists, not create or update answers) the tenant,
/// host, migration and image attributes of Cinder's extensions.
pub fn detail(core: &Core, v: &Volume, caller: &Caller, mv: Microversion, extended: bool) -> Value {
    let id = v.id.to_string();
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        .filter(|a| a.status != "attaching")
        .map(|a| {
            json!({
                "server_id": a.server_id.to_string(),
                "attachment_id": a.id.to_string(),
                "attached_at": a.attached_at.map(time),
                "host_name": a.host_name,
                "volume_id": id,
                "device": a.device,
                "id": id,
            })
        })
        .collect();
    let mut view = json!({
        "id": id,
        "status": v.status,
        "size": v.size_gb,
        "availability_zone": v.availability_zone,
        "created_at": time(v.created_at),
        "updated_at": time(v.updated_at),
        "attachments": attachments,
        "name": v.name,
        "description": v.description,
        "volume_type": v.type_name,
        "snapshot_id": v.snapshot_id.map(|s| s.to_string()),
        "source_volid": null,
        "metadata": v.metadata,
        "links": links(core, &v.project_id, "volumes", &id),
        "user_id": v.user_id,
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": false,
        "replication_status": null,
        "consistencygroup_id": null,
        "multiattach": v.multiattach,
    });
    if caller.is_admin() {
        view["migration_status"] = Value::Null;
    }
    if extended {
        view["os-vol-tenant-attr:tenant_id"] = json!(v.project_id);
        if let Some(image_id) = &v.image_id {
            view["volume_image_metadata"] = json!({"image_id": image_id});
        }
        if caller.is_admin() {
            view["os-vol-host-attr:host"] = json!(v.host.as_ref().map(|h| pool_name(h)));
            view["os-vol-mig-status-attr:migstat"] = Value::Null;
            view["os-vol-mig-status-attr:name_id"] = Value::Null;
        }
    }
    if mv.at_least(3, 13) {
        view["group_id"] = Value::Null;
    }
    if mv.at_least(3, 21) && caller.is_admin() {
        view["provider_id"] = Value::Null;
    }
    view
}

/// Cinder's `host@backend#pool` for a node's storage.
pub fn pool_name(node: &str) -> String {
    format!("{node}@sim#sim")
}

fn summary_item(core: &Core, v: &Volume) -> Value {
    let id = v.id.to_string();
    json!({"id": id, "name": v.name, "links": links(core, &v.project_id, "volumes", &id)})
}

/// Cinder accepts `metadata` as JSON or as a Python dict literal (`{'k': 'v'}`).
fn metadata_filter(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid input received: metadata filter {text:?} must be a JSON object of strings"
        ))
    };
    let parsed: Value = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&text.replace('\'', "\"")))
        .map_err(|_| bad())?;
    metadata_field(Some(&parsed), "metadata")
        .map_err(|_| bad())?
        .ok_or_else(bad)
}

fn list_query(req: &ApiRequest) -> Result<VolumeListQuery, ApiError> {
    let mut sort = Vec::new();
    let direction = |d: &str| -> Result<bool, ApiError> {
        match d {
            "asc" => Ok(false),
            "desc" => Ok(true),
            other => Err(ApiError::bad_request(format!(
                "Invalid input received: Unknown sort direction {other:?}, must be 'desc' or 'asc'"
            ))),
        }
    };
    if let Some(spec) = req.query_param("sort") {
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (key, dir) = item.split_once(':').unwrap_or((item, "desc"));
            sort.push((key.trim().to_string(), direction(dir.trim())?));
        }
    } else if let Some(keys) = req.query_param("sort_key") {
        let dir = direction(req.query_param("sort_dir").as_deref().unwrap_or("desc"))?;
        for key in keys.split(',') {
            sort.push((key.trim().to_string(), dir));
        }
    }
    let limit = match req.query_param("limit") {
        None => None,
        Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input received: limit must be a non-negative integer, not {v:?}"
            ))
        })?),
    };
    let bootable = match req.query_param("bootable") {
        None => None,
        Some(v) => Some(parse_bool(&Value::String(v.clone())).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input received: bootable filter {v:?} must be true or false"
            ))
        })?),
    };
    let all_tenants = req.query_flag("all_tenants");
    Ok(VolumeListQuery {
        filter: VolumeFilter {
            project_id: if all_tenants {
                req.query_param("project_id")
            } else {
                None
            },
            name: req.query_param("name"),
            status: req.query_param("status"),
            availability_zone: req.query_param("availability_zone"),
            bootable,
            type_id: req.query_param("volume_type"),
            metadata: match req.query_param("metadata") {
                Some(m) => metadata_filter(&m)?,
                None => BTreeMap::new(),
            },
        },
        all_tenants,
        sort,
        limit,
        marker: req.query_param("marker"),
    })
}

async fn list(
    core: &Core,
    req: &ApiRequest,
    caller: &Caller,
    mv: Microversion,
    details: bool,
) -> ApiResult {
    let page = core.volumes_list(caller, list_query(req)?).await?;
    let items: Vec<Value> = page
        .volumes
        .iter()
        .map(|v| {
            if details {
                detail(core, v, caller, mv, true)
            } else {
                summary_item(core, v)
            }
        })
        .collect();
    let mut body = json!({"volumes": items});
    if page.more
        && let Some(last) = page.volumes.last()
    {
        let mut params = form_urlencoded::Serializer::new(String::new());
        for (k, v) in req.query_pairs() {
            if k != "marker" {
                params.append_pair(&k, &v);
            }
        }
        params.append_pair("marker", &last.id.to_string());
        let tail = if details { "/detail" } else { "" };
        let project = caller.project_id().unwrap_or_default();
        body["volumes_links"] = json!([{
            "href": format!("{}/volume/v3/{project}/volumes{tail}?{}", core.public_url(), params.finish()),
            "rel": "next",
        }]);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /volumes/summary` (3.12; metadata from 3.36).
async fn summary(core: &Core, req: &ApiRequest, caller: &Caller, mv: Microversion) -> ApiResult {
    let mut query = list_query(req)?;
    query.limit = None;
    query.marker = None;
    let page = core.volumes_list(caller, query).await?;
    let mut body = json!({"volume-summary": {
        "total_count": page.volumes.len(),
        "total_size": page.volumes.iter().map(|v| v.size_gb).sum::<i64>(),
    }});
    if mv.at_least(3, 36) {
        let mut metadata: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in &page.volumes {
            for (k, val) in &v.metadata {
                let values = metadata.entry(k.clone()).or_default();
                if !values.contains(val) {
                    values.push(val.clone());
                }
            }
        }
        body["volume-summary"]["metadata"] = json!(metadata);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// A size Cinder accepts: a JSON integer, or a string of digits.
fn size_field(obj: &Map<String, Value>, name: &str) -> Result<Option<i64>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid input received: {name} must be an integer and greater than 0"
        ))
    };
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    Ok(opt_string(obj, name)?.flatten())
}

fn create_input(body: &Value) -> Result<VolumeCreate, ApiError> {
    let Some(obj) = body.get("volume").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"volume\": {\"size\": GB, \"name\": …}}",
        ));
    };
    if obj.get("source_volid").is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(
            "Invalid input received: cloning a volume (source_volid) is not offered; snapshot \
             it and create the new volume from the snapshot",
        ));
    }
    let multiattach = match obj.get("multiattach") {
        None | Some(Value::Null) => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute multiattach: give true or false",
            )
        })?,
    };
    Ok(VolumeCreate {
        name: string_field(obj, "name")?,
        description: string_field(obj, "description")?,
        size_gb: size_field(obj, "size")?,
        volume_type: string_field(obj, "volume_type")?,
        availability_zone: string_field(obj, "availability_zone")?,
        image_ref: match string_field(obj, "imageRef")? {
            Some(r) => Some(r),
            None => string_field(obj, "image_id")?,
        },
        snapshot_id: string_field(obj, "snapshot_id")?,
        multiattach,
        metadata: metadata_field(obj.get("metadata"), "metadata")?.unwrap_or_default(),
    })
}

async fn create(core: &Core, req: &mut ApiRequest, caller: &Caller, mv: Microversion) -> ApiResult {
    let body: Value = req.json().await?;
    let input = create_input(&body)?;
    let volume = core.volume_create(caller, input).await?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"volume": detail(core, &volume, caller, mv, false)}),
    ))
}

async fn update(
    core: &Core,
    req: &mut ApiRequest,
    caller: &Caller,
    mv: Microversion,
    id: &str,
) -> ApiResult {
    let body: Value = req.json().await?;
    let Some(obj) = body.get("volume").and_then(Value::as_object) else {
        return Err(ApiError::bad_request(
            "the body must be {\"volume\": {\"name\": …, \"description\": …, \"metadata\": {…}}}",
        ));
    };
    if obj.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid input received: give at least one of name, description, metadata",
        ));
    }
    let update = VolumeUpdate {
        name: opt_string(obj, "name")?,
        description: opt_string(obj, "description")?,
        metadata: metadata_field(obj.get("metadata"), "metadata")?,
    };
    let volume = core.volume_update(caller, id, update).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"volume": detail(core, &volume, caller, mv, false)}),
    ))
}

fn flag_of(inner: &Value, name: &str, action: &str) -> Result<bool, ApiError> {
    inner.get(name).and_then(parse_bool).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input received: {action} needs {{\"{name}\": true or false}}"
        ))
    })
}

async fn action(
    core: &Core,
    req: &mut ApiRequest,
    caller: &Caller,
    mv: Microversion,
    id: &str,
) -> ApiResult {
    let body: Value = req.json().await?;
    let Some((name, inner)) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err(ApiError::bad_request(
            "a volume action is an object with one key, e.g. {\"os-extend\": {\"new_size\": 2}}",
        ));
    };
    let status_action = |a: VolumeAction| async move {
        core.volume_act(caller, id, a).await?;
        Ok::<_, ApiError>(empty(StatusCode::ACCEPTED))
    };
    match name.as_str() {
        "os-extend" => {
            let new_size = inner
                .as_object()
                .map(|o| size_field(o, "new_size"))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid input received: os-extend needs {\"new_size\": GB}",
                    )
                })?;
            core.volume_extend(caller, id, new_size, mv.at_least(3, 42))
                .await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        "os-attach" => {
            let server_id = inner
                .get("instance_uuid")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid input received: os-attach needs {\"instance_uuid\": SERVER_ID, \
                         \"mountpoint\": \"/dev/vdb\", \"mode\": \"rw\"}",
                    )
                })?;
            let read_only = match inner.get("mode").and_then(Value::as_str) {
                None | Some("rw") => false,
                Some("ro") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid input received: Invalid attaching mode '{other}' for volume {id}; use rw or ro"
                    )));
                }
            };
            core.volume_attach(
                caller,
                AttachRequest {
                    volume_id: id.to_string(),
                    server_id: server_id.to_string(),
                    device: inner
                        .get("mountpoint")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    read_only,
                },
            )
            .await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        "os-detach" => {
            let attachment = inner.get("attachment_id").and_then(Value::as_str);
            core.volume_detach(caller, id, None, attachment).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        "os-reserve" => status_action(VolumeAction::Reserve).await,
        "os-unreserve" => status_action(VolumeAction::Unreserve).await,
        "os-begin_detaching" => status_action(VolumeAction::BeginDetaching).await,
        "os-roll_detaching" => status_action(VolumeAction::RollDetaching).await,
        "os-set_bootable" => {
            let bootable = flag_of(inner, "bootable", "os-set_bootable")?;
            core.volume_act(caller, id, VolumeAction::SetBootable(bootable))
                .await?;
            Ok(empty(StatusCode::OK))
        }
        "os-update_readonly_flag" => {
            let ro = flag_of(inner, "readonly", "os-update_readonly_flag")?;
            status_action(VolumeAction::SetReadOnly(ro)).await
        }
        "os-reset_status" => {
            let status = inner.get("status").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(
                    "Invalid input received: os-reset_status needs {\"status\": STATUS}",
                )
            })?;
            status_action(VolumeAction::ResetStatus(status.to_string())).await
        }
        "os-force_delete" => {
            core.volume_delete(caller, id, true).await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {other}; the volume actions are os-extend, os-attach, \
             os-detach, os-reserve, os-unreserve, os-begin_detaching, os-roll_detaching, \
             os-set_bootable, os-update_readonly_flag, os-reset_status and os-force_delete"
        ))),
    }
}
