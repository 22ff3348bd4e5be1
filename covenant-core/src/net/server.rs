//! Server half of the RPC layer: a [`Router`] of typed methods and the
//! [`RpcServer`] that accepts TLS connections and serves them.
//!
//! Per connection, one reader decodes requests and spawns each call as its own
//! task (bounded by `max_in_flight`), and one writer drains finished answers in
//! batches, so calls complete out of order. A bad frame closes only its own
//! connection.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::NetConfig;
use super::envelope::{Payload, RequestEnvelope, ResponseEnvelope};
use super::error::{NetError, RpcError};
use super::frame;
use super::identity::PeerIdentity;
use super::method::Method;
use super::tls::TlsContext;
use crate::codec::{self, decode_versioned, encode_versioned};
use crate::crypto::NodeId;
use crate::error::ErrorCode;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type Handler = Box<dyn Fn(PeerIdentity, Vec<u8>) -> BoxFuture<HandlerResult> + Send + Sync>;
type HandlerResult = Result<Vec<u8>, RpcError>;

/// The methods a server exposes, each with its typed handler.
#[derive(Default)]
pub struct Router {
    handlers: HashMap<&'static str, Handler>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Serves method `M` with `handler`, which receives the caller's verified
    /// identity and the decoded request. A name registered twice is an error.
    pub fn register<M, F, Fut>(&mut self, handler: F) -> Result<&mut Router, NetError>
    where
        M: Method,
        F: Fn(PeerIdentity, M::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Response, RpcError>> + Send + 'static,
    {
        if self.handlers.contains_key(M::NAME) {
            return Err(NetError::DuplicateMethod(M::NAME));
        }
        let h: Handler =
            Box::new(
                move |peer, payload: Vec<u8>| match codec::decode::<M::Request>(&payload) {
                    Ok(request) => {
                        let call = handler(peer, request);
                        Box::pin(async move {
                            let response = call.await?;
                            codec::encode(&response).map_err(|e| {
                                RpcError::new(
                                    ErrorCode::Internal,
                                    format!("cannot encode response: {e}"),
                                )
                            })
                        })
                    }
                    Err(e) => Box::pin(std::future::ready(Err(RpcError::new(
                        ErrorCode::BadRequest,
                        format!("bad request for {}: {e}", M::NAME),
                    )))),
                },
            );
        self.handlers.insert(M::NAME, h);
        Ok(self)
    }

    /// The registered method names.
    pub fn methods(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.handlers.keys().copied()
    }
}

/// A listening RPC server. Dropping it signals shutdown; [`RpcServer::shutdown`]
/// also waits until every connection has closed.
#[derive(Debug)]
pub struct RpcServer {
    local_addr: SocketAddr,
    node_id: NodeId,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RpcServer {
    /// Listens on `addr` (port 0 picks a free port), serving `router` over TLS as `tls`.
    pub async fn bind(
        addr: &str,
        tls: &TlsContext,
        router: Router,
        config: NetConfig,
    ) -> Result<RpcServer, NetError> {
        let bind_err = |source| NetError::Bind {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            tls.clone(),
            Arc::new(router),
            Arc::new(config),
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(RpcServer {
            local_addr,
            node_id: tls.local().node_id,
            shutdown,
            tracker,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Stops accepting, lets in-flight calls finish (up to the grace period),
    /// closes every connection and frees the port, then returns.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsContext,
    router: Arc<Router>,
    config: Arc<NetConfig>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "refusing connection: {} connections open", config.max_connections);
            continue;
        };
        let (tls, router, config, shutdown) = (
            tls.clone(),
            router.clone(),
            config.clone(),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            let _slot = slot;
            let accepted = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                a = tls.accept(tcp, &config) => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%addr, node = %peer.node_id, "connection accepted");
                    serve_connection(router, stream, peer, &config, shutdown).await;
                }
                Err(e) => tracing::warn!(%addr, "handshake refused: {e}"),
            }
        });
    }
}

