//! The agent API, served by warp over mutual TLS (only the scheduler's certificate is
//! accepted: the TLS layer checks the CA and the clientAuth usage).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::StatusCode;
use warp::Filter;
use yunji_common::agent_api::{AgentError, Drivers, NodeStatus};

mod images;
mod network;
mod servers;
mod volumes;

use crate::drivers::sim::Fault;
use crate::drivers::{DriverError, DriverSet};
use crate::net::driver::NetworkDriver;

pub struct AgentState {
    node_name: String,
    availability_zone: String,
    started_at: DateTime<Utc>,
    pub(crate) drivers: DriverSet,
    pub(crate) network: Arc<NetworkDriver>,
    /// The disk driver, beside the driver set: volumes and snapshots.
    pub(crate) disks: crate::disk::Disks,
}

impl AgentState {
    pub fn new(
        node_name: String,
        availability_zone: String,
        drivers: DriverSet,
        network: Arc<NetworkDriver>,
        disks: crate::disk::Disks,
    ) -> AgentState {
        AgentState {
            node_name,
            availability_zone,
            started_at: Utc::now(),
            drivers,
            network,
            disks,
        }
    }

    pub async fn status(&self) -> Result<NodeStatus, DriverError> {
        let (capacity, inventory) = self.drivers.observe().await?;
        Ok(NodeStatus {
            node_name: self.node_name.clone(),
            availability_zone: self.availability_zone.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            drivers: Drivers {
                network: self.network.kind(),
                disk: self.disks.kind(),
                ..self.drivers.drivers()
            },
            capacity,
            inventory,
            network: self.network.inventory(),
            storage: Some(self.disks.observe(&self.drivers)),
        })
    }
}

pub(crate) fn reply<T: serde::Serialize>(result: Result<T, DriverError>) -> warp::reply::Response {
    use warp::Reply;
    match result {
        Ok(body) => warp::reply::json(&body).into_response(),
        Err(e) => {
            let status = match e.code {
                "not-found" => StatusCode::NOT_FOUND,
                "state" | "no-space" => StatusCode::CONFLICT,
                "bad-request" | "bad-image" => StatusCode::BAD_REQUEST,
                "unsupported" => StatusCode::NOT_IMPLEMENTED,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error(status, e.code, e.message)
        }
    }
}

fn error(status: StatusCode, code: &str, message: String) -> warp::reply::Response {
    use warp::Reply;
    warp::reply::with_status(
        warp::reply::json(&AgentError {
            code: code.into(),
            message,
        }),
        status,
    )
    .into_response()
}

/// A request the route table does not list.
#[derive(Debug)]
struct NotAnEndpoint;

impl warp::reject::Reject for NotAnEndpoint {}

/// The agent API's routes.
pub fn routes(
    state: Arc<AgentState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let snapshots_dir = state.drivers.snapshots_dir();
    let with_state = warp::any().map(move || state.clone());
    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with_state.clone())
        .then(|state: Arc<AgentState>| async move { reply(state.status().await) });
    // Sim only: inject or clear a failure of one operation.
    let fault = warp::path!("v1" / "sim" / "faults" / String)
        .and(warp::put())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::json::<Option<Fault>>())
        .and(with_state.clone())
        .map(
            |operation: String, fault: Option<Fault>, state: Arc<AgentState>| match state
                .drivers
                .sim()
            {
                Some(sim) => {
                    sim.set_fault(&operation, fault);
                    reply(Ok(serde_json::json!({"operation": operation})))
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "not-sim",
                    "faults are injected into the sim driver set only".into(),
                ),
            },
        );
    // The table in agent_api::routes admits a request first: the agent serves nothing
    // its document does not list.
    let admitted = warp::method()
        .and(warp::path::full())
        .and_then(
            |method: http::Method, path: warp::path::FullPath| async move {
                if yunji_common::agent_api::routes::is_agent_route(&method, path.as_str()) {
                    Ok(())
                } else {
                    Err(warp::reject::custom(NotAnEndpoint))
                }
            },
        )
        .untuple_one();
    admitted
        .and(
            status
                .or(servers::routes(with_state.clone()))
                .unify()
                .or(network::routes(with_state.clone()))
                .unify()
                .or(volumes::routes(with_state.clone()))
                .unify()
                .or(images::routes(with_state.clone(), snapshots_dir))
                .unify()
                .or(fault)
                .unify(),
        )
        .recover(|rejection: warp::Rejection| async move {
            let (status, code, message) = if rejection.find::<NotAnEndpoint>().is_some() {
                (
                    StatusCode::NOT_FOUND,
                    "no-endpoint",
                    "no such agent endpoint (docs/agent-api.json lists them)".to_string(),
                )
            } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
                (StatusCode::BAD_REQUEST, "bad-request", e.to_string())
            } else if rejection.is_not_found()
                || rejection.find::<warp::reject::MethodNotAllowed>().is_some()
            {
                // The table admitted the method and path, so what is missing is the
                // thing asked for (a snapshot file, say); warp reports that as
                // another filter's 405.
                (
                    StatusCode::NOT_FOUND,
                    "not-found",
                    "nothing is there".to_string(),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    format!("{rejection:?}"),
                )
            };
            Ok::<_, std::convert::Infallible>(error(status, code, message))
        })
        .unify()
}

/// The per-connection handler for `yunji_common::serve`.
pub fn handler(
    state: Arc<AgentState>,
) -> impl Fn(
    http::Request<hyper::body::Incoming>,
    Arc<yunji_common::serve::Peer>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = warp::reply::Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    let service = warp::service(routes(state));
    move |req, _peer| {
        let mut service = service.clone();
        Box::pin(async move {
            match tower_service::Service::call(&mut service, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    }
}
