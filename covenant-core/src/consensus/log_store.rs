//! A durable Raft log in SQLite, shared by every Raft group kind (main chain,
//! databases).
//!
//! Each store is one SQLite file (`raft.db`, WAL mode) whose connection is
//! owned by one thread of a small process-wide pool (`writer`): a miner
//! hosting hundreds of groups runs a handful of log threads, not one per
//! group. A store is pinned to its thread, so its operations stay ordered
//! and reads always see earlier appends. Appends that queue up while a
//! commit runs are committed together (group commit), so fsyncs per second
//! stay flat as load grows.
//!
//! openraft 0.9 holds its core task until an append's [`LogFlushed`]
//! callback runs, which would put the leader's fsync before replication
//! instead of beside it. So the callback runs as soon as the append is
//! queued, and [`LogProgress`] records when it is durable. A group built on
//! this store must therefore wait on that record wherever Raft assumes a
//! flushed log, and the constructors make each part take it: the state
//! machine applies an entry only once it is durable locally; the network
//! tells followers an index is committed only once it is durable on the
//! leader; a follower answers AppendEntries only once what it appended is
//! durable. Together: nothing is applied anywhere, and no write is
//! answered, before it is durable on a majority.
//!
//! Durability is chosen per store ([`LogDurability`]): by default an append
//! is acknowledged only after its transaction committed with
//! `synchronous=FULL` (WAL fsynced).
//!
//! The file is held with SQLite's exclusive lock for the store's lifetime:
//! no other connection or process can use a live log. Dropping the last
//! clone closes it on the writer thread shortly after, and opening the same
//! file again waits up to 10 s for that. Must not import the network layer
//! or any state machine.

mod progress;
mod sqlite;
mod tail;
mod writer;

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::codec;
pub use progress::{LogFlushError, LogProgress};
use tail::{Budget, Tail};
use writer::{Op, OpError, Reply, StoreHandle};

/// Format version of everything this store writes; checked on open.
const LOG_FORMAT_VERSION: u16 = 1;

/// When an append counts as durable, and so when it is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogDurability {
    /// Acknowledge only after the WAL is fsynced (`synchronous=FULL`): an
    /// acknowledged entry survives a crash of the process, the OS or the
    /// power. Required for strong consistency.
    #[default]
    Fsync,
    /// Acknowledge once the entry is written to the WAL, before any fsync;
    /// a background flush fsyncs each store at most ~100 ms after a write.
    /// A crash of the process loses nothing (the OS holds the writes), but
    /// a crash of the OS or a power loss can lose the last ~100 ms of
    /// acknowledged appends, truncations and purges — always a suffix, in
    /// order, never a hole. Votes are still fsynced before `save_vote`
    /// returns, so a replica never votes twice in a term. Meant for
    /// eventual-consistency databases, which already acknowledge writes
    /// before replicas have them.
    Deferred,
}

/// Why the log store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// SQLite refused to open or initialise the log database.
    #[error("cannot open raft log {path}: {source}")]
    Open {
        /// The log database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The log was written by a build with another format.
    #[error(
        "raft log {path} is in format version {found}, but this build reads version {supported}"
    )]
    UnsupportedVersion {
        /// The log database file.
        path: PathBuf,
        /// Version found on disk.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The writer thread could not be started.
    #[error("cannot start the raft log writer thread: {0}")]
    Thread(std::io::Error),
}

impl LogStoreError {
    /// The stable code of this error.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            LogStoreError::UnsupportedVersion { .. } => crate::ErrorCode::UnsupportedVersion,
            _ => crate::ErrorCode::Storage,
        }
    }
}

/// A Raft log stored in one SQLite file; cheap to clone (clones share the
/// connection, which closes when the last clone is dropped).
pub struct LogStore<C: RaftTypeConfig> {
    handle: Arc<StoreHandle>,
    durability: LogDurability,
    /// The newest entries, shared by every clone (see `tail`).
    tail: Arc<Mutex<Tail<C::Entry>>>,
    /// Whether this clone is openraft's log reader (replication) rather
    /// than the storage itself, whose reads are for apply.
    reader: bool,
    /// Which appends are durable yet (shared by every clone).
    progress: LogProgress,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            handle: self.handle.clone(),
            durability: self.durability,
            tail: self.tail.clone(),
            reader: self.reader,
            progress: self.progress.clone(),
            _config: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogStore({:?})", self.durability)
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone + Serialize + DeserializeOwned,
    C::Node: Serialize + DeserializeOwned,
    C::NodeId: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the log at `path` with [`LogDurability::Fsync`].
    pub fn open(path: &Path) -> Result<LogStore<C>, LogStoreError> {
        Self::open_with(path, LogDurability::Fsync)
    }

