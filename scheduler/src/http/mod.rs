//! The HTTP layer: warp extracts each request, a router per service matches its path,
//! handlers parse input, call one core operation and render OpenStack's view. This
//! layer depends on `core` and `model` only — never on the store or the agent client
//! (a test enforces it).
//!
//! The route table (`routes.rs`) admits a request first (404, or 405 with `Allow`) and
//! is rendered as the OpenAPI document; then a `match` on (method, path segments) per
//! service dispatches it — rather than a tree of warp filters, which keeps hundreds of
//! endpoints quick to compile and lets every service answer in its own error shape.

mod agent_join;
mod compute;
mod discovery;
pub mod errors;
mod identity;
mod image;
mod load_balancer;
pub mod microversion;
mod network;
mod openapi;
mod routes;
mod volume;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use warp::Filter;

use crate::core::Core;
use crate::model::Caller;
pub use errors::{ApiError, Service};

/// What every handler returns.
pub type Response = warp::reply::Response;
pub type ApiResult = Result<Response, ApiError>;

/// A request body, chunk by chunk.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send + Sync>>;

/// A response body as the listener sends it: warp's, or a file streamed from disk.
pub type ResponseBody =
    http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Put in a response's extensions to have the listener stream this file as the body
/// (warp has no streaming body of its own): image downloads never sit in memory.
#[derive(Debug, Clone)]
pub struct StreamFile {
    pub path: std::path::PathBuf,
}

/// One request, as handlers see it.
pub struct ApiRequest {
    /// `req-<uuid>`, also sent back as `X-Openstack-Request-Id`; instance actions
    /// record it.
    pub request_id: String,
    pub method: Method,
    pub path: String,
    /// Path segments, percent-decoded, empty ones (trailing or doubled slashes) dropped.
    pub segments: Vec<String>,
    pub query: String,
    pub headers: HeaderMap,
    body: Option<BodyStream>,
    max_body: usize,
}

impl ApiRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters, decoded, in order (repeats kept).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// Whether a flag parameter is present (`?nocatalog`, `?cascade=true`).
    pub fn query_flag(&self, key: &str) -> bool {
        form_urlencoded::parse(self.query.as_bytes()).any(|(k, v)| {
            k == key && !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no")
        })
    }

    /// The body as a stream, for handlers that store it without holding it (uploads).
    pub fn body_stream(&mut self) -> Option<BodyStream> {
        self.body.take()
    }

    /// Reads the whole body, refusing more than the configured limit (413).
    pub async fn body_bytes(&mut self) -> Result<Bytes, ApiError> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {} bytes", self.max_body),
            )
        };
        if let Some(len) = self
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            && len > self.max_body
        {
            return Err(too_large());
        }
        let Some(mut stream) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("reading the body failed: {e}")))?;
            if buf.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// Parses a JSON body: 415 for another content type, 413 over the limit, 400 with
    /// serde's explanation (field and position) for anything malformed.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        if let Some(ct) = self.header("content-type") {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if mime != "application/json" && !mime.ends_with("+json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("the body must be application/json, not {mime}"),
                ));
            }
        }
        let body = self.body_bytes().await?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the request needs a JSON body"));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the JSON body is invalid: {e}")))
    }

    /// The caller behind `X-Auth-Token` (401 without a valid one).
    pub async fn caller(&self, core: &Core) -> Result<Caller, ApiError> {
        let token = self.header("x-auth-token").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "The request you have made requires authentication: send a token in X-Auth-Token.",
            )
        })?;
        Ok(core.token_validate(token).await?.caller.clone())
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => bytes_response(status, Bytes::from(bytes)),
        Err(error) => {
            tracing::error!(%error, "serialising a response failed");
            let mut r = Response::new(Bytes::new().into());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}

/// A response whose body is already-serialised JSON.
pub fn bytes_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// An empty response (204 and friends).
pub fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Bytes::new().into());
    *r.status_mut() = status;
    r
}

/// The warp filter for the whole API.
pub fn routes(
    core: Arc<Core>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::method()
        .and(warp::ext::optional::<RequestId>())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream().map(box_body))
        .then(
            move |method: Method,
                  request_id: Option<RequestId>,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body: BodyStream| {
                let core = core.clone();
                async move {
                    let path = path.as_str().to_string();
                    let segments = path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            percent_encoding::percent_decode_str(s)
                                .decode_utf8_lossy()
                                .into_owned()
                        })
                        .collect();
                    let req = ApiRequest {
                        request_id: request_id.unwrap_or_else(RequestId::new).0,
                        method,
                        path,
                        segments,
                        query,
                        headers,
                        body: Some(body),
                        max_body: core.config().max_body_bytes,
                    };
                    dispatch(&core, req).await
                }
            },
        )
}

