//! Octavia v2 (clause B.3.4): routing under `/load-balancer/v2/lbaas` (and `v2.0`),
//! Octavia's body shapes and paging links.

pub(super) mod children;
pub(super) mod load_balancers;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, ApiRequest, ApiResult};
use crate::core::Core;

pub async fn route(core: &Core, req: ApiRequest) -> ApiResult {
    let segments = req.segments.clone();
    let p: Vec<&str> = segments.iter().map(String::as_str).collect();
    match p.as_slice() {
        [
            "load-balancer",
            "v2" | "v2.0",
            "lbaas",
            "loadbalancers",
            rest @ ..,
        ] => load_balancers::route(core, req, rest).await,
        [
            "load-balancer",
            "v2" | "v2.0",
            "lbaas",
            "listeners",
            rest @ ..,
        ] => children::listeners(core, req, rest).await,
        ["load-balancer", "v2" | "v2.0", "lbaas", "pools", rest @ ..] => {
            children::pools(core, req, rest).await
        }
        [
            "load-balancer",
            "v2" | "v2.0",
            "lbaas",
            "healthmonitors",
            rest @ ..,
        ] => children::health_monitors(core, req, rest).await,
        _ => Err(ApiError::unrouted(&req)),
    }
}

/// The resource inside Octavia's envelope (`{"loadbalancer": {...}}`), parsed strictly.
fn member<T: DeserializeOwned>(body: Value, key: &str) -> Result<T, ApiError> {
    let Value::Object(mut outer) = body else {
        return Err(ApiError::bad_request(format!(
            "Invalid input: the body must be a JSON object {{\"{key}\": {{...}}}}"
        )));
    };
    let inner = outer.remove(key).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input: the body must hold the resource under \"{key}\""
        ))
    })?;
    if let Some(other) = outer.keys().next() {
        return Err(ApiError::bad_request(format!(
            "Invalid input: unknown attribute {other}; only \"{key}\" belongs at the top level"
        )));
    }
    serde_json::from_value(inner).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid input for {key}: {e}"),
        )
    })
}

/// Octavia's `limit` and `marker`; a limit that is not a positive number is a 400.
fn paging(req: &ApiRequest) -> Result<(Option<usize>, Option<String>), ApiError> {
    let limit = match req.query_param("limit") {
        None => None,
        Some(l) => Some(l.parse::<usize>().ok().filter(|l| *l > 0).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for limit: '{l}'; give a positive whole number"
            ))
        })?),
    };
    Ok((limit, req.query_param("marker")))
}

/// `{collection}_links`: a `next` link (same query, marker the last id) when the page was full.
fn page_links(core: &Core, req: &ApiRequest, last_id: Option<&str>, full: bool) -> Value {
    let (Some(last), true) = (last_id, full) else {
        return json!([]);
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query_pairs() {
        if k != "marker" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("marker", last);
    json!([{"rel": "next", "href": format!("{}{}?{}", core.public_url(), req.path, query.finish())}])
}

fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}
