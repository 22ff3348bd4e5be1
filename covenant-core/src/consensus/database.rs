//! One database's Raft group: its type configuration and the state machine
//! that executes replicated writes and seals blocks (DESIGN §5).
//!
//! Log entries are signed client writes stamped by the leader with a time
//! and a random seed, and blocks sealed by the leader. Applying a write runs
//! it on the replica's SQLite file and records it as pending in the same
//! SQLite transaction; applying a block checks that it seals exactly the
//! oldest pending writes and extends the head, then stores it. Every replica
//! therefore holds the same rows and the same chain. Nothing here decides
//! *whether* a request is allowed: the miner checks signatures, time and
//! permissions before proposing.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::{Entry, EntryPayload, LogId, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::open_marker::{self, LastRun};
use super::state_machine::{Replica, SnapshotParts, StateMachine};
use super::types::RaftPeer;
use crate::codec::{self, CodecError};
use crate::crypto::{Address, NodeId, PrivateKey, PublicKey, Signature};
use crate::hash::Hash;
use crate::sqlchain::block::{
    self, BlockEntry, SQL_BLOCK_VERSION, SqlBlock, SqlBlockHeader, Stamp,
};
use crate::sqlchain::executor::{
    BatchItem, Batched, Dump, Executor, ExecutorOptions, FileDurability, Reader, SqlError, WriteEnv,
};
use crate::sqlchain::ledger;
use crate::sqlchain::query::{Query, QueryResult};
use crate::sqlchain::request::{Outcome, SignedRequest};
use crate::types::DatabaseId;

/// A client's signed write with the leader's stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StampedWrite {
    /// The client's request.
    pub request: SignedRequest,
    /// Time and seed every replica uses.
    pub stamp: Stamp,
}

/// A database log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DbCommand {
    /// Execute client writes, in order, each atomic on its own; the leader
    /// batches the writes that arrive together into one entry.
    Writes(Vec<StampedWrite>),
    /// Store a block sealed by the leader (count 0 is the genesis block).
    Seal(Box<SealProposal>),
}

/// A block as the leader proposes it through the log: its writes are the
/// oldest pending writes, which every replica already holds, so only their
/// number travels (an entry stays small however large the block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealProposal {
    /// The signed header.
    pub header: SqlBlockHeader,
    /// The producer's public key.
    pub producer_key: PublicKey,
    /// The producer's signature over the header hash.
    pub signature: Signature,
    /// How many of the oldest pending writes the block seals.
    pub writes: u64,
    /// The reads the leader answered (only the leader holds them).
    pub reads: Vec<BlockEntry>,
}

impl SealProposal {
    /// The proposal for `block`.
    pub fn of(block: SqlBlock) -> SealProposal {
        SealProposal {
            header: block.header,
            producer_key: block.producer_key,
            signature: block.signature,
            writes: block.writes.len() as u64,
            reads: block.reads,
        }
    }

    /// Builds and signs the proposal of the block sealing the oldest pending
    /// writes, whose leaves are `write_leaves` (see
    /// [`DatabaseShared::pending_leaves`]), and `reads`: the same header and
    /// signature as [`SqlBlock::seal`] over those entries, without them.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        database: DatabaseId,
        count: u64,
        height: u64,
        parent: Hash,
        timestamp: u64,
        write_leaves: &[Hash],
        reads: Vec<BlockEntry>,
        producer: NodeId,
        key: &PrivateKey,
    ) -> Result<SealProposal, CodecError> {
        let header = SqlBlockHeader {
            version: SQL_BLOCK_VERSION,
            database,
            count,
            height,
            parent,
            merkle_root: block::merkle_root(write_leaves, &reads)?,
            timestamp,
            producer,
        };
        Ok(SealProposal {
            signature: key.sign(&header.hash()?),
            producer_key: key.public_key(),
            header,
            writes: write_leaves.len() as u64,
            reads,
        })
    }
}

/// What applying a database entry produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DbApplied {
    /// Each write ran (or failed as a whole) with this outcome, in order.
    Writes(Vec<Outcome>),
    /// The block was stored.
    Sealed {
        /// Its number.
        count: u64,
        /// Its hash.
        hash: Hash,
    },
    /// The entry was refused identically by every replica; nothing changed.
    Refused(String),
}

openraft::declare_raft_types!(
    /// A database group's Raft type configuration.
    pub DatabaseRaft:
        D = DbCommand,
        R = DbApplied,
        NodeId = u64,
        Node = RaftPeer,
        Entry = Entry<DatabaseRaft>,
        SnapshotData = Cursor<Vec<u8>>,
);

const META_APPLIED: &str = "raft_applied";
const META_MEMBERSHIP: &str = "raft_membership";

type Membership = StoredMembership<u64, RaftPeer>;

/// The head of a database's chain, as metrics and clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHeadInfo {
    /// Block number.
    pub count: u64,
    /// Period number.
    pub height: u64,
    /// Block hash.
    pub hash: Hash,
    /// Seal time (ms).
    pub timestamp: u64,
}

/// Rows a user read and changed since the last bill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Rows returned by reads.
    pub rows_read: u64,
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
}

struct Progress {
    last_applied: Option<LogId<u64>>,
    membership: Membership,
}

/// Why a database replica could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The SQLite file could not be opened or written.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A snapshot could not be taken or installed.
    #[error("snapshot of {path}: {reason}")]
    Snapshot {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The replica was closed while installing a snapshot that failed.
    #[error("the database replica is closed after a failed snapshot install")]
    Closed,
    /// The marker that says the replica's file is open could not be read or written.
    #[error("{path}: cannot record that the replica is open or closed: {source}")]
    OpenMarker {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The hidden chain tables failed.
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    /// A stored value did not encode or decode.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

impl DatabaseError {
    /// The stable code of this error.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            DatabaseError::Sql(e) => e.code(),
            DatabaseError::Ledger(e) => e.code(),
            DatabaseError::Codec(e) => e.code(),
            DatabaseError::Snapshot { .. }
            | DatabaseError::Closed
            | DatabaseError::OpenMarker { .. } => crate::ErrorCode::Storage,
        }
    }
}

/// A database replica: its SQLite file (data and chain), shared by the Raft
/// state machine and the miner's query service.
pub struct DatabaseShared {
    id: DatabaseId,
    path: PathBuf,
    exec: Mutex<Option<Writer>>,
    reader: Mutex<Option<Reader>>,
    progress: Mutex<Progress>,
    head_tx: watch::Sender<Option<ChainHeadInfo>>,
    reads: Mutex<Vec<BlockEntry>>,
    usage: Mutex<BTreeMap<Address, Usage>>,
    audit: Mutex<Option<std::sync::mpsc::Sender<AuditBatch>>>,
    /// How long the last apply took (µs): the guess whether the next is quick.
    last_apply_us: AtomicU64,
    /// Sealed blocks refused since the last one accepted.
    refusals: Mutex<Option<SealRefusals>>,
}