    /// Opens (or creates) the log at `path` and pins it to a writer thread.
    pub fn open_with(path: &Path, durability: LogDurability) -> Result<LogStore<C>, LogStoreError> {
        let conn = sqlite::open(path, durability)?;
        let handle = writer::attach(conn, durability).map_err(LogStoreError::Thread)?;
        Ok(LogStore {
            handle: Arc::new(handle),
            durability,
            tail: Arc::new(Mutex::new(Tail::new(tail::STORE_CAP, Budget::process()))),
            reader: false,
            progress: LogProgress::new(),
            _config: PhantomData,
        })
    }

    /// When appends become durable: the group's state machine, network and
    /// RPC handler must wait on it (see the module docs).
    pub fn progress(&self) -> LogProgress {
        self.progress.clone()
    }

    fn tail(&self) -> MutexGuard<'_, Tail<Entry<C>>> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The durability this store was opened with.
    pub fn durability(&self) -> LogDurability {
        self.durability
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, OpError> {
        let (reply, rx) = oneshot::channel();
        self.handle.send(make(reply))?;
        rx.await.map_err(|_| OpError::Stopped)?
    }

    async fn get_meta<T: DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, MetaError> {
        match self.ask(|reply| Op::GetMeta { key, reply }).await? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        }
    }

    async fn put_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: Option<&T>,
        sync: bool,
    ) -> Result<(), MetaError> {
        let value = match value {
            Some(v) => Some(codec::encode(v)?),
            None => None,
        };
        self.ask(|reply| Op::PutMeta {
            key,
            value,
            sync,
            reply,
        })
        .await?;
        Ok(())
    }
}

