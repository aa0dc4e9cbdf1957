//! A minimal HTTP/1.1 client over TCP or TLS for the calls between scheduler and agents:
//! one connection per call, a TLS configuration chosen by the caller (mutual TLS towards
//! agents, a pinned certificate for joining), JSON in and out, and a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Replies larger than this are refused.
const MAX_REPLY: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("invalid URL {0}")]
    Url(String),
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {url} failed")]
    Tls {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP exchange with {url} failed")]
    Http {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{url} took longer than {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("{url} answered with a body that is not the expected JSON")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How to secure a call: plain TCP, or TLS verifying the server as `server_name`.
#[derive(Clone)]
pub enum Transport {
    Plain,
    Tls {
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain => f.write_str("Plain"),
            Transport::Tls { server_name, .. } => write!(f, "Tls({server_name:?})"),
        }
    }
}

/// Sends `body` as JSON to `base_url` + `path` and decodes a JSON reply; a non-2xx status
/// becomes [`CallError::Status`] carrying the reply's text.
pub async fn call_json<Req: Serialize, Rep: DeserializeOwned>(
    transport: &Transport,
    base_url: &str,
    method: Method,
    path: &str,
    body: Option<&Req>,
    timeout: Duration,
) -> Result<Rep, CallError> {
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let payload = match body {
        Some(b) => Bytes::from(serde_json::to_vec(b).map_err(|source| CallError::Decode {
            url: url.clone(),
            source,
        })?),
        None => Bytes::new(),
    };
    let call = exchange(
        transport,
        &url,
        method,
        "application/json",
        Full::new(payload),
    );
    finish(call, url.clone(), timeout).await
}

/// Streams the file at `file` as the body of a request to `base_url` + `path` (the
/// scheduler pushing an image to a node) and decodes a JSON reply, as [`call_json`].
pub async fn upload_file<Rep: DeserializeOwned>(
    transport: &Transport,
    base_url: &str,
    method: Method,
    path: &str,
    file: &std::path::Path,
    timeout: Duration,
) -> Result<Rep, CallError> {
    use tokio::io::AsyncReadExt;
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let file = tokio::fs::File::open(file)
        .await
        .map_err(|source| CallError::Connect {
            url: url.clone(),
            source,
        })?;
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buffer = bytes::BytesMut::with_capacity(256 * 1024);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(hyper::body::Frame::data(buffer.freeze())), file)),
            Err(e) => Some((Err(e), file)),
        }
    });
    let call = exchange(
        transport,
        &url,
        method,
        "application/octet-stream",
        StreamBody::new(chunks),
    );
    finish(call, url.clone(), timeout).await
}

/// `GET`s `base_url` + `path` and streams a successful reply's body into the file `to`
/// (the scheduler fetching a node's disk snapshot); returns the bytes written.
pub async fn download_file(
    transport: &Transport,
    base_url: &str,
    path: &str,
    to: &std::path::Path,
    timeout: Duration,
) -> Result<u64, CallError> {
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let download = async {
        let io_error = |source| CallError::Http {
            url: url.clone(),
            source: Box::new(source),
        };
        let response = connect_and_send(
            transport,
            &url,
            Method::GET,
            "application/json",
            Full::new(Bytes::new()),
        )
        .await?;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let reply = Limited::new(body, 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(CallError::Status {
                url: url.clone(),
                status,
                message: String::from_utf8_lossy(&reply).chars().take(1000).collect(),
            });
        }
        use tokio::io::AsyncWriteExt;
        let mut file = tokio::fs::File::create(to).await.map_err(io_error)?;
        let mut written = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CallError::Http {
                url: url.clone(),
                source: e.into(),
            })?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data).await.map_err(io_error)?;
                written += data.len() as u64;
            }
        }
        file.sync_all().await.map_err(io_error)?;
        Ok(written)
    };
    tokio::time::timeout(timeout, download)
        .await
        .map_err(|_| CallError::Timeout {
            url: url.clone(),
            secs: timeout.as_secs(),
        })?
}

async fn finish<Rep: DeserializeOwned>(
    call: impl std::future::Future<Output = Result<(StatusCode, Bytes), CallError>>,
    url: String,
    timeout: Duration,
) -> Result<Rep, CallError> {
    let (status, reply) =
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| CallError::Timeout {
                url: url.clone(),
                secs: timeout.as_secs(),
            })??;
    if !status.is_success() {
        return Err(CallError::Status {
            url,
            status,
            message: String::from_utf8_lossy(&reply).chars().take(1000).collect(),
        });
    }
    serde_json::from_slice(&reply).map_err(|source| CallError::Decode { url, source })
}

async fn exchange<B>(
    transport: &Transport,
    url: &str,
    method: Method,
    content_type: &str,
    payload: B,
) -> Result<(StatusCode, Bytes), CallError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = connect_and_send(transport, url, method, content_type, payload).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|source| CallError::Http {
            url: url.into(),
            source,
        })?
        .to_bytes();
    Ok((status, body))
}

/// Connects, sends the request and returns the response with its body still to read.
async fn connect_and_send<B>(
    transport: &Transport,
    url: &str,
    method: Method,
    content_type: &str,
    payload: B,
) -> Result<http::Response<hyper::body::Incoming>, CallError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let uri: Uri = url.parse().map_err(|_| CallError::Url(url.into()))?;
    let host = uri.host().ok_or_else(|| CallError::Url(url.into()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tls = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|source| CallError::Connect {
            url: url.into(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            http::header::HOST,
            uri.authority().map_or(host, |a| a.as_str()),
        )
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(payload)
        .map_err(|e| CallError::Http {
            url: url.into(),
            source: e.into(),
        })?;
    match (transport, tls) {
        (Transport::Plain, false) => send(TokioIo::new(tcp), request, url).await,
        (
            Transport::Tls {
                config,
                server_name,
            },
            true,
        ) => {
            let stream = TlsConnector::from(config.clone())
                .connect(server_name.clone(), tcp)
                .await
                .map_err(|source| CallError::Tls {
                    url: url.into(),
                    source,
                })?;
            send(TokioIo::new(stream), request, url).await
        }
        (Transport::Plain, true) | (Transport::Tls { .. }, false) => Err(CallError::Url(format!(
            "{url}: the URL's scheme does not match the configured transport"
        ))),
    }
}

/// One request over a fresh HTTP/1.1 connection; the connection ends once the response
/// has been read and the request handle dropped.
async fn send<IO, B>(
    io: IO,
    request: Request<B>,
    url: &str,
) -> Result<http::Response<hyper::body::Incoming>, CallError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http_err = |source: Box<dyn std::error::Error + Send + Sync>| CallError::Http {
        url: url.into(),
        source,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| http_err(e.into()))?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| http_err(e.into()))
}
