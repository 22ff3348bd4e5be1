//! A durable Raft log in SQLite, shared by every Raft group kind (main chain,
//! databases).
//!
//! One dedicated thread owns the SQLite connection. Appends are queued and
//! acknowledged through openraft's [`LogFlushed`] callback only after the
//! transaction that holds them has committed with `synchronous=FULL`
//! (fsync of the WAL): an entry is never reported durable before it is on
//! disk. Appends that arrive while a commit is in progress are committed
//! together (group commit), so fsyncs per second stay flat as load grows.
//! Reads go through the same thread, so they always see earlier appends.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::oneshot;

use crate::codec;

/// Format version of everything this store writes; checked on open.
const LOG_FORMAT_VERSION: u16 = 1;

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

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// Work for the writer thread; payloads are already encoded by the caller.
enum Op<C: RaftTypeConfig> {
    Append {
        rows: Vec<(u64, Vec<u8>)>,
        callback: LogFlushed<C>,
    },
    Read {
        start: u64,
        end: Option<u64>,
        reply: Reply<Vec<Vec<u8>>>,
    },
    LastEntry {
        reply: Reply<Option<Vec<u8>>>,
    },
    TruncateFrom {
        index: u64,
        reply: Reply<()>,
    },
    PurgeUpTo {
        index: u64,
        log_id: Vec<u8>,
        reply: Reply<()>,
    },
    PutMeta {
        key: &'static str,
        value: Option<Vec<u8>>,
        reply: Reply<()>,
    },
    GetMeta {
        key: &'static str,
        reply: Reply<Option<Vec<u8>>>,
    },
}

/// A Raft log stored in one SQLite file; cheap to clone (clones share the writer).
pub struct LogStore<C: RaftTypeConfig> {
    tx: mpsc::Sender<Op<C>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            tx: self.tx.clone(),
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStore")
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Serialize + DeserializeOwned,
    C::Node: Serialize + DeserializeOwned,
    C::NodeId: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the log at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<LogStore<C>, LogStoreError> {
        let open_err = |source| LogStoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
        )
        .map_err(open_err)?;
        let version: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key='format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(open_err)?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('format', ?1)",
                    params![LOG_FORMAT_VERSION.to_le_bytes().to_vec()],
                )
                .map_err(open_err)?;
            }
            Some([a, b]) if u16::from_le_bytes([*a, *b]) == LOG_FORMAT_VERSION => {}
            Some(other) => {
                let found = match other {
                    [a, b] => u16::from_le_bytes([*a, *b]),
                    _ => u16::MAX,
                };
                return Err(LogStoreError::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found,
                    supported: LOG_FORMAT_VERSION,
                });
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("raft-log".into())
            .spawn(move || writer_loop::<C>(conn, rx))
            .map_err(LogStoreError::Thread)?;
        Ok(LogStore { tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Op<C>) -> Result<T, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| "raft log writer thread has stopped".to_string())?;
        rx.await
            .map_err(|_| "raft log writer thread has stopped".to_string())?
    }

    async fn get_meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, String> {
        match self.ask(|reply| Op::GetMeta { key, reply }).await? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(&bytes).map_err(|e| e.to_string())?)),
        }
    }

    async fn put_meta<T: Serialize>(
        &self,
        key: &'static str,
        value: Option<&T>,
    ) -> Result<(), String> {
        let value = match value {
            Some(v) => Some(codec::encode(v).map_err(|e| e.to_string())?),
            None => None,
        };
        self.ask(|reply| Op::PutMeta { key, value, reply }).await
    }
}

