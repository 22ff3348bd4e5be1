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
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::{Entry, EntryPayload, LogId, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::state_machine::{Replica, SnapshotParts, StateMachine};
use super::types::RaftPeer;
use crate::codec;
use crate::crypto::{Address, PublicKey, Signature};
use crate::hash::Hash;
use crate::sqlchain::block::{BlockEntry, SqlBlock, SqlBlockHeader, Stamp};
use crate::sqlchain::executor::{BatchItem, Dump, Executor, Reader, SqlError, WriteEnv};
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
            DatabaseError::Snapshot { .. } | DatabaseError::Closed => crate::ErrorCode::Storage,
        }
    }
}

/// A database replica: its SQLite file (data and chain), shared by the Raft
/// state machine and the miner's query service.
pub struct DatabaseShared {
    id: DatabaseId,
    path: PathBuf,
    exec: Mutex<Option<Executor>>,
    reader: Mutex<Option<Reader>>,
    progress: Mutex<Progress>,
    head_tx: watch::Sender<Option<ChainHeadInfo>>,
    reads: Mutex<Vec<BlockEntry>>,
    usage: Mutex<BTreeMap<Address, Usage>>,
    audit: Mutex<Option<std::sync::mpsc::Sender<AuditBatch>>>,
}

/// Writes a replica applied, handed to the miner's background signature
/// audit (DESIGN §5: followers check signatures off the commit path).
#[derive(Debug)]
pub struct AuditBatch {
    /// The database.
    pub database: DatabaseId,
    /// The log index of the entry that held them.
    pub index: u64,
    /// The signed requests, in order.
    pub requests: Vec<SignedRequest>,
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
    /// Opens (creating) the replica's file at `path`.
    pub fn open(id: DatabaseId, path: &Path) -> Result<Arc<DatabaseShared>, DatabaseError> {
        let mut exec = Executor::open(path)?;
        let reader = exec.reader()?;
        let (last_applied, membership, head) = exec.with_connection(|conn| {
            ledger::init(conn)?;
            let applied = match ledger::get_meta(conn, META_APPLIED)? {
                Some(b) => codec::decode(&b)?,
                None => None,
            };
            let membership = match ledger::get_meta(conn, META_MEMBERSHIP)? {
                Some(b) => codec::decode(&b)?,
                None => Membership::default(),
            };
            let head = ledger::head(conn)?;
            Ok::<_, DatabaseError>((applied, membership, head))
        })?;
        let (head_tx, _) = watch::channel(head.as_ref().and_then(head_info));
        Ok(Arc::new(DatabaseShared {
            id,
            path: path.to_path_buf(),
            exec: Mutex::new(Some(exec)),
            reader: Mutex::new(Some(reader)),
            progress: Mutex::new(Progress {
                last_applied,
                membership,
            }),
            head_tx,
            reads: Mutex::new(Vec::new()),
            usage: Mutex::new(BTreeMap::new()),
            audit: Mutex::new(None),
        }))
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

    /// Follows the head.
    pub fn subscribe_head(&self) -> watch::Receiver<Option<ChainHeadInfo>> {
        self.head_tx.subscribe()
    }

    /// Runs `f` on the writer; an error if a failed snapshot install closed it.
    fn with_exec<T>(
        &self,
        f: impl FnOnce(&mut Executor) -> Result<T, DatabaseError>,
    ) -> Result<T, DatabaseError> {
        match lock(&self.exec).as_mut() {
            Some(e) => f(e),
            None => Err(DatabaseError::Closed),
        }
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

    /// Applied writes not yet sealed.
    pub fn pending(&self) -> Result<Vec<BlockEntry>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(ledger::pending)?))
    }

    /// The block numbered `count`.
    pub fn block(&self, count: u64) -> Result<Option<SqlBlock>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::block_by_count(c, count))?))
    }

    /// The block with `hash`.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<SqlBlock>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::block_by_hash(c, hash))?))
    }

    /// Where the request `hash` was recorded: (block number, position).
    pub fn locate(&self, hash: &Hash) -> Result<Option<(u64, u64)>, DatabaseError> {
        self.with_exec(|e| Ok(e.with_connection(|c| ledger::locate(c, hash))?))
    }

    /// Every user table's rows, for comparing replicas.
    pub fn dump(&self) -> Result<Dump, DatabaseError> {
        self.with_exec(|e| Ok(e.dump()?))
    }

    fn progress_meta(progress: &Progress) -> Result<(Vec<u8>, Vec<u8>), String> {
        Ok((
            codec::encode(&progress.last_applied).map_err(|e| e.to_string())?,
            codec::encode(&progress.membership).map_err(|e| e.to_string())?,
        ))
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
        let (applied, membership) = Self::progress_meta(&progress)?;
        let record_progress = |conn: &rusqlite::Connection| -> Result<(), DatabaseError> {
            ledger::put_meta(conn, META_APPLIED, &applied)?;
            ledger::put_meta(conn, META_MEMBERSHIP, &membership)?;
            Ok(())
        };
        let mut guard = lock(&self.exec);
        let exec = guard.as_mut().ok_or("the replica is closed")?;
        match command {
            None => {
                in_tx(exec, record_progress).map_err(|e| e.to_string())?;
                Ok(DbApplied::Refused("no command in this entry".into()))
            }
            Some(DbCommand::Writes(writes)) => {
                let items: Vec<BatchItem<'_>> = writes
                    .iter()
                    .map(|w| BatchItem {
                        queries: &w.request.body.queries,
                        env: WriteEnv {
                            timestamp_ms: w.stamp.timestamp_ms,
                            seed: w.stamp.seed,
                        },
                    })
                    .collect();
                let done = exec
                    .write_batch(
                        &items,
                        |i, conn, result| -> Result<Outcome, DatabaseError> {
                            let o = match result {
                                Ok(results) => Outcome::Ok(results.clone()),
                                Err(e) => Outcome::Failed {
                                    code: e.code().as_u32(),
                                    message: e.to_string(),
                                },
                            };
                            let w = writes.get(i).ok_or_else(|| SqlError::Storage {
                                op: "record",
                                message: format!("no write at batch position {i}"),
                            })?;
                            let entry = BlockEntry {
                                request: w.request.clone(),
                                response_digest: o.digest()?,
                                stamp: Some(w.stamp),
                            };
                            ledger::push_pending(conn, &entry)?;
                            Ok(o)
                        },
                        record_progress,
                    )
                    .map_err(|e| e.to_string())?;
                drop(guard);
                drop(progress);
                let outcomes: Vec<Outcome> = done.into_iter().map(|(_, o)| o).collect();
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
                        database: self.id,
                        index: log_id.index,
                        requests: writes.into_iter().map(|w| w.request).collect(),
                    });
                }
                Ok(DbApplied::Writes(outcomes))
            }
            Some(DbCommand::Seal(proposal)) => {
                let mut result = DbApplied::Refused(String::new());
                let mut sealed = None;
                in_tx(exec, |conn| -> Result<(), DatabaseError> {
                    result = match build_block(conn, &self.id, *proposal)? {
                        Ok((block, hash)) => {
                            ledger::append_block(conn, &block, &hash)?;
                            let applied = DbApplied::Sealed {
                                count: block.header.count,
                                hash,
                            };
                            sealed = Some(block);
                            applied
                        }
                        Err(reason) => DbApplied::Refused(reason),
                    };
                    record_progress(conn)
                })
                .map_err(|e| e.to_string())?;
                if let Some(block) = sealed {
                    self.head_tx.send_replace(head_info(&block));
                    if let Some(audit) = lock(&self.audit).as_ref()
                        && !block.reads.is_empty()
                    {
                        let _ = audit.send(AuditBatch {
                            database: self.id,
                            index: log_id.index,
                            requests: block.reads.into_iter().map(|e| e.request).collect(),
                        });
                    }
                } else if let DbApplied::Refused(reason) = &result {
                    tracing::warn!(database = %self.id.to_hex(), %reason, "refused a sealed block");
                }
                Ok(result)
            }
        }
    }
}

