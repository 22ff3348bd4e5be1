//! The block producers' Raft group: its type configuration and the state
//! machine that applies committed blocks to [`ChainState`] and [`ChainStore`].
//!
//! The leader cuts a block from its applied state and proposes it as one log
//! entry; every replica applies it with `ChainState::apply_block`, which
//! refuses (identically everywhere) a block that does not extend the head —
//! e.g. a stale proposal from a deposed leader — so a committed log always
//! yields one chain. The applied position and membership are written in the
//! same SQLite transaction as the block, so a restart resumes exactly.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use openraft::{Entry, EntryPayload, LogId, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state_machine::{Replica, SnapshotParts, StateMachine};
use super::types::RaftPeer;
use crate::chain::{BpSet, ChainHead, ChainState, ChainStore, Genesis, TxReceipt};
use crate::codec::{self, Versioned};
use crate::hash::Hash;
use crate::types::Block;

/// A main-chain log entry: a block proposed by the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainChainCommand {
    /// Apply this block.
    Block(Block),
}

/// What applying a main-chain entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MainChainApplied {
    /// The block extended the chain.
    Applied {
        /// Its height.
        height: u64,
        /// Its hash.
        hash: Hash,
        /// One receipt per transaction.
        receipts: Vec<TxReceipt>,
    },
    /// The block was refused by every replica (it changed nothing).
    Rejected {
        /// Why.
        reason: String,
    },
}

openraft::declare_raft_types!(
    /// The main chain's Raft type configuration.
    pub MainChainRaft:
        D = MainChainCommand,
        R = MainChainApplied,
        NodeId = u64,
        Node = RaftPeer,
        Entry = Entry<MainChainRaft>,
        SnapshotData = Cursor<Vec<u8>>,
);

const META_APPLIED: &str = "raft_applied";
const META_MEMBERSHIP: &str = "raft_membership";

type Membership = StoredMembership<u64, RaftPeer>;

/// A full copy of the chain, used to bring a replica that fell behind a
/// purged log up to date.
#[derive(Serialize, Deserialize)]
struct ChainSnapshot {
    blocks: Vec<Block>,
    last_applied: Option<LogId<u64>>,
    membership: Membership,
}

impl Versioned for ChainSnapshot {
    const KIND: &'static str = "main-chain snapshot";
    const VERSION: u16 = 1;
}

struct Progress {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
}

/// The chain as a block producer holds it: state in memory, blocks on disk.
/// Shared between the Raft state machine and the services that read it.
pub struct ChainShared {
    genesis: Genesis,
    producers: BpSet,
    state: RwLock<ChainState>,
    store: Mutex<ChainStore>,
    progress: Mutex<Progress>,
    head_tx: watch::Sender<Option<ChainHead>>,
}

