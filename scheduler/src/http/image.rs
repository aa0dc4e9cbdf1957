//! Glance v2 (clause B.2.3): images, their data, members and tags, imports, and the
//! schemas clients fetch. Paths are under `/image`; `/image/` is version discovery.

use chrono::{DateTime, Utc};
use futures_util::stream;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{ApiError, ApiRequest, ApiResult, Service, StreamFile, empty, json_response};
use crate::core::Core;
use crate::core::images::{
    DEFAULT_PAGE, IMPORT_METHODS, ImageData, ImageError, ImportRequest, PatchChange, PatchDialect,
    PatchOp,
};
use crate::model::{
    CONTAINER_FORMATS, DISK_FORMATS, Image, ImageMember, ImageQuery, ImageSortKey, ImageStatus,
    ImageTask, MemberStatus, Visibility, VisibilityFilter,
};

/// The JSON-patch media types Glance accepts for `PATCH /v2/images/{id}`.
const PATCH_V21: &str = "application/openstack-images-v2.1-json-patch";
const PATCH_V20: &str = "application/openstack-images-v2.0-json-patch";

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> ApiError {
        match e {
            ImageError::Core(e) => e.into(),
            ImageError::TooLarge(message) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message),
        }
    }
}

pub async fn route(core: &Core, req: ApiRequest) -> ApiResult {
    use Method as M;
    let segs: Vec<String> = req.segments[1..].to_vec();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method.clone();
    match (&m, s.as_slice()) {
        (&M::GET | &M::HEAD, []) => super::discovery::image(core, &req),

        (&M::GET, ["v2", "images"]) => images_list(core, req).await,
        (&M::POST, ["v2", "images"]) => image_create(core, req).await,
        (&M::GET, ["v2", "images", id]) => image_show(core, req, id).await,
        (&M::PATCH, ["v2", "images", id]) => image_update(core, req, id).await,
        (&M::DELETE, ["v2", "images", id]) => image_delete(core, req, id).await,
        (&M::PUT, ["v2", "images", id, "file"]) => image_upload(core, req, id).await,
        (&M::GET, ["v2", "images", id, "file"]) => image_download(core, req, id).await,
        (&M::POST, ["v2", "images", id, "import"]) => image_import(core, req, id).await,
        (&M::GET, ["v2", "images", id, "tasks"]) => image_tasks(core, req, id).await,
        (&M::PUT, ["v2", "images", id, "tags", tag]) => tag_add(core, req, id, tag).await,
        (&M::DELETE, ["v2", "images", id, "tags", tag]) => tag_delete(core, req, id, tag).await,
        (&M::GET, ["v2", "images", id, "members"]) => members_list(core, req, id).await,
        (&M::POST, ["v2", "images", id, "members"]) => member_create(core, req, id).await,
        (&M::GET, ["v2", "images", id, "members", member]) => {
            member_show(core, req, id, member).await
        }
        (&M::PUT, ["v2", "images", id, "members", member]) => {
            member_update(core, req, id, member).await
        }
        (&M::DELETE, ["v2", "images", id, "members", member]) => {
            member_delete(core, req, id, member).await
        }
        (
            &M::POST,
            [
                "v2",
                "images",
                id,
                "actions",
                action @ ("deactivate" | "reactivate"),
            ],
        ) => image_action(core, req, id, action).await,
        (&M::GET, ["v2", "tasks"]) => tasks_list(core, req).await,
        (&M::GET, ["v2", "tasks", id]) => task_show(core, req, id).await,
        (&M::GET, ["v2", "info", "import"]) => import_info(core, req).await,
        (
            &M::GET,
            [
                "v2",
                "schemas",
                name @ ("image" | "images" | "member" | "members"),
            ],
        ) => schema(core, req, name).await,
        _ => Err(ApiError::unrouted(&req)),
    }
}

// ---- views ----