fn box_body<S, B>(stream: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + Sync + 'static,
    B: Buf,
{
    Box::pin(stream.map(|chunk| chunk.map(|mut b| b.copy_to_bytes(b.remaining()))))
}

/// Admits a request by the route table, then sends it to its service by the first
/// path segment.
async fn dispatch(core: &Core, req: ApiRequest) -> Response {
    let service = Service::of_path(req.segments.first().map(String::as_str));
    let route = match routes::admit(&req.method, &req.segments) {
        Ok(route) => route,
        Err(e) => return error_response(service, e, None),
    };
    let result = match service {
        Service::Identity if req.segments.is_empty() => {
            discovery::identity_versions(core).map_err(no_mv)
        }
        Service::Identity => identity::route(core, req).await.map_err(no_mv),
        Service::Compute if req.segments.len() > 2 => compute::route(core, req).await,
        Service::Compute => discovery::compute(core, &req).map_err(no_mv),
        Service::Image => image::route(core, req).await.map_err(no_mv),
        Service::Network => network::route(core, req).await.map_err(no_mv),
        Service::Volume if req.segments.len() > 2 => volume::route(core, req).await,
        Service::Volume => discovery::volume(core, &req).map_err(no_mv),
        Service::LoadBalancer if req.segments.len() > 2 => {
            load_balancer::route(core, req).await.map_err(no_mv)
        }
        Service::LoadBalancer => discovery::load_balancer(core, &req).map_err(no_mv),
        Service::Other if req.segments.first().is_some_and(|s| s == "openapi.json") => {
            Ok(bytes_response(StatusCode::OK, openapi::document_json()))
        }
        Service::Other => agent_join::route(core, req).await.map_err(no_mv),
    };
    match result {
        Ok(response) => {
            // Every test that gets a success checks the table's status along the way.
            debug_assert!(
                !response.status().is_success() || route.statuses.contains(&response.status()),
                "{} {} answered {}, but the route table documents {:?}",
                route.method,
                route.path,
                response.status(),
                route.statuses
            );
            response
        }
        Err((e, mv)) => error_response(service, e, mv),
    }
}

fn no_mv(e: ApiError) -> (ApiError, Option<microversion::Microversion>) {
    (e, None)
}

/// An error in `service`'s body shape; compute and block storage also echo the
/// microversion (the negotiated one, or their minimum when negotiation failed).
fn error_response(
    service: Service,
    e: ApiError,
    mv: Option<microversion::Microversion>,
) -> Response {
    let mut response = e.into_response(service);
    let range = match service {
        Service::Compute => compute::range(),
        Service::Volume => volume::range(),
        _ => return response,
    };
    range.echo(mv.unwrap_or(range.min), &mut response);
    response
}

/// The id of one request, made by the listener before routing.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    fn new() -> RequestId {
        RequestId(format!("req-{}", uuid::Uuid::new_v4()))
    }
}

/// A request being handled, as the listener awaits it.
pub type Handled = Pin<Box<dyn std::future::Future<Output = http::Response<ResponseBody>> + Send>>;

/// The per-connection handler the listener runs: request id, access log, warp.
pub fn handler(
    core: Arc<Core>,
) -> impl Fn(http::Request<hyper::body::Incoming>, Arc<yunji_common::serve::Peer>) -> Handled
+ Clone
+ Send
+ Sync
+ 'static {
    let service = warp::service(routes(core));
    move |mut req: http::Request<hyper::body::Incoming>, peer| {
        let mut service = service.clone();
        let RequestId(request_id) = RequestId::new();
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let span = tracing::info_span!("request", id = %request_id, method = %req.method(),
            path = %req.uri().path(), peer = %peer.addr);
        Box::pin(
            async move {
                let started = Instant::now();
                let response: Result<Response, Infallible> =
                    tower_service::Service::call(&mut service, req).await;
                let mut response = match response {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response
                        .headers_mut()
                        .insert("x-openstack-request-id", value);
                }
                tracing::info!(
                    status = response.status().as_u16(),
                    micros = started.elapsed().as_micros() as u64,
                    "handled"
                );
                into_wire(response).await
            }
            .instrument(span),
        )
    }
}

/// Turns warp's response into the listener's, streaming a [`StreamFile`] from disk.
async fn into_wire(response: Response) -> http::Response<ResponseBody> {
    use http_body_util::BodyExt;
    let file = response.extensions().get::<StreamFile>().cloned();
    let (mut parts, body) = response.into_parts();
    let Some(StreamFile { path }) = file else {
        return http::Response::from_parts(parts, body.map_err(|e| e.into()).boxed());
    };
    match tokio::fs::File::open(&path).await {
        Ok(file) => {
            if let Ok(meta) = file.metadata().await {
                parts
                    .headers
                    .insert(http::header::CONTENT_LENGTH, meta.len().into());
            }
            let frames = tokio_util::io::ReaderStream::new(file)
                .map(|chunk| chunk.map(hyper::body::Frame::data).map_err(|e| e.into()));
            http::Response::from_parts(
                parts,
                BodyExt::boxed(http_body_util::StreamBody::new(frames)),
            )
        }
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "cannot open a file to stream");
            let mut r = http::Response::new(
                http_body_util::Full::new(Bytes::new())
                    .map_err(|e| match e {})
                    .boxed(),
            );
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    }
}
