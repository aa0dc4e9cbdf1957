//! Volumes and their snapshots (`agent_api::VOLUMES_PATH`, `VOLUME_SNAPSHOTS_PATH`): create,
//! delete, extend, attach to and detach from this node's servers.

use std::sync::Arc;

use uuid::Uuid;
use warp::Filter;
use yunji_common::agent_api::{SnapshotSpec, VolumeAttach, VolumeDetach, VolumeExtend, VolumeSpec};

use super::{AgentState, reply};
use crate::drivers::DriverError;
use crate::drivers::sim::Sim;

impl AgentState {
    /// The sim set's clock and faults, which the sim disk driver runs on.
    fn sim_clock(&self) -> Result<&Sim, DriverError> {
        self.drivers.sim().ok_or_else(|| DriverError {
            code: "no-disk-driver",
            message: "this node has no disk driver for volumes".into(),
        })
    }
}

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
            reply(match state.sim_clock() {
                Ok(sim) => state.disks.create(sim, spec).await,
                Err(e) => Err(e),
            })
        });
    let delete = warp::path!("v1" / "volumes" / Uuid)
        .and(warp::delete())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            reply(match state.sim_clock() {
                Ok(sim) => state
                    .disks
                    .delete(sim, id)
                    .await
                    .map(|()| serde_json::json!({"deleted": id})),
                Err(e) => Err(e),
            })
        });
    let extend = warp::path!("v1" / "volumes" / Uuid / "extend")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<VolumeExtend>())
        .and(with_state.clone())
        .then(
            |id: Uuid, body: VolumeExtend, state: Arc<AgentState>| async move {
                reply(match state.sim_clock() {
                    Ok(sim) => state.disks.extend(sim, id, body.size_gb).await,
                    Err(e) => Err(e),
                })
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
                reply(match state.sim_clock() {
                    Ok(sim) => state.disks.attach(sim, id, body).await,
                    Err(e) => Err(e),
                })
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
                reply(match state.sim_clock() {
                    Ok(sim) => state.disks.detach(sim, id, body).await,
                    Err(e) => Err(e),
                })
            },
        );
    let snapshot_create = warp::path!("v1" / "volume-snapshots")
        .and(warp::post())
        .and(json_body())
        .and(warp::body::json::<SnapshotSpec>())
        .and(with_state.clone())
        .then(|spec: SnapshotSpec, state: Arc<AgentState>| async move {
            reply(match state.sim_clock() {
                Ok(sim) => state.disks.snapshot_create(sim, spec).await,
                Err(e) => Err(e),
            })
        });
    let snapshot_delete = warp::path!("v1" / "volume-snapshots" / Uuid)
        .and(warp::delete())
        .and(with_state.clone())
        .then(|id: Uuid, state: Arc<AgentState>| async move {
            reply(match state.sim_clock() {
                Ok(sim) => state
                    .disks
                    .snapshot_delete(sim, id)
                    .await
                    .map(|()| serde_json::json!({"deleted": id})),
                Err(e) => Err(e),
            })
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