/// Glance's time format: `2026-11-28T01:02:03Z`.
fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An image as Glance shows it: core attributes, and the additional properties at the
/// top level beside them.
fn image_view(i: &Image) -> Value {
    let mut view: Map<String, Value> = i
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let core = json!({
        "id": i.id,
        "name": i.name,
        "owner": i.owner,
        "status": i.status.as_str(),
        "visibility": i.visibility.as_str(),
        "protected": i.protected,
        "os_hidden": i.os_hidden,
        "disk_format": i.disk_format,
        "container_format": i.container_format,
        "min_ram": i.min_ram,
        "min_disk": i.min_disk,
        "size": i.size,
        "virtual_size": i.virtual_size,
        "checksum": i.checksum,
        "os_hash_algo": i.os_hash_algo,
        "os_hash_value": i.os_hash_value,
        "architecture": i.architecture,
        "tags": i.tags,
        "created_at": time(i.created_at),
        "updated_at": time(i.updated_at),
        "self": format!("/v2/images/{}", i.id),
        "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        view.extend(core);
    }
    Value::Object(view)
}

fn member_view(m: &ImageMember) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status.as_str(),
        "created_at": time(m.created_at),
        "updated_at": time(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

fn task_view(t: &ImageTask) -> Value {
    json!({
        "id": t.id,
        "type": "api_image_import",
        "status": t.status.as_str(),
        "owner": t.owner,
        "user_id": t.user_id,
        "image_id": t.image_id,
        "request_id": null,
        "input": {
            "image_id": t.image_id,
            "import_req": {"method": {"name": t.method, "uri": t.uri}},
        },
        "result": if t.status == crate::model::TaskStatus::Success {
            json!({"image_id": t.image_id})
        } else {
            Value::Null
        },
        "message": t.message,
        "created_at": time(t.created_at),
        "updated_at": time(t.updated_at),
        "expires_at": null,
        "self": format!("/v2/tasks/{}", t.id),
        "schema": "/v2/schemas/task",
    })
}

fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

/// The MIME type of the request body, lower-cased, without parameters.
fn mime(req: &ApiRequest) -> Option<String> {
    req.header("content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

// ---- images ----

/// One value or Glance's `in:a,b` / `in:"a","b"` list.
fn one_or_many(value: &str) -> Vec<String> {
    match value.strip_prefix("in:") {
        Some(list) => list
            .split(',')
            .map(|v| v.trim().trim_matches('"').to_string())
            .collect(),
        None => vec![value.to_string()],
    }
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key} must be true or false, not {value:?}"
        ))),
    }
}

fn sort_key(value: &str) -> Result<ImageSortKey, ApiError> {
    ImageSortKey::parse(value.trim()).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid sort key: {value}. It must be one of the following: {}.",
            ImageSortKey::ALL.map(ImageSortKey::as_str).join(", ")
        ))
    })
}

fn sort_dir(value: &str) -> Result<bool, ApiError> {
    match value.trim() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "Invalid sort direction: {other}; use asc or desc"
        ))),
    }
}

