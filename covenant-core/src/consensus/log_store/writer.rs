//! The process-wide pool of log writer threads.
//!
//! Every [`super::LogStore`] in the process is pinned, when it opens, to one
//! of at most [`WRITER_THREADS`] threads (started lazily, least-loaded
//! first), which owns the store's SQLite connection and runs all of its
//! operations in order. A thousand Raft groups therefore cost a handful of
//! threads, not a thousand.
//!
//! Each time a thread wakes it drains everything queued for it. Appends for
//! one store that queued up behind each other (typically while a commit was
//! running) go into one transaction: one commit, one fsync (group commit).
//! Any other operation on that store first commits the store's queued
//! appends, so reads always see earlier appends. Each store's callbacks run
//! right after its own commit: fsyncs are per file, so holding them until
//! other stores have committed would only add latency.
//!
//! Stores in [`LogDurability::Deferred`] mode commit without fsync; the
//! thread flushes each one at most [`FLUSH_INTERVAL`] after its first
//! unflushed commit. Must not import openraft: the threads serve every
//! type configuration, so everything here is type-erased.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::LogDurability;
use super::sqlite;

/// Most writer threads the process starts. Writers mostly wait on fsync, so
/// this is not tied to the core count: four lets a block producer and three
/// miners in one process (tests, benchmarks) each fsync in parallel.
pub(super) const WRITER_THREADS: usize = 4;

/// Longest time a [`LogDurability::Deferred`] commit stays without fsync.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Most messages handled per wake-up, so one busy thread still flushes on time.
const MAX_DRAIN: usize = 4096;

/// Why an operation on a log store failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpError {
    /// SQLite failed.
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    /// The writer thread is gone (it panicked).
    #[error("the raft log writer thread has stopped")]
    Stopped,
}

/// Where the result of an operation goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T, OpError>>;

/// Called once an append is durable (or failed).
pub(super) type Done = Box<dyn FnOnce(Result<(), std::io::Error>) + Send>;

/// Encoded rows of one append: `(index, entry bytes)`.
pub(super) type Rows = Vec<(u64, Vec<u8>)>;

/// One operation on one store; payloads are already encoded by the caller.
pub(super) enum Op {
    /// Append rows; `done` runs when they are durable per the store's mode.
    Append { rows: Rows, done: Done },
    /// Entries in `start..end`.
    Read {
        start: u64,
        end: Option<u64>,
        reply: Reply<Vec<Vec<u8>>>,
    },
    /// The entry with the highest index.
    LastEntry { reply: Reply<Option<Vec<u8>>> },
    /// Delete entries from `index` on.
    TruncateFrom { index: u64, reply: Reply<()> },
    /// Delete entries up to `index` and remember `log_id` as purged.
    PurgeUpTo {
        index: u64,
        log_id: Vec<u8>,
        reply: Reply<()>,
    },
    /// Set or delete a metadata value; `sync` makes it durable before replying
    /// in every mode.
    PutMeta {
        key: &'static str,
        value: Option<Vec<u8>>,
        sync: bool,
        reply: Reply<()>,
    },
    /// Read a metadata value.
    GetMeta {
        key: &'static str,
        reply: Reply<Option<Vec<u8>>>,
    },
}

enum Msg {
    Open {
        id: u64,
        conn: Box<Connection>,
        durability: LogDurability,
    },
    Op {
        id: u64,
        op: Op,
    },
    Close {
        id: u64,
    },
}

struct Worker {
    tx: mpsc::Sender<Msg>,
    /// Stores pinned to this thread.
    stores: AtomicUsize,
}

static POOL: Mutex<Vec<Arc<Worker>>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A store's place on its writer thread; dropping it closes the connection.
pub(super) struct StoreHandle {
    id: u64,
    worker: Arc<Worker>,
}

impl StoreHandle {
    /// Queues `op` behind this store's earlier operations.
    pub(super) fn send(&self, op: Op) -> Result<(), OpError> {
        self.worker
            .tx
            .send(Msg::Op { id: self.id, op })
            .map_err(|_| OpError::Stopped)
    }
}

impl Drop for StoreHandle {
    fn drop(&mut self) {
        let _ = self.worker.tx.send(Msg::Close { id: self.id });
        self.worker.stores.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spawn_worker(n: usize) -> std::io::Result<Arc<Worker>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("raft-log-{n}"))
        .spawn(move || worker_loop(rx))?;
    Ok(Arc::new(Worker {
        tx,
        stores: AtomicUsize::new(0),
    }))
}

/// Pins a freshly opened connection to a writer thread.
pub(super) fn attach(conn: Connection, durability: LogDurability) -> std::io::Result<StoreHandle> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let mut msg = Msg::Open {
        id,
        conn: Box::new(conn),
        durability,
    };
    // At most one retry per slot: a dead thread is replaced once.
    for _ in 0..=WRITER_THREADS {
        let idle = pool
            .iter()
            .position(|w| w.stores.load(Ordering::Relaxed) == 0);
        let slot = match idle {
            Some(i) => i,
            None if pool.len() < WRITER_THREADS => {
                let n = pool.len();
                pool.push(spawn_worker(n)?);
                n
            }
            None => pool
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.stores.load(Ordering::Relaxed))
                .map(|(i, _)| i)
                .unwrap_or(0),
        };
        let Some(worker) = pool.get(slot).cloned() else {
            break;
        };
        match worker.tx.send(msg) {
            Ok(()) => {
                worker.stores.fetch_add(1, Ordering::Relaxed);
                return Ok(StoreHandle { id, worker });
            }
            Err(mpsc::SendError(back)) => {
                // The thread died; replace it in its slot and try again.
                msg = back;
                let fresh = spawn_worker(slot)?;
                if let Some(w) = pool.get_mut(slot) {
                    *w = fresh;
                }
            }
        }
    }
    Err(std::io::Error::other(
        "no raft log writer thread accepts work",
    ))
}

