//! The one openraft state machine every Raft group uses, over a [`Replica`]
//! that knows how to apply an entry and take or install a full copy of
//! itself. The plumbing (applying on blocking threads, so long SQLite work
//! never stalls the async workers, except the few quick entries a replica
//! vouches for, which skip the hop; keeping the current snapshot) lives
//! here once; the main chain and each database only say what applying means.
//!
//! A replica that names a directory ([`Replica::snapshot_dir`]) keeps its
//! latest snapshot on disk there ([`SnapshotStore`]): openraft asks for it
//! at startup and whenever a follower is behind the purged log, and only its
//! metadata stays in memory. A received snapshot is stored durably *before*
//! the replica installs it, and at startup a replica found behind its
//! stored snapshot (a crash mid-install, or a power loss after a purge) is
//! restored from it; so the stored snapshot is the durable point that log
//! purges rely on. Other replicas keep their snapshot in memory.
//!
//! Must not import SQLite, the network or a particular replica.

mod snapshot_store;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

pub use self::snapshot_store::{SnapshotStore, SnapshotStoreError, sync_dir};
use super::log_store::LogProgress;
use super::types::RaftPeer;

/// Most entries applied at once on an async worker (see [`Replica::applies_quickly`]).
const QUICK_ENTRIES: usize = 4;

/// A snapshot's metadata and bytes.
pub type SnapshotParts = (SnapshotMeta<u64, RaftPeer>, Vec<u8>);

/// What a replicated group's state must offer its state machine.
pub trait Replica: Send + Sync + 'static {
    /// The group's Raft type configuration.
    type Config: RaftTypeConfig<
            NodeId = u64,
            Node = RaftPeer,
            Entry = Entry<Self::Config>,
            SnapshotData = Cursor<Vec<u8>>,
        >;

    /// The last applied log id and membership, as persisted.
    fn applied_state(&self) -> (Option<LogId<u64>>, StoredMembership<u64, RaftPeer>);

    /// Applies one committed entry (on a blocking thread, or on an async
    /// worker when [`Replica::applies_quickly`] says so).
    fn apply_entry(
        &self,
        entry: Entry<Self::Config>,
    ) -> Result<<Self::Config as RaftTypeConfig>::R, String>;

    /// Whether applying `entry` takes well under a millisecond and waits
    /// for no file sync and no long-held lock, so it may run on an async
    /// worker instead of a blocking thread. The default says no.
    fn applies_quickly(&self, _entry: &Entry<Self::Config>) -> bool {
        false
    }

    /// A full copy of the state with its metadata (called on a blocking thread).
    fn build_snapshot(&self) -> Result<SnapshotParts, String>;

    /// Replaces the state with a copy made by [`Replica::build_snapshot`].
    fn install_snapshot(
        &self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        data: &[u8],
    ) -> Result<(), String>;

    /// Where to keep the latest snapshot on disk; `None` keeps it in memory.
    fn snapshot_dir(&self) -> Option<PathBuf> {
        None
    }

    /// Writes a full copy of the state into the new file `out` and returns
    /// its metadata (called on a blocking thread). Logs it covers may be
    /// purged afterwards, so the replica must not lose what it holds: its
    /// own file stays durable, or (a database replica) a crash that may have
    /// torn the file rebuilds it from the stored snapshot.
    /// The default writes [`Replica::build_snapshot`]'s bytes.
    fn build_snapshot_file(&self, out: &Path) -> Result<SnapshotMeta<u64, RaftPeer>, String> {
        let (meta, data) = self.build_snapshot()?;
        std::fs::write(out, data).map_err(|e| format!("write {}: {e}", out.display()))?;
        Ok(meta)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sm_err(e: String) -> StorageError<u64> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

fn read_err(e: SnapshotStoreError) -> StorageError<u64> {
    StorageIOError::read_snapshot(None, AnyError::new(&e)).into()
}

fn write_err(meta: &SnapshotMeta<u64, RaftPeer>, e: SnapshotStoreError) -> StorageError<u64> {
    StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e)).into()
}

/// Where the current snapshot lives.
enum Slot {
    /// On disk, only the metadata cached.
    Disk(Arc<SnapshotStore>),
    /// In memory, whole.
    Memory(Arc<Mutex<Option<SnapshotParts>>>),
}

impl Clone for Slot {
    fn clone(&self) -> Self {
        match self {
            Slot::Disk(s) => Slot::Disk(s.clone()),
            Slot::Memory(m) => Slot::Memory(m.clone()),
        }
    }
}

/// The openraft state machine (and snapshot builder) over a [`Replica`].
pub struct StateMachine<R> {
    replica: Arc<R>,
    current: Slot,
    /// The group's log: an entry is applied only once it is durable there.
    log: LogProgress,
}

impl<R> Clone for StateMachine<R> {
    fn clone(&self) -> Self {
        StateMachine {
            replica: self.replica.clone(),
            current: self.current.clone(),
            log: self.log.clone(),
        }
    }
}