/// Reads a listing's filters, sorting and paging from the query string.
fn image_query(pairs: &[(String, String)]) -> Result<ImageQuery, ApiError> {
    let mut q = ImageQuery {
        viewer: None,
        visibility: VisibilityFilter::Default,
        member_status: Some(MemberStatus::Accepted),
        ids: None,
        names: None,
        statuses: None,
        owners: None,
        disk_formats: None,
        container_formats: None,
        tags: Vec::new(),
        protected: None,
        os_hidden: false,
        size_min: None,
        size_max: None,
        sort: Vec::new(),
        marker: None,
        limit: DEFAULT_PAGE,
    };
    let (mut keys, mut dirs, mut sort) = (Vec::new(), Vec::new(), None);
    let whole = |key: &str, v: &str| {
        v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request(format!("{key} must be a whole number, not {v:?}"))
        })
    };
    for (key, value) in pairs {
        let v = value.as_str();
        match key.as_str() {
            "limit" => q.limit = whole(key, v)? as usize,
            "marker" => q.marker = Some(v.to_string()),
            "visibility" => {
                q.visibility = match v {
                    "all" => VisibilityFilter::All,
                    other => VisibilityFilter::Only(Visibility::parse(other).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid visibility value: {other}; use public, private, \
                             shared, community or all"
                        ))
                    })?),
                }
            }
            "member_status" => {
                q.member_status = match v {
                    "all" => None,
                    other => Some(MemberStatus::parse(other).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid member_status: {other}; use pending, accepted, \
                             rejected or all"
                        ))
                    })?),
                }
            }
            "id" => q.ids = Some(one_or_many(v)),
            "name" => q.names = Some(one_or_many(v)),
            "owner" => q.owners = Some(one_or_many(v)),
            "disk_format" => q.disk_formats = Some(one_or_many(v)),
            "container_format" => q.container_formats = Some(one_or_many(v)),
            "status" => {
                q.statuses = Some(
                    one_or_many(v)
                        .iter()
                        .map(|s| {
                            ImageStatus::parse(s).ok_or_else(|| {
                                ApiError::bad_request(format!(
                                    "Invalid status value: {s}; use one of {}",
                                    ImageStatus::ALL.map(ImageStatus::as_str).join(", ")
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            "tag" => q.tags.push(v.trim().to_string()),
            "protected" => q.protected = Some(flag(key, v)?),
            "os_hidden" => q.os_hidden = flag(key, v)?,
            "size_min" => q.size_min = Some(whole(key, v)?),
            "size_max" => q.size_max = Some(whole(key, v)?),
            "sort_key" => keys.push(sort_key(v)?),
            "sort_dir" => dirs.push(sort_dir(v)?),
            "sort" => sort = Some(v.to_string()),
            "changes-since" => {
                return Err(ApiError::bad_request(
                    "The \"changes-since\" filter is no longer available on v2; sort by \
                     updated_at instead",
                ));
            }
            _ => {}
        }
    }
    q.sort = match sort {
        Some(_) if !keys.is_empty() || !dirs.is_empty() => {
            return Err(ApiError::bad_request(
                "Old and new sorting syntax cannot be combined: use sort=key:dir,… or \
                 sort_key/sort_dir",
            ));
        }
        Some(sort) => sort
            .split(',')
            .map(|part| {
                let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
                Ok((sort_key(key)?, sort_dir(dir)?))
            })
            .collect::<Result<_, ApiError>>()?,
        None => {
            if keys.is_empty() {
                keys.push(ImageSortKey::CreatedAt);
            }
            match dirs.len() {
                0 => keys.into_iter().map(|k| (k, false)).collect(),
                1 => keys.into_iter().map(|k| (k, dirs[0])).collect(),
                n if n == keys.len() => keys.into_iter().zip(dirs).collect(),
                _ => {
                    return Err(ApiError::bad_request(
                        "Number of sort dirs does not match the number of sort keys",
                    ));
                }
            }
        }
    };
    Ok(q)
}

fn query_string(pairs: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

async fn images_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let pairs = req.query_pairs();
    let query = image_query(&pairs)?;
    let limit = query.limit;
    let images = core.images_list(&caller, query).await?;
    let kept: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "marker").collect();
    let mut body = json!({
        "images": images.iter().map(image_view).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if !kept.is_empty() {
        body["first"] = json!(format!("/v2/images?{}", query_string(&kept)));
    }
    if let Some(last) = images.last()
        && images.len() == limit
    {
        let mut next = kept;
        next.push(("marker".into(), last.id.clone()));
        body["next"] = json!(format!("/v2/images?{}", query_string(&next)));
    }
    ok(body)
}

async fn image_create(core: &Core, mut req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let attrs: Map<String, Value> = req.json().await?;
    let image = core.image_create(&caller, attrs).await?;
    let mut response = json_response(StatusCode::CREATED, &image_view(&image));
    let location = format!("{}/image/v2/images/{}", core.public_url(), image.id);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response.headers_mut().insert(
        "openstack-image-import-methods",
        HeaderValue::from_static("web-download"),
    );
    Ok(response)
}

async fn image_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    ok(image_view(&core.image_get(&caller, id).await?))
}

/// Decodes a JSON pointer the way Glance accepts them: `/a`, `/a/b`, `~0`/`~1` escapes.
fn pointer(path: &str) -> Result<Vec<String>, ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("Pointer `{path}` {why}"));
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid("does not start with \"/\""));
    };
    if rest.is_empty() {
        return Err(invalid("names no attribute"));
    }
    let mut parts = Vec::new();
    for part in rest.split('/') {
        if part.trim().is_empty() {
            return Err(invalid("has an empty part"));
        }
        let mut out = String::new();
        let mut chars = part.chars();
        while let Some(c) = chars.next() {
            match (c, c == '~') {
                (_, true) => match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err(invalid("contains \"~\" not part of ~0 or ~1")),
                },
                (c, false) => out.push(c),
            }
        }
        parts.push(out.trim().to_string());
    }
    Ok(parts)
}

