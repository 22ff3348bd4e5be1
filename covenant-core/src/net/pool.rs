//! A client-side connection pool keyed by node id: one multiplexed connection
//! per peer, dialled lazily, redialled when it has died (for example after the
//! peer restarted), always checking that the peer is the node expected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::NetConfig;
use super::client::Connection;
use super::error::NetError;
use super::method::Method;
use super::tls::TlsContext;
use crate::crypto::NodeId;

/// Connections to known nodes, shared by clones.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tls: TlsContext,
    config: NetConfig,
    peers: Mutex<HashMap<NodeId, Arc<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    addr: String,
    conn: Mutex<Option<Connection>>,
    /// Held while dialling so concurrent callers share one new connection.
    dialling: tokio::sync::Mutex<()>,
}

impl Slot {
    fn cached(&self) -> Option<Connection> {
        lock(&self.conn).clone().filter(|c| !c.is_closed())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// An empty pool presenting `tls` and enforcing `config`.
    pub fn new(tls: TlsContext, config: NetConfig) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                tls,
                config,
                peers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Records (or changes) where `node` listens; a changed address drops its connection.
    pub fn set_address(&self, node: NodeId, addr: impl Into<String>) {
        let addr = addr.into();
        let mut peers = lock(&self.inner.peers);
        if peers.get(&node).is_some_and(|s| s.addr == addr) {
            return;
        }
        let old = peers.insert(
            node,
            Arc::new(Slot {
                addr,
                conn: Mutex::new(None),
                dialling: tokio::sync::Mutex::new(()),
            }),
        );
        if let Some(c) = old.and_then(|s| lock(&s.conn).take()) {
            c.close();
        }
    }

    /// Forgets `node` and closes its connection.
    pub fn remove(&self, node: &NodeId) {
        let old = lock(&self.inner.peers).remove(node);
        if let Some(c) = old.and_then(|s| lock(&s.conn).take()) {
            c.close();
        }
    }

    /// Where `node` listens, if known.
    pub fn address(&self, node: &NodeId) -> Option<String> {
        lock(&self.inner.peers).get(node).map(|s| s.addr.clone())
    }

    fn slot(&self, node: NodeId) -> Result<Arc<Slot>, NetError> {
        lock(&self.inner.peers)
            .get(&node)
            .cloned()
            .ok_or(NetError::UnknownPeer(node))
    }

    /// A live connection to `node`, dialling one if needed, within `timeout`.
    pub async fn connection(
        &self,
        node: NodeId,
        timeout: Duration,
    ) -> Result<Connection, NetError> {
        let deadline = Instant::now() + timeout;
        self.connect_by(node, deadline, timeout).await
    }

    async fn connect_by(
        &self,
        node: NodeId,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Connection, NetError> {
        let slot = self.slot(node)?;
        if let Some(c) = slot.cached() {
            return Ok(c);
        }
        let timed_out = || NetError::Timeout {
            what: "connect",
            after: timeout,
        };
        let _dialling = tokio::time::timeout_at(deadline, slot.dialling.lock())
            .await
            .map_err(|_| timed_out())?;
        // Someone else may have dialled while we waited.
        if let Some(c) = slot.cached() {
            return Ok(c);
        }
        let dial = Connection::dial(&self.inner.tls, &slot.addr, Some(node), &self.inner.config);
        let conn = tokio::time::timeout_at(deadline, dial)
            .await
            .map_err(|_| timed_out())??;
        *lock(&slot.conn) = Some(conn.clone());
        Ok(conn)
    }

    /// Calls `M` on `node`; `timeout` covers dialling and the call.
    ///
    /// When a cached connection turns out to be dead (the peer restarted) and
    /// `M` is idempotent, the call is retried once on a fresh connection.
    pub async fn call<M: Method>(
        &self,
        node: NodeId,
        request: &M::Request,
        timeout: Duration,
    ) -> Result<M::Response, NetError> {
        let deadline = Instant::now() + timeout;
        let conn = self.connect_by(node, deadline, timeout).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        match conn.call::<M>(request, remaining).await {
            Err(NetError::ConnectionClosed { .. }) if M::IDEMPOTENT => {
                let conn = self.connect_by(node, deadline, timeout).await?;
                let remaining = deadline.saturating_duration_since(Instant::now());
                conn.call::<M>(request, remaining).await
            }
            other => other,
        }
    }
}
