//! Images on the node (`agent_api::IMAGES_PATH`): whether it has one, and receiving one
//! the scheduler pushes (streamed; checked while written).

use std::sync::Arc;

use warp::Filter;
use yunji_common::agent_api::{ImageOnNode, ImagePush};

use super::{AgentState, reply};
use crate::drivers::DriverError;

pub fn routes(
    with_state: impl Filter<Extract = (Arc<AgentState>,), Error = std::convert::Infallible>
    + Clone
    + Send
    + Sync
    + 'static,
    snapshots_dir: Option<std::path::PathBuf>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let show = warp::path!("v1" / "images" / String)
        .and(warp::get())
        .and(with_state.clone())
        .map(|id: String, state: Arc<AgentState>| {
            let result = match state.drivers.images() {
                // The sim set boots any image without keeping it.
                None => Ok(ImageOnNode { id, size: None }),
                Some(images) => images.path_of(&id).map(|path| ImageOnNode {
                    size: std::fs::metadata(path).ok().map(|m| m.len()),
                    id,
                }),
            };
            reply(result)
        });
    let push = warp::path!("v1" / "images" / String)
        .and(warp::put())
        .and(warp::query::<ImagePush>())
        .and(warp::body::stream())
        .and(with_state.clone())
        .then(
            |id: String, push: ImagePush, body, state: Arc<AgentState>| async move {
                let Some(images) = state.drivers.images() else {
                    return reply::<ImageOnNode>(Err(DriverError {
                        code: "not-found",
                        message: "the sim driver set keeps no images".into(),
                    }));
                };
                tracing::info!(%id, format = %push.disk_format, "receiving an image");
                let body = Box::pin(body);
                let result = images
                    .receive(&id, &push.disk_format, push.sha512.as_deref(), body)
                    .await
                    .map(|size| ImageOnNode {
                        id,
                        size: Some(size),
                    });
                reply(result)
            },
        );
    // Snapshots are files: warp streams them. The sim set serves from nowhere.
    let snapshots_dir = snapshots_dir.unwrap_or_else(|| "/nonexistent/yunji-sim".into());
    let snapshot_get = warp::path!("v1" / "snapshots" / ..)
        .and(warp::get())
        .and(warp::fs::dir(snapshots_dir))
        .map(|file: warp::fs::File| warp::Reply::into_response(file));
    let snapshot_delete = warp::path!("v1" / "snapshots" / String)
        .and(warp::delete())
        .and(with_state)
        .then(|name: String, state: Arc<AgentState>| async move {
            reply(
                state
                    .drivers
                    .snapshot_delete(&name)
                    .await
                    .map(|()| serde_json::json!({"deleted": name})),
            )
        });
    show.or(push)
        .unify()
        .or(snapshot_get)
        .unify()
        .or(snapshot_delete)
        .unify()
}