/// One operation of the body, in the v2.1 (`{"op", "path", "value"}`) or v2.0
/// (`{"replace": path, "value"}`) form.
fn patch_change(raw: &Value, v21: bool) -> Result<PatchChange, ApiError> {
    let example = r#"{"op": "replace", "path": "/name", "value": "new name"}"#;
    let Some(obj) = raw.as_object() else {
        return Err(ApiError::bad_request(format!(
            "Operations must be JSON objects like {example}"
        )));
    };
    let names = [
        ("add", PatchOp::Add),
        ("replace", PatchOp::Replace),
        ("remove", PatchOp::Remove),
    ];
    let (op, path) = if v21 {
        let op = obj.get("op").and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad_request(format!(
                "each operation needs \"op\": add, replace or remove, as in {example}"
            ))
        })?;
        let op = names
            .iter()
            .find(|(n, _)| *n == op)
            .map(|(_, o)| *o)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid operation: `{op}`. It must be one of the following: add, remove, \
                     replace."
                ))
            })?;
        let path = obj.get("path").and_then(Value::as_str).ok_or_else(|| {
            ApiError::bad_request(format!(
                "each operation needs \"path\", a JSON pointer like \"/name\", as in {example}"
            ))
        })?;
        (op, path)
    } else {
        let found: Vec<_> = names
            .iter()
            .filter_map(|(n, o)| obj.get(*n).map(|p| (*o, p)))
            .collect();
        match found.as_slice() {
            [(op, Value::String(path))] => (*op, path.as_str()),
            _ => {
                return Err(ApiError::bad_request(
                    "Operation objects must contain exactly one member named \"add\", \
                     \"remove\", or \"replace\", whose value is the path",
                ));
            }
        }
    };
    let path = pointer(path)?;
    let value = match op {
        PatchOp::Remove => None,
        _ => Some(obj.get("value").cloned().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Operation \"{}\" requires a member named \"value\".",
                names.iter().find(|(_, o)| *o == op).map_or("", |(n, _)| n)
            ))
        })?),
    };
    Ok(PatchChange { op, path, value })
}

async fn image_update(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let v21 = match mime(&req).as_deref() {
        Some(PATCH_V21) => true,
        Some(PATCH_V20) => false,
        other => {
            let mut response = ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Image PATCH expects Content-Type {PATCH_V21} (or {PATCH_V20}), not {}",
                    other.unwrap_or("none")
                ),
            )
            .into_response(Service::Image);
            response.headers_mut().insert(
                "accept-patch",
                HeaderValue::from_static(
                    "application/openstack-images-v2.0-json-patch, \
                     application/openstack-images-v2.1-json-patch",
                ),
            );
            return Ok(response);
        }
    };
    let body = req.body_bytes().await?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the JSON body is invalid: {e}")))?;
    let Value::Array(raw) = body else {
        return Err(ApiError::bad_request(
            "Request body must be a JSON array of operation objects, like \
             [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"new name\"}]",
        ));
    };
    let changes = raw
        .iter()
        .map(|c| patch_change(c, v21))
        .collect::<Result<Vec<_>, _>>()?;
    let dialect = if v21 {
        PatchDialect::V21
    } else {
        PatchDialect::V20
    };
    ok(image_view(
        &core.image_update(&caller, id, changes, dialect).await?,
    ))
}

