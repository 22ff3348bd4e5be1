//! An idle Raft group must stay small. openraft 0.9.25 gave every group an
//! engine command queue with room for 4096 commands (~640 KiB); the queue is
//! a ring, so within ~15 minutes of heartbeats all of it was written and
//! resident, and a miner hosting 300 idle databases grew by ~190 MB. The
//! workspace patches openraft (vendor/README.md); this test fails if a new
//! openraft version or a lost patch brings the large buffer back.

mod raft_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use covenant_core::consensus::LogStore;
use openraft::Raft;
use raft_support::{Cfg, NoNetwork, NoState};

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
