//! Routing calls over one database's miners: try the current leader guess
//! first; on `NotLeader` follow the hint (the leader's node id) or move on;
//! on "not served yet" (`NotFound`), `NoQuorum`, other retryable refusals
//! and transport failures move to the next miner, backing off after each
//! full round, until the operation's deadline. Everything else is final.
//! A request that may have reached a miner without being answered is sent
//! again only as its [`Resend`] allows: reads freely, signed writes until
//! the deadline (the miners apply one at most once and answer a resend
//! with its first outcome), anything else never.
//! At the deadline the error sums up what every miner last said, so "a
//! majority of the miners is down" reads as no quorum rather than as the
//! last connection error. The single place that decides what is retried.
//! Must not sign anything nor import node-side modules: only the transport
//! and the RPC contracts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use covenant_core::ErrorCode;
use covenant_core::crypto::NodeId;
use covenant_core::net::{Method, NetError, Pool, RpcError};
use covenant_core::types::DatabaseId;
use tokio::time::Instant;

use crate::error::ClientError;

/// First pause after a full round failed; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(30);
/// Longest pause between rounds.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Whether a request may be sent again after an attempt that may have
/// reached the miner (its answer was lost, or the miner could not say
/// whether it committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Never: the first such attempt ends the call as
    /// [`ClientError::WriteOutcomeUnknown`].
    Never,
    /// Freely: the request changes nothing (reads, lookups).
    Always,
    /// Until the deadline: a signed write, which the miners apply at most
    /// once and answer, when it comes again, with the outcome it had. If
    /// no attempt is answered by then, or one is refused before it could
    /// be matched to the first (say, as stale), the outcome is unknown.
    SignedWrite,
}

impl Resend {
    /// [`Resend::Always`] for an idempotent method, else [`Resend::Never`].
    pub(crate) fn idempotent(yes: bool) -> Resend {
        if yes { Resend::Always } else { Resend::Never }
    }
}

/// What to do after one failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Try miner at this index next (a leader hint), without pausing.
    Hinted(usize),
    /// Try the next miner (pausing after a full round).
    Move,
}

/// The miners of one database and the connections to them.
#[derive(Debug)]
pub(crate) struct MinerRoute {
    database: DatabaseId,
    pool: Pool,
    miners: Vec<NodeId>,
    /// Index into `miners` of the current leader guess.
    leader: AtomicUsize,
    /// Spreads follower reads over the miners.
    rotation: AtomicUsize,
    /// Longest a single call to one miner may take.
    call_timeout: Duration,
}

impl MinerRoute {
    /// Routes over `miners` (whose addresses `pool` knows), starting with the first.
    pub(crate) fn new(
        database: DatabaseId,
        pool: Pool,
        miners: Vec<NodeId>,
        call_timeout: Duration,
    ) -> MinerRoute {
        MinerRoute {
            database,
            pool,
            miners,
            leader: AtomicUsize::new(0),
            rotation: AtomicUsize::new(0),
            call_timeout,
        }
    }

    /// The miners routed over.
    pub(crate) fn miners(&self) -> &[NodeId] {
        &self.miners
    }

    /// The current leader guess.
    pub(crate) fn leader_guess(&self) -> Option<NodeId> {
        let n = self.miners.len();
        if n == 0 {
            return None;
        }
        self.miners
            .get(self.leader.load(Ordering::Relaxed) % n)
            .copied()
    }

    /// Calls `M` on miner `node` only, once.
    pub(crate) async fn call_node<M: Method>(
        &self,
        node: NodeId,
        request: &M::Request,
    ) -> Result<M::Response, ClientError> {
        self.pool
            .call::<M>(node, request, self.call_timeout)
            .await
            .map_err(|e| self.final_error::<M>(e, node))
    }

    /// Calls idempotent `M` starting from a miner other than the leader guess
    /// (rotating), for reads any replica may serve; falls back like [`Self::call`].
    pub(crate) async fn call_follower_first<M: Method>(
        &self,
        request: &M::Request,
        deadline: Instant,
    ) -> Result<M::Response, ClientError> {
        let n = self.miners.len();
        let leader = self.leader.load(Ordering::Relaxed);
        let start = if n > 1 {
            let k = self.rotation.fetch_add(1, Ordering::Relaxed) % (n - 1);
            (leader + 1 + k) % n
        } else {
            0
        };
        self.call_from::<M>(request, deadline, Resend::Always, start, false)
            .await
    }

