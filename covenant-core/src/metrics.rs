//! `metrics`: the miner's counters and gauges, their `/debug/vars` (expvar
//! JSON) and Prometheus renderings, and the small HTTP listener that serves
//! them with `/readyz` (DESIGN §5, the seed's metric table).
//!
//! The miner owns one [`MinerMetrics`] in an `Arc`, updates it as it serves
//! (chain heads, requests, readiness) and starts [`serve`] on
//! `METRIC_WEB_ADDR`. [`MinerMetrics::snapshot`] reads everything at once;
//! [`render_debug_vars`] and [`render_prometheus`] are pure functions of a
//! [`MetricsSnapshot`]. Time comes from a [`Clock`], so the per-minute request
//! window is testable with a [`ManualClock`].
//!
//! This module may import `hash`, `crypto`, `types` (ids only) and `error`;
//! nothing from the chains, consensus, config or the RPC transport: the miner
//! pushes values in, metrics never reach out.

mod clock;
mod disk;
mod http;
mod render;
mod window;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::http::{MetricsServer, route, serve};
pub use self::render::{render_debug_vars, render_prometheus};

use self::window::RequestWindow;
use crate::crypto::{Address, NodeId};
use crate::error::ErrorCode;
use crate::hash::Hash;
use crate::types::DatabaseId;

/// How long a computed disk usage is reused before the root is walked again.
pub const DISK_USAGE_CACHE_MS: u64 = 5_000;

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listen address could not be bound.
    #[error("cannot listen for metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
}

impl MetricsError {
    /// The stable code classifying this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MetricsError::Bind { .. } => ErrorCode::Network,
        }
    }
}

/// The head and load of one database's SQL chain, as last reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSnapshot {
    /// Number of the newest block (`head:count`).
    pub head_count: u64,
    /// Period number of the newest block (`head:height`).
    pub head_height: u64,
    /// Hash of the newest block (`head:hash`).
    pub head_hash: Hash,
    /// When the newest block was produced, ms since the Unix epoch (`head:timestamp`).
    pub head_timestamp_ms: u64,
    /// Mean requests per minute over the last five complete minutes (`requests:count`).
    pub requests_per_minute: f64,
}

/// Every metric value at one moment; the input of the renderers.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// The miner's `ListenAddr` (`service:miner:addr`).
    pub addr: String,
    /// The miner's node id (`service:miner:node`).
    pub node: NodeId,
    /// The miner's wallet address (`service:miner:wallet`).
    pub wallet: Address,
    /// The absolute `RootDir` (`service:miner:disk:root`).
    pub disk_root: PathBuf,
    /// KB used under `RootDir` (`service:miner:disk:usage`).
    pub disk_usage_kb: u64,
    /// Whether the miner serves every database assigned to it.
    pub ready: bool,
    /// Why the miner is not ready (empty or informational when ready).
    pub ready_reason: String,
    /// Databases served, by id (`service:miner:chain`; its size is `db:count`).
    pub chains: BTreeMap<DatabaseId, ChainSnapshot>,
}

/// What is kept per database.
#[derive(Debug, Clone, Default)]
struct ChainState {
    head_count: u64,
    head_height: u64,
    head_hash: Hash,
    head_timestamp_ms: u64,
    requests: RequestWindow,
}

/// Readiness as the miner last set it.
#[derive(Debug)]
struct Readiness {
    ready: bool,
    reason: String,
}

/// The miner's live metrics: shared in an `Arc`, updated through `&self`.
#[derive(Debug)]
pub struct MinerMetrics {
    addr: String,
    node: NodeId,
    wallet: Address,
    disk_root: PathBuf,
    clock: Arc<dyn Clock>,
    readiness: Mutex<Readiness>,
    chains: Mutex<BTreeMap<DatabaseId, ChainState>>,
    /// `(computed at ms, KB)` of the last disk walk.
    disk_cache: Mutex<Option<(u64, u64)>>,
}

