//! The leader's write batcher: client writes that arrive together become
//! one Raft entry, so one log fsync on each replica and one SQLite commit
//! serve many writes, and throughput grows with the number of clients.
//!
//! A write waits here only while earlier batches hold every in-flight slot,
//! or, while another batch is in flight, up to [`LINGER`] for its batch to
//! gather an even share of the writes; a lone client's write goes out at
//! once, alone. Each write keeps its own
//! stamp (time and seed) and its own outcome: a failed write undoes only
//! itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use covenant_core::consensus::database::{DatabaseRaft, DbApplied, DbCommand, StampedWrite};
use covenant_core::crypto::random_bytes;
use covenant_core::sqlchain::block::Stamp;
use covenant_core::sqlchain::request::{Outcome, SignedRequest};
use openraft::error::ClientWriteError;
use openraft::raft::responder::Responder;
use openraft::{Raft, RaftTypeConfig};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::seal::now_ms;

/// Most writes in one entry.
const MAX_BATCH_WRITES: usize = 1024;
/// Most request bytes (roughly) in one entry; a larger single write goes alone.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Entries proposed but not yet applied, per database. Two keep the group
/// busy (one batch forms while the other commits); more only make batches
/// smaller, and each entry costs a log commit, a round of Raft messages
/// and an SQLite commit on every replica (bench_db, 3 nodes, 32 clients:
/// 2 beat 4 on a loaded machine, 8 was clearly slower).
const MAX_IN_FLIGHT: usize = 2;
/// Writes waiting for a batch before new ones wait for room.
const QUEUE: usize = 8192;
/// Longest a batch waits to fill up while another batch is in flight.
/// When a batch is answered its clients send their next writes within a
/// few hundred microseconds; without the wait the first of them took the
/// free slot alone, and the group settled into one full batch and one of
/// a single write in flight (seen: 80 and 1, alternating). 1, 2 and 4 ms
/// did alike (bench_db, 3 nodes: +4-10 % at 8 to 128 clients); a lone
/// client never waits, as no other batch is in flight.
const LINGER: Duration = Duration::from_millis(1);

/// Why a write was not answered with an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteError {
    /// This miner is not (or no longer) the group's leader.
    NotLeader,
    /// The group did not commit the write within the deadline (it may later).
    NotCommitted(Duration),
    /// Raft refused or failed the proposal.
    Raft(String),
    /// The batcher stopped (the database is closing).
    Closed,
}

struct Pending {
    request: SignedRequest,
    reply: oneshot::Sender<Result<Outcome, WriteError>>,
}

/// Hands writes to the batching task of one database.
pub(crate) struct WriteBatcher {
    tx: mpsc::Sender<Pending>,
}

impl WriteBatcher {
    /// Starts batching proposals to `raft`; a batch not committed within
    /// `commit_timeout` is answered with [`WriteError::NotCommitted`].
    pub(crate) fn start(
        raft: Raft<DatabaseRaft>,
        commit_timeout: Duration,
    ) -> (WriteBatcher, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(raft, rx, commit_timeout));
        (WriteBatcher { tx }, task)
    }

    /// Proposes `request` in the next batch and waits for its outcome.
    pub(crate) async fn write(&self, request: SignedRequest) -> Result<Outcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { request, reply })
            .await
            .map_err(|_| WriteError::Closed)?;
        answer.await.map_err(|_| WriteError::Closed)?
    }
}

async fn run(raft: Raft<DatabaseRaft>, mut rx: mpsc::Receiver<Pending>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let load = Arc::new(Load::default());
    while let Some(first) = rx.recv().await {
        // Wait for a slot first: writes arriving meanwhile join this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Batch::of(first);
        while !batch.full() {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        // Another batch in flight: wait (briefly) for this one's share.
        if slots.available_permits() + 1 < MAX_IN_FLIGHT {
            let share = load.share.load(Ordering::Relaxed);
            let until = tokio::time::Instant::now() + LINGER;
            while batch.writes.len() < share && !batch.full() {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    _ => break,
                }
            }
        }
        // Proposed from this task (no hop to another task before Raft has
        // it); only the wait for the outcome runs on its own.
        if let Some(proposal) = propose(&raft, batch.writes).await {
            let load = load.clone();
            load.in_flight.fetch_add(proposal.n, Ordering::Relaxed);
            tokio::spawn(async move {
                let n = proposal.n;
                proposal.answer(timeout).await;
                load.answered(n);
                drop(slot);
            });
        }
    }
}