    /// Calls `M` on the leader (as found by following hints and retrying)
    /// before `deadline`; `resend` says what happens after an attempt that
    /// may have reached a miner (a timeout, a closed connection, or a
    /// leader that could not say whether the write committed).
    pub(crate) async fn call<M: Method>(
        &self,
        request: &M::Request,
        deadline: Instant,
        resend: Resend,
    ) -> Result<M::Response, ClientError> {
        let start = self.leader.load(Ordering::Relaxed);
        self.call_from::<M>(request, deadline, resend, start, true)
            .await
    }

    /// [`Self::call`] starting at miner `start`; a success updates the
    /// leader guess only if `learn_leader` (a follower's answer says nothing).
    async fn call_from<M: Method>(
        &self,
        request: &M::Request,
        deadline: Instant,
        resend: Resend,
        start: usize,
        learn_leader: bool,
    ) -> Result<M::Response, ClientError> {
        let n = self.miners.len();
        if n == 0 {
            return Err(self.unavailable(
                ErrorCode::NotFound.as_u32(),
                "the database has no reachable miner".into(),
                Duration::ZERO,
            ));
        }
        let started = Instant::now();
        let mut index = start % n;
        let mut failures_this_round = 0usize;
        let mut backoff = FIRST_BACKOFF;
        let mut last: Option<(u32, String)> = None;
        let mut seen: Vec<Option<Attempt>> = vec![None; n];
        // The last attempt that may have applied the write, once one has.
        let mut maybe_applied: Option<NetError> = None;
        loop {
            let now = Instant::now();
            if now >= deadline {
                if let Some(source) = maybe_applied {
                    return Err(self.outcome_unknown(source));
                }
                let (code, message) = self
                    .summary(&seen)
                    .or(last)
                    .unwrap_or((ErrorCode::Timeout.as_u32(), "no answer in time".to_string()));
                return Err(self.unavailable(code, message, now - started));
            }
            let Some(node) = self.miners.get(index).copied() else {
                index = 0;
                continue;
            };
            let timeout = self
                .call_timeout
                .min(deadline.saturating_duration_since(now));
            let error = match self.pool.call::<M>(node, request, timeout).await {
                Ok(response) => {
                    if learn_leader {
                        self.leader.store(index, Ordering::Relaxed);
                    }
                    return Ok(response);
                }
                Err(e) => e,
            };
            let delivered = may_have_been_delivered(&error);
            if delivered && resend == Resend::Never {
                return Err(self.outcome_unknown(error));
            }
            let next = match error.remote() {
                Some(r) => match self.judge(r, index) {
                    Some(next) => next,
                    // Refused before it could be matched to an earlier
                    // attempt that may have applied: that one's fate is unknown.
                    None => match maybe_applied {
                        Some(source) => return Err(self.outcome_unknown(source)),
                        None => return Err(self.final_error::<M>(error, node)),
                    },
                },
                None => Next::Move,
            };
            tracing::debug!(method = M::NAME, miner = %node, %error, "retrying");
            last = Some(match error.remote() {
                Some(r) => (r.code, r.message.clone()),
                None => (error.code().as_u32(), error.to_string()),
            });
            if let Some(slot) = seen.get_mut(index) {
                *slot = Some(match error.remote() {
                    Some(r) => Attempt::Refused { code: r.code },
                    None => Attempt::Unreachable(error.to_string()),
                });
            }
            if delivered && resend == Resend::SignedWrite {
                maybe_applied = Some(error);
            }
            // A stale hint naming a miner that just failed to answer would
            // bounce between the two and never try the others.
            let next = match next {
                Next::Hinted(i) if matches!(seen.get(i), Some(Some(Attempt::Unreachable(_)))) => {
                    Next::Move
                }
                next => next,
            };
            match next {
                Next::Hinted(i) => {
                    index = i;
                    self.leader.store(i, Ordering::Relaxed);
                }
                Next::Move => {
                    index = (index + 1) % n;
                    failures_this_round += 1;
                    if failures_this_round >= n {
                        failures_this_round = 0;
                        let pause = backoff.min(deadline.saturating_duration_since(Instant::now()));
                        tokio::time::sleep(pause).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }

    /// Whether (and where) to retry after miner `index` refused with `r`;
    /// `None` when the refusal is final.
    fn judge(&self, r: &RpcError, index: usize) -> Option<Next> {
        if r.is(ErrorCode::NotLeader) {
            let hinted = r
                .leader_hint
                .as_deref()
                .map(str::trim)
                .and_then(|h| self.miners.iter().position(|m| m.to_string() == h));
            return Some(match hinted {
                Some(i) if i != index => Next::Hinted(i),
                // No leader elected yet, or the hint is this miner or unknown to us.
                _ => Next::Move,
            });
        }
        if r.is(ErrorCode::NotFound) || r.is(ErrorCode::NoQuorum) || r.retryable {
            return Some(Next::Move);
        }
        None
    }

    /// The cause of giving up, from what each miner last said (`None`
    /// when nothing stands out and the last failure says it best): too few
    /// miners reachable to form a majority is no quorum; every miner
    /// answering but none leading is no leader.
    fn summary(&self, seen: &[Option<Attempt>]) -> Option<(u32, String)> {
        let n = self.miners.len();
        let majority = n / 2 + 1;
        let mut unreachable = Vec::new();
        let mut refusals = Vec::new();
        for (node, attempt) in self.miners.iter().zip(seen) {
            match attempt {
                Some(Attempt::Unreachable(why)) => {
                    let at = self.pool.address(node).unwrap_or_else(|| node.to_string());
                    unreachable.push(format!("{at} ({why})"));
                }
                Some(Attempt::Refused { code }) => refusals.push(*code),
                None => {}
            }
        }
        if unreachable.len() > n - majority {
            return Some((
                ErrorCode::NoQuorum.as_u32(),
                format!(
                    "no quorum: {} of the database's {n} miners cannot be reached \
                     (unreachable: {}), and a majority of {majority} must be up to elect \
                     a leader and commit writes; restart the stopped miners or check the \
                     network between them",
                    unreachable.len(),
                    unreachable.join("; ")
                ),
            ));
        }
        if refusals.len() == n && refusals.iter().all(|c| *c == ErrorCode::NotLeader.as_u32()) {
            return Some((
                ErrorCode::NotLeader.as_u32(),
                format!(
                    "no leader: all {n} miners answer but none leads the database's group \
                     (an election may be under way); retry shortly"
                ),
            ));
        }
        None
    }

    /// A failure not worth retrying, as the client error it means.
    fn final_error<M: Method>(&self, e: NetError, node: NodeId) -> ClientError {
        match e {
            NetError::Remote(r) => refusal::<M>(r),
            source => ClientError::MinerUnreachable {
                miner: self.pool.address(&node).unwrap_or_else(|| node.to_string()),
                source: Box::new(source),
            },
        }
    }

    fn outcome_unknown(&self, source: NetError) -> ClientError {
        ClientError::WriteOutcomeUnknown {
            database: self.database.to_hex(),
            source: Box::new(source),
        }
    }

    fn unavailable(&self, code: u32, message: String, after: Duration) -> ClientError {
        ClientError::DatabaseUnavailable {
            database: self.database.to_hex(),
            code,
            message,
            after,
        }
    }
}

/// What one miner last said during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// The call failed at the transport level (this text).
    Unreachable(String),
    /// The miner answered with a retryable refusal with this code.
    Refused {
        /// The [`ErrorCode`] number.
        code: u32,
    },
}

/// Whether a failed call may have reached the miner and run (its answer lost).
fn may_have_been_delivered(e: &NetError) -> bool {
    match e {
        NetError::Timeout { .. } | NetError::ConnectionClosed { .. } => true,
        // A leader that proposed the write but saw no commit in time (or
        // lost its group meanwhile) says so with a final `NoQuorum`; one
        // that proposed nothing says it is retryable.
        NetError::Remote(r) => r.is(ErrorCode::NoQuorum) && !r.retryable,
        _ => false,
    }
}

/// A miner's final refusal of `M` as a client error.
fn refusal<M: Method>(r: RpcError) -> ClientError {
    if r.is(ErrorCode::PermissionDenied) {
        ClientError::PermissionDenied { message: r.message }
    } else if r.is(ErrorCode::StaleRequest) {
        ClientError::StaleRequest { message: r.message }
    } else {
        ClientError::Remote {
            method: M::NAME,
            code: r.code,
            message: r.message,
        }
    }
}

#[cfg(test)]
mod tests;
