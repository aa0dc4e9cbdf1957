//! Version discovery for all six services, exactly as `API-BINDING.md` lays it out:
//! unauthenticated, absolute `self` links, the shapes real clients were seen to need.
//! A service's resources are routed by its own module; until a service has them, any
//! path below its version document is a 404 in that service's error shape.

use http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, ApiRequest, ApiResult, json_response};
use crate::core::Core;

/// The compute API's microversion range: only what is implemented exactly.
pub const COMPUTE_MIN: &str = "2.1";
pub const COMPUTE_MAX: &str = "2.55";
/// The block-storage API's microversion range.
pub const VOLUME_MIN: &str = "3.0";
pub const VOLUME_MAX: &str = "3.42";

fn link(core: &Core, path: &str) -> Value {
    json!([{"rel": "self", "href": format!("{}{path}", core.public_url())}])
}

/// Keystone's v3 version entry.
pub fn identity_v3(core: &Core) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": link(core, "/identity/v3/"),
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

/// `GET /` and `GET /identity`: 300 with Keystone's versions list.
pub fn identity_versions(core: &Core) -> ApiResult {
    Ok(json_response(
        StatusCode::MULTIPLE_CHOICES,
        &json!({"versions": {"values": [identity_v3(core)]}}),
    ))
}

fn compute_v21(core: &Core) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": COMPUTE_MAX,
        "min_version": COMPUTE_MIN,
        "updated": "2013-07-23T11:33:21Z",
        "links": link(core, "/compute/v2.1/"),
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1",
        }],
    })
}

/// `GET /compute/` lists v2.0 (SUPPORTED) first, then v2.1 (CURRENT).
pub fn compute(core: &Core, req: &ApiRequest) -> ApiResult {
    let rest: Vec<&str> = req.segments[1..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => Ok(json_response(
            StatusCode::OK,
            &json!({"versions": [
                {
                    "id": "v2.0",
                    "status": "SUPPORTED",
                    "version": "",
                    "min_version": "",
                    "updated": "2011-01-21T11:33:21Z",
                    "links": link(core, "/compute/v2/"),
                },
                compute_v21(core),
            ]}),
        )),
        ["v2.1"] => Ok(json_response(
            StatusCode::OK,
            &json!({"version": compute_v21(core)}),
        )),
        _ => Err(ApiError::unrouted(req)),
    }
}

/// `GET /image/`: 300, without which the CLI refuses the service.
pub fn image(core: &Core, req: &ApiRequest) -> ApiResult {
    let versions = json!({"versions": [
        {"id": "v2.16", "status": "CURRENT", "links": link(core, "/image/v2/")},
        {"id": "v2.0", "status": "SUPPORTED", "links": link(core, "/image/v2/")},
    ]});
    match req.segments.len() {
        1 => Ok(json_response(StatusCode::MULTIPLE_CHOICES, &versions)),
        _ => Err(ApiError::unrouted(req)),
    }
}

/// `GET /network/` lists v2.0; `GET /network/v2.0/` its resources.
pub fn network(core: &Core, req: &ApiRequest) -> ApiResult {
    let rest: Vec<&str> = req.segments[1..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => Ok(json_response(
            StatusCode::OK,
            &json!({"versions": [
                {"id": "v2.0", "status": "CURRENT", "links": link(core, "/network/v2.0/")},
            ]}),
        )),
        ["v2.0"] => Ok(json_response(StatusCode::OK, &json!({"resources": []}))),
        _ => Err(ApiError::unrouted(req)),
    }
}

fn volume_v3(core: &Core) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": VOLUME_MAX,
        "min_version": VOLUME_MIN,
        "updated": "2023-08-31T00:00:00Z",
        "links": link(core, "/volume/v3/"),
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.volume+json;version=3",
        }],
    })
}

/// `GET /volume/` → 300; `GET /volume/v3/` → 200 with the microversion range.
pub fn volume(core: &Core, req: &ApiRequest) -> ApiResult {
    let rest: Vec<&str> = req.segments[1..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => Ok(json_response(
            StatusCode::MULTIPLE_CHOICES,
            &json!({"versions": [volume_v3(core)]}),
        )),
        ["v3"] => Ok(json_response(
            StatusCode::OK,
            &json!({"versions": [volume_v3(core)]}),
        )),
        _ => Err(ApiError::unrouted(req)),
    }
}

/// `GET /load-balancer/`; both `/v2` and `/v2.0` are served.
pub fn load_balancer(core: &Core, req: &ApiRequest) -> ApiResult {
    match req.segments.len() {
        1 => Ok(json_response(
            StatusCode::OK,
            &json!({"versions": [
                {"id": "v2.0", "status": "SUPPORTED", "updated": "2016-12-11T00:00:00Z",
                 "links": link(core, "/load-balancer/v2.0")},
                {"id": "v2.27", "status": "CURRENT", "updated": "2023-05-05T00:00:00Z",
                 "links": link(core, "/load-balancer/v2")},
            ]}),
        )),
        _ => Err(ApiError::unrouted(req)),
    }
}
