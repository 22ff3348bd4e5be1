//! Which appends of a log store are durable yet.
//!
//! openraft 0.9 waits on its core task for every append to be flushed
//! before it goes on, so a leader would only start replicating an entry
//! after its own fsync, and the followers' fsyncs would follow it instead of
//! overlapping it. The store therefore tells openraft an append is done as
//! soon as it is queued, and this record says when it really is on disk.
//! Everything that must not act on an entry before it is durable waits
//! here instead (see the module docs of [`super`]): applying it, telling
//! followers it is committed, and a follower's acknowledgement of it.
//!
//! Appends are numbered in the order they reach the writer thread, which
//! flushes them in that order, so "batch `n` is flushed" means every batch
//! up to `n` is. Must not import openraft.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The log could not make an append durable; the group cannot go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the raft log could not store an append: {0}")]
pub struct LogFlushError(String);

/// How far the writer has flushed.
#[derive(Debug, Clone)]
enum Flushed {
    /// Every batch numbered up to this one is durable.
    Upto(u64),
    /// A flush failed; nothing after it will become durable.
    Failed(String),
}

/// One append not yet durable: its number and the indexes it wrote.
#[derive(Debug, Clone, Copy)]
struct Batch {
    seq: u64,
    first: u64,
    last: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Number of the last batch submitted (0: none yet).
    submitted: u64,
    /// Submitted batches not yet flushed, oldest first.
    unflushed: VecDeque<Batch>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    flushed: watch::Sender<Flushed>,
}

/// The durability record of one log store; cheap to clone.
#[derive(Debug, Clone)]
pub struct LogProgress {
    inner: Arc<Inner>,
}

impl Default for LogProgress {
    fn default() -> Self {
        LogProgress::new()
    }
}

impl LogProgress {
    /// A record with nothing pending (everything already on disk is durable).
    pub fn new() -> LogProgress {
        let (flushed, _) = watch::channel(Flushed::Upto(0));
        LogProgress {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                flushed,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an append of entries `first..=last` handed to the writer;
    /// returns its number for [`LogProgress::flushed`].
    pub(crate) fn submit(&self, first: u64, last: u64) -> u64 {
        let mut state = self.state();
        state.submitted += 1;
        let seq = state.submitted;
        state.unflushed.push_back(Batch { seq, first, last });
        seq
    }

    /// Records that batch `seq` (and so every earlier one) was flushed, or failed.
    pub(crate) fn flushed(&self, seq: u64, result: Result<(), String>) {
        {
            let mut state = self.state();
            while state.unflushed.front().is_some_and(|b| b.seq <= seq) {
                state.unflushed.pop_front();
            }
        }
        self.inner.flushed.send_modify(|f| match (f, result) {
            (Flushed::Failed(_), _) => {}
            (f, Err(e)) => *f = Flushed::Failed(e),
            (Flushed::Upto(s), Ok(())) => *s = (*s).max(seq),
        });
    }

    /// The batch that last wrote `index`, if it is not durable yet.
    fn pending_writer_of(&self, index: u64) -> Option<u64> {
        self.state()
            .unflushed
            .iter()
            .rev()
            .find(|b| b.first <= index && index <= b.last)
            .map(|b| b.seq)
    }

    /// Whether the entry at `index` (as the log now holds it) is durable.
    pub fn is_durable(&self, index: u64) -> bool {
        self.pending_writer_of(index).is_none() && self.failure().is_none()
    }

    fn failure(&self) -> Option<String> {
        match &*self.inner.flushed.borrow() {
            Flushed::Failed(e) => Some(e.clone()),
            Flushed::Upto(_) => None,
        }
    }

    /// Waits until the entry at `index`, and every entry before it, is durable.
    pub async fn wait_index(&self, index: u64) -> Result<(), LogFlushError> {
        match self.pending_writer_of(index) {
            Some(seq) => self.wait_seq(seq).await,
            None => self.failure().map_or(Ok(()), |e| Err(LogFlushError(e))),
        }
    }

    /// Waits until every append submitted so far is durable.
    pub async fn wait_all(&self) -> Result<(), LogFlushError> {
        let last = {
            let state = self.state();
            state.unflushed.back().map(|b| b.seq)
        };
        match last {
            Some(seq) => self.wait_seq(seq).await,
            None => self.failure().map_or(Ok(()), |e| Err(LogFlushError(e))),
        }
    }

    async fn wait_seq(&self, seq: u64) -> Result<(), LogFlushError> {
        let mut rx = self.inner.flushed.subscribe();
        let reached = rx
            .wait_for(|f| match f {
                Flushed::Failed(_) => true,
                Flushed::Upto(s) => *s >= seq,
            })
            .await
            .map_err(|_| LogFlushError("the raft log was closed".into()))?;
        match &*reached {
            Flushed::Failed(e) => Err(LogFlushError(e.clone())),
            Flushed::Upto(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn an_index_is_durable_once_its_last_writer_flushed() {
        let p = LogProgress::new();
        assert!(p.is_durable(7), "nothing pending: all durable");
        let a = p.submit(1, 3);
        let b = p.submit(4, 5);
        // Index 3 is rewritten (after a truncation) by a third batch.
        let c = p.submit(3, 3);
        p.flushed(a, Ok(()));
        assert!(p.is_durable(1));
        assert!(!p.is_durable(3), "its latest writer is not flushed");
        assert!(!p.is_durable(4));
        p.flushed(b, Ok(()));
        assert!(p.is_durable(4) && !p.is_durable(3));
        p.flushed(c, Ok(()));
        assert!(p.is_durable(3));
    }

    #[test]
    fn waiters_wake_on_flush_and_fail_on_error() {
        runtime().block_on(async {
            let p = LogProgress::new();
            let a = p.submit(1, 1);
            let waiter = {
                let p = p.clone();
                tokio::spawn(async move { p.wait_index(1).await })
            };
            let all = {
                let p = p.clone();
                tokio::spawn(async move { p.wait_all().await })
            };
            tokio::task::yield_now().await;
            assert!(!waiter.is_finished());
            p.flushed(a, Ok(()));
            waiter.await.unwrap().unwrap();
            all.await.unwrap().unwrap();

            let b = p.submit(2, 2);
            let waiter = {
                let p = p.clone();
                tokio::spawn(async move { p.wait_index(2).await })
            };
            p.flushed(b, Err("disk full".into()));
            let err = waiter.await.unwrap().unwrap_err();
            assert!(err.to_string().contains("disk full"), "{err}");
            assert!(!p.is_durable(1), "a failed log is durable nowhere");
            assert!(p.wait_index(1).await.is_err());
        });
    }
}
