//! Serving HTTP/1.1 over TCP, plain or TLS, with graceful shutdown: the one accept loop
//! both the scheduler's API listener and the agent's mTLS listener run.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the handler knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client's verified certificate chain, on a mutual-TLS listener.
    pub certificates: Option<Arc<Vec<CertificateDer<'static>>>>,
}

/// How long in-flight requests may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);
/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves `handler` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (up to ten seconds). Each connection runs on its own task; a TLS
/// handshake never holds up the accept loop.
pub async fn serve<H, F, B>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, Arc<Peer>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Connections watch `closing`; each holds a clone of `open` so the drain can count them.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(());
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        let closing = closing_rx.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let _open = open;
            match acceptor {
                None => {
                    let peer = Arc::new(Peer {
                        addr,
                        certificates: None,
                    });
                    run_connection(TokioIo::new(stream), handler, peer, closing).await;
                }
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::info!(%addr, %error, "TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let certificates = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()));
                    let peer = Arc::new(Peer { addr, certificates });
                    run_connection(TokioIo::new(tls), handler, peer, closing).await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while Arc::strong_count(&open) > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after the drain period; closing");
    }
}

/// Serves one connection; when `closing` turns true, finishes the request in flight
/// and closes (idle keep-alive connections close at once).
async fn run_connection<IO, H, F, B>(
    io: IO,
    handler: H,
    peer: Arc<Peer>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, Arc<Peer>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |req| {
        let fut = handler(req, peer.clone());
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = async { drop(closing.wait_for(|c| *c).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