impl<R: Replica> StateMachine<R> {
    /// A state machine applying to `replica` the entries of the log whose
    /// durability `log` records; its snapshots go to
    /// [`Replica::snapshot_dir`] (nothing is read there until needed).
    pub fn new(replica: Arc<R>, log: LogProgress) -> StateMachine<R> {
        let current = match replica.snapshot_dir() {
            Some(dir) => Slot::Disk(Arc::new(SnapshotStore::new(&dir))),
            None => Slot::Memory(Arc::new(Mutex::new(None))),
        };
        StateMachine {
            replica,
            current,
            log,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&R) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StorageError<u64>> {
        let replica = self.replica.clone();
        tokio::task::spawn_blocking(move || f(&replica))
            .await
            .map_err(|e| sm_err(e.to_string()))?
            .map_err(sm_err)
    }

    /// Runs `f` on the store on a blocking thread (it reads and fsyncs files).
    async fn on_store<T: Send + 'static>(
        store: &Arc<SnapshotStore>,
        f: impl FnOnce(&SnapshotStore) -> Result<T, SnapshotStoreError> + Send + 'static,
    ) -> Result<Result<T, SnapshotStoreError>, StorageError<u64>> {
        let store = store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| sm_err(e.to_string()))
    }

    /// Restores the replica from the stored snapshot if the replica is
    /// behind it (it was being installed, or data the purged log held was
    /// lost from the replica's file).
    async fn recover(&self, store: &Arc<SnapshotStore>) -> Result<(), StorageError<u64>> {
        let stored = Self::on_store(store, |s| s.meta())
            .await?
            .map_err(read_err)?;
        let Some(meta) = stored else { return Ok(()) };
        let (applied, _) = self.replica.applied_state();
        if meta.last_log_id <= applied {
            return Ok(());
        }
        tracing::warn!(
            snapshot = %meta.snapshot_id,
            applied = ?applied,
            "the replica is behind its stored snapshot; restoring it"
        );
        let Some((meta, data)) = Self::on_store(store, |s| s.load())
            .await?
            .map_err(read_err)?
        else {
            return Ok(());
        };
        self.blocking(move |r| r.install_snapshot(&meta, &data))
            .await
    }
}

impl<R: Replica> RaftSnapshotBuilder<R::Config> for StateMachine<R> {
    /// Builds a snapshot; on disk, it is committed to the store before this
    /// returns, and the returned body is empty: openraft 0.9 keeps only the
    /// metadata of a snapshot it asked to build (`core/sm/worker.rs`,
    /// `storage/helper.rs`) and reads the body again through
    /// `get_current_snapshot` when it sends it.
    async fn build_snapshot(&mut self) -> Result<Snapshot<R::Config>, StorageError<u64>> {
        match &self.current {
            Slot::Memory(m) => {
                let (meta, data) = self.blocking(|r| r.build_snapshot()).await?;
                *lock(m) = Some((meta.clone(), data.clone()));
                Ok(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(data)),
                })
            }
            Slot::Disk(store) => {
                let staged = Self::on_store(store, |s| s.staging_path())
                    .await?
                    .map_err(read_err)?;
                let out = staged.clone();
                let meta = match self.blocking(move |r| r.build_snapshot_file(&out)).await {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = std::fs::remove_file(&staged);
                        return Err(e);
                    }
                };
                let m = meta.clone();
                let kept = Self::on_store(store, move |s| s.commit(&staged, &m))
                    .await?
                    .map_err(|e| write_err(&meta, e))?;
                tracing::info!(snapshot = %meta.snapshot_id, kept, "built a snapshot");
                Ok(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(Vec::new())),
                })
            }
        }
    }
}

impl<R: Replica> RaftStateMachine<R::Config> for StateMachine<R> {
    type SnapshotBuilder = StateMachine<R>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, RaftPeer>), StorageError<u64>> {
        if let Slot::Disk(store) = &self.current {
            self.recover(store).await?;
        }
        Ok(self.replica.applied_state())
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<<R::Config as RaftTypeConfig>::R>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<R::Config>> + OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        // The log acknowledges appends before they are durable (see
        // `log_store`); nothing is applied before it is.
        if let Some(last) = entries.last() {
            self.log
                .wait_index(last.log_id.index)
                .await
                .map_err(|e| sm_err(e.to_string()))?;
        }
        // A few quick entries apply right here: the hop to a blocking
        // thread and back costs more than they do.
        if entries.len() <= QUICK_ENTRIES && entries.iter().all(|e| self.replica.applies_quickly(e))
        {
            return entries
                .into_iter()
                .map(|e| self.replica.apply_entry(e))
                .collect::<Result<Vec<_>, _>>()
                .map_err(sm_err);
        }
        self.blocking(move |r| {
            entries
                .into_iter()
                .map(|e| r.apply_entry(e))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Installs a received snapshot. On disk it is first stored durably, so
    /// that a crash while the replica replaces its state is repaired at the
    /// next start (see [`RaftStateMachine::applied_state`] here).
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = Arc::new(snapshot.into_inner());
        if let Slot::Disk(store) = &self.current {
            let (m, d) = (meta.clone(), data.clone());
            Self::on_store(store, move |s| s.save(&m, &d))
                .await?
                .map_err(|e| write_err(meta, e))?;
        }
        let (m, d) = (meta.clone(), data.clone());
        self.blocking(move |r| r.install_snapshot(&m, &d)).await?;
        tracing::info!(snapshot = %meta.snapshot_id, bytes = data.len(), "installed a snapshot");
        if let Slot::Memory(slot) = &self.current {
            let data = Arc::try_unwrap(data).unwrap_or_else(|d| (*d).clone());
            *lock(slot) = Some((meta.clone(), data));
        }
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<R::Config>>, StorageError<u64>> {
        let parts = match &self.current {
            Slot::Memory(m) => lock(m).clone(),
            Slot::Disk(store) => Self::on_store(store, |s| s.load())
                .await?
                .map_err(read_err)?,
        };
        Ok(parts.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