fn any(msg: String) -> AnyError {
    AnyError::error(msg)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Serialize + DeserializeOwned,
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
        let rows = self
            .ask(|reply| Op::Read { start, end, reply })
            .await
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
        let mut entries = Vec::with_capacity(rows.len());
        for bytes in &rows {
            match codec::decode::<Entry<C>>(bytes) {
                Ok(e) => entries.push(e),
                Err(e) => return Err(StorageIOError::read_logs(&e).into()),
            }
        }
        Ok(entries)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    C::D: Serialize + DeserializeOwned,
    C::Node: Serialize + DeserializeOwned,
    C::NodeId: Serialize + DeserializeOwned,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id: Option<LogId<C::NodeId>> = self
            .get_meta("last_purged")
            .await
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
        let last = self
            .ask(|reply| Op::LastEntry { reply })
            .await
            .map_err(|e| StorageIOError::read_logs(any(e)))?;
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
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.put_meta("vote", Some(vote))
            .await
            .map_err(|e| StorageIOError::write_vote(any(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.get_meta("vote")
            .await
            .map_err(|e| StorageIOError::read_vote(any(e)).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.put_meta("committed", committed.as_ref())
            .await
            .map_err(|e| StorageIOError::write(any(e)).into())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        self.get_meta("committed")
            .await
            .map_err(|e| StorageIOError::read(any(e)).into())
    }

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
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            rows.push((entry.get_log_id().index, bytes));
        }
        self.tx.send(Op::Append { rows, callback }).map_err(|_| {
            StorageIOError::write_logs(any("raft log writer thread has stopped".into()))
        })?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let index = log_id.index;
        self.ask(|reply| Op::TruncateFrom { index, reply })
            .await
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let bytes = codec::encode(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        let index = log_id.index;
        self.ask(|reply| Op::PurgeUpTo {
            index,
            log_id: bytes,
            reply,
        })
        .await
        .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }
}

/// Runs on the dedicated thread until every [`LogStore`] clone is dropped.
fn writer_loop<C: RaftTypeConfig>(mut conn: Connection, rx: mpsc::Receiver<Op<C>>) {
    let mut next: Option<Op<C>> = None;
    loop {
        let op = match next.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
        };
        match op {
            Op::Append { rows, callback } => {
                // Group commit: take every append already queued behind this one.
                let mut batch = vec![(rows, callback)];
                loop {
                    match rx.try_recv() {
                        Ok(Op::Append { rows, callback }) => batch.push((rows, callback)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let result = append_batch(&mut conn, &batch);
                for (_, callback) in batch {
                    let r = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                    };
                    callback.log_io_completed(r);
                }
            }
            Op::Read { start, end, reply } => {
                let _ = reply.send(read_range(&conn, start, end).map_err(|e| e.to_string()));
            }
            Op::LastEntry { reply } => {
                let r = conn
                    .query_row("SELECT entry FROM log ORDER BY idx DESC LIMIT 1", [], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional();
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Op::TruncateFrom { index, reply } => {
                let r = conn
                    .execute("DELETE FROM log WHERE idx >= ?1", params![index as i64])
                    .map(|_| ());
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Op::PurgeUpTo {
                index,
                log_id,
                reply,
            } => {
                let r = purge(&mut conn, index, &log_id);
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Op::PutMeta { key, value, reply } => {
                let r = match value {
                    Some(v) => conn.execute(
                        "INSERT INTO meta(key, value) VALUES(?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        params![key, v],
                    ),
                    None => conn.execute("DELETE FROM meta WHERE key = ?1", params![key]),
                }
                .map(|_| ());
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Op::GetMeta { key, reply } => {
                let r = conn
                    .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional();
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
        }
    }
}

type Batch<C> = [(Vec<(u64, Vec<u8>)>, LogFlushed<C>)];

fn append_batch<C: RaftTypeConfig>(
    conn: &mut Connection,
    batch: &Batch<C>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare_cached("INSERT OR REPLACE INTO log(idx, entry) VALUES(?1, ?2)")?;
        for (rows, _) in batch {
            for (idx, bytes) in rows {
                stmt.execute(params![*idx as i64, bytes])?;
            }
        }
    }
    tx.commit()
}

fn read_range(conn: &Connection, start: u64, end: Option<u64>) -> rusqlite::Result<Vec<Vec<u8>>> {
    let end = end.unwrap_or(u64::MAX).min(i64::MAX as u64);
    let start = start.min(i64::MAX as u64);
    let mut stmt =
        conn.prepare_cached("SELECT entry FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")?;
    let rows = stmt.query_map(params![start as i64, end as i64], |r| {
        r.get::<_, Vec<u8>>(0)
    })?;
    rows.collect()
}

fn purge(conn: &mut Connection, index: u64, log_id: &[u8]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES('last_purged', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![log_id],
    )?;
    tx.execute(
        "DELETE FROM log WHERE idx <= ?1",
        params![index.min(i64::MAX as u64) as i64],
    )?;
    tx.commit()
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

    struct Builder;

    impl StoreBuilder<TestConfig, LogStore<TestConfig>, MemSm, tempfile::TempDir> for Builder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore<TestConfig>, MemSm), StorageError<u64>> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let store = LogStore::open(&dir.path().join("raft.db"))
                .map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, store, MemSm::default()))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).unwrap();
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