/// Why a metadata value could not be read or written.
#[derive(Debug, thiserror::Error)]
enum MetaError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone + Serialize + DeserializeOwned,
    C::Node: Serialize + DeserializeOwned,
    C::NodeId: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => Some(e.saturating_add(1)),
            Bound::Excluded(e) => Some(*e),
            Bound::Unbounded => None,
        };
        // The storage itself reads only to apply: what it read is applied.
        let applied = match end {
            Some(e) if !self.reader => e.checked_sub(1),
            _ => None,
        };
        {
            let mut tail = self.tail();
            if let Some(entries) = tail.get(start, end) {
                if let Some(a) = applied {
                    tail.applied_up_to(a);
                }
                return Ok(entries);
            }
        }
        let rows = self
            .ask(|reply| Op::Read { start, end, reply })
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let mut entries = Vec::with_capacity(rows.len());
        for bytes in &rows {
            match codec::decode::<Entry<C>>(bytes) {
                Ok(e) => entries.push(e),
                Err(e) => return Err(StorageIOError::read_logs(&e).into()),
            }
        }
        if let Some(a) = applied {
            self.tail().applied_up_to(a);
        }
        Ok(entries)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Clone + Serialize + DeserializeOwned,
    C::Node: Serialize + DeserializeOwned,
    C::NodeId: Serialize + DeserializeOwned,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id: Option<LogId<C::NodeId>> = self
            .get_meta("last_purged")
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last = self
            .ask(|reply| Op::LastEntry { reply })
            .await
            .map_err(|e| StorageIOError::read_logs(&e))?;
        let last_log_id = match last {
            Some(bytes) => Some(
                codec::decode::<Entry<C>>(&bytes)
                    .map_err(|e| StorageIOError::read_logs(&e))?
                    .get_log_id()
                    .clone(),
            ),
            None => last_purged_log_id.clone(),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogStore {
            reader: true,
            ..self.clone()
        }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // Always durable before returning, whatever the mode: a replica must
        // never forget a vote it granted.
        self.put_meta("vote", Some(vote), true)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.get_meta("vote")
            .await
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    // `save_committed`/`read_committed` keep openraft's defaults (nothing
    // stored): openraft awaits `save_committed` on its core task before every
    // apply, so storing it meant one more SQLite commit, fsynced, on the
    // commit path of every write on every replica. Nothing needs it: each
    // replica records its applied log id in the same transaction as the
    // apply, and a restarted replica learns the commit index from its leader.

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        {
            // Cached before the writer has them: reads must see every append
            // at once, and the cache answers them in order with the writer.
            let mut tail = self.tail();
            for entry in entries {
                let bytes = match codec::encode(&entry) {
                    Ok(b) => b,
                    Err(e) => {
                        // Nothing of this append reaches the writer.
                        tail.clear();
                        return Err(StorageIOError::write_logs(&e).into());
                    }
                };
                let index = entry.get_log_id().index;
                tail.push(index, entry, bytes.len());
                rows.push((index, bytes));
            }
        }
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            // Nothing to store (openraft sends no empty appends, but may).
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let seq = self.progress.submit(first.0, last.0);
        let progress = self.progress.clone();
        let done: writer::Done =
            Box::new(move |r| progress.flushed(seq, r.map_err(|e| e.to_string())));
        if let Err(e) = self.handle.send(Op::Append { rows, done }) {
            self.progress.flushed(seq, Err(e.to_string()));
            return Err(StorageIOError::write_logs(&e).into());
        }
        // Queued: openraft may go on (see the module docs); durability is
        // tracked by `progress`.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let index = log_id.index;
        self.tail().truncate_from(index);
        self.ask(|reply| Op::TruncateFrom { index, reply })
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = codec::encode(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        let index = log_id.index;
        self.tail().purge_up_to(index);
        self.ask(|reply| Op::PurgeUpTo {
            index,
            log_id: bytes,
            reply,
        })
        .await
        .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    //! Runs openraft's storage conformance suite against [`LogStore`], paired
    //! with a minimal in-memory state machine (the suite needs both).
    use std::io::Cursor;

    use openraft::storage::{RaftLogStorageExt, RaftStateMachine, Snapshot};
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{
        BasicNode, EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageError, StoredMembership,
    };

    use super::*;
    use rusqlite::{Connection, params};

    openraft::declare_raft_types!(
        pub(super) TestConfig:
            D = u64,
            R = u64,
    );

    #[derive(Default, Clone, Serialize, serde::Deserialize)]
    struct State {
        last_applied: Option<LogId<u64>>,
        membership: StoredMembership<u64, BasicNode>,
        sum: u64,
    }

    type SnapshotSlot =
        std::sync::Arc<std::sync::Mutex<Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>>>;

    /// State plus a snapshot slot shared with the builders it hands out.
    #[derive(Default)]
    struct MemSm {
        state: State,
        snapshot: SnapshotSlot,
    }

    impl RaftSnapshotBuilder<TestConfig> for MemSm {
        async fn build_snapshot(&mut self) -> Result<Snapshot<TestConfig>, StorageError<u64>> {
            let data =
                codec::encode(&self.state).map_err(|e| StorageIOError::read_state_machine(&e))?;
            let meta = SnapshotMeta {
                last_log_id: self.state.last_applied,
                last_membership: self.state.membership.clone(),
                snapshot_id: format!("{:?}", self.state.last_applied),
            };
            *self.snapshot.lock().unwrap() = Some((meta.clone(), data.clone()));
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })
        }
    }

    impl RaftStateMachine<TestConfig> for MemSm {
        type SnapshotBuilder = MemSm;

        async fn applied_state(
            &mut self,
        ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>>
        {
            Ok((self.state.last_applied, self.state.membership.clone()))
        }

        async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<u64>>
        where
            I: IntoIterator<Item = Entry<TestConfig>> + OptionalSend,
        {
            let mut out = Vec::new();
            for e in entries {
                self.state.last_applied = Some(e.log_id);
                match e.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(v) => self.state.sum += v,
                    EntryPayload::Membership(m) => {
                        self.state.membership = StoredMembership::new(Some(e.log_id), m)
                    }
                }
                out.push(self.state.sum);
            }
            Ok(out)
        }

        async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
            MemSm {
                state: self.state.clone(),
                snapshot: self.snapshot.clone(),
            }
        }

        async fn begin_receiving_snapshot(
            &mut self,
        ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
            Ok(Box::new(Cursor::new(Vec::new())))
        }

        async fn install_snapshot(
            &mut self,
            meta: &SnapshotMeta<u64, BasicNode>,
            snapshot: Box<Cursor<Vec<u8>>>,
        ) -> Result<(), StorageError<u64>> {
            let data = snapshot.into_inner();
            self.state =
                codec::decode(&data).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
            *self.snapshot.lock().unwrap() = Some((meta.clone(), data));
            Ok(())
        }

        async fn get_current_snapshot(
            &mut self,
        ) -> Result<Option<Snapshot<TestConfig>>, StorageError<u64>> {
            Ok(self
                .snapshot
                .lock()
                .unwrap()
                .clone()
                .map(|(meta, data)| Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data)),
                }))
        }
    }

    struct Builder(LogDurability);

    impl StoreBuilder<TestConfig, LogStore<TestConfig>, MemSm, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore<TestConfig>, MemSm), StorageError<u64>> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let store = LogStore::open_with(&dir.path().join("raft.db"), self.0)
                .map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, store, MemSm::default()))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder(LogDurability::Fsync)).unwrap();
    }

    #[test]
    fn openraft_storage_suite_deferred() {
        Suite::test_all(Builder(LogDurability::Deferred)).unwrap();
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry<TestConfig>> {
        range
            .map(|i| Entry {
                log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), i),
                payload: EntryPayload::Normal(i),
            })
            .collect()
    }

    /// What the main database file holds on its own, without the WAL: what
    /// is certainly on disk after a checkpoint.
    fn main_file_only<T: rusqlite::types::FromSql>(path: &Path, sql: &str) -> Option<T> {
        let copy = tempfile::tempdir().unwrap();
        let to = copy.path().join("copy.db");
        std::fs::copy(path, &to).unwrap();
        let conn = Connection::open(&to).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).ok()
    }

    fn log_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("raft-log"))
            .count()
    }

    #[test]
    fn many_stores_share_a_few_writer_threads() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let mut stores = Vec::new();
            for i in 0..3 * writer::WRITER_THREADS {
                let path = dir.path().join(format!("raft{i}.db"));
                stores.push(LogStore::<TestConfig>::open(&path).unwrap());
            }
            for (i, store) in stores.iter_mut().enumerate() {
                let i = i as u64;
                store.blocking_append(entries(1..=i + 1)).await.unwrap();
            }
            for (i, store) in stores.iter_mut().enumerate() {
                let state = store.get_log_state().await.unwrap();
                assert_eq!(state.last_log_id.map(|l| l.index), Some(i as u64 + 1));
            }
        });
        let threads = log_threads();
        assert!(
            (1..=writer::WRITER_THREADS).contains(&threads),
            "{threads} log threads for {} stores",
            3 * writer::WRITER_THREADS
        );
    }

    #[test]
    fn empty_append_is_acknowledged_in_order() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let mut store = LogStore::<TestConfig>::open(&dir.path().join("raft.db")).unwrap();
            store.blocking_append(entries(1..=3)).await.unwrap();
            store.blocking_append(Vec::new()).await.unwrap();
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_log_id.map(|l| l.index), Some(3));
        });
    }

    #[test]
    fn deferred_appends_reach_the_disk_soon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        runtime().block_on(async {
            let mut store =
                LogStore::<TestConfig>::open_with(&path, LogDurability::Deferred).unwrap();
            assert_eq!(store.durability(), LogDurability::Deferred);
            store.blocking_append(entries(1..=4)).await.unwrap();
            // Only a checkpoint puts the rows into the main file; the background
            // flush must do one without any further activity on the store.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let count: Option<i64> = main_file_only(&path, "SELECT count(*) FROM log");
                if count == Some(4) {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "never flushed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    }

    #[test]
    fn deferred_votes_are_durable_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        runtime().block_on(async {
            let mut store =
                LogStore::<TestConfig>::open_with(&path, LogDurability::Deferred).unwrap();
            store.save_vote(&Vote::new(7, 2)).await.unwrap();
            let on_disk: Option<Vec<u8>> =
                main_file_only(&path, "SELECT value FROM meta WHERE key='vote'");
            let vote: Vote<u64> = codec::decode(&on_disk.expect("vote not on disk")).unwrap();
            assert_eq!(vote, Vote::new(7, 2));
        });
    }

    #[test]
    fn reopen_keeps_entries_and_vote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut store = LogStore::<TestConfig>::open(&path).unwrap();
            store.save_vote(&Vote::new(3, 1)).await.unwrap();
            let entries: Vec<Entry<TestConfig>> = (1..=5)
                .map(|i| Entry {
                    log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), i),
                    payload: EntryPayload::Normal(i),
                })
                .collect();
            store.blocking_append(entries).await.unwrap();
        });
        drop(rt);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut store = LogStore::<TestConfig>::open(&path).unwrap();
            assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_log_id.map(|l| l.index), Some(5));
            let got = store.try_get_log_entries(2..4).await.unwrap();
            assert_eq!(
                got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
                vec![2, 3]
            );
        });
    }

    #[test]
    fn unknown_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        drop(LogStore::<TestConfig>::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        // The store's writer thread may still be closing its exclusive connection.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key='format'",
            params![vec![9u8, 0]],
        )
        .unwrap();
        drop(conn);
        let err = LogStore::<TestConfig>::open(&path).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }
}
