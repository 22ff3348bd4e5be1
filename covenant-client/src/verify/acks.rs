//! The writes a [`Database`](crate::Database) handle got answers for,
//! remembered (the most recent [`ACK_CAPACITY`]) so `verify` can prove each
//! is in a block. Also where each was found, so a later `verify` skips the
//! lookup. Plain bookkeeping: no network, no checks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use covenant_core::hash::Hash;
use covenant_core::sqlchain::request::Outcome;

/// How many acknowledged writes a handle remembers (the oldest are forgotten first).
pub const ACK_CAPACITY: usize = 10_000;

/// One acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AckedWrite {
    /// The request id.
    pub(crate) request: Hash,
    /// The request's timestamp (ms): the miners' request index is ordered by it.
    pub(crate) timestamp: u64,
    /// The digest of the answer the client got (`None` if it could not be computed).
    pub(crate) response_digest: Option<Hash>,
    /// Block number and position, once a `verify` proved it there.
    pub(crate) located: Option<(u64, u64)>,
}

/// A bounded, shared log of acknowledged writes.
#[derive(Debug)]
pub(crate) struct AckLog {
    entries: Mutex<VecDeque<AckedWrite>>,
    capacity: usize,
}

impl Default for AckLog {
    fn default() -> AckLog {
        AckLog::with_capacity(ACK_CAPACITY)
    }
}

impl AckLog {
    /// A log keeping at most `capacity` writes.
    pub(crate) fn with_capacity(capacity: usize) -> AckLog {
        AckLog {
            entries: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<AckedWrite>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers that write `request`, signed at `timestamp`, was answered with `outcome`.
    pub(crate) fn record(&self, request: Hash, timestamp: u64, outcome: &Outcome) {
        let entry = AckedWrite {
            request,
            timestamp,
            response_digest: outcome.digest().ok(),
            located: None,
        };
        let mut entries = self.lock();
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// The remembered writes, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<AckedWrite> {
        self.lock().iter().cloned().collect()
    }

    /// The remembered request ids, oldest first.
    pub(crate) fn requests(&self) -> Vec<Hash> {
        self.lock().iter().map(|a| a.request).collect()
    }

    /// Notes where writes were proved: request id to `(count, index)`.
    pub(crate) fn set_located(&self, found: &HashMap<Hash, (u64, u64)>) {
        if found.is_empty() {
            return;
        }
        for a in self.lock().iter_mut() {
            if let Some(at) = found.get(&a.request) {
                a.located = Some(*at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::hash::{Tag, hash};

    fn h(i: u64) -> Hash {
        hash(Tag::Message, &i.to_le_bytes())
    }

    #[test]
    fn keeps_the_most_recent_and_remembers_locations() {
        let log = AckLog::with_capacity(3);
        for i in 0..5 {
            log.record(h(i), i, &Outcome::Ok(vec![]));
        }
        assert_eq!(log.requests(), [h(2), h(3), h(4)]);
        log.set_located(&HashMap::from([(h(3), (7, 1))]));
        let snap = log.snapshot();
        assert_eq!(snap[1].located, Some((7, 1)));
        assert_eq!(snap[0].located, None);
        assert_eq!(
            snap[0].response_digest,
            Some(Outcome::Ok(vec![]).digest().unwrap())
        );
    }
}