/// A store as its writer thread holds it.
struct Store {
    conn: Connection,
    durability: LogDurability,
    /// When the oldest commit not yet fsynced happened (Deferred mode only).
    dirty_since: Option<Instant>,
}

impl Store {
    fn committed(&mut self) {
        if self.durability == LogDurability::Deferred && self.dirty_since.is_none() {
            self.dirty_since = Some(Instant::now());
        }
    }

    /// Notes the outcome of a write; with `sync`, makes it durable before returning.
    fn wrote(&mut self, r: rusqlite::Result<()>, sync: bool) -> Result<(), OpError> {
        r?;
        self.committed();
        if sync {
            self.flush()?;
        }
        Ok(())
    }

    /// Fsyncs what was committed without fsync; on failure retries later.
    fn flush(&mut self) -> rusqlite::Result<()> {
        if self.dirty_since.is_none() {
            return Ok(());
        }
        match sqlite::flush(&self.conn) {
            Ok(()) => {
                self.dirty_since = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot flush a raft log; retrying");
                self.dirty_since = Some(Instant::now());
                Err(e)
            }
        }
    }
}

/// Runs for the life of the process, serving the stores pinned to it.
fn worker_loop(rx: mpsc::Receiver<Msg>) {
    let mut stores: HashMap<u64, Store> = HashMap::new();
    let mut pending: HashMap<u64, Vec<(Rows, Done)>> = HashMap::new();
    let mut msgs = Vec::new();
    loop {
        let deadline = stores
            .values()
            .filter_map(|s| s.dirty_since)
            .min()
            .map(|t| t + FLUSH_INTERVAL);
        let first = match deadline {
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        msgs.extend(first);
        while msgs.len() < MAX_DRAIN {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        for msg in msgs.drain(..) {
            handle(&mut stores, &mut pending, msg);
        }
        for (id, batch) in pending.drain() {
            commit(stores.get_mut(&id), batch);
        }
        let now = Instant::now();
        for store in stores.values_mut() {
            if store.dirty_since.is_some_and(|t| t + FLUSH_INTERVAL <= now) {
                let _ = store.flush();
            }
        }
    }
}

fn handle(
    stores: &mut HashMap<u64, Store>,
    pending: &mut HashMap<u64, Vec<(Rows, Done)>>,
    msg: Msg,
) {
    let (id, op) = match msg {
        Msg::Open {
            id,
            conn,
            durability,
        } => {
            stores.insert(
                id,
                Store {
                    conn: *conn,
                    durability,
                    dirty_since: None,
                },
            );
            return;
        }
        Msg::Op {
            id,
            op: Op::Append { rows, done },
        } => {
            pending.entry(id).or_default().push((rows, done));
            return;
        }
        Msg::Op { id, op } => (id, op),
        Msg::Close { id } => {
            if let Some(batch) = pending.remove(&id) {
                commit(stores.get_mut(&id), batch);
            }
            if let Some(mut store) = stores.remove(&id) {
                let _ = store.flush();
            }
            return;
        }
    };
    // Earlier appends of this store land first, so this op sees them.
    if let Some(batch) = pending.remove(&id) {
        commit(stores.get_mut(&id), batch);
    }
    let Some(store) = stores.get_mut(&id) else {
        // Unreachable: a handle exists only after its Open was queued.
        return;
    };
    run(store, op);
}

/// Commits one store's queued appends in one transaction, then acknowledges them.
fn commit(store: Option<&mut Store>, batch: Vec<(Rows, Done)>) {
    let result = match store {
        None => Err(OpError::Stopped),
        // Nothing to write (e.g. only empty appends): no transaction, no fsync.
        Some(_) if batch.iter().all(|(rows, _)| rows.is_empty()) => Ok(()),
        Some(store) => {
            let r = sqlite::append(
                &mut store.conn,
                batch.iter().map(|(rows, _)| rows.as_slice()),
            );
            if r.is_ok() {
                store.committed();
            }
            r.map_err(OpError::from)
        }
    };
    for (_, done) in batch {
        done(match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        });
    }
}

fn run(store: &mut Store, op: Op) {
    match op {
        Op::Append { rows, done } => commit(Some(store), vec![(rows, done)]),
        Op::Read { start, end, reply } => {
            let r = sqlite::read_range(&store.conn, start, end);
            let _ = reply.send(r.map_err(OpError::from));
        }
        Op::LastEntry { reply } => {
            let _ = reply.send(sqlite::last_entry(&store.conn).map_err(OpError::from));
        }
        Op::TruncateFrom { index, reply } => {
            let r = sqlite::truncate_from(&store.conn, index);
            let _ = reply.send(store.wrote(r, false));
        }
        Op::PurgeUpTo {
            index,
            log_id,
            reply,
        } => {
            let r = sqlite::purge(&mut store.conn, index, &log_id);
            let _ = reply.send(store.wrote(r, false));
        }
        Op::PutMeta {
            key,
            value,
            sync,
            reply,
        } => {
            let r = sqlite::put_meta(&store.conn, key, value.as_deref());
            let _ = reply.send(store.wrote(r, sync));
        }
        Op::GetMeta { key, reply } => {
            let _ = reply.send(sqlite::get_meta(&store.conn, key).map_err(OpError::from));
        }
    }
}
