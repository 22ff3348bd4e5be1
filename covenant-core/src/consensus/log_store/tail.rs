//! An in-memory copy of the newest entries of one log, so that replication
//! (which reads what the leader just appended) and apply (which reads what
//! was just committed) never wait for the writer thread or SQLite.
//!
//! The cache holds a contiguous run of indices that always ends at the
//! store's last appended entry (or nothing): an append that does not follow
//! the run replaces the overlapping part, or empties the cache when it
//! leaves a gap. A read is served only when the whole range lies in the run;
//! anything else goes to SQLite, which stays the source of truth.
//!
//! Memory is bounded three ways: per store ([`STORE_CAP`]), per process (a
//! shared [`Budget`], [`PROCESS_CAP`] for real stores), and by dropping
//! entries once they are applied, keeping only the last
//! [`KEEP_APPLIED_BYTES`] of them for a follower that lags a little; an
//! idle group therefore holds at most that much. Truncation and purge drop
//! the entries they remove from the log. Must not import openraft, SQLite
//! or tokio: entries are opaque values with an index and a size.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most bytes one store caches.
pub(super) const STORE_CAP: usize = 8 << 20;

/// Most bytes all stores of the process cache together.
pub(super) const PROCESS_CAP: usize = 16 << 20;

/// Applied entries a store keeps (by encoded size) for slightly lagging
/// followers; older applied entries are dropped.
pub(super) const KEEP_APPLIED_BYTES: usize = 64 << 10;

/// Bookkeeping cost counted per cached entry on top of its encoded size.
const ENTRY_OVERHEAD: usize = 64;

/// A byte budget shared by several caches.
#[derive(Debug)]
pub(super) struct Budget {
    used: AtomicUsize,
    cap: usize,
}

impl Budget {
    /// A budget of `cap` bytes.
    pub(super) fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            cap,
        })
    }

    /// The budget every real log store of the process shares.
    pub(super) fn process() -> Arc<Budget> {
        static PROCESS: LazyLock<Arc<Budget>> = LazyLock::new(|| Budget::new(PROCESS_CAP));
        PROCESS.clone()
    }

    /// Takes `n` bytes if they fit.
    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.cap)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Bytes currently taken.
    #[cfg(test)]
    pub(super) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

struct Cached<T> {
    index: u64,
    entry: T,
    bytes: usize,
}

/// The newest entries of one store.
pub(super) struct Tail<T> {
    entries: VecDeque<Cached<T>>,
    bytes: usize,
    /// Highest index handed to apply so far.
    applied: Option<u64>,
    store_cap: usize,
    budget: Arc<Budget>,
}

