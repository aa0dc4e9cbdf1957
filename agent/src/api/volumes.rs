//! Volumes and their snapshots (`agent_api::VOLUMES_PATH`, `VOLUME_SNAPSHOTS_PATH`): create,
//! delete, extend, attach to and detach from this node's servers.

use std::sync::Arc;

use uuid::Uuid;
use warp::Filter;
use yunji_common::agent_api::{SnapshotSpec, VolumeAttach, VolumeDetach, VolumeExtend, VolumeSpec};

use super::{AgentState, reply};

pub fn routes(
    with_state: impl Filter<Extract = (Arc<AgentState>,), Error = std::convert::Infallible>
    + Clone
    + Send
    + Sync
    + 'static,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let json_body = || warp::body::content_length_limit(64 * 1024);
    let create = warp::path!("v1" / "volumes")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<VolumeSpec>())
        .and(with_state.clone())
        .then(|spec: VolumeSpec, state: Arc<AgentState>| async move {
            tracing::info!(id = %spec.id, size_gb = spec.size_gb, "volume create");
            reply(state.disks.create(&state.drivers, spec).await)
        });
    let delete = warp::path!("v1" / "volumes" / Uuid)
        .and(warp::delete())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            reply(
                state
                    .disks
                    .delete(&state.drivers, id)
                    .await
                    .map(|()| serde_json::json!({"deleted": id})),
            )
        });
    let extend = warp::path!("v1" / "volumes" / Uuid / "extend")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<VolumeExtend>())
        .and(with_state.clone())
        .then(
            |id: Uuid, body: VolumeExtend, state: Arc<AgentState>| async move {
                reply(state.disks.extend(&state.drivers, id, body.size_gb).await)
            },
        );
    let attach = warp::path!("v1" / "volumes" / Uuid / "attach")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<VolumeAttach>())
        .and(with_state.clone())
        .then(
            |id: Uuid, body: VolumeAttach, state: Arc<AgentState>| async move {
                tracing::info!(%id, server = %body.server_id, device = %body.device, "volume attach");
                reply(state.disks.attach(&state.drivers, id, body).await)
            },
        );
    let detach = warp::path!("v1" / "volumes" / Uuid / "detach")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<VolumeDetach>())
        .and(with_state.clone())
        .then(
            |id: Uuid, body: VolumeDetach, state: Arc<AgentState>| async move {
                tracing::info!(%id, server = %body.server_id, "volume detach");
                reply(state.disks.detach(&state.drivers, id, body).await)
            },
        );
    let snapshot_create = warp::path!("v1" / "volume-snapshots")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<SnapshotSpec>())
        .and(with_state.clone())
        .then(|spec: SnapshotSpec, state: Arc<AgentState>| async move {
            reply(state.disks.snapshot_create(&state.drivers, spec).await)
        });
    let snapshot_delete = warp::path!("v1" / "volume-snapshots" / Uuid)
        .and(warp::delete())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            reply(
                state
                    .disks
                    .snapshot_delete(&state.drivers, id)
                    .await
                    .map(|()| serde_json::json!({"deleted": id})),
            )
        });
    create
        .or(delete)
        .unify()
        .or(extend)
        .unify()
        .or(attach)
        .unify()
        .or(detach)
        .unify()
        .or(snapshot_create)
        .unify()
        .or(snapshot_delete)
        .unify()
}
