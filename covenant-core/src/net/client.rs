//! Client half of the RPC layer: a multiplexed [`Connection`] carrying many
//! concurrent calls, matched to their answers by request id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::NetConfig;
use super::envelope::{Payload, RequestEnvelope, ResponseEnvelope};
use super::error::{NetError, RpcError};
use super::frame;
use super::identity::PeerIdentity;
use super::method::Method;
use super::tls::TlsContext;
use crate::codec::{self, decode_versioned, encode_versioned};
use crate::crypto::NodeId;

type Answer = Result<Payload, RpcError>;

/// One connection to a peer; clones share it. Calls on it run concurrently and
/// may be answered out of order. When it breaks, every waiting call fails with
/// [`NetError::ConnectionClosed`]; it does not reconnect (the [`super::Pool`] does).
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    peer: PeerIdentity,
    remote: String,
    tx: mpsc::Sender<Bytes>,
    calls: Arc<Calls>,
    next_id: AtomicU64,
    max_frame_len: usize,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.inner.peer.node_id)
            .field("remote", &self.inner.remote)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Calls waiting for an answer, and why the connection closed once it has.
#[derive(Default)]
struct Calls {
    state: Mutex<CallState>,
}

#[derive(Default)]
struct CallState {
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    closed: Option<String>,
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, CallState> {
        // A panic elsewhere cannot leave the map inconsistent; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(&self, id: u64, done: oneshot::Sender<Answer>) -> Result<(), NetError> {
        let mut s = self.lock();
        if let Some(reason) = &s.closed {
            return Err(NetError::ConnectionClosed {
                reason: reason.clone(),
            });
        }
        s.waiting.insert(id, done);
        Ok(())
    }

    fn complete(&self, id: u64, answer: Answer) {
        // An unknown id is a call that already timed out: drop the late answer.
        if let Some(done) = self.lock().waiting.remove(&id) {
            let _ = done.send(answer);
        }
    }

    fn forget(&self, id: u64) {
        self.lock().waiting.remove(&id);
    }

    /// Marks the connection closed and fails every waiting call.
    fn close(&self, reason: String) {
        let mut s = self.lock();
        if s.closed.is_none() {
            s.closed = Some(reason);
        }
        s.waiting.clear();
    }

    fn closed_error(&self) -> NetError {
        NetError::ConnectionClosed {
            reason: self
                .lock()
                .closed
                .clone()
                .unwrap_or_else(|| "connection closed".into()),
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }
}

/// Removes a call's entry however the call ends (answer, timeout, or the caller dropping it).
struct Waiting<'a> {
    calls: &'a Calls,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.calls.forget(self.id);
    }
}

impl Connection {
    /// Connects to `addr` over TLS; when `expected` is given, the peer must be that node.
    pub async fn dial(
        tls: &TlsContext,
        addr: &str,
        expected: Option<NodeId>,
        config: &NetConfig,
    ) -> Result<Connection, NetError> {
        let (stream, peer) = tls.connect(addr, expected, config).await?;
        Ok(Connection::from_stream(stream, peer, addr, config))
    }

    /// Runs the client side over an already authenticated byte stream.
    ///
    /// For transports that authenticate out of band (in-process tests, the plain
    /// TCP baseline of the benchmark): the caller vouches for `peer`. Must be
    /// called inside a tokio runtime.
    pub fn from_stream<S>(
        stream: S,
        peer: PeerIdentity,
        remote: impl Into<String>,
        config: &NetConfig,
    ) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let max = config.max_frame_len;
        let (rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel::<Bytes>(frame::WRITE_QUEUE);
        let calls = Arc::new(Calls::default());
        let stop = CancellationToken::new();
        tokio::spawn(read_loop(
            FramedRead::new(rd, frame::codec(max)),
            calls.clone(),
            stop.clone(),
        ));
        let (writer_calls, writer_stop) = (calls.clone(), stop.clone());
        tokio::spawn(async move {
            let sink = FramedWrite::new(wr, frame::codec(max));
            if let Err(e) = frame::write_loop(sink, rx, writer_stop.clone()).await {
                writer_calls.close(format!("write failed: {e}"));
            }
            writer_stop.cancel();
        });
        Connection {
            inner: Arc::new(Inner {
                peer,
                remote: remote.into(),
                tx,
                calls,
                next_id: AtomicU64::new(1),
                max_frame_len: max,
                stop,
            }),
        }
    }

    /// The peer's verified identity.
    pub fn peer(&self) -> PeerIdentity {
        self.inner.peer
    }

    /// The address this connection was dialled at.
    pub fn remote_addr(&self) -> &str {
        &self.inner.remote
    }

    /// Whether the connection has broken or been closed; a closed connection never recovers.
    pub fn is_closed(&self) -> bool {
        self.inner.stop.is_cancelled() || self.inner.calls.is_closed()
    }

    /// Closes the connection; waiting calls fail with [`NetError::ConnectionClosed`].
    pub fn close(&self) {
        self.inner.stop.cancel();
    }

    /// Calls method `M` and waits at most `timeout` for the answer. The server
    /// is told the timeout and abandons the call when it passes.
    pub async fn call<M: Method>(
        &self,
        request: &M::Request,
        timeout: Duration,
    ) -> Result<M::Response, NetError> {
        let inner = &*self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = RequestEnvelope {
            id,
            method: M::NAME.to_string(),
            timeout_ms: u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            payload: Payload(codec::encode(request)?),
        };
        let frame = encode_versioned(&envelope)?;
        if frame.len() > inner.max_frame_len {
            return Err(NetError::FrameTooLarge {
                len: frame.len(),
                max: inner.max_frame_len,
            });
        }
        let (done, answer) = oneshot::channel();
        inner.calls.register(id, done)?;
        let _waiting = Waiting {
            calls: &inner.calls,
            id,
        };
        let exchange = async {
            inner
                .tx
                .send(Bytes::from(frame))
                .await
                .map_err(|_| inner.calls.closed_error())?;
            match answer.await {
                Ok(Ok(payload)) => Ok(codec::decode::<M::Response>(&payload.0)?),
                Ok(Err(remote)) => Err(NetError::Remote(remote)),
                Err(_) => Err(inner.calls.closed_error()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout {
                what: "rpc call",
                after: timeout,
            }),
        }
    }
}

async fn read_loop<R>(
    mut frames: FramedRead<R, LengthDelimitedCodec>,
    calls: Arc<Calls>,
    stop: CancellationToken,
) where
    R: AsyncRead + Unpin,
{
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = stop.cancelled() => break "connection closed locally".to_string(),
            n = frames.next() => n,
        };
        match next {
            None => break "the peer closed the connection".to_string(),
            Some(Err(e)) if frame::is_oversized(&e) => {
                break "the peer sent a frame over the size limit".to_string();
            }
            Some(Err(e)) => break format!("read failed: {e}"),
            Some(Ok(bytes)) => match decode_versioned::<ResponseEnvelope>(&bytes) {
                Ok(r) => calls.complete(r.id, r.result),
                Err(e) => break format!("undecodable response: {e}"),
            },
        }
    };
    tracing::debug!("rpc connection closing: {reason}");
    calls.close(reason);
    stop.cancel();
}