async fn image_delete(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.image_delete(&caller, id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn image_upload(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    if let Some(mime) = mime(&req)
        && mime != "application/octet-stream"
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("upload image data as application/octet-stream, not {mime}"),
        ));
    }
    let size = |name: &str| -> Result<Option<u64>, ApiError> {
        req.header(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a number of bytes, not {v:?}"))
                })
            })
            .transpose()
    };
    let declared = match size("x-openstack-image-size")? {
        Some(n) => Some(n),
        None => size("content-length")?,
    };
    let body = req
        .body_stream()
        .unwrap_or_else(|| Box::pin(stream::empty()));
    core.image_upload(&caller, id, body, declared).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn image_download(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    match core.image_download(&caller, id).await? {
        ImageData::Empty => Ok(empty(StatusCode::NO_CONTENT)),
        ImageData::File { path, checksum, .. } => {
            let mut response = empty(StatusCode::OK);
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Some(value) = checksum.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert("content-md5", value);
            }
            response.extensions_mut().insert(StreamFile { path });
            Ok(response)
        }
    }
}

async fn image_import(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: Value = req.json().await?;
    let method = body.get("method").ok_or_else(|| {
        ApiError::bad_request(
            "Import request requires a 'method' field, like {\"method\": {\"name\": \
             \"web-download\", \"uri\": \"https://…/image.qcow2\"}}",
        )
    })?;
    let name = method
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("Import request requires a 'name' field in method"))?;
    let uri = match method.get("uri") {
        None | Some(Value::Null) => None,
        Some(Value::String(uri)) => Some(uri.clone()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "method.uri must be a string, not {other}"
            )));
        }
    };
    core.image_import(
        &caller,
        id,
        ImportRequest {
            method: name.to_string(),
            uri,
        },
    )
    .await?;
    Ok(empty(StatusCode::ACCEPTED))
}

async fn image_tasks(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let tasks = core.image_tasks(&caller, id).await?;
    ok(json!({"tasks": tasks.iter().map(task_view).collect::<Vec<_>>()}))
}

/// `GET /v2/tasks`, with Glance's `status` and `type` filters.
async fn tasks_list(core: &Core, req: ApiRequest) -> ApiResult {
    let caller = req.caller(core).await?;
    let status = req.query_param("status");
    let kind = req.query_param("type");
    let tasks: Vec<Value> = core
        .image_tasks_list(&caller)
        .await?
        .iter()
        .filter(|t| status.as_deref().is_none_or(|s| s == t.status.as_str()))
        .filter(|_| kind.as_deref().is_none_or(|k| k == "api_image_import"))
        .map(task_view)
        .collect();
    ok(json!({"tasks": tasks, "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}))
}

async fn task_show(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    ok(task_view(&core.image_task_get(&caller, id).await?))
}

async fn image_action(core: &Core, req: ApiRequest, id: &str, action: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.image_set_active(&caller, id, action == "reactivate")
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn tag_add(core: &Core, req: ApiRequest, id: &str, tag: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.image_tag_add(&caller, id, tag).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn tag_delete(core: &Core, req: ApiRequest, id: &str, tag: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.image_tag_delete(&caller, id, tag).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- members ----

async fn members_list(core: &Core, req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let members = core.image_members_list(&caller, id).await?;
    ok(json!({
        "members": members.iter().map(member_view).collect::<Vec<_>>(),
        "schema": "/v2/schemas/members",
    }))
}

async fn member_create(core: &Core, mut req: ApiRequest, id: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: Value = req.json().await?;
    let member = match body.get("member") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "Expected a member in the form: {\"member\": \"<project id>\"}",
            ));
        }
    };
    let m = core.image_member_create(&caller, id, &member).await?;
    ok(member_view(&m))
}

async fn member_show(core: &Core, req: ApiRequest, id: &str, member: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    ok(member_view(
        &core.image_member_get(&caller, id, member).await?,
    ))
}

async fn member_update(core: &Core, mut req: ApiRequest, id: &str, member: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    let body: Value = req.json().await?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .and_then(MemberStatus::parse)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Expected a status in the form: {\"status\": \"accepted\"} (or pending, rejected)",
            )
        })?;
    ok(member_view(
        &core
            .image_member_update(&caller, id, member, status)
            .await?,
    ))
}

