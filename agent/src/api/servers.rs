//! Servers: create, act on, read the console of and delete (`agent_api::SERVERS_PATH`).

use std::sync::Arc;

use uuid::Uuid;
use warp::Filter;
use yunji_common::agent_api::{ConsoleReply, ServerAction, ServerSpec};

use super::{AgentState, reply};

#[derive(Debug, serde::Deserialize)]
struct ConsoleQuery {
    length: Option<usize>,
}

pub fn routes(
    with_state: impl Filter<Extract = (Arc<AgentState>,), Error = std::convert::Infallible>
    + Clone
    + Send
    + Sync
    + 'static,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let create = warp::path!("v1" / "servers")
        .and(warp::post())
        .and(warp::body::content_length_limit(1024 * 1024))
        .and(warp::body::json::<ServerSpec>())
        .and(with_state.clone())
        .then(|spec: ServerSpec, state: Arc<AgentState>| async move {
            let volumes = match state.disks.server_volumes(&spec.volumes) {
                Ok(volumes) => volumes,
                Err(e) => return reply::<()>(Err(e)),
            };
            reply(state.drivers.create(spec, volumes).await)
        });
    let act = warp::path!("v1" / "servers" / Uuid / "action")
        .and(warp::post())
        .and(warp::body::content_length_limit(1024 * 1024))
        .and(warp::body::json::<ServerAction>())
        .and(with_state.clone())
        .then(
            |id: Uuid, action: ServerAction, state: Arc<AgentState>| async move {
                tracing::info!(%id, action = action.name(), "server action");
                // The one action that makes a VM here: it opens the server's volumes.
                if let ServerAction::PrepareIncoming { spec } = action {
                    let volumes = match state.disks.server_volumes(&spec.volumes) {
                        Ok(volumes) => volumes,
                        Err(e) => return reply::<()>(Err(e)),
                    };
                    return reply(state.drivers.prepare_incoming(*spec, volumes).await);
                }
                reply(state.drivers.act(id, action).await)
            },
        );
    let console = warp::path!("v1" / "servers" / Uuid / "console")
        .and(warp::get())
        .and(warp::query::<ConsoleQuery>())
        .and(with_state.clone())
        .then(
            |id: Uuid, q: ConsoleQuery, state: Arc<AgentState>| async move {
                reply(
                    state
                        .drivers
                        .console(id, q.length)
                        .await
                        .map(|output| ConsoleReply { output }),
                )
            },
        );
    let snapshot = warp::path!("v1" / "servers" / Uuid / "snapshot")
        .and(warp::post())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            tracing::info!(%id, "snapshot of the root disk");
            reply(state.drivers.snapshot(id).await)
        });
    let delete = warp::path!("v1" / "servers" / Uuid)
        .and(warp::delete())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            reply(
                state
                    .drivers
                    .delete(id)
                    .await
                    .map(|()| serde_json::json!({"deleted": id})),
            )
        });
    create
        .or(act)
        .unify()
        .or(console)
        .unify()
        .or(snapshot)
        .unify()
        .or(delete)
        .unify()
}