/// Writes gathered for one entry.
struct Batch {
    writes: Vec<Pending>,
    bytes: usize,
}

impl Batch {
    fn of(first: Pending) -> Batch {
        Batch {
            bytes: first.request.size_hint(),
            writes: vec![first],
        }
    }

    fn push(&mut self, p: Pending) {
        self.bytes += p.request.size_hint();
        self.writes.push(p);
    }

    fn full(&self) -> bool {
        self.writes.len() >= MAX_BATCH_WRITES || self.bytes >= MAX_BATCH_BYTES
    }
}

/// How many writes the group carries, to size batches evenly.
#[derive(Default)]
struct Load {
    /// Writes proposed and not yet answered.
    in_flight: AtomicUsize,
    /// Writes per batch when the last batch was answered: those in flight
    /// then, itself included, spread over the in-flight slots.
    share: AtomicUsize,
}

impl Load {
    /// Notes that a batch of `n` writes was answered.
    fn answered(&self, n: usize) {
        let others = self
            .in_flight
            .fetch_sub(n, Ordering::Relaxed)
            .saturating_sub(n);
        self.share
            .store((n + others) / MAX_IN_FLIGHT, Ordering::Relaxed);
    }
}

/// Where Raft sends the outcome of one proposal.
type OutcomeReceiver =
    <<DatabaseRaft as RaftTypeConfig>::Responder as Responder<DatabaseRaft>>::Receiver;

/// A batch handed to Raft, waiting for its outcome.
struct Proposal {
    n: usize,
    replies: Vec<oneshot::Sender<Result<Outcome, WriteError>>>,
    outcome: Result<OutcomeReceiver, WriteError>,
}

/// Stamps one batch and hands it to Raft; `None` when nothing is left to propose.
async fn propose(raft: &Raft<DatabaseRaft>, batch: Vec<Pending>) -> Option<Proposal> {
    let mut writes = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        let mut seed = [0u8; 32];
        if let Err(e) = random_bytes(&mut seed) {
            let _ = p.reply.send(Err(WriteError::Raft(e.to_string())));
            continue;
        }
        writes.push(StampedWrite {
            request: p.request,
            stamp: Stamp {
                timestamp_ms: now_ms(),
                seed,
            },
        });
        replies.push(p.reply);
    }
    if writes.is_empty() {
        return None;
    }
    let n = writes.len();
    let outcome = raft
        .client_write_ff(DbCommand::Writes(writes))
        .await
        .map_err(|e| WriteError::Raft(e.to_string()));
    Some(Proposal {
        n,
        replies,
        outcome,
    })
}

impl Proposal {
    /// Waits up to `timeout` for the batch's outcome and answers each write.
    async fn answer(self, timeout: Duration) {
        let n = self.n;
        let answer: Result<Vec<Outcome>, WriteError> = match self.outcome {
            Err(e) => Err(e),
            Ok(rx) => match tokio::time::timeout(timeout, rx).await {
                Err(_) => Err(WriteError::NotCommitted(timeout)),
                // Raft dropped the responder: it stopped before answering.
                Ok(Err(_)) => Err(WriteError::Raft("the raft group stopped".into())),
                Ok(Ok(Ok(resp))) => match resp.data {
                    DbApplied::Writes(outcomes) if outcomes.len() == n => Ok(outcomes),
                    other => Err(WriteError::Raft(format!(
                        "unexpected apply result for {n} writes: {other:?}"
                    ))),
                },
                Ok(Ok(Err(ClientWriteError::ForwardToLeader(_)))) => Err(WriteError::NotLeader),
                Ok(Ok(Err(e))) => Err(WriteError::Raft(e.to_string())),
            },
        };
        match answer {
            Ok(outcomes) => {
                for (reply, o) in self.replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(o));
                }
            }
            Err(e) => {
                for reply in self.replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_aim_at_an_even_share_of_the_writes_in_flight() {
        let load = Load::default();
        // A batch of 80 answered while one of a single write is in flight:
        // the next batches should take about 40 each.
        load.in_flight.fetch_add(81, Ordering::Relaxed);
        load.answered(80);
        assert_eq!(load.share.load(Ordering::Relaxed), 81 / MAX_IN_FLIGHT);
        assert_eq!(load.in_flight.load(Ordering::Relaxed), 1);
        // The last one answered: a lone writer gets no wait.
        load.answered(1);
        assert_eq!(load.share.load(Ordering::Relaxed), 1 / MAX_IN_FLIGHT);
        assert_eq!(load.in_flight.load(Ordering::Relaxed), 0);
    }
}