/// Lock a mutex, ignoring poisoning: every critical section here leaves the
/// data consistent, so a panic elsewhere must not take metrics down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MinerMetrics {
    /// Metrics for the miner listening on `addr` with this identity and data
    /// directory, on the system clock; not ready until [`set_ready`](Self::set_ready).
    pub fn new(addr: String, node: NodeId, wallet: Address, disk_root: PathBuf) -> MinerMetrics {
        MinerMetrics::with_clock(addr, node, wallet, disk_root, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), reading time from `clock`.
    pub fn with_clock(
        addr: String,
        node: NodeId,
        wallet: Address,
        disk_root: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> MinerMetrics {
        let disk_root = std::path::absolute(&disk_root).unwrap_or(disk_root);
        MinerMetrics {
            addr,
            node,
            wallet,
            disk_root,
            clock,
            readiness: Mutex::new(Readiness {
                ready: false,
                reason: "starting".to_string(),
            }),
            chains: Mutex::new(BTreeMap::new()),
            disk_cache: Mutex::new(None),
        }
    }

    /// The absolute data directory whose usage is reported.
    pub fn disk_root(&self) -> &Path {
        &self.disk_root
    }

    /// Mark the miner ready (it serves every database assigned to it) or not,
    /// with `reason` saying what is missing; `/readyz` reports it.
    pub fn set_ready(&self, ready: bool, reason: impl Into<String>) {
        let mut r = lock(&self.readiness);
        r.ready = ready;
        r.reason = reason.into();
    }

    /// Whether the miner is ready, and the reason last given.
    pub fn readiness(&self) -> (bool, String) {
        let r = lock(&self.readiness);
        (r.ready, r.reason.clone())
    }

    /// Start reporting `db` (with an empty head) if it is not reported yet.
    pub fn add_database(&self, db: &DatabaseId) {
        lock(&self.chains).entry(*db).or_default();
    }

    /// Record the newest block of `db`'s chain: its number `count`, period
    /// `height`, `hash` and production time in ms since the Unix epoch.
    /// Reports `db` from now on if it was not reported yet.
    pub fn set_chain_head(
        &self,
        db: &DatabaseId,
        count: u64,
        height: u64,
        hash: Hash,
        timestamp_ms: u64,
    ) {
        let mut chains = lock(&self.chains);
        let state = chains.entry(*db).or_default();
        state.head_count = count;
        state.head_height = height;
        state.head_hash = hash;
        state.head_timestamp_ms = timestamp_ms;
    }

    /// Count one query request to `db` now. Reports `db` from now on if it
    /// was not reported yet, so call it only for databases this miner serves.
    pub fn record_request(&self, db: &DatabaseId) {
        let now = self.clock.now_ms();
        lock(&self.chains)
            .entry(*db)
            .or_default()
            .requests
            .record(now);
    }

    /// Stop reporting `db` (dropped, or no longer assigned here).
    pub fn remove_database(&self, db: &DatabaseId) {
        lock(&self.chains).remove(db);
    }

    /// Every value now. Disk usage is computed by walking the data directory
    /// at most once per [`DISK_USAGE_CACHE_MS`]; the walk blocks, so async
    /// callers should run this on a blocking thread.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let now = self.clock.now_ms();
        let chains = lock(&self.chains)
            .iter()
            .map(|(db, s)| {
                let snap = ChainSnapshot {
                    head_count: s.head_count,
                    head_height: s.head_height,
                    head_hash: s.head_hash,
                    head_timestamp_ms: s.head_timestamp_ms,
                    requests_per_minute: s.requests.per_minute(now),
                };
                (*db, snap)
            })
            .collect();
        let (ready, ready_reason) = self.readiness();
        MetricsSnapshot {
            addr: self.addr.clone(),
            node: self.node,
            wallet: self.wallet,
            disk_root: self.disk_root.clone(),
            disk_usage_kb: self.disk_usage_kb(now),
            ready,
            ready_reason,
            chains,
        }
    }

    /// KB used under the data directory, from the cache when it is fresh.
    fn disk_usage_kb(&self, now: u64) -> u64 {
        // Held across the walk so concurrent scrapes share one walk.
        let mut cache = lock(&self.disk_cache);
        if let Some((at, kb)) = *cache
            && now >= at
            && now - at < DISK_USAGE_CACHE_MS
        {
            return kb;
        }
        let kb = disk::usage_kb(&self.disk_root);
        *cache = Some((now, kb));
        kb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Tag;

    pub(super) fn db(n: u8) -> DatabaseId {
        DatabaseId(Hash([n; 32]))
    }

    pub(super) fn metrics_at(root: &Path, clock: Arc<ManualClock>) -> MinerMetrics {
        MinerMetrics::with_clock(
            "127.0.0.1:11105".to_string(),
            NodeId(Hash([0xab; 32])),
            Address(Hash([0xcd; 32])),
            root.to_path_buf(),
            clock,
        )
    }

    #[test]
    fn snapshot_reports_heads_and_request_means() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(60_000 * 1_000));
        let m = metrics_at(dir.path(), clock.clone());
        let h = crate::hash::hash(Tag::DatabaseId, b"block");
        m.set_chain_head(&db(1), 7, 42, h, 1_700_000_000_123);
        for _ in 0..10 {
            m.record_request(&db(1));
        }
        clock.advance(60_000);
        for _ in 0..20 {
            m.record_request(&db(1));
        }
        clock.advance(60_000);
        let s = m.snapshot();
        assert_eq!(s.chains.len(), 1);
        let c = &s.chains[&db(1)];
        assert_eq!((c.head_count, c.head_height, c.head_hash), (7, 42, h));
        assert_eq!(c.head_timestamp_ms, 1_700_000_000_123);
        assert_eq!(c.requests_per_minute, 6.0);
        assert_eq!(s.addr, "127.0.0.1:11105");
        assert_eq!(s.node, NodeId(Hash([0xab; 32])));
        assert_eq!(s.wallet, Address(Hash([0xcd; 32])));
    }

    #[test]
    fn databases_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics_at(dir.path(), Arc::new(ManualClock::new(0)));
        m.add_database(&db(1));
        m.record_request(&db(2));
        m.set_chain_head(&db(3), 1, 1, Hash::default(), 0);
        m.add_database(&db(3));
        assert_eq!(m.snapshot().chains.len(), 3);
        // Re-adding keeps the head.
        assert_eq!(m.snapshot().chains[&db(3)].head_count, 1);
        m.remove_database(&db(2));
        let keys: Vec<_> = m.snapshot().chains.into_keys().collect();
        assert_eq!(keys, vec![db(1), db(3)]);
    }

    #[test]
    fn readiness_flips() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics_at(dir.path(), Arc::new(ManualClock::new(0)));
        assert_eq!(m.readiness(), (false, "starting".to_string()));
        m.set_ready(true, "");
        assert!(m.snapshot().ready);
        m.set_ready(false, "catching up 1 database");
        assert_eq!(m.readiness(), (false, "catching up 1 database".to_string()));
    }

    #[test]
    fn disk_usage_is_cached_for_a_few_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let m = metrics_at(dir.path(), clock.clone());
        std::fs::write(dir.path().join("a"), vec![0u8; 4096]).unwrap();
        assert_eq!(m.snapshot().disk_usage_kb, 4);
        std::fs::write(dir.path().join("b"), vec![0u8; 4096]).unwrap();
        clock.advance(DISK_USAGE_CACHE_MS - 1);
        assert_eq!(m.snapshot().disk_usage_kb, 4, "still cached");
        clock.advance(1);
        assert_eq!(m.snapshot().disk_usage_kb, 8, "walked again");
    }

    #[test]
    fn relative_root_is_made_absolute() {
        let m = MinerMetrics::new(
            "a:1".into(),
            NodeId(Hash::default()),
            Address(Hash::default()),
            PathBuf::from("data/miner"),
        );
        assert!(m.disk_root().is_absolute());
        assert!(m.snapshot().disk_root.ends_with("data/miner"));
    }

    #[test]
    fn metrics_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<MinerMetrics>();
    }
}