/// Blocks a replica refused in a row, with the last reason: one refusal
/// happens to every replica alike (a leader that lost a race to seal), but
/// while a replica and its leader hold different chains, every block the
/// leader seals is refused, so a run of them means the two diverged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealRefusals {
    /// Blocks refused since the last one accepted.
    pub in_a_row: u64,
    /// The number (`count`) of the last refused block.
    pub count: u64,
    /// Why the last one was refused.
    pub reason: String,
}

/// Most writes in an entry applied on an async worker (see [`Replica::applies_quickly`]).
const QUICK_WRITES: usize = 64;
/// An apply that took longer sends the next ones to a blocking thread
/// until one is quick again.
const QUICK_APPLY_US: u64 = 2_000;

/// The replica's writer: its executor and the in-memory index of the
/// pending writes its file holds, kept together so that they change together.
struct Writer {
    exec: Executor,
    pending: ledger::PendingIndex,
}

impl Writer {
    /// Opens the file at `path` for writing, with its chain tables, and the
    /// replica's recorded progress and head.
    fn open(path: &Path) -> Result<(Writer, Progress, Option<SqlBlock>), DatabaseError> {
        // The file is rebuildable: the Raft log (fsynced before any apply)
        // and the stored snapshot hold everything it does (`open_marker`).
        let options = ExecutorOptions {
            durability: FileDurability::Rebuildable,
            ..Default::default()
        };
        let mut exec = Executor::open_with(path, options)?;
        let (pending, progress, head) = exec.with_connection(|conn| {
            ledger::init(conn)?;
            Ok::<_, DatabaseError>((
                ledger::PendingIndex::load(conn)?,
                stored_progress(conn)?,
                ledger::head(conn)?,
            ))
        })?;
        Ok((Writer { exec, pending }, progress, head))
    }
}

/// Writes a replica applied, handed to the miner's background signature
/// audit (DESIGN §5: followers check signatures off the commit path).
#[derive(Debug)]
pub struct AuditBatch {
    /// The database.
    pub database: DatabaseId,
    /// The log index of the entry that held them.
    pub index: u64,
    /// The signed requests, in order, each with its id when this replica
    /// computed it from the same body while applying.
    pub requests: Vec<(SignedRequest, Option<Hash>)>,
    /// When the replica applied them: how far behind the audit runs.
    pub applied_at: std::time::Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn head_info(block: &SqlBlock) -> Option<ChainHeadInfo> {
    Some(ChainHeadInfo {
        count: block.header.count,
        height: block.header.height,
        hash: block.hash().ok()?,
        timestamp: block.header.timestamp,
    })
}

impl DatabaseShared {
    /// Opens (creating) the replica's file at `path`. If the machine went
    /// down while a previous run had it open, the file may be torn
    /// (`open_marker`): it is discarded, and the state machine restores the
    /// stored snapshot and replays the log after it at startup.
    pub fn open(id: DatabaseId, path: &Path) -> Result<Arc<DatabaseShared>, DatabaseError> {
        let marker_err = |source| DatabaseError::OpenMarker {
            path: path.to_path_buf(),
            source,
        };
        if open_marker::last_run(path).map_err(marker_err)? == LastRun::MachineDown {
            tracing::warn!(
                database = %id.to_hex(),
                path = %path.display(),
                "the machine went down while this replica was open; rebuilding it from its snapshot and Raft log"
            );
            discard_file(path).map_err(marker_err)?;
        }
        // Only now: a crash before this line must find the old marker again.
        open_marker::mark_open(path).map_err(marker_err)?;
        let (writer, progress, head) = Writer::open(path)?;
        let reader = writer.exec.reader()?;
        let (head_tx, _) = watch::channel(head.as_ref().and_then(head_info));
        Ok(Arc::new(DatabaseShared {
            id,
            path: path.to_path_buf(),
            exec: Mutex::new(Some(writer)),
            reader: Mutex::new(Some(reader)),
            progress: Mutex::new(progress),
            head_tx,
            reads: Mutex::new(Vec::new()),
            usage: Mutex::new(BTreeMap::new()),
            audit: Mutex::new(None),
            last_apply_us: AtomicU64::new(0),
            refusals: Mutex::new(None),
        }))
    }

    /// Closes the replica's file durably (checkpointed and fsynced) and
    /// records the clean close, so the next start trusts the file whatever
    /// happens to the machine meanwhile. Applies fail afterwards.
    pub fn close(&self) -> Result<(), DatabaseError> {
        lock(&self.reader).take();
        let Some(writer) = lock(&self.exec).take() else {
            return Ok(());
        };
        writer.exec.close()?;
        open_marker::mark_closed(&self.path).map_err(|source| DatabaseError::OpenMarker {
            path: self.path.clone(),
            source,
        })
    }

    /// Sends every applied write to `audit` from now on.
    pub fn set_audit(&self, audit: std::sync::mpsc::Sender<AuditBatch>) {
        *lock(&self.audit) = Some(audit);
    }

    /// The database id.
    pub fn id(&self) -> DatabaseId {
        self.id
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head, updated after every sealed block.
    pub fn head(&self) -> Option<ChainHeadInfo> {
        *self.head_tx.borrow()
    }

    /// The sealed blocks this replica refused since it last accepted one
    /// (or installed a snapshot); `None` when it accepted the last.
    pub fn seal_refusals(&self) -> Option<SealRefusals> {
        lock(&self.refusals).clone()
    }

    /// Follows the head.
    pub fn subscribe_head(&self) -> watch::Receiver<Option<ChainHeadInfo>> {
        self.head_tx.subscribe()
    }

    /// Runs `f` on the writer; an error if a failed snapshot install closed it.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, DatabaseError>,
    ) -> Result<T, DatabaseError> {
        match lock(&self.exec).as_mut() {
            Some(w) => f(w),
            None => Err(DatabaseError::Closed),
        }
    }

    /// Runs `f` on the writer's executor (see [`Self::with_writer`]).
    fn with_exec<T>(
        &self,
        f: impl FnOnce(&mut Executor) -> Result<T, DatabaseError>,
    ) -> Result<T, DatabaseError> {
        self.with_writer(|w| f(&mut w.exec))
    }