/// Runs `f` in one immediate SQLite transaction on the writer.
fn in_tx<T>(
    exec: &mut Executor,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, DatabaseError>,
) -> Result<T, DatabaseError> {
    exec.with_connection(|conn| {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| SqlError::Storage {
                op: "begin",
                message: e.to_string(),
            })?;
        match f(conn) {
            Ok(t) => match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(t),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(SqlError::Storage {
                        op: "commit",
                        message: e.to_string(),
                    }
                    .into())
                }
            },
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    })
}

impl DatabaseShared {
    fn snapshot_err(&self, reason: impl std::fmt::Display) -> DatabaseError {
        DatabaseError::Snapshot {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// A consistent copy of the whole file (data and chain), via `VACUUM INTO`.
    fn snapshot_bytes(&self) -> Result<Vec<u8>, DatabaseError> {
        let tmp = self.path.with_extension("snapshot-out");
        let _ = std::fs::remove_file(&tmp);
        let target = tmp.to_string_lossy().replace('\'', "''");
        self.with_exec(|e| {
            e.with_connection(|c| c.execute_batch(&format!("VACUUM INTO '{target}'")))
                .map_err(|err| self.snapshot_err(err))
        })?;
        let bytes = std::fs::read(&tmp).map_err(|e| self.snapshot_err(e))?;
        let _ = std::fs::remove_file(&tmp);
        Ok(bytes)
    }

    /// Replaces the whole file with a snapshot taken by [`Self::snapshot_bytes`].
    fn restore_bytes(&self, bytes: &[u8]) -> Result<(), DatabaseError> {
        let tmp = self.path.with_extension("snapshot-in");
        std::fs::write(&tmp, bytes).map_err(|e| self.snapshot_err(e))?;
        let mut exec = lock(&self.exec);
        let mut reader = lock(&self.reader);
        reader.take();
        if let Some(old) = exec.take() {
            old.close()?;
        }
        for suffix in ["-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| self.snapshot_err(e))?;
        let mut new = Executor::open(&self.path)?;
        new.with_connection(ledger::init)?;
        *reader = Some(new.reader()?);
        *exec = Some(new);
        Ok(())
    }
}

/// The block `proposal` describes, if it may be stored next: it seals
/// exactly the oldest pending writes (its merkle root, signed by the
/// producer, binds them), it verifies, and it extends the head.
fn build_block(
    conn: &rusqlite::Connection,
    id: &DatabaseId,
    proposal: SealProposal,
) -> Result<Result<(SqlBlock, Hash), String>, ledger::LedgerError> {
    if proposal.header.database != *id {
        return Ok(Err("block is for another database".into()));
    }
    let mut pending = ledger::pending(conn)?;
    let n = proposal.writes;
    if n > pending.len() as u64 {
        return Ok(Err(format!(
            "block seals {n} writes but only {} are pending",
            pending.len()
        )));
    }
    pending.truncate(n as usize);
    let block = SqlBlock {
        header: proposal.header,
        producer_key: proposal.producer_key,
        signature: proposal.signature,
        writes: pending,
        reads: proposal.reads,
    };
    // Client signatures are checked by the background audit, off this path.
    let hash = match block.verify_seal() {
        Ok(h) => h,
        Err(e) => return Ok(Err(e.to_string())),
    };
    match ledger::head(conn)? {
        None if block.header.count != 0 || block.header.parent != Hash::ZERO => {
            return Ok(Err("the first block must be number 0 with no parent".into()));
        }
        None => {}
        Some(prev) => {
            if let Err(e) = block.verify_follows(&prev) {
                return Ok(Err(e.to_string()));
            }
        }
    }
    Ok(Ok((block, hash)))
}

/// The openraft state machine of a database group.
pub type DatabaseStateMachine = StateMachine<DatabaseShared>;

impl Replica for DatabaseShared {
    type Config = DatabaseRaft;

    fn applied_state(&self) -> (Option<LogId<u64>>, Membership) {
        let p = lock(&self.progress);
        (p.last_applied, p.membership.clone())
    }

    fn apply_entry(&self, entry: Entry<DatabaseRaft>) -> Result<DbApplied, String> {
        DatabaseShared::apply_entry(self, entry)
    }

    fn build_snapshot(&self) -> Result<SnapshotParts, String> {
        let progress = lock(&self.progress);
        let data = self.snapshot_bytes().map_err(|e| e.to_string())?;
        let meta = SnapshotMeta {
            last_log_id: progress.last_applied,
            last_membership: progress.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                progress.last_applied.map(|l| l.index).unwrap_or(0),
                data.len()
            ),
        };
        Ok((meta, data))
    }

    fn install_snapshot(
        &self,
        meta: &SnapshotMeta<u64, RaftPeer>,
        data: &[u8],
    ) -> Result<(), String> {
        self.restore_bytes(data).map_err(|e| e.to_string())?;
        let head = self
            .with_exec(|e| Ok(e.with_connection(ledger::head)?))
            .map_err(|e| e.to_string())?;
        *lock(&self.progress) = Progress {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.head_tx.send_replace(head.as_ref().and_then(head_info));
        Ok(())
    }
}
