//! Routing calls over the configured block producers: try them in config
//! order starting from the last one that answered, follow a `NotLeader`
//! leader hint, move on after a retryable error or a transport failure, back
//! off between rounds, and give up at the operation's deadline (or sooner,
//! when no block producer has been reachable for a while).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use covenant_core::ErrorCode;
use covenant_core::config::BlockProducerInfo;
use covenant_core::crypto::NodeId;
use covenant_core::net::{Method, NetError, Pool, RpcError};
use tokio::time::Instant;

use crate::error::ClientError;

/// First pause after every block producer failed once; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// Longest pause between rounds.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// The block producers of one network and the connections to them.
#[derive(Debug)]
pub(crate) struct BpRouter {
    pool: Pool,
    bps: Vec<BlockProducerInfo>,
    /// Index into `bps` of the producer tried first.
    preferred: AtomicUsize,
    /// Longest a single call to one producer may take.
    call_timeout: Duration,
    /// How long every producer may fail at the transport level before giving up.
    unreachable_timeout: Duration,
}

impl BpRouter {
    /// Routes over `bps` (non-empty) through `pool`, which must know their addresses.
    pub(crate) fn new(
        pool: Pool,
        bps: Vec<BlockProducerInfo>,
        call_timeout: Duration,
        unreachable_timeout: Duration,
    ) -> BpRouter {
        BpRouter {
            pool,
            bps,
            preferred: AtomicUsize::new(0),
            call_timeout,
            unreachable_timeout,
        }
    }

    /// The configured block producers.
    pub(crate) fn block_producers(&self) -> &[BlockProducerInfo] {
        &self.bps
    }

    /// Tries `node` first from now on (for example the known Raft leader).
    pub(crate) fn prefer(&self, node: &NodeId) {
        if let Some(i) = self.bps.iter().position(|bp| bp.node_id == *node) {
            self.preferred.store(i, Ordering::Relaxed);
        }
    }

    fn tried(&self) -> String {
        self.bps
            .iter()
            .map(|bp| bp.addr.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The index of the producer a leader hint names (by address or node id).
    fn resolve_hint(&self, hint: &str) -> Option<usize> {
        let hint = hint.trim();
        self.bps
            .iter()
            .position(|bp| bp.addr == hint || bp.node_id.to_string() == hint)
    }

    /// Calls `M` on one producer, once, within `call_timeout`.
    pub(crate) async fn call_node<M: Method>(
        &self,
        node: NodeId,
        request: &M::Request,
    ) -> Result<M::Response, ClientError> {
        let addr = self.pool.address(&node).unwrap_or_else(|| node.to_string());
        self.pool
            .call::<M>(node, request, self.call_timeout)
            .await
            .map_err(|e| match e {
                NetError::Remote(r) => remote::<M>(r),
                source => ClientError::Network {
                    tried: addr,
                    source,
                },
            })
    }

    /// Calls `M` on whichever producer answers, before `deadline`.
    pub(crate) async fn call<M: Method>(
        &self,
        request: &M::Request,
        deadline: Instant,
    ) -> Result<M::Response, ClientError> {
        let n = self.bps.len();
        if n == 0 {
            return Err(ClientError::InvalidArgument(
                "the config lists no block producers".to_string(),
            ));
        }
        let started = Instant::now();
        let mut index = self.preferred.load(Ordering::Relaxed) % n;
        let mut failures_this_round = 0usize;
        let mut backoff = FIRST_BACKOFF;
        // Since when every attempt has failed at the transport level.
        let mut unreachable_since: Option<Instant> = None;
        let mut last: Option<NetError> = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.gave_up::<M>(last, now - started));
            }
            let Some(bp) = self.bps.get(index) else {
                index = 0;
                continue;
            };
            let timeout = self
                .call_timeout
                .min(deadline.saturating_duration_since(now));
            let error = match self.pool.call::<M>(bp.node_id, request, timeout).await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Err(e) => e,
            };
            let mut next = (index + 1) % n;
            match error.remote() {
                Some(r) => {
                    unreachable_since = None;
                    let not_leader = r.is(ErrorCode::NotLeader);
                    if !(not_leader || r.retryable) {
                        return Err(remote::<M>(r.clone()));
                    }
                    if let Some(hinted) =
                        r.leader_hint.as_deref().and_then(|h| self.resolve_hint(h))
                        && hinted != index
                    {
                        next = hinted;
                    }
                    tracing::debug!(method = M::NAME, bp = %bp.addr, error = %r, "retrying elsewhere");
                }
                None => {
                    let since = *unreachable_since.get_or_insert(now);
                    tracing::debug!(method = M::NAME, bp = %bp.addr, %error, "block producer unreachable");
                    if now.duration_since(since) >= self.unreachable_timeout
                        && failures_this_round + 1 >= n
                    {
                        return Err(ClientError::Network {
                            tried: self.tried(),
                            source: error,
                        });
                    }
                }
            }
            last = Some(error);
            index = next;
            failures_this_round += 1;
            if failures_this_round >= n {
                failures_this_round = 0;
                let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// The error for a call that ran out of time, naming the last failure.
    fn gave_up<M: Method>(&self, last: Option<NetError>, after: Duration) -> ClientError {
        match last {
            Some(NetError::Remote(r)) => ClientError::Timeout {
                what: format!("{} (last answer: {})", M::NAME, r.message),
                after,
            },
            Some(source) => ClientError::Network {
                tried: self.tried(),
                source,
            },
            None => ClientError::Timeout {
                what: M::NAME.to_string(),
                after,
            },
        }
    }
}

/// A remote refusal of `M` as a client error.
fn remote<M: Method>(r: RpcError) -> ClientError {
    ClientError::Remote {
        method: M::NAME,
        code: r.code,
        message: r.message,
    }
}