impl<T: Clone> Tail<T> {
    /// An empty cache holding at most `store_cap` bytes, drawing on `budget`.
    pub(super) fn new(store_cap: usize, budget: Arc<Budget>) -> Tail<T> {
        Tail {
            entries: VecDeque::new(),
            bytes: 0,
            applied: None,
            store_cap,
            budget,
        }
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|c| c.index)
    }

    fn pop_front(&mut self) -> bool {
        match self.entries.pop_front() {
            Some(c) => {
                self.bytes -= c.bytes;
                self.budget.give_back(c.bytes);
                true
            }
            None => false,
        }
    }

    fn pop_back(&mut self) {
        if let Some(c) = self.entries.pop_back() {
            self.bytes -= c.bytes;
            self.budget.give_back(c.bytes);
        }
    }

    /// Drops everything.
    pub(super) fn clear(&mut self) {
        while self.pop_front() {}
    }

    /// Records one appended entry of `encoded` bytes at `index`.
    pub(super) fn push(&mut self, index: u64, entry: T, encoded: usize) {
        match self.last_index() {
            Some(last) if index <= last => self.truncate_from(index),
            Some(last) if index != last.saturating_add(1) => self.clear(),
            _ => {}
        }
        if self.entries.is_empty() {
            self.applied = None;
        }
        let bytes = encoded.saturating_add(ENTRY_OVERHEAD);
        if bytes > self.store_cap {
            // Too big to cache: keep the run ending at the last append.
            self.clear();
            return;
        }
        while self.bytes + bytes > self.store_cap && self.pop_front() {}
        while !self.budget.try_take(bytes) {
            if !self.pop_front() {
                // Other stores hold the budget; nothing cached ends at `index`.
                return;
            }
        }
        self.bytes += bytes;
        self.entries.push_back(Cached {
            index,
            entry,
            bytes,
        });
    }

    /// Entries `start..end` (`end` `None`: to the last), if all are cached.
    pub(super) fn get(&self, start: u64, end: Option<u64>) -> Option<Vec<T>> {
        let first = self.entries.front()?.index;
        let last = self.last_index()?;
        // The run ends at the store's last entry, so nothing lies beyond it.
        let end = end.unwrap_or(u64::MAX).min(last.saturating_add(1));
        if start < first || start >= end {
            return None;
        }
        let from = usize::try_from(start - first).ok()?;
        let n = usize::try_from(end - start).ok()?;
        Some(
            self.entries
                .iter()
                .skip(from)
                .take(n)
                .map(|c| c.entry.clone())
                .collect(),
        )
    }

    /// Notes that entries up to `index` were handed to apply, and drops the
    /// applied ones beyond the last [`KEEP_APPLIED_BYTES`].
    pub(super) fn applied_up_to(&mut self, index: u64) {
        let applied = self.applied.map_or(index, |a| a.max(index));
        self.applied = Some(applied);
        let mut applied_bytes: usize = self
            .entries
            .iter()
            .take_while(|c| c.index <= applied)
            .map(|c| c.bytes)
            .sum();
        while applied_bytes > KEEP_APPLIED_BYTES {
            let Some(front) = self.entries.front() else {
                break;
            };
            applied_bytes -= front.bytes;
            self.pop_front();
        }
    }

    /// Drops entries at or after `index` (the log was truncated there).
    pub(super) fn truncate_from(&mut self, index: u64) {
        while self.last_index().is_some_and(|l| l >= index) {
            self.pop_back();
        }
    }

    /// Drops entries at or before `index` (the log was purged up to it).
    pub(super) fn purge_up_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|c| c.index <= index) {
            self.pop_front();
        }
    }

    /// Bytes cached.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T> Drop for Tail<T> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(store_cap: usize, budget: &Arc<Budget>) -> Tail<u64> {
        Tail::new(store_cap, budget.clone())
    }

    fn fill(t: &mut Tail<u64>, range: std::ops::RangeInclusive<u64>, size: usize) {
        for i in range {
            t.push(i, i * 10, size);
        }
    }

    #[test]
    fn serves_ranges_inside_the_run_only() {
        let budget = Budget::new(1 << 20);
        let mut t = tail(1 << 20, &budget);
        assert_eq!(t.get(1, None), None);
        fill(&mut t, 5..=9, 100);
        assert_eq!(t.get(5, Some(10)), Some(vec![50, 60, 70, 80, 90]));
        assert_eq!(t.get(7, Some(9)), Some(vec![70, 80]));
        assert_eq!(t.get(8, None), Some(vec![80, 90]));
        // Beyond the last entry there is nothing, in the cache or on disk.
        assert_eq!(t.get(9, Some(100)), Some(vec![90]));
        // Starts before the run, or is empty: left to SQLite.
        assert_eq!(t.get(4, Some(7)), None);
        assert_eq!(t.get(6, Some(6)), None);
        assert_eq!(t.get(10, None), None);
    }

    #[test]
    fn store_cap_evicts_the_oldest() {
        let budget = Budget::new(1 << 20);
        let mut t = tail(3 * (100 + ENTRY_OVERHEAD), &budget);
        fill(&mut t, 1..=5, 100);
        assert_eq!(t.get(3, None), Some(vec![30, 40, 50]));
        assert_eq!(t.get(2, None), None);
        assert_eq!(t.bytes(), 3 * (100 + ENTRY_OVERHEAD));
        assert_eq!(budget.used(), t.bytes());
        // An entry larger than the whole cap empties the cache.
        t.push(6, 60, 10_000);
        assert_eq!(t.get(6, None), None);
        assert_eq!(t.get(5, None), None);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn shared_budget_is_respected_and_returned() {
        let per = 100 + ENTRY_OVERHEAD;
        let budget = Budget::new(4 * per);
        let mut a = tail(1 << 20, &budget);
        let mut b = tail(1 << 20, &budget);
        fill(&mut a, 1..=4, 100);
        // b finds the budget spent by a and caches nothing.
        b.push(1, 10, 100);
        assert_eq!(b.get(1, None), None);
        // a makes room from its own oldest entries.
        fill(&mut a, 5..=6, 100);
        assert_eq!(a.get(3, None), Some(vec![30, 40, 50, 60]));
        assert_eq!(budget.used(), 4 * per);
        drop(a);
        assert_eq!(budget.used(), 0);
        b.push(2, 20, 100);
        assert_eq!(b.get(2, None), Some(vec![20]));
    }

    #[test]
    fn applied_entries_are_dropped_beyond_a_small_window() {
        let budget = Budget::new(1 << 30);
        let mut t = tail(1 << 30, &budget);
        let size = 16 << 10;
        fill(&mut t, 1..=10, size);
        t.applied_up_to(8);
        let keep = KEEP_APPLIED_BYTES / (size + ENTRY_OVERHEAD);
        let first = 9 - keep as u64;
        assert_eq!(t.get(first, None).map(|v| v.len()), Some(keep + 2));
        assert_eq!(t.get(first - 1, None), None);
        // Everything applied: an idle group keeps at most the window.
        t.applied_up_to(10);
        assert!(t.bytes() <= KEEP_APPLIED_BYTES, "{} bytes", t.bytes());
        assert_eq!(t.get(10, None), Some(vec![100]));
    }

    #[test]
    fn truncate_and_purge_invalidate() {
        let budget = Budget::new(1 << 20);
        let mut t = tail(1 << 20, &budget);
        fill(&mut t, 1..=6, 10);
        t.truncate_from(5);
        assert_eq!(t.get(4, None), Some(vec![40]));
        assert_eq!(t.get(5, Some(7)), None);
        t.purge_up_to(2);
        assert_eq!(t.get(2, None), None);
        assert_eq!(t.get(3, None), Some(vec![30, 40]));
        t.purge_up_to(100);
        assert_eq!(t.get(3, None), None);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn overwrite_and_gap_keep_the_run_contiguous() {
        let budget = Budget::new(1 << 20);
        let mut t = tail(1 << 20, &budget);
        fill(&mut t, 1..=5, 10);
        // A new leader's entry replaces 4 and 5.
        t.push(4, 400, 10);
        assert_eq!(t.get(1, None), Some(vec![10, 20, 30, 400]));
        // A gap (e.g. after a snapshot) restarts the run.
        t.push(9, 900, 10);
        assert_eq!(t.get(4, None), None);
        assert_eq!(t.get(9, None), Some(vec![900]));
        assert_eq!(budget.used(), 10 + ENTRY_OVERHEAD);
    }
}
