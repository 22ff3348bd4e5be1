//! The one openraft state machine every Raft group uses, over a [`Replica`]
//! that knows how to apply an entry and take or install a full copy of
//! itself. The plumbing (applying on blocking threads, so SQLite commits
//! never stall the async workers; keeping the current snapshot) lives here
//! once; the main chain and each database only say what applying means.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, LogId, OptionalSend, RaftSnapshotBuilder, RaftTypeConfig, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};

use super::types::RaftPeer;

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

    /// Applies one committed entry (called on a blocking thread).
    fn apply_entry(
        &self,
        entry: Entry<Self::Config>,
    ) -> Result<<Self::Config as RaftTypeConfig>::R, String>;

    /// A full copy of the state with its metadata (called on a blocking thread).
    fn build_snapshot(&self) -> Result<SnapshotParts, String>;

    /// Replaces the state with a copy made by [`Replica::build_snapshot`].
    fn install_snapshot(
        &self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        data: &[u8],
    ) -> Result<(), String>;
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sm_err(e: String) -> StorageError<u64> {
    StorageIOError::write_state_machine(openraft::AnyError::error(e)).into()
}

/// The openraft state machine (and snapshot builder) over a [`Replica`].
pub struct StateMachine<R> {
    replica: Arc<R>,
    current: Arc<Mutex<Option<SnapshotParts>>>,
}

impl<R> Clone for StateMachine<R> {
    fn clone(&self) -> Self {
        StateMachine {
            replica: self.replica.clone(),
            current: self.current.clone(),
        }
    }
}

impl<R: Replica> StateMachine<R> {
    /// A state machine applying to `replica`.
    pub fn new(replica: Arc<R>) -> StateMachine<R> {
        StateMachine {
            replica,
            current: Arc::new(Mutex::new(None)),
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
}

impl<R: Replica> RaftSnapshotBuilder<R::Config> for StateMachine<R> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<R::Config>, StorageError<u64>> {
        let (meta, data) = self.blocking(|r| r.build_snapshot()).await?;
        *lock(&self.current) = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<R: Replica> RaftStateMachine<R::Config> for StateMachine<R> {
    type SnapshotBuilder = StateMachine<R>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, RaftPeer>), StorageError<u64>> {
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

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let (m, bytes) = (meta.clone(), data.clone());
        self.blocking(move |r| r.install_snapshot(&m, &bytes))
            .await?;
        *lock(&self.current) = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<R::Config>>, StorageError<u64>> {
        Ok(lock(&self.current).clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