    /// Runs read-only `queries` on this replica (a read connection, so reads
    /// do not wait for the writer).
    pub fn read(&self, queries: &[Query]) -> Result<Vec<QueryResult>, SqlError> {
        match lock(&self.reader).as_ref() {
            Some(r) => r.read(queries),
            None => Err(SqlError::Storage {
                op: "read",
                message: "the replica is closed".into(),
            }),
        }
    }

    /// Records a read answered here, for the next block and the bill.
    pub fn record_read(&self, entry: BlockEntry, rows: u64) {
        let user = entry.request.body.user;
        lock(&self.reads).push(entry);
        lock(&self.usage).entry(user).or_default().rows_read += rows;
    }

    /// Reads recorded since the last block, for sealing.
    pub fn take_reads(&self) -> Vec<BlockEntry> {
        std::mem::take(&mut *lock(&self.reads))
    }

    /// Puts back reads that a failed seal did not record.
    pub fn restore_reads(&self, mut reads: Vec<BlockEntry>) {
        let mut r = lock(&self.reads);
        reads.append(&mut r);
        *r = reads;
    }

    /// Usage since the last bill, emptied.
    pub fn take_usage(&self) -> BTreeMap<Address, Usage> {
        std::mem::take(&mut *lock(&self.usage))
    }