/// Serves `router` on an already authenticated byte stream until it closes.
///
/// For transports that authenticate out of band (in-process tests, the plain
/// TCP baseline of the benchmark): the caller vouches for `peer`. Never use it
/// on an untrusted network; [`RpcServer`] is the authenticated entry point.
pub async fn serve_stream<S>(router: Arc<Router>, stream: S, peer: PeerIdentity, config: &NetConfig)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    serve_connection(router, stream, peer, config, CancellationToken::new()).await
}

async fn serve_connection<S>(
    router: Arc<Router>,
    stream: S,
    peer: PeerIdentity,
    config: &NetConfig,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let max = config.max_frame_len;
    let (rd, wr) = tokio::io::split(stream);
    let mut frames = FramedRead::new(rd, frame::codec(max));
    let (tx, rx) = mpsc::channel::<Bytes>(frame::WRITE_QUEUE);
    // The server's writer ends when every call has answered, not on a signal.
    let mut writer = tokio::spawn(frame::write_loop(
        FramedWrite::new(wr, frame::codec(max)),
        rx,
        CancellationToken::new(),
    ));
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let node = peer.node_id;
    let mut graceful = true;
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            n = frames.next() => n,
        };
        let bytes = match next {
            None => break,
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                if frame::is_oversized(&e) {
                    tracing::warn!(%node, "closing connection: frame over {max} bytes");
                } else {
                    tracing::debug!(%node, "connection read failed: {e}");
                }
                graceful = false;
                break;
            }
        };
        let request = match decode_versioned::<RequestEnvelope>(&bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%node, "closing connection: undecodable request: {e}");
                graceful = false;
                break;
            }
        };
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let RequestEnvelope {
            id,
            method,
            timeout_ms,
            payload,
        } = request;
        let Some(handler) = router.handlers.get(method.as_str()) else {
            let err = RpcError::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {method:?}"),
            );
            if tx.send(response_frame(id, Err(err), max)).await.is_err() {
                break;
            }
            continue;
        };
        let call = AssertUnwindSafe(handler(peer, payload.0)).catch_unwind();
        let tx = tx.clone();
        tokio::spawn(async move {
            let outcome = if timeout_ms == 0 {
                call.await
            } else {
                match tokio::time::timeout(Duration::from_millis(timeout_ms), call).await {
                    Ok(o) => o,
                    // The caller has given up; nobody is waiting for an answer.
                    Err(_) => return,
                }
            };
            let result = outcome.unwrap_or_else(|_| {
                Err(RpcError::new(ErrorCode::Internal, "the handler panicked"))
            });
            let _ = tx.send(response_frame(id, result, max)).await;
            drop(permit);
        });
    }
    drop(tx);
    if graceful {
        // The writer ends once every running call has answered.
        if tokio::time::timeout(config.shutdown_grace, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    } else {
        writer.abort();
    }
}

/// The encoded response frame for call `id`; answers too big for a frame become errors.
fn response_frame(id: u64, result: HandlerResult, max: usize) -> Bytes {
    let envelope = ResponseEnvelope {
        id,
        result: result.map(Payload),
    };
    match encode_versioned(&envelope) {
        Ok(b) if b.len() <= max => Bytes::from(b),
        Ok(b) => error_frame(
            id,
            RpcError::new(
                ErrorCode::FrameTooLarge,
                format!(
                    "response of {} bytes exceeds the frame limit of {max}",
                    b.len()
                ),
            ),
        ),
        Err(e) => error_frame(
            id,
            RpcError::new(ErrorCode::Internal, format!("cannot encode response: {e}")),
        ),
    }
}

fn error_frame(id: u64, err: RpcError) -> Bytes {
    let envelope = ResponseEnvelope {
        id,
        result: Err(err),
    };
    // Encoding an error of a few plain fields cannot fail; an empty frame would
    // make the client drop the connection, which is the safe outcome anyway.
    encode_versioned(&envelope)
        .map(Bytes::from)
        .unwrap_or_default()
}
