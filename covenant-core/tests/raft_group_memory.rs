//! An idle Raft group must stay small. openraft 0.9.25 gave every group an
//! engine command queue with room for 4096 commands (~640 KiB); the queue is
//! a ring, so within ~15 minutes of heartbeats all of it was written and
//! resident, and a miner hosting 300 idle databases grew by ~190 MB. The
//! workspace patches openraft (vendor/README.md); this test fails if a new
//! openraft version or a lost patch brings the large buffer back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Cursor;
use std::sync::Arc;

use covenant_core::consensus::LogStore;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, LogId, OptionalSend, Raft, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership,
};

openraft::declare_raft_types!(
    Cfg:
        D = u64,
        R = u64,
);

/// The largest single allocation a group may make when it is created.
const LIMIT: usize = 64 << 10;

#[test]
fn a_new_group_allocates_no_large_buffer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = LogStore::<Cfg>::open(&dir.path().join("raft.db")).unwrap();
    let config = Arc::new(openraft::Config::default().validate().unwrap());

    LARGEST.with(|c| c.set(0));
    let raft = rt
        .block_on(Raft::<Cfg>::new(1, config, NoNetwork, log, NoState))
        .unwrap();
    let largest = LARGEST.with(Cell::get);
    rt.block_on(raft.shutdown()).unwrap();

    assert!(
        largest < LIMIT,
        "creating a Raft group made a {largest}-byte allocation (limit {LIMIT}); \
         is openraft's engine command queue patched (vendor/README.md)?"
    );
}

thread_local! {
    /// The largest allocation this thread has asked for since it was reset.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, noting each thread's largest request.
struct Tracking;

#[global_allocator]
static ALLOC: Tracking = Tracking;

fn note(size: usize) {
    // Threads being torn down have no thread-locals left; skip them.
    let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
}

// SAFETY: every call is passed unchanged to `System`.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// A network no peer answers on; the single, uninitialized node never calls it.
struct NoNetwork;

impl RaftNetworkFactory<Cfg> for NoNetwork {
    type Network = NoNetwork;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> NoNetwork {
        NoNetwork
    }
}

fn unreachable<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error(
        "no network in this test",
    )))
}

impl RaftNetwork<Cfg> for NoNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<Cfg>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

/// An empty state machine: the group is never initialized, so nothing applies.
struct NoState;

impl RaftSnapshotBuilder<Cfg> for NoState {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Cfg>, StorageError<u64>> {
        Ok(Snapshot {
            meta: SnapshotMeta::default(),
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

impl RaftStateMachine<Cfg> for NoState {
    type SnapshotBuilder = NoState;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        Ok((None, StoredMembership::default()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Cfg>> + OptionalSend,
    {
        Ok(entries.into_iter().map(|_| 0).collect())
    }

    async fn get_snapshot_builder(&mut self) -> NoState {
        NoState
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<u64, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<Cfg>>, StorageError<u64>> {
        Ok(None)
    }
}