    /// Applied writes not yet sealed (decodes them all: prefer
    /// [`Self::pending_len`] or [`Self::pending_leaves`]).
    pub fn pending(&self) -> Result<Vec<BlockEntry>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(ledger::pending)?))
    }

    /// How many applied writes are not yet sealed.
    pub fn pending_len(&self) -> Result<u64, DatabaseError> {
        self.with_writer(|w| Ok(w.pending.len() as u64))
    }

    /// The merkle leaves and sizes of the unsealed writes, oldest first:
    /// what the leader needs to seal them.
    pub fn pending_leaves(&self) -> Result<Vec<ledger::PendingLeaf>, DatabaseError> {
        self.with_writer(|w| Ok(w.pending.leaves(None)))
    }

    /// The block numbered `count`.
    pub fn block(&self, count: u64) -> Result<Option<SqlBlock>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::block_by_count(c, count))?))
    }

    /// The block with `hash`.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<SqlBlock>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::block_by_hash(c, hash))?))
    }

    /// Where the request `key` names was recorded: (block number, position).
    pub fn locate(&self, key: &ledger::RequestKey) -> Result<Option<(u64, u64)>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::locate(c, key))?))
    }

    /// Every user table's rows, for comparing replicas.
    pub fn dump(&self) -> Result<Dump, DatabaseError> {
        self.with_exec(|e| Ok(e.dump()?))
    }

    fn apply_entry(&self, entry: Entry<DatabaseRaft>) -> Result<DbApplied, String> {
        let log_id = entry.log_id;
        let mut progress = lock(&self.progress);
        progress.last_applied = Some(log_id);
        let command = match entry.payload {
            EntryPayload::Blank => None,
            EntryPayload::Membership(m) => {
                progress.membership = StoredMembership::new(Some(log_id), m);
                None
            }
            EntryPayload::Normal(c) => Some(c),
        };
        // The applied log id is stored with every entry, in its transaction;
        // the membership only when this entry changed it.
        let applied = codec::encode(&progress.last_applied).map_err(|e| e.to_string())?;
        let membership = match command {
            None if progress.membership.log_id() == &Some(log_id) => {
                Some(codec::encode(&progress.membership).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        let record_progress = |conn: &rusqlite::Connection| -> Result<(), DatabaseError> {
            ledger::put_meta(conn, META_APPLIED, &applied)?;
            if let Some(m) = &membership {
                ledger::put_meta(conn, META_MEMBERSHIP, m)?;
            }
            Ok(())
        };
        let mut guard = lock(&self.exec);
        let Writer { exec, pending } = guard.as_mut().ok_or("the replica is closed")?;
        match command {
            None => {
                exec.transaction(record_progress)
                    .map_err(|e| e.to_string())?;
                Ok(DbApplied::Refused("no command in this entry".into()))
            }
            Some(DbCommand::Writes(writes)) => {
                // The pending list holds only this database's writes (sealing
                // relies on it): a write for another database, which only a
                // faulty leader proposes, fails here on every replica alike
                // (its body is not even encoded).
                let bodies = writes
                    .iter()
                    .map(|w| {
                        (w.request.body.database == self.id)
                            .then(|| ledger::EncodedBody::of(&w.request))
                            .transpose()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                // Each with whether it repeats a request earlier in the entry.
                let mut in_entry = std::collections::HashSet::new();
                let own: Vec<(&StampedWrite, &ledger::EncodedBody, bool)> = writes
                    .iter()
                    .zip(&bodies)
                    .filter_map(|(w, b)| b.as_ref().map(|b| (w, b, !in_entry.insert(*b.id()))))
                    .collect();
                let items: Vec<BatchItem<'_>> = own
                    .iter()
                    .map(|(w, _, _)| BatchItem {
                        queries: &w.request.body.queries,
                        env: WriteEnv {
                            timestamp_ms: w.stamp.timestamp_ms,
                            seed: w.stamp.seed,
                        },
                    })
                    .collect();
                let at_position = |i: usize| {
                    own.get(i).copied().ok_or_else(|| SqlError::Storage {
                        op: "record",
                        message: format!("no write at batch position {i}"),
                    })
                };
                let done = exec
                    .write_batch_admitting(
                        &items,
                        // A signed request applies at most once: a replay of
                        // one already applied (sealed, pending, or earlier in
                        // this entry, which the batch has recorded as pending
                        // by now) fails alike on every replica and is not
                        // recorded. Asked in the batch's transaction, so the
                        // check costs no transaction of its own.
                        |i, conn| -> Result<Result<(), Duplicate>, DatabaseError> {
                            let (w, body, repeat) = at_position(i)?;
                            let id = *body.id();
                            let key = ledger::RequestKey::of(&w.request, id);
                            let at = match ledger::applied_at(conn, pending, &key)? {
                                Some(at) => at,
                                None if repeat => ledger::AppliedAt::Pending,
                                None => return Ok(Ok(())),
                            };
                            let first = ledger::recorded_outcome(conn, pending, &id, at)?;
                            Ok(Err(Duplicate(id, at, first)))
                        },
                        |i, conn, result| -> Result<(Outcome, ledger::PendingRow), DatabaseError> {
                            let o = match result {
                                Ok(results) => Outcome::Ok(results.clone()),
                                Err(e) => Outcome::Failed {
                                    code: e.code().as_u32(),
                                    message: e.to_string(),
                                },
                            };
                            let (w, body, _) = at_position(i)?;
                            let encoded = codec::encode(&o)?;
                            let row = ledger::push_pending(
                                conn,
                                &w.request,
                                body,
                                &Outcome::digest_of(&encoded),
                                Some(w.stamp),
                                Some(&encoded),
                            )?;
                            Ok((o, row))
                        },
                        record_progress,
                    )
                    .map_err(|e| e.to_string())?;
                // Committed: the writes that ran are pending now, in order.
                for ((_, body, _), d) in own.iter().zip(&done) {
                    if let Batched::Ran(_, (_, row)) = d {
                        pending.push(*body.id(), *row);
                    }
                }
                drop(guard);
                drop(progress);
                let mut done = done.into_iter();
                let outcomes: Vec<Outcome> = writes
                    .iter()
                    .zip(&bodies)
                    .map(|(w, body)| match body.as_ref().map(|_| done.next()) {
                        None => Outcome::Failed {
                            code: crate::ErrorCode::InvalidArgument.as_u32(),
                            message: format!(
                                "the request is for another database ({}), not {}",
                                w.request.body.database.to_hex(),
                                self.id.to_hex()
                            ),
                        },
                        Some(Some(Batched::Ran(_, (o, _)))) => o,
                        // A resend is answered with the outcome the request had.
                        Some(Some(Batched::Refused(Duplicate(_, _, Some(first))))) => first,
                        Some(Some(Batched::Refused(Duplicate(id, at, None)))) => Outcome::Failed {
                            code: crate::ErrorCode::DuplicateRequest.as_u32(),
                            message: format!(
                                "request {} was already applied ({}); a signed request applies at most once: sign a new one to write again",
                                id.to_hex(),
                                match at {
                                    ledger::AppliedAt::Block { count, idx } =>
                                        format!("block {count}, write {idx}"),
                                    ledger::AppliedAt::Pending => "it goes into the next block".into(),
                                }
                            ),
                        },
                        Some(None) => Outcome::Failed {
                            code: crate::ErrorCode::Storage.as_u32(),
                            message: "the write produced no outcome".into(),
                        },
                    })
                    .collect();
                {
                    let mut usage = lock(&self.usage);
                    for (w, o) in writes.iter().zip(&outcomes) {
                        if let Outcome::Ok(results) = o {
                            let affected: u64 = results.iter().map(|r| r.affected_rows).sum();
                            usage.entry(w.request.body.user).or_default().rows_affected += affected;
                        }
                    }
                }
                if let Some(audit) = lock(&self.audit).as_ref() {
                    let _ = audit.send(AuditBatch {
                        applied_at: std::time::Instant::now(),
                        database: self.id,
                        index: log_id.index,
                        requests: writes
                            .into_iter()
                            .zip(&bodies)
                            .map(|(w, b)| (w.request, b.as_ref().map(|b| *b.id())))
                            .collect(),
                    });
                }
                Ok(DbApplied::Writes(outcomes))
            }
            Some(DbCommand::Seal(proposal)) => {
                // Fewer than it claims is refused by `check_seal`.
                let sealed = pending.oldest(proposal.writes);
                let result = exec
                    .transaction(|conn| -> Result<DbApplied, DatabaseError> {
                        let result = match check_seal(conn, pending, &self.id, &proposal)? {
                            Ok(hash) => {
                                ledger::append_sealed(
                                    conn,
                                    ledger::SealedParts {
                                        header: &proposal.header,
                                        producer_key: &proposal.producer_key,
                                        signature: &proposal.signature,
                                        hash: &hash,
                                        writes: &sealed,
                                        reads: &proposal.reads,
                                    },
                                )?;
                                DbApplied::Sealed {
                                    count: proposal.header.count,
                                    hash,
                                }
                            }
                            Err(reason) => DbApplied::Refused(reason),
                        };
                        record_progress(conn)?;
                        Ok(result)
                    })
                    .map_err(|e| e.to_string())?;
                if let DbApplied::Sealed { .. } = result {
                    pending.seal(proposal.writes);
                }
                match &result {
                    DbApplied::Sealed { count, hash } => {
                        *lock(&self.refusals) = None;
                        self.head_tx.send_replace(Some(ChainHeadInfo {
                            count: *count,
                            height: proposal.header.height,
                            hash: *hash,
                            timestamp: proposal.header.timestamp,
                        }));
                        if let Some(audit) = lock(&self.audit).as_ref()
                            && !proposal.reads.is_empty()
                        {
                            let _ = audit.send(AuditBatch {
                                applied_at: std::time::Instant::now(),
                                database: self.id,
                                index: log_id.index,
                                requests: proposal
                                    .reads
                                    .into_iter()
                                    .map(|e| (e.request, None))
                                    .collect(),
                            });
                        }
                    }
                    DbApplied::Refused(reason) => {
                        let count = proposal.header.count;
                        let mut refusals = lock(&self.refusals);
                        let in_a_row = refusals.as_ref().map_or(0, |r| r.in_a_row) + 1;
                        tracing::warn!(database = %self.id.to_hex(), count, in_a_row, %reason, "refused a sealed block");
                        *refusals = Some(SealRefusals {
                            in_a_row,
                            count,
                            reason: reason.clone(),
                        });
                    }
                    DbApplied::Writes(_) => {}
                }
                Ok(result)
            }
        }
    }
}

impl DatabaseShared {
    fn snapshot_err(&self, reason: impl std::fmt::Display) -> DatabaseError {
        DatabaseError::Snapshot {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Writes a consistent copy of the whole file to the new file `out`
    /// from a read connection of its own, without holding the writer (WAL
    /// readers see one committed state while applies go on), and returns
    /// the applied state the copy holds. The replica's own file need not be
    /// durable: after a machine crash it is rebuilt from the stored
    /// snapshot, which covers every log entry a purge drops (`open_marker`).
    fn copy_into(&self, out: &Path) -> Result<Progress, DatabaseError> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let source = rusqlite::Connection::open_with_flags(&self.path, flags)
            .map_err(|e| self.snapshot_err(e))?;
        source
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| self.snapshot_err(e))?;
        let target = out.to_string_lossy().replace('\'', "''");
        source
            .execute_batch(&format!("VACUUM INTO '{target}'"))
            .map_err(|e| self.snapshot_err(e))?;
        drop(source);
        let copy =
            rusqlite::Connection::open_with_flags(out, flags).map_err(|e| self.snapshot_err(e))?;
        stored_progress(&copy)
    }

    /// A consistent copy of the whole file (data and chain) and the applied state it holds.
    fn snapshot_bytes(&self) -> Result<(Progress, Vec<u8>), DatabaseError> {
        let tmp = self.path.with_extension("snapshot-out");
        let _ = std::fs::remove_file(&tmp);
        let progress = self.copy_into(&tmp)?;
        let bytes = std::fs::read(&tmp).map_err(|e| self.snapshot_err(e))?;
        let _ = std::fs::remove_file(&tmp);
        Ok((progress, bytes))
    }

    /// Replaces the whole file with a snapshot taken by [`Self::snapshot_bytes`],
    /// atomically and durably: the snapshot is written beside the file and
    /// fsynced; the old replica is checkpointed and closed (so its file is
    /// complete without its WAL); the WAL and shared-memory files are
    /// removed; the snapshot is renamed over the file and the directory
    /// fsynced. A crash before the rename leaves the old replica, after it
    /// the new one; never a mix. (A crash between removing the old WAL and
    /// the rename, if the checkpoint failed, could lose the old file's last
    /// commits: the state machine stores the snapshot durably before
    /// installing it and restores it at startup, which covers that case.)
    fn restore_bytes(&self, bytes: &[u8]) -> Result<(), DatabaseError> {
        let tmp = self.path.with_extension("snapshot-in");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        };
        write().map_err(|e| self.snapshot_err(format!("write {}: {e}", tmp.display())))?;
        let mut exec = lock(&self.exec);
        let mut reader = lock(&self.reader);
        reader.take();
        if let Some(old) = exec.take()
            && let Err(e) = old.exec.close()
        {
            tracing::warn!(database = %self.id.to_hex(), error = %e, "closing the replica before a snapshot install failed");
        }
        // An old WAL left beside the new file would be replayed into it.
        remove_files(&self.path, &["-wal", "-shm"]).map_err(|e| self.snapshot_err(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.snapshot_err(e))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::state_machine::sync_dir(dir).map_err(|e| self.snapshot_err(e))?;
        }
        let (new, _, _) = Writer::open(&self.path)?;
        *reader = Some(new.exec.reader()?);
        *exec = Some(new);
        Ok(())
    }
}

/// Removes a replica's file with its WAL and shared-memory files.
fn discard_file(path: &Path) -> std::io::Result<()> {
    remove_files(path, &["", "-wal", "-shm"])
}

/// Removes `path` followed by each suffix (`""`: `path` itself); missing ones are fine.
fn remove_files(path: &Path, suffixes: &[&str]) -> std::io::Result<()> {
    for suffix in suffixes {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The applied state recorded in a replica's file (with each apply, in its transaction).
fn stored_progress(conn: &rusqlite::Connection) -> Result<Progress, DatabaseError> {
    let last_applied = match ledger::get_meta(conn, META_APPLIED)? {
        Some(b) => codec::decode(&b)?,
        None => None,
    };
    let membership = match ledger::get_meta(conn, META_MEMBERSHIP)? {
        Some(b) => codec::decode(&b)?,
        None => Membership::default(),
    };
    Ok(Progress {
        last_applied,
        membership,
    })
}

/// The metadata of a snapshot of the state `progress` describes.
fn snapshot_meta(progress: &Progress, len: u64) -> SnapshotMeta<u64, RaftPeer> {
    SnapshotMeta {
        last_log_id: progress.last_applied,
        last_membership: progress.membership.clone(),
        snapshot_id: format!(
            "{}-{}",
            progress.last_applied.map(|l| l.index).unwrap_or(0),
            len
        ),
    }
}

/// The hash of the block `proposal` describes, if it may be stored next:
/// it seals exactly the oldest pending writes (its merkle root over their
/// leaves, signed by the producer, binds them), it verifies, and it extends
/// the head. Reads only the leaves (from `pending`, the writer's mirror of
/// the stored ones) and the head's link, so a replica's work stays
/// proportional to what it must check. The pending writes are this
/// database's (the apply path refuses others). Client signatures are checked
/// by the background audit, off this path.
fn check_seal(
    conn: &rusqlite::Connection,
    pending: &ledger::PendingIndex,
    id: &DatabaseId,
    proposal: &SealProposal,
) -> Result<Result<Hash, String>, ledger::LedgerError> {
    let header = &proposal.header;
    if header.database != *id {
        return Ok(Err("block is for another database".into()));
    }
    let n = proposal.writes;
    let leaves: Vec<Hash> = pending
        .leaves(Some(n))
        .into_iter()
        .map(|p| p.leaf)
        .collect();
    if (leaves.len() as u64) < n {
        return Ok(Err(format!(
            "block seals {n} writes but only {} are pending",
            leaves.len()
        )));
    }
    let root = match block::merkle_root(&leaves, &proposal.reads) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let hash = match header.verify_signed(&proposal.producer_key, &proposal.signature, &root) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Some(i) = proposal
        .reads
        .iter()
        .position(|e| e.request.body.database != *id)
    {
        return Ok(Err(format!(
            "read {i} of the block is for another database"
        )));
    }
    match ledger::head_link(conn)? {
        None if header.count != 0 || header.parent != Hash::ZERO => {
            return Ok(Err("the first block must be number 0 with no parent".into()));
        }
        None => {}
        Some((count, height, parent)) => {
            if let Err(e) = header.verify_follows(count, height, &parent) {
                return Ok(Err(e.to_string()));
            }
        }
    }
    Ok(Ok(hash))
}

/// Why applying refused a write: the request (this id) was already applied
/// there, with this outcome if its row kept it.
struct Duplicate(Hash, ledger::AppliedAt, Option<Outcome>);

/// The openraft state machine of a database group.
pub type DatabaseStateMachine = StateMachine<DatabaseShared>;

impl Replica for DatabaseShared {
    type Config = DatabaseRaft;

    fn applied_state(&self) -> (Option<LogId<u64>>, Membership) {
        let p = lock(&self.progress);
        (p.last_applied, p.membership.clone())
    }

    fn apply_entry(&self, entry: Entry<DatabaseRaft>) -> Result<DbApplied, String> {
        let started = std::time::Instant::now();
        let applied = DatabaseShared::apply_entry(self, entry);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_apply_us.store(took, Ordering::Relaxed);
        applied
    }

    /// A small batch of writes, when the last apply was quick and nothing
    /// holds the writer. A write's cost cannot be known before it runs (a
    /// short statement may touch every row): a slow one blocks a worker
    /// once, then applies go to blocking threads until one is quick again.
    /// Seals (a block of every write since the last) always go there.
    fn applies_quickly(&self, entry: &Entry<DatabaseRaft>) -> bool {
        let small = match &entry.payload {
            EntryPayload::Normal(DbCommand::Writes(w)) => w.len() <= QUICK_WRITES,
            EntryPayload::Normal(DbCommand::Seal(_)) => false,
            EntryPayload::Blank | EntryPayload::Membership(_) => true,
        };
        small
            && self.last_apply_us.load(Ordering::Relaxed) < QUICK_APPLY_US
            && self.exec.try_lock().is_ok()
    }

    fn build_snapshot(&self) -> Result<SnapshotParts, String> {
        let (progress, data) = self.snapshot_bytes().map_err(|e| e.to_string())?;
        Ok((snapshot_meta(&progress, data.len() as u64), data))
    }

    fn snapshot_dir(&self) -> Option<PathBuf> {
        self.path.parent().map(Path::to_path_buf)
    }

    fn build_snapshot_file(&self, out: &Path) -> Result<SnapshotMeta<u64, RaftPeer>, String> {
        // Applies go on while the file is copied (a large database takes
        // seconds): the copy is one consistent read of the file, and its
        // own recorded applied state says what it holds.
        let progress = self.copy_into(out).map_err(|e| e.to_string())?;
        let len = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        Ok(snapshot_meta(&progress, len))
    }

    fn install_snapshot(
        &self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        data: &[u8],
    ) -> Result<(), String> {
        // Hold the progress lock throughout, so no apply or build sees the
        // file replaced under an old applied state.
        let mut progress = lock(&self.progress);
        self.restore_bytes(data).map_err(|e| e.to_string())?;
        let head = self
            .with_exec(|e| Ok(e.with_connection(ledger::head)?))
            .map_err(|e| e.to_string())?;
        *progress = Progress {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        drop(progress);
        *lock(&self.refusals) = None;
        self.head_tx.send_replace(head.as_ref().and_then(head_info));
        Ok(())
    }
}

#[cfg(test)]
mod seal_tests {
    use super::*;
    use crate::crypto::Nonce;
    use crate::hash::{self, Tag};
    use crate::sqlchain::query::Args;
    use crate::sqlchain::request::{QueryKind, RequestBody};
    use openraft::CommittedLeaderId;

    fn write(user: &PrivateKey, db: DatabaseId, i: u64, sql: &str) -> StampedWrite {
        let body = RequestBody {
            database: db,
            user: user.public_key().address(),
            timestamp: i,
            sequence: i,
            kind: QueryKind::Write,
            read_level: Default::default(),
            queries: vec![Query {
                sql: sql.to_owned(),
                args: Args::default(),
            }],
        };
        StampedWrite {
            request: SignedRequest::sign(body, user).unwrap(),
            stamp: Stamp {
                timestamp_ms: 1_700_000_000_000 + i,
                seed: [i as u8; 32],
            },
        }
    }

    fn apply(replica: &DatabaseShared, index: u64, command: DbCommand) -> DbApplied {
        replica
            .apply_entry(Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
                payload: EntryPayload::Normal(command),
            })
            .unwrap()
    }

    /// Applies `writes` as entry `index` and returns their outcomes.
    fn apply_writes(
        replica: &DatabaseShared,
        index: u64,
        writes: Vec<StampedWrite>,
    ) -> Vec<Outcome> {
        match apply(replica, index, DbCommand::Writes(writes)) {
            DbApplied::Writes(o) => o,
            other => panic!("writes not applied: {other:?}"),
        }
    }

    fn propose(
        replica: &DatabaseShared,
        miner: &PrivateKey,
        count: u64,
        parent: Hash,
    ) -> SealProposal {
        let leaves: Vec<Hash> = replica
            .pending_leaves()
            .unwrap()
            .into_iter()
            .map(|p| p.leaf)
            .collect();
        SealProposal::sign(
            replica.id(),
            count,
            count,
            parent,
            1_700_000_000_000 + count,
            &leaves,
            vec![],
            NodeId::compute(&miner.public_key(), &Nonce::default()),
            miner,
        )
        .unwrap()
    }

    /// A fresh replica whose genesis block is sealed.
    struct Sealed0 {
        _dir: tempfile::TempDir,
        db: DatabaseId,
        user: PrivateKey,
        miner: PrivateKey,
        replica: Arc<DatabaseShared>,
        genesis: Hash,
    }

    fn sealed0(label: &[u8]) -> Sealed0 {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseId(hash::hash(Tag::Message, label));
        let miner = PrivateKey::generate().unwrap();
        let replica = DatabaseShared::open(db, &dir.path().join("data.db")).unwrap();
        let proposal = propose(&replica, &miner, 0, Hash::ZERO);
        let DbApplied::Sealed { hash: genesis, .. } =
            apply(&replica, 1, DbCommand::Seal(Box::new(proposal)))
        else {
            panic!("genesis refused");
        };
        Sealed0 {
            _dir: dir,
            db,
            user: PrivateKey::generate().unwrap(),
            miner,
            replica,
            genesis,
        }
    }

    #[test]
    fn a_proposal_signed_from_leaves_is_the_sealed_block() {
        let db = DatabaseId(hash::hash(Tag::Message, b"seal proposal"));
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
        let entries: Vec<BlockEntry> = (0..5)
            .map(|i| {
                let w = write(&user, db, i, "INSERT INTO t VALUES (1)");
                BlockEntry {
                    request: w.request,
                    response_digest: hash::hash(Tag::Response, &[i as u8]),
                    stamp: Some(w.stamp),
                }
            })
            .collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf().unwrap()).collect();
        let reads = vec![entries[0].clone()];
        let block = SqlBlock::seal(
            db,
            3,
            4,
            Hash::ZERO,
            99,
            entries,
            reads.clone(),
            producer,
            &miner,
        )
        .unwrap();
        let p =
            SealProposal::sign(db, 3, 4, Hash::ZERO, 99, &leaves, reads, producer, &miner).unwrap();
        assert_eq!(p.header, block.header);
        assert_eq!(p.writes, 5);
        let root = block::merkle_root(&leaves, &p.reads).unwrap();
        assert_eq!(
            p.header
                .verify_signed(&p.producer_key, &p.signature, &root)
                .unwrap(),
            block.hash().unwrap()
        );
    }

    #[test]
    fn replicas_seal_from_stored_leaves_and_refuse_foreign_writes() {
        let Sealed0 {
            _dir,
            db,
            user,
            miner,
            replica,
            genesis: g,
        } = sealed0(b"replica seal");
        let other = DatabaseId(hash::hash(Tag::Message, b"another database"));
        let writes = vec![
            write(&user, db, 1, "CREATE TABLE t (x INTEGER)"),
            write(&user, other, 2, "INSERT INTO t VALUES (666)"),
            write(&user, db, 3, "INSERT INTO t VALUES (random())"),
            write(&user, db, 4, "INSERT INTO nope VALUES (1)"),
        ];
        let outcomes = apply_writes(&replica, 2, writes.clone());
        assert!(matches!(outcomes[0], Outcome::Ok(_)));
        assert!(
            matches!(&outcomes[1], Outcome::Failed { message, .. } if message.contains("another database")),
            "{:?}",
            outcomes[1]
        );
        assert!(matches!(outcomes[2], Outcome::Ok(_)));
        assert!(matches!(outcomes[3], Outcome::Failed { .. }));
        assert_eq!(replica.pending_len().unwrap(), 3);

        // A proposal claiming more writes than are pending is refused.
        let mut too_many = propose(&replica, &miner, 1, g);
        too_many.writes = 4;
        assert!(matches!(
            apply(&replica, 3, DbCommand::Seal(Box::new(too_many))),
            DbApplied::Refused(r) if r.contains("only 3 are pending")
        ));
        // So is one whose root does not bind the pending writes.
        let mut wrong = propose(&replica, &miner, 1, g);
        wrong.writes = 2;
        assert!(matches!(
            apply(&replica, 4, DbCommand::Seal(Box::new(wrong))),
            DbApplied::Refused(r) if r.contains("merkle root")
        ));
        let refusals = replica.seal_refusals().expect("two refusals recorded");
        assert_eq!((refusals.in_a_row, refusals.count), (2, 1));
        assert!(refusals.reason.contains("merkle root"), "{refusals:?}");
        let b1 = propose(&replica, &miner, 1, g);
        let DbApplied::Sealed { count: 1, hash } =
            apply(&replica, 5, DbCommand::Seal(Box::new(b1)))
        else {
            panic!("block 1 refused");
        };
        assert_eq!(
            replica.seal_refusals(),
            None,
            "an accepted block ends the run"
        );
        assert_eq!(replica.pending_len().unwrap(), 0);
        assert_eq!(replica.head().map(|h| (h.count, h.hash)), Some((1, hash)));
        let block = replica.block(1).unwrap().unwrap();
        assert_eq!(block.hash().unwrap(), hash);
        block.verify().unwrap();
        block
            .verify_follows(&replica.block(0).unwrap().unwrap())
            .unwrap();
        let sealed: Vec<&SignedRequest> = block.writes.iter().map(|e| &e.request).collect();
        assert_eq!(
            sealed,
            vec![&writes[0].request, &writes[2].request, &writes[3].request]
        );
        for (i, e) in block.writes.iter().enumerate() {
            assert_eq!(
                replica
                    .locate(&ledger::RequestKey::of(
                        &e.request,
                        e.request.hash().unwrap()
                    ))
                    .unwrap(),
                Some((1, i as u64))
            );
        }
        // A stale proposal (the same number again) no longer follows the head.
        let again = propose(&replica, &miner, 1, g);
        assert!(matches!(
            apply(&replica, 6, DbCommand::Seal(Box::new(again))),
            DbApplied::Refused(_)
        ));
        assert_eq!(replica.seal_refusals().map(|r| r.in_a_row), Some(1));
    }

    #[test]
    fn small_batches_apply_quickly_and_seals_slow_applies_and_a_held_writer_do_not() {
        let Sealed0 {
            _dir,
            db,
            user,
            miner,
            replica,
            genesis: g,
        } = sealed0(b"quick applies");
        let entry = |index: u64, command: DbCommand| Entry::<DatabaseRaft> {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Normal(command),
        };
        let quick = |e: &Entry<DatabaseRaft>| Replica::applies_quickly(&*replica, e);
        let small = entry(
            10,
            DbCommand::Writes(vec![write(&user, db, 10, "SELECT 1")]),
        );
        assert!(quick(&small));
        let big = (0..=QUICK_WRITES as u64)
            .map(|i| write(&user, db, 100 + i, "SELECT 1"))
            .collect();
        assert!(!quick(&entry(11, DbCommand::Writes(big))));
        let seal = propose(&replica, &miner, 1, g);
        assert!(!quick(&entry(12, DbCommand::Seal(Box::new(seal)))));
        {
            let _held = replica.exec.lock().unwrap();
            assert!(!quick(&small));
        }
        // After a slow apply, not until an apply is quick again; each
        // apply records how long it took.
        replica.last_apply_us.store(u64::MAX, Ordering::Relaxed);
        assert!(!quick(&small));
        Replica::apply_entry(&*replica, small.clone()).unwrap();
        assert_ne!(replica.last_apply_us.load(Ordering::Relaxed), u64::MAX);
    }

    #[test]
    fn a_signed_request_applies_at_most_once_and_a_resend_gets_its_outcome() {
        let Sealed0 {
            _dir,
            db,
            user,
            miner,
            replica,
            genesis: g,
        } = sealed0(b"replays");
        let path = replica.path().to_path_buf();
        let create = write(&user, db, 1, "CREATE TABLE t (x INTEGER)");
        let insert = write(&user, db, 2, "INSERT INTO t VALUES (1)");
        // Repeated within one entry: the second copy runs not, and is
        // answered with the first one's outcome.
        let o = apply_writes(
            &replica,
            2,
            vec![create.clone(), insert.clone(), insert.clone()],
        );
        let first = o[1].clone();
        assert!(matches!(o[0], Outcome::Ok(_)) && matches!(first, Outcome::Ok(_)));
        assert_eq!(o[2], first);
        // Resent while pending, with a new stamp: the same answer, not recorded.
        let mut resent = insert.clone();
        resent.stamp.timestamp_ms += 1;
        assert_eq!(
            apply_writes(&replica, 3, vec![resent.clone()]),
            std::slice::from_ref(&first)
        );
        assert_eq!(replica.pending_len().unwrap(), 2);
        // Still after a restart: the pending index is read back.
        drop(replica);
        let replica = DatabaseShared::open(db, &path).unwrap();
        assert_eq!(replica.pending_len().unwrap(), 2);
        assert_eq!(
            apply_writes(&replica, 3, vec![resent.clone()]),
            std::slice::from_ref(&first)
        );
        // Resent after it was sealed: found through the block.
        let b1 = propose(&replica, &miner, 1, g);
        assert!(matches!(
            apply(&replica, 4, DbCommand::Seal(Box::new(b1))),
            DbApplied::Sealed { count: 1, .. }
        ));
        assert_eq!(apply_writes(&replica, 5, vec![resent.clone()]), [first]);
        assert_eq!(replica.pending_len().unwrap(), 0);
        // A write stored before outcomes were kept: refused, naming the block.
        drop(replica);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE _covenant_pending SET outcome = NULL", [])
            .unwrap();
        let replica = DatabaseShared::open(db, &path).unwrap();
        let o = apply_writes(&replica, 6, vec![resent]);
        assert!(
            matches!(&o[0], Outcome::Failed { code, message }
                if *code == crate::ErrorCode::DuplicateRequest.as_u32()
                    && message.contains("block 1, write 1")),
            "{:?}",
            o[0]
        );
        assert_eq!(replica.pending_len().unwrap(), 0);
        let rows = replica.dump().unwrap();
        let text = format!("{rows:?}");
        assert_eq!(text.matches("Integer(1)").count(), 1, "{text}");
    }

    #[test]
    fn an_installed_snapshot_brings_its_pending_writes() {
        let Sealed0 {
            _dir,
            db,
            user,
            miner,
            replica,
            genesis: g,
        } = sealed0(b"snapshot pending");
        let writes = vec![
            write(&user, db, 1, "CREATE TABLE t (x INTEGER)"),
            write(&user, db, 2, "INSERT INTO t VALUES (1)"),
        ];
        let first = apply_writes(&replica, 2, writes.clone());
        let (meta, data) = replica.build_snapshot().unwrap();
        // Another replica, with pending writes of its own, installs it.
        let other_dir = tempfile::tempdir().unwrap();
        let other = DatabaseShared::open(db, &other_dir.path().join("data.db")).unwrap();
        apply(
            &other,
            1,
            DbCommand::Writes(vec![write(&user, db, 9, "CREATE TABLE u (y)")]),
        );
        other.install_snapshot(&meta, &data).unwrap();
        assert_eq!(
            other.pending_leaves().unwrap(),
            replica.pending_leaves().unwrap()
        );
        // Already applied there: answered as first applied, not applied again.
        assert_eq!(apply_writes(&other, 3, writes), first);
        assert_eq!(other.pending_len().unwrap(), 2);
        // Both seal the same block from what they hold.
        let b1 = propose(&replica, &miner, 1, g);
        let DbApplied::Sealed { hash, .. } =
            apply(&other, 4, DbCommand::Seal(Box::new(b1.clone())))
        else {
            panic!("block 1 refused");
        };
        let DbApplied::Sealed { hash: same, .. } =
            apply(&replica, 3, DbCommand::Seal(Box::new(b1)))
        else {
            panic!("block 1 refused");
        };
        assert_eq!(hash, same);
        assert_eq!(other.pending_len().unwrap(), 0);
    }

    #[test]
    fn the_applied_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let db = DatabaseId(hash::hash(Tag::Message, b"applied state"));
        let user = PrivateKey::generate().unwrap();
        let replica = DatabaseShared::open(db, &path).unwrap();
        let nodes: BTreeMap<u64, RaftPeer> = [(1, RaftPeer::default()), (2, RaftPeer::default())]
            .into_iter()
            .collect();
        let members = openraft::Membership::new(vec![[1u64, 2].into_iter().collect()], nodes);
        let at = |index| LogId::new(CommittedLeaderId::new(1, 0), index);
        replica
            .apply_entry(Entry {
                log_id: at(1),
                payload: EntryPayload::Membership(members.clone()),
            })
            .unwrap();
        apply(
            &replica,
            2,
            DbCommand::Writes(vec![write(&user, db, 1, "CREATE TABLE t (x)")]),
        );
        replica
            .apply_entry(Entry {
                log_id: at(3),
                payload: EntryPayload::Blank,
            })
            .unwrap();
        let state = replica.applied_state();
        assert_eq!(state.0, Some(at(3)));
        assert_eq!(state.1, StoredMembership::new(Some(at(1)), members));
        drop(replica);
        assert_eq!(
            DatabaseShared::open(db, &path).unwrap().applied_state(),
            state
        );
    }

    #[test]
    fn a_replica_is_rebuilt_only_when_the_machine_went_down_with_it_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let db = DatabaseId(hash::hash(Tag::Message, b"machine down"));
        let user = PrivateKey::generate().unwrap();
        let at = |index| LogId::new(CommittedLeaderId::new(1, 0), index);
        let replica = DatabaseShared::open(db, &path).unwrap();
        apply(
            &replica,
            1,
            DbCommand::Writes(vec![write(&user, db, 1, "CREATE TABLE t (x)")]),
        );
        assert_eq!(replica.applied_state().0, Some(at(1)));
        // The process stopped with the file open: the kernel kept it whole.
        drop(replica);
        let replica = DatabaseShared::open(db, &path).unwrap();
        if std::path::Path::new("/proc/sys/kernel/random/boot_id").exists() {
            assert_eq!(replica.applied_state().0, Some(at(1)));
        }
        // Closed cleanly: trusted even after the machine restarts.
        replica.close().unwrap();
        assert!(
            replica.pending_len().is_err(),
            "a closed replica refuses work"
        );
        drop(replica);
        let replica = DatabaseShared::open(db, &path).unwrap();
        assert_eq!(replica.applied_state().0, Some(at(1)));
        // The machine went down while it was open: the file may be torn, so
        // it is discarded; the stored snapshot and the log rebuild it.
        drop(replica);
        super::open_marker::pretend_earlier_boot(&path).unwrap();
        let replica = DatabaseShared::open(db, &path).unwrap();
        assert_eq!(replica.applied_state().0, None);
    }

    #[test]
    fn a_snapshot_file_says_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = DatabaseId(hash::hash(Tag::Message, b"snapshot file"));
        let user = PrivateKey::generate().unwrap();
        let replica = DatabaseShared::open(db, &dir.path().join("data.db")).unwrap();
        apply(
            &replica,
            1,
            DbCommand::Writes(vec![
                write(&user, db, 1, "CREATE TABLE t (x INTEGER)"),
                write(&user, db, 2, "INSERT INTO t VALUES (7)"),
            ]),
        );
        apply(
            &replica,
            2,
            DbCommand::Writes(vec![write(&user, db, 3, "INSERT INTO t VALUES (8)")]),
        );
        let out = dir.path().join("copy.db");
        let meta = replica.build_snapshot_file(&out).unwrap();
        assert_eq!(meta.last_log_id.map(|l| l.index), Some(2));
        // The copy opens as a replica with the same rows and applied state.
        let copy = DatabaseShared::open(db, &out).unwrap();
        assert_eq!(copy.applied_state().0, meta.last_log_id);
        assert_eq!(
            format!("{:?}", copy.dump().unwrap()),
            format!("{:?}", replica.dump().unwrap())
        );
    }
}
