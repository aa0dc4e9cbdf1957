//! Cinder v3 (clauses B.1.3.2 and B.4.1): volumes and their actions, volume types,
//! snapshots, quotas, limits, pools and zones, under `/volume/v3/` with or without a
//! `/{project_id}` after `v3`. Every response echoes the negotiated microversion.

mod quotas;
mod snapshots;
mod types;
mod volumes;

use super::discovery::{VOLUME_MAX, VOLUME_MIN};
use super::microversion::{Microversion, Range};
use super::{ApiError, ApiRequest, ApiResult, Response};
use crate::core::Core;
use crate::model::Caller;

fn parse(v: &str) -> Microversion {
    let (a, b) = v.split_once('.').unwrap_or(("3", "0"));
    Microversion::new(a.parse().unwrap_or(3), b.parse().unwrap_or(0))
}

/// The block-storage microversion range.
pub fn range() -> Range {
    Range {
        service: "volume",
        legacy_header: None,
        min: parse(VOLUME_MIN),
        max: parse(VOLUME_MAX),
    }
}

pub(super) const COLLECTIONS: &[&str] = &[
    "volumes",
    "types",
    "snapshots",
    "limits",
    "os-quota-sets",
    "scheduler-stats",
    "os-availability-zone",
    "extensions",
];

/// A block-storage request past discovery: its caller, microversion and the path after
/// `/v3` (without the `/{project_id}`).
pub struct VolumeRequest {
    pub req: ApiRequest,
    pub caller: Caller,
    pub mv: Microversion,
    pub path: Vec<String>,
}

/// Characters escaped when an id goes into a URL path.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Cinder's `links` of a resource: self (versioned, with the project) and bookmark.
fn links(core: &Core, project_id: &str, collection: &str, id: &str) -> serde_json::Value {
    let id = percent_encoding::utf8_percent_encode(id, SEGMENT);
    let base = core.public_url();
    serde_json::json!([
        {"href": format!("{base}/volume/v3/{project_id}/{collection}/{id}"), "rel": "self"},
        {"href": format!("{base}/volume/{project_id}/{collection}/{id}"), "rel": "bookmark"},
    ])
}

/// Cinder's time format.
fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Routes `/volume/v3/...`; the caller has handled discovery.
pub async fn route(
    core: &Core,
    req: ApiRequest,
) -> Result<Response, (ApiError, Option<Microversion>)> {
    let range = range();
    let mv = range.negotiate(&req).map_err(|e| (e, None))?;
    let mut path: Vec<String> = req.segments[2..].to_vec();
    // Cinder serves every path under /v3/{project_id}/ too.
    if path.len() > 1
        && !COLLECTIONS.contains(&path[0].as_str())
        && COLLECTIONS.contains(&path[1].as_str())
    {
        path.remove(0);
    }
    let result: ApiResult = async {
        let first = path.first().cloned().unwrap_or_default();
        if !COLLECTIONS.contains(&first.as_str()) {
            return Err(ApiError::unrouted(&req));
        }
        let caller = req.caller(core).await?;
        let vreq = VolumeRequest {
            req,
            caller,
            mv,
            path,
        };
        match first.as_str() {
            "volumes" => volumes::route(core, vreq).await,
            "types" => types::route(core, vreq).await,
            "snapshots" => snapshots::route(core, vreq).await,
            _ => quotas::route(core, vreq).await,
        }
    }
    .await;
    match result {
        Ok(mut response) => {
            range.echo(mv, &mut response);
            Ok(response)
        }
        Err(e) => Err((e, Some(mv))),
    }
}

/// A string field that may be absent or null (`Some(None)` for null).
fn opt_string(
    obj: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match obj.get(name) {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(serde_json::Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {name}: give a string"
        ))),
    }
}

/// A metadata object: string values (numbers and booleans as Cinder turns them).
fn metadata_field(
    value: Option<&serde_json::Value>,
    what: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute {what}: the value of {k} must be a string"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {what}: give an object of strings"
        ))),
    }
}

/// oslo's boolean strings, as Cinder parses flags.
fn parse_bool(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
            _ => None,
        },
        serde_json::Value::Number(n) => n.as_i64().and_then(|n| match n {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }),
        _ => None,
    }
}