/// Why the chain could not be opened.
pub type OpenError = crate::chain::StoreError;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ChainShared {
    /// Opens `store` (committing `genesis` on first start) and loads the state.
    pub fn open(
        mut store: ChainStore,
        genesis: Genesis,
        producers: BpSet,
    ) -> Result<Arc<ChainShared>, OpenError> {
        let state = store.load_or_init(&genesis)?;
        let last_applied = match store.meta(META_APPLIED)? {
            Some(b) => codec::decode(&b).map_err(|e| crate::chain::StoreError::Corrupt {
                what: format!("raft applied position: {e}"),
            })?,
            None => None,
        };
        let membership = match store.meta(META_MEMBERSHIP)? {
            Some(b) => codec::decode(&b).map_err(|e| crate::chain::StoreError::Corrupt {
                what: format!("raft membership: {e}"),
            })?,
            None => Membership::default(),
        };
        let (head_tx, _) = watch::channel(state.head());
        Ok(Arc::new(ChainShared {
            genesis,
            producers,
            state: RwLock::new(state),
            store: Mutex::new(store),
            progress: Mutex::new(Progress {
                last_applied,
                membership,
            }),
            head_tx,
        }))
    }

    /// Read access to the applied state.
    pub fn state(&self) -> RwLockReadGuard<'_, ChainState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Access to the store (blocks, transaction index).
    pub fn store(&self) -> MutexGuard<'_, ChainStore> {
        lock(&self.store)
    }

    /// The block producer set that may sign blocks.
    pub fn producers(&self) -> &BpSet {
        &self.producers
    }

    /// The head, updated after every applied block.
    pub fn subscribe_head(&self) -> watch::Receiver<Option<ChainHead>> {
        self.head_tx.subscribe()
    }

    fn apply_entry(&self, entry: Entry<MainChainRaft>) -> Result<MainChainApplied, String> {
        let log_id = entry.log_id;
        let mut progress = lock(&self.progress);
        progress.last_applied = Some(log_id);
        let response = match entry.payload {
            EntryPayload::Blank => None,
            EntryPayload::Membership(m) => {
                progress.membership = StoredMembership::new(Some(log_id), m);
                None
            }
            EntryPayload::Normal(MainChainCommand::Block(block)) => Some(block),
        };
        let applied = codec::encode(&progress.last_applied).map_err(|e| e.to_string())?;
        let membership = codec::encode(&progress.membership).map_err(|e| e.to_string())?;
        let meta: [(&str, &[u8]); 2] = [(META_APPLIED, &applied), (META_MEMBERSHIP, &membership)];
        let Some(block) = response else {
            self.store().put_meta(&meta).map_err(|e| e.to_string())?;
            return Ok(MainChainApplied::Rejected {
                reason: "no block in this entry".into(),
            });
        };
        // apply_block is all-or-nothing on error; a failed disk commit after a
        // successful apply is fatal to this replica (openraft stops it), so the
        // in-memory state never outlives a divergence from the store.
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match state.apply_block(&block, &self.producers) {
            Ok(outcome) => {
                self.store()
                    .commit_block_with_meta(&block, &outcome, &meta)
                    .map_err(|e| e.to_string())?;
                let head = state.head();
                drop(state);
                self.head_tx.send_replace(head);
                let hash = block.hash().map_err(|e| e.to_string())?;
                Ok(MainChainApplied::Applied {
                    height: block.header.height,
                    hash,
                    receipts: outcome.receipts,
                })
            }
            Err(e) => {
                self.store().put_meta(&meta).map_err(|e| e.to_string())?;
                tracing::warn!(height = block.header.height, error = %e, "refused a committed block");
                Ok(MainChainApplied::Rejected {
                    reason: e.to_string(),
                })
            }
        }
    }

    fn build_snapshot(&self) -> Result<SnapshotParts, String> {
        let progress = lock(&self.progress);
        let store = self.store();
        let head = store.head().map_err(|e| e.to_string())?;
        let mut blocks = Vec::new();
        if let Some(head) = head {
            for h in 0..=head.height {
                match store.block_by_height(h).map_err(|e| e.to_string())? {
                    Some(b) => blocks.push(b),
                    None => return Err(format!("block {h} missing from the chain store")),
                }
            }
        }
        let snap = ChainSnapshot {
            blocks,
            last_applied: progress.last_applied,
            membership: progress.membership.clone(),
        };
        let data = codec::encode_versioned(&snap).map_err(|e| e.to_string())?;
        let meta = SnapshotMeta {
            last_log_id: progress.last_applied,
            last_membership: progress.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                progress.last_applied.map(|l| l.index).unwrap_or(0),
                head.map(|h| h.hash.to_hex()).unwrap_or_default()
            ),
        };
        Ok((meta, data))
    }

    fn install(&self, data: &[u8]) -> Result<(), String> {
        let snap: ChainSnapshot = codec::decode_versioned(data).map_err(|e| e.to_string())?;
        let (mut state, genesis_block) =
            ChainState::genesis(&self.genesis).map_err(|e| e.to_string())?;
        let mut blocks = snap.blocks.into_iter();
        match blocks.next() {
            Some(b0) if b0.hash().ok() == genesis_block.hash().ok() => {}
            _ => return Err("snapshot starts from another genesis block".into()),
        }
        let applied = codec::encode(&snap.last_applied).map_err(|e| e.to_string())?;
        let membership = codec::encode(&snap.membership).map_err(|e| e.to_string())?;
        let mut store = self.store();
        store.reset().map_err(|e| e.to_string())?;
        store
            .commit_genesis(&genesis_block, &state)
            .map_err(|e| e.to_string())?;
        for block in blocks {
            let outcome = state
                .apply_block(&block, &self.producers)
                .map_err(|e| format!("snapshot block {}: {e}", block.header.height))?;
            store
                .commit_block(&block, &outcome)
                .map_err(|e| e.to_string())?;
        }
        store
            .put_meta(&[(META_APPLIED, &applied), (META_MEMBERSHIP, &membership)])
            .map_err(|e| e.to_string())?;
        drop(store);
        let head = state.head();
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = state;
        *lock(&self.progress) = Progress {
            last_applied: snap.last_applied,
            membership: snap.membership,
        };
        self.head_tx.send_replace(head);
        Ok(())
    }
}

/// The openraft state machine of the main chain.
pub type MainChainStateMachine = StateMachine<ChainShared>;

impl Replica for ChainShared {
    type Config = MainChainRaft;

    fn applied_state(&self) -> (Option<LogId<u64>>, Membership) {
        let p = lock(&self.progress);
        (p.last_applied, p.membership.clone())
    }

    fn apply_entry(&self, entry: Entry<MainChainRaft>) -> Result<MainChainApplied, String> {
        ChainShared::apply_entry(self, entry)
    }

    fn build_snapshot(&self) -> Result<SnapshotParts, String> {
        ChainShared::build_snapshot(self)
    }

    fn install_snapshot(
        &self,
        _meta: &SnapshotMeta<u64, RaftPeer>,
        data: &[u8],
    ) -> Result<(), String> {
        self.install(data)
    }
}
