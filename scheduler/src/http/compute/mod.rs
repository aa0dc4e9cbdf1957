//! Nova 2.1 to 2.55 (clauses B.1.2, B.1.3.1, B.2.1, B.2.2): servers, flavors, key
//! pairs, quotas and limits, hypervisors, services and availability zones. Every
//! response echoes the negotiated microversion.

mod flavors;
mod hosts;
mod keypairs;
mod migrations;
mod quotas;
mod server_groups;
pub(super) mod servers;
mod usage;
mod volume_attachments;

use super::discovery::{COMPUTE_MAX, COMPUTE_MIN};
use super::microversion::{Microversion, Range};
use super::{ApiError, ApiRequest, ApiResult, Response};
use crate::core::Core;

fn parse(v: &str) -> Microversion {
    let (a, b) = v.split_once('.').unwrap_or(("2", "1"));
    Microversion::new(a.parse().unwrap_or(2), b.parse().unwrap_or(1))
}

/// oslo's strict boolean strings, as Nova parses query flags (`is_public`,
/// `with_servers`).
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// The `href` of a list's next page: the request's own query with `marker` set to the
/// page's last item, under `path` (what follows `/compute/v2.1/`).
fn next_page(core: &Core, req: &ApiRequest, path: &str, marker: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query_pairs() {
        if k != "marker" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("marker", marker);
    format!(
        "{}/compute/v2.1/{path}?{}",
        core.public_url(),
        query.finish()
    )
}

/// Nova's `*_links` member for a page that may go on.
fn next_links(core: &Core, req: &ApiRequest, path: &str, marker: &str) -> serde_json::Value {
    serde_json::json!([{"href": next_page(core, req, path, marker), "rel": "next"}])
}

/// The compute microversion range.
pub fn range() -> Range {
    Range {
        service: "compute",
        legacy_header: Some("x-openstack-nova-api-version"),
        min: parse(COMPUTE_MIN),
        max: parse(COMPUTE_MAX),
    }
}

pub(super) const COLLECTIONS: &[&str] = &[
    "servers",
    "flavors",
    "os-keypairs",
    "limits",
    "os-quota-sets",
    "os-hypervisors",
    "os-services",
    "os-availability-zone",
    "os-aggregates",
    "os-server-groups",
    "os-migrations",
    "os-simple-tenant-usage",
];

/// A compute request past discovery: its microversion and the path after `/v2.1`
/// (without a legacy `/{project_id}`).
pub struct ComputeRequest {
    pub req: ApiRequest,
    pub mv: Microversion,
    pub path: Vec<String>,
}

/// Routes `/compute/v2.1/...`; the caller has handled discovery.
pub async fn route(
    core: &Core,
    req: ApiRequest,
) -> Result<Response, (ApiError, Option<Microversion>)> {
    let range = range();
    let mv = range.negotiate(&req).map_err(|e| (e, None))?;
    let mut path: Vec<String> = req.segments[2..].to_vec();
    // Nova 2.1 also serves every path under /v2.1/{project_id}/.
    if path.len() > 1
        && !COLLECTIONS.contains(&path[0].as_str())
        && COLLECTIONS.contains(&path[1].as_str())
    {
        path.remove(0);
    }
    let first = path.first().cloned().unwrap_or_default();
    let creq = ComputeRequest { req, mv, path };
    let result: ApiResult = match first.as_str() {
        "servers" => servers::route(core, creq).await,
        "flavors" => flavors::route(core, creq).await,
        "os-keypairs" => keypairs::route(core, creq).await,
        "os-server-groups" => server_groups::route(core, creq).await,
        "os-migrations" => migrations::route(core, creq).await,
        "os-simple-tenant-usage" => usage::route(core, creq).await,
        "limits" | "os-quota-sets" => quotas::route(core, creq).await,
        "os-hypervisors" | "os-services" | "os-availability-zone" | "os-aggregates" => {
            hosts::route(core, creq).await
        }
        _ => Err(ApiError::unrouted(&creq.req)),
    };
    match result {
        Ok(mut response) => {
            range.echo(mv, &mut response);
            Ok(response)
        }
        Err(e) => Err((e, Some(mv))),
    }
}
