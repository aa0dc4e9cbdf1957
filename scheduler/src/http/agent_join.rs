//! `POST /agent-join/v1`: an agent joins with the join token and a CSR, and gets its
//! certificate and the node CA. The one agent call that is not mutual TLS: the agent
//! has no certificate yet, so the token is its credential.

use http::{Method, StatusCode};
use yunji_common::agent_api::JoinRequest;

use super::{ApiError, ApiRequest, ApiResult, json_response};
use crate::core::Core;

pub async fn route(core: &Core, mut req: ApiRequest) -> ApiResult {
    match (&req.method, req.segments.len()) {
        (&Method::POST, 2) if req.segments[1] == "v1" => {
            let join: JoinRequest = req.json().await?;
            let reply = core.node_join(join).await?;
            Ok(json_response(StatusCode::OK, &reply))
        }
        _ => Err(ApiError::unrouted(&req)),
    }
}
