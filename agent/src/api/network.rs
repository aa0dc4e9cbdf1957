//! The network side (`agent_api::NETWORK_PATH`): apply the scheduler's desired network
//! state, or read back what the node carries; and, on the sim set, inject faults into
//! applies (answered 400 by the real driver).

use std::sync::Arc;

use warp::Filter;
use yunji_common::agent_api::NodeNetworkSpec;

use super::{AgentState, reply};
use crate::drivers::sim::Fault;
use crate::drivers::sim_network::APPLY;

pub fn routes(
    with_state: impl Filter<Extract = (Arc<AgentState>,), Error = std::convert::Infallible>
    + Clone
    + Send
    + Sync
    + 'static,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let apply = warp::path!("v1" / "network")
        .and(warp::put())
        .and(warp::body::content_length_limit(64 * 1024 * 1024))
        .and(warp::body::json::<NodeNetworkSpec>())
        .and(with_state.clone())
        .then(|spec: NodeNetworkSpec, state: Arc<AgentState>| async move {
            reply(state.network.apply(spec).await)
        });
    let carried = warp::path!("v1" / "network")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: Arc<AgentState>| reply(Ok(state.network.carried())));
    let fault = warp::path("v1")
        .and(warp::path("sim"))
        .and(warp::path("faults"))
        .and(warp::path(APPLY))
        .and(warp::path::end())
        .and(warp::put())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::json::<Option<Fault>>())
        .and(with_state)
        .map(|fault: Option<Fault>, state: Arc<AgentState>| {
            reply(
                state
                    .network
                    .set_fault(fault)
                    .map(|()| serde_json::json!({"operation": APPLY})),
            )
        });
    apply.or(carried).unify().or(fault).unify()
}