async fn member_delete(core: &Core, req: ApiRequest, id: &str, member: &str) -> ApiResult {
    let caller = req.caller(core).await?;
    core.image_member_delete(&caller, id, member).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

// ---- discovery of what the service offers ----

async fn import_info(core: &Core, req: ApiRequest) -> ApiResult {
    req.caller(core).await?;
    ok(json!({"import-methods": {
        "description": "Import methods available.",
        "type": "array",
        "value": IMPORT_METHODS,
    }}))
}

/// The image schema, as Glance publishes it: every attribute, and
/// `additionalProperties: {type: string}` for the rest.
fn image_schema() -> Value {
    let uuid =
        "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";
    let mut disk_formats = vec![Value::Null];
    disk_formats.extend(DISK_FORMATS.iter().map(|f| json!(f)));
    let mut container_formats = vec![Value::Null];
    container_formats.extend(CONTAINER_FORMATS.iter().map(|f| json!(f)));
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"href": "{self}", "rel": "self"},
            {"href": "{file}", "rel": "enclosure"},
            {"href": "{schema}", "rel": "describedby"},
        ],
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image", "pattern": uuid},
            "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                "enum": ["queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated", "uploading", "importing"]},
            "visibility": {"type": "string", "description": "Scope of image accessibility",
                "enum": ["community", "public", "private", "shared"]},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "description": "Format of the container", "enum": container_formats},
            "disk_format": {"type": ["null", "string"], "description": "Format of the disk", "enum": disk_formats},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "description": "List of strings related to the image",
                "items": {"type": "string", "maxLength": 255}},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                "items": {"type": "object", "required": ["url", "metadata"], "properties": {
                    "url": {"type": "string", "maxLength": 255}, "metadata": {"type": "object"}}}},
            "architecture": {"type": ["null", "string"], "is_base": false,
                "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_distro": {"type": "string", "is_base": false,
                "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"},
            "os_version": {"type": "string", "is_base": false, "description": "Operating system version as specified by the distributor"},
            "instance_uuid": {"type": "string", "is_base": false,
                "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)"},
            "kernel_id": {"type": ["null", "string"], "is_base": false, "pattern": uuid,
                "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."},
            "ramdisk_id": {"type": ["null", "string"], "is_base": false, "pattern": uuid,
                "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."},
        },
    })
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "schema": {"type": "string", "readOnly": true},
            "status": {"type": "string", "description": "The status of this image member",
                "enum": ["pending", "accepted", "rejected"]},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        },
    })
}

async fn schema(core: &Core, req: ApiRequest, name: &str) -> ApiResult {
    req.caller(core).await?;
    ok(match name {
        "image" => image_schema(),
        "images" => json!({
            "name": "images",
            "properties": {
                "images": {"type": "array", "items": image_schema()},
                "schema": {"type": "string"},
                "first": {"type": "string"},
                "next": {"type": "string"},
            },
            "links": [
                {"href": "{first}", "rel": "first"},
                {"href": "{next}", "rel": "next"},
                {"href": "{schema}", "rel": "describedby"},
            ],
        }),
        "member" => member_schema(),
        _ => json!({
            "name": "members",
            "properties": {
                "members": {"type": "array", "items": member_schema()},
                "schema": {"type": "string"},
            },
            "links": [{"href": "{schema}", "rel": "describedby"}],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_decode_like_glance() {
        assert_eq!(pointer("/name").unwrap(), ["name"]);
        assert_eq!(pointer("/a~1b~0c").unwrap(), ["a/b~c"]);
        assert_eq!(pointer("/tags/0").unwrap(), ["tags", "0"]);
        for bad in ["name", "/", "/a//b", "/a/", "/a~2"] {
            assert!(pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorting_accepts_both_syntaxes_but_not_mixed() {
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q = image_query(&pairs(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(
            q.sort,
            [(ImageSortKey::Name, true), (ImageSortKey::Size, false)]
        );
        let q = image_query(&pairs(&[
            ("sort_key", "name"),
            ("sort_key", "id"),
            ("sort_dir", "asc"),
        ]))
        .unwrap();
        assert_eq!(
            q.sort,
            [(ImageSortKey::Name, true), (ImageSortKey::Id, true)]
        );
        assert!(image_query(&pairs(&[("sort", "name"), ("sort_key", "id")])).is_err());
        assert!(image_query(&pairs(&[("sort_key", "bogus")])).is_err());
        assert!(image_query(&pairs(&[("limit", "-1")])).is_err());
    }
}
