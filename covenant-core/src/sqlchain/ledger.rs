//! The chain's bookkeeping inside the database's own SQLite file.
//!
//! Blocks, the applied writes (pending until a block seals them), the request index and
//! the consensus progress live in hidden `_covenant_*` tables of the same
//! file as the user's data, so one SQLite transaction covers a write's rows
//! and its record: after a crash the data and the chain can never disagree,
//! and a snapshot of the file carries both. User statements may not name
//! these tables (the executor refuses them; see
//! [`HIDDEN_TABLE_PREFIX`](super::executor::HIDDEN_TABLE_PREFIX)).
//!
//! Sealing must not stall the apply path, so each pending write is stored
//! with what sealing needs of it, computed once when it is applied: its
//! encoded [`BlockEntry`], its merkle leaf, its request id and its size
//! hint. A seal reads only the leaves ([`pending_leaves`]). Storing the
//! block ([`append_sealed`]) copies nothing: the writes stay in their
//! `_covenant_pending` rows, and the block's row holds the rest of the
//! block's bytes, where the writes go (`split`) and which rows they are
//! (`first_seq`, `last_seq`); a write is pending while its row comes after
//! the last block's `last_seq`. Reading a block splices the bytes back
//! together. The block bytes are exactly `encode_versioned(SqlBlock)`:
//! bincode writes a struct as its fields back to back and a sequence as its
//! length then its items, so the concatenation is the encoding (the tests
//! check it byte for byte). The request index is keyed by each request's
//! timestamp, then its id ([`RequestKey`]), and a block's entries are
//! inserted in key order, so they land together at the index's recent end.
//!
//! Applying must stay cheap too, so a pending write costs one row: the
//! writer mirrors in memory what the hot paths ask of the pending writes
//! ([`PendingIndex`]: request ids, timestamps, rows, leaves, sizes), so the
//! at-most-once check ([`applied_at`]) needs no index on pending rows
//! (whose random-order inserts cost a page write per write) and sealing
//! reads no pending row: not to learn leaves, nor to index the requests.
//!
//! Schema history: `_covenant_pending` had only `(seq, entry)` before the
//! `leaf`, `request` and `size` columns; [`init`] adds them to an older file
//! and fills them from the stored entries (migration in place). An index on
//! `_covenant_pending (request)` existed before [`PendingIndex`]; [`init`]
//! drops it. Blocks used to hold a copy of their writes, whose pending rows
//! were then deleted: [`init`] adds the `split`, `first_seq` and `last_seq`
//! columns, NULL in those blocks, which are read whole as before. Each
//! pending row also keeps its write's encoded outcome, to answer a resend
//! of the request ([`recorded_outcome`]); rows from before that have NULL
//! there, and a resend of one is refused instead. The request index was
//! keyed by id alone (`_covenant_requests`, whose random inserts rewrote
//! pages all over it for every block): it keeps what it holds, and the
//! rows that have no `timestamp` (written before) are indexed there too.
//!
//! Imports the block and request types and the codec; never the executor,
//! consensus or the network.

use std::collections::{HashMap, VecDeque};

use rusqlite::{Connection, OptionalExtension, params};

use super::block::{self, BlockEntry, SqlBlock, SqlBlockHeader, Stamp};
use super::request::{Outcome, SignedRequest};
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{PublicKey, Signature};
use crate::error::ErrorCode;
use crate::hash::{self, HASH_LEN, Hash, Tag};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _covenant_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _covenant_blocks (
    count     INTEGER PRIMARY KEY,
    height    INTEGER NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    data      BLOB NOT NULL,
    split     INTEGER,
    first_seq INTEGER,
    last_seq  INTEGER
);
CREATE TABLE IF NOT EXISTS _covenant_pending (
    seq     INTEGER PRIMARY KEY,
    entry   BLOB NOT NULL,
    leaf    BLOB NOT NULL DEFAULT x'',
    request BLOB NOT NULL DEFAULT x'',
    size    INTEGER NOT NULL DEFAULT 0,
    outcome BLOB,
    timestamp INTEGER
);
CREATE TABLE IF NOT EXISTS _covenant_requests (
    hash  BLOB PRIMARY KEY,
    count INTEGER NOT NULL,
    idx   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _covenant_requests_by_time (
    timestamp INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    count     INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    PRIMARY KEY (timestamp, hash)
) WITHOUT ROWID;
";

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed.
    #[error("database ledger: {op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Stored bytes did not decode.
    #[error("database ledger: {0}")]
    Codec(#[from] CodecError),
    /// The stored rows contradict each other.
    #[error("database ledger: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Storage
    }
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> LedgerError {
    move |source| LedgerError::Sqlite { op, source }
}

/// The columns added to `_covenant_pending` after its first version.
const PENDING_ADDED: &str = "
ALTER TABLE _covenant_pending ADD COLUMN leaf BLOB NOT NULL DEFAULT x'';
ALTER TABLE _covenant_pending ADD COLUMN request BLOB NOT NULL DEFAULT x'';
ALTER TABLE _covenant_pending ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
";

/// The columns added to `_covenant_blocks` when blocks stopped copying
/// their writes (NULL in the blocks stored before: their `data` is whole).
const BLOCKS_ADDED: &str = "
ALTER TABLE _covenant_blocks ADD COLUMN split INTEGER;
ALTER TABLE _covenant_blocks ADD COLUMN first_seq INTEGER;
ALTER TABLE _covenant_blocks ADD COLUMN last_seq INTEGER;
";

/// The last sequence number a block sealed: writes after it are pending.
/// Blocks stored before blocks kept their writes in `_covenant_pending`
/// have no `last_seq`; the writes they sealed were deleted then.
macro_rules! sealed_upto {
    () => {
        "(SELECT COALESCE((SELECT last_seq FROM _covenant_blocks \
          WHERE last_seq IS NOT NULL ORDER BY count DESC LIMIT 1), 0))"
    };
}

/// Creates the hidden tables if missing and migrates older ones.
pub fn init(conn: &Connection) -> Result<(), LedgerError> {
    conn.execute_batch(SCHEMA).map_err(sql("create tables"))?;
    if !has_column(conn, "_covenant_blocks", "split")? {
        conn.execute_batch(BLOCKS_ADDED)
            .map_err(sql("add the block columns"))?;
    }
    if !has_column(conn, "_covenant_pending", "leaf")? {
        migrate_pending(conn)?;
    }
    if !has_column(conn, "_covenant_pending", "outcome")? {
        conn.execute_batch("ALTER TABLE _covenant_pending ADD COLUMN outcome BLOB")
            .map_err(sql("add the outcome column"))?;
    }
    if !has_column(conn, "_covenant_pending", "timestamp")? {
        conn.execute_batch("ALTER TABLE _covenant_pending ADD COLUMN timestamp INTEGER")
            .map_err(sql("add the timestamp column"))?;
    }
    // Replaced by `PendingIndex`: maintaining it cost a page write per write.
    conn.execute_batch("DROP INDEX IF EXISTS _covenant_pending_request")
        .map_err(sql("drop the pending request index"))
}

/// Whether `table` has a column named `column` (older files lack some).
fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, LedgerError> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        params![table, column],
        |r| r.get(0),
    )
    .map_err(sql("inspect the chain tables"))
}

/// Adds the leaf, request id and size of every stored pending write.
fn migrate_pending(conn: &Connection) -> Result<(), LedgerError> {
    let tx = conn
        .unchecked_transaction()
        .map_err(sql("migrate pending"))?;
    tx.execute_batch(PENDING_ADDED)
        .map_err(sql("migrate pending"))?;
    let rows = {
        let mut stmt = tx
            .prepare("SELECT seq, entry FROM _covenant_pending ORDER BY seq")
            .map_err(sql("migrate pending"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(sql("migrate pending"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(sql("migrate pending"))?
    };
    {
        let mut update = tx
            .prepare(
                "UPDATE _covenant_pending SET leaf = ?2, request = ?3, size = ?4 WHERE seq = ?1",
            )
            .map_err(sql("migrate pending"))?;
        for (seq, bytes) in rows {
            let entry: BlockEntry = codec::decode(&bytes)?;
            let request = entry.request.hash()?;
            let leaf = entry.leaf()?;
            let size = entry.request.size_hint() as i64;
            update
                .execute(params![
                    seq,
                    leaf.as_bytes().as_slice(),
                    request.as_bytes().as_slice(),
                    size
                ])
                .map_err(sql("migrate pending"))?;
        }
    }
    tx.commit().map_err(sql("migrate pending"))
}

/// Reads a meta value.
pub fn get_meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
    conn.query_row(
        "SELECT value FROM _covenant_meta WHERE key = ?1",
        params![key],
        |r| r.get(0),
    )
    .optional()
    .map_err(sql("read meta"))
}

/// Writes a meta value.
pub fn put_meta(conn: &Connection, key: &str, value: &[u8]) -> Result<(), LedgerError> {
    conn.prepare_cached("INSERT OR REPLACE INTO _covenant_meta (key, value) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![key, value]))
        .map(|_| ())
        .map_err(sql("write meta"))
}

/// A request's encoded body and its id (the hash of those bytes), computed
/// once per write: applying needs the id to refuse replays
/// ([`applied_at`]) and [`push_pending`] needs both.
#[derive(Debug, Clone)]
pub struct EncodedBody {
    id: Hash,
    bytes: Vec<u8>,
}

impl EncodedBody {
    /// Encodes `request`'s body.
    pub fn of(request: &SignedRequest) -> Result<EncodedBody, CodecError> {
        let bytes = codec::encode(&request.body)?;
        Ok(EncodedBody {
            id: hash::hash(Tag::Request, &bytes),
            bytes,
        })
    }

    /// The request id ([`SignedRequest::hash`]).
    pub fn id(&self) -> &Hash {
        &self.id
    }
}

/// Appends an applied write to the pending list: the [`BlockEntry`] of
/// `request` (whose body is `body`) with `response_digest` and `stamp`,
/// its leaf, id and size, and the encoded outcome (kept to answer a resend
/// of the request with the outcome it had; see [`recorded_outcome`]).
/// Returns its row and leaf, for [`PendingIndex::push`].
pub fn push_pending(
    conn: &Connection,
    request: &SignedRequest,
    body: &EncodedBody,
    response_digest: &Hash,
    stamp: Option<Stamp>,
    outcome: Option<&[u8]>,
) -> Result<PendingRow, LedgerError> {
    // encode(entry) = encode(body) || key || signature || digest || stamp.
    let id = body.id;
    let mut bytes = Vec::with_capacity(body.bytes.len() + 160);
    bytes.extend_from_slice(&body.bytes);
    bytes.extend_from_slice(&codec::encode(&request.public_key)?);
    bytes.extend_from_slice(&codec::encode(&request.signature)?);
    bytes.extend_from_slice(&codec::encode(response_digest)?);
    bytes.extend_from_slice(&codec::encode(&stamp)?);
    let leaf = block::entry_leaf(&id, response_digest, &stamp)?;
    let size = request.size_hint() as u64;
    conn.prepare_cached(
        "INSERT INTO _covenant_pending (entry, leaf, request, size, outcome, timestamp) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            bytes,
            leaf.as_bytes().as_slice(),
            id.as_bytes().as_slice(),
            i64::try_from(size).unwrap_or(i64::MAX),
            outcome,
            sql_time(request.body.timestamp)
        ])
    })
    .map_err(sql("write pending"))?;
    Ok(PendingRow {
        seq: conn.last_insert_rowid(),
        timestamp: Some(request.body.timestamp),
        leaf: PendingLeaf { leaf, size },
    })
}

/// A write [`push_pending`] recorded: its row and what sealing needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRow {
    /// Its `_covenant_pending` row.
    pub seq: i64,
    /// Its request's timestamp (`None` in rows written before rows kept it).
    pub timestamp: Option<u64>,
    /// Its leaf and size.
    pub leaf: PendingLeaf,
}

/// What sealing needs of a pending write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLeaf {
    /// Its merkle leaf ([`BlockEntry::leaf`]).
    pub leaf: Hash,
    /// Its request's size hint ([`SignedRequest::size_hint`]).
    pub size: u64,
}

fn hash_column(bytes: &[u8], what: &str) -> Result<Hash, LedgerError> {
    <[u8; HASH_LEN]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| LedgerError::Corrupt(format!("a stored {what} has {} bytes", bytes.len())))
}

/// The leaves of the oldest `limit` pending writes (all if `None`), oldest first.
pub fn pending_leaves(
    conn: &Connection,
    limit: Option<u64>,
) -> Result<Vec<PendingLeaf>, LedgerError> {
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT leaf, size FROM _covenant_pending WHERE seq > ",
            sealed_upto!(),
            " ORDER BY seq LIMIT ?1"
        ))
        .map_err(sql("read pending leaves"))?;
    let rows = stmt
        .query_map(params![limit], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(sql("read pending leaves"))?;
    let mut out = Vec::new();
    for row in rows {
        let (leaf, size) = row.map_err(sql("read pending leaves"))?;
        out.push(PendingLeaf {
            leaf: hash_column(&leaf, "pending leaf")?,
            size: size.max(0) as u64,
        });
    }
    Ok(out)
}

/// The applied writes not yet in a block, oldest first.
pub fn pending(conn: &Connection) -> Result<Vec<BlockEntry>, LedgerError> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT entry FROM _covenant_pending WHERE seq > ",
            sealed_upto!(),
            " ORDER BY seq"
        ))
        .map_err(sql("read pending"))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(sql("read pending"))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(codec::decode(&row.map_err(sql("read pending"))?)?);
    }
    Ok(out)
}

/// Number of pending writes.
pub fn pending_len(conn: &Connection) -> Result<u64, LedgerError> {
    conn.query_row(
        concat!(
            "SELECT COUNT(*) FROM _covenant_pending WHERE seq > ",
            sealed_upto!()
        ),
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n.max(0) as u64)
    .map_err(sql("count pending"))
}

/// The signed parts of a block whose writes are the oldest pending ones.
#[derive(Debug, Clone, Copy)]
pub struct SealedParts<'a> {
    /// The signed header.
    pub header: &'a SqlBlockHeader,
    /// The producer's key.
    pub producer_key: &'a PublicKey,
    /// The producer's signature.
    pub signature: &'a Signature,
    /// Its hash (of `header`).
    pub hash: &'a Hash,
    /// The oldest pending writes, which it seals ([`PendingIndex::oldest`]).
    pub writes: &'a [(Hash, PendingRow)],
    /// Its reads.
    pub reads: &'a [BlockEntry],
}

/// Stores the block `parts` describes, indexes its requests and drops the
/// pending writes it seals, without decoding them (see the module doc).
pub fn append_sealed(conn: &Connection, parts: SealedParts<'_>) -> Result<(), LedgerError> {
    let writes = parts.writes.len() as u64;
    let n = i64::try_from(writes).unwrap_or(i64::MAX);
    let count = i64::try_from(parts.header.count).unwrap_or(i64::MAX);
    let height = i64::try_from(parts.header.height).unwrap_or(i64::MAX);
    // SqlBlock = header, producer_key, signature, writes, reads.
    let mut data = Vec::new();
    data.extend_from_slice(&SqlBlock::VERSION.to_le_bytes());
    data.extend_from_slice(&codec::encode(parts.header)?);
    data.extend_from_slice(&codec::encode(parts.producer_key)?);
    data.extend_from_slice(&codec::encode(parts.signature)?);
    data.extend_from_slice(&codec::encode(&writes)?);
    // The rows come from the writer's index, so only their ends are
    // checked (reading every row cost more than the rest of sealing): no
    // row after the last sealed one is ever deleted, so the oldest `n`
    // pending rows run from the oldest one, `n` in a row.
    let first_seq = parts.writes.first().map(|(_, r)| r.seq);
    let last_seq = parts.writes.last().map(|(_, r)| r.seq);
    if let (Some(first), Some(last)) = (first_seq, last_seq) {
        let (oldest, has_last): (Option<i64>, bool) = conn
            .prepare_cached(concat!(
                "SELECT (SELECT seq FROM _covenant_pending WHERE seq > ",
                sealed_upto!(),
                " ORDER BY seq LIMIT 1), EXISTS (SELECT 1 FROM _covenant_pending WHERE seq = ?1)"
            ))
            .and_then(|mut s| s.query_row(params![last], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(sql("read sealed pending"))?;
        if oldest != Some(first) || !has_last || last.checked_sub(first) != Some(n - 1) {
            return Err(LedgerError::Corrupt(format!(
                "block {} seals rows {first}..={last} as its {n} writes, but they are not \
                 the oldest pending rows (the oldest is {})",
                parts.header.count,
                oldest.map_or("none".to_string(), |o| o.to_string())
            )));
        }
    }
    // The writes stay where they are; the block row holds the rest.
    let split = i64::try_from(data.len()).unwrap_or(i64::MAX);
    data.extend_from_slice(&codec::encode(parts.reads)?);
    conn.prepare_cached(
        "INSERT INTO _covenant_blocks (count, height, hash, data, split, first_seq, last_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            count,
            height,
            parts.hash.as_bytes().as_slice(),
            data,
            split,
            first_seq,
            last_seq
        ])
    })
    .map_err(sql("write block"))?;
    // Indexed in key order: by time and id, or by id alone for rows
    // written before rows kept their request's timestamp.
    let mut by_time = Vec::with_capacity(parts.writes.len());
    let mut by_id = Vec::new();
    for (i, (id, row)) in parts.writes.iter().enumerate() {
        let i = i as i64;
        match row.timestamp {
            Some(t) => by_time.push((sql_time(t), id, i)),
            None => by_id.push((id, i)),
        }
    }
    by_time.sort_unstable();
    by_id.sort_unstable();
    {
        let mut insert = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO _covenant_requests_by_time (timestamp, hash, count, idx) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql("index requests"))?;
        for (t, id, i) in by_time {
            insert
                .execute(params![t, id.as_bytes().as_slice(), count, i])
                .map_err(sql("index requests"))?;
        }
        let mut legacy = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO _covenant_requests (hash, count, idx) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql("index requests"))?;
        for (id, i) in by_id {
            legacy
                .execute(params![id.as_bytes().as_slice(), count, i])
                .map_err(sql("index requests"))?;
        }
    }
    {
        let mut idx = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO _covenant_requests_by_time (timestamp, hash, count, idx) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql("index requests"))?;
        for (i, e) in parts.reads.iter().enumerate() {
            let h = e.request.hash()?;
            let i = n.saturating_add(i as i64);
            idx.execute(params![
                sql_time(e.request.body.timestamp),
                h.as_bytes().as_slice(),
                count,
                i
            ])
            .map_err(sql("index requests"))?;
        }
    }
    Ok(())
}

/// The last block's number, height and hash, without reading the block.
pub fn head_link(conn: &Connection) -> Result<Option<(u64, u64, Hash)>, LedgerError> {
    let row: Option<(i64, i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT count, height, hash FROM _covenant_blocks ORDER BY count DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(sql("read head"))?;
    row.map(|(count, height, hash)| {
        Ok((
            count.max(0) as u64,
            height.max(0) as u64,
            hash_column(&hash, "block hash")?,
        ))
    })
    .transpose()
}

/// A stored block row: its bytes without its writes, where they go, and
/// which `_covenant_pending` rows hold them (`split` NULL: `data` is whole).
type BlockRow = (Vec<u8>, Option<i64>, Option<i64>, Option<i64>);

/// Reads the block row `select` finds (with `args`) and rebuilds its
/// bytes, `encode_versioned(SqlBlock)`.
fn block_bytes(
    conn: &Connection,
    select: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<Vec<u8>>, LedgerError> {
    let row: Option<BlockRow> = conn
        .prepare_cached(select)
        .and_then(|mut s| {
            s.query_row(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
        })
        .map_err(sql("read block"))?;
    let Some((data, split, first, last)) = row else {
        return Ok(None);
    };
    let Some(split) = split else {
        return Ok(Some(data));
    };
    let split = usize::try_from(split).unwrap_or(usize::MAX);
    let (head, reads) = (data.get(..split), data.get(split..));
    let (Some(head), Some(reads)) = (head, reads) else {
        return Err(LedgerError::Corrupt(format!(
            "a block row splits {} bytes at {split}",
            data.len()
        )));
    };
    let mut bytes = head.to_vec();
    if let (Some(first), Some(last)) = (first, last) {
        let mut stmt = conn
            .prepare_cached(
                "SELECT entry FROM _covenant_pending WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
            )
            .map_err(sql("read block writes"))?;
        let mut rows = stmt
            .query(params![first, last])
            .map_err(sql("read block writes"))?;
        while let Some(row) = rows.next().map_err(sql("read block writes"))? {
            let entry = row
                .get_ref(0)
                .map_err(sql("read block writes"))?
                .as_blob()
                .map_err(|e| LedgerError::Corrupt(format!("a block's write: {e}")))?;
            bytes.extend_from_slice(entry);
        }
    }
    bytes.extend_from_slice(reads);
    Ok(Some(bytes))
}

/// The block `select` finds: its bytes decoded (the writes' count is in
/// the bytes' head, so a missing or extra write fails here).
fn read_block(
    conn: &Connection,
    select: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<SqlBlock>, LedgerError> {
    block_bytes(conn, select, args)?
        .map(|b| Ok(codec::decode_versioned(&b)?))
        .transpose()
}

/// How [`block_by_count`] finds its row.
const BLOCK_BY_COUNT: &str =
    "SELECT data, split, first_seq, last_seq FROM _covenant_blocks WHERE count = ?1";

/// The last block.
pub fn head(conn: &Connection) -> Result<Option<SqlBlock>, LedgerError> {
    read_block(
        conn,
        "SELECT data, split, first_seq, last_seq FROM _covenant_blocks
         WHERE count = (SELECT MAX(count) FROM _covenant_blocks)",
        &[],
    )
}

/// The block with number `count`.
pub fn block_by_count(conn: &Connection, count: u64) -> Result<Option<SqlBlock>, LedgerError> {
    read_block(
        conn,
        BLOCK_BY_COUNT,
        &[&i64::try_from(count).unwrap_or(i64::MAX)],
    )
}

/// The block with hash `hash`.
pub fn block_by_hash(conn: &Connection, hash: &Hash) -> Result<Option<SqlBlock>, LedgerError> {
    read_block(
        conn,
        "SELECT data, split, first_seq, last_seq FROM _covenant_blocks WHERE hash = ?1",
        &[&hash.as_bytes().as_slice()],
    )
}

/// What the request index is keyed by: a request's id and the timestamp
/// its (signed) body carries. Ordering by time first keeps each block's
/// entries together at the index's recent end; by id alone, every entry of
/// a block landed on a page of its own once the index was large (a block
/// of 6,000 writes rewrote 28.7 MB of a 3-million-entry index, 83 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey {
    /// The request id ([`SignedRequest::hash`]).
    pub id: Hash,
    /// Its body's timestamp (ms since the Unix epoch).
    pub timestamp: u64,
}

impl RequestKey {
    /// The key of `request`, whose id is `id`.
    pub fn of(request: &SignedRequest, id: Hash) -> RequestKey {
        RequestKey {
            id,
            timestamp: request.body.timestamp,
        }
    }
}

/// A timestamp as SQLite stores it (saturating: SQLite integers are signed).
fn sql_time(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Which block (number) and position hold the request `key` names.
pub fn locate(conn: &Connection, key: &RequestKey) -> Result<Option<(u64, u64)>, LedgerError> {
    locate_in(conn, key, true)
}

/// [`locate`], asking the id-keyed index only if `legacy` (it may hold entries).
fn locate_in(
    conn: &Connection,
    key: &RequestKey,
    legacy: bool,
) -> Result<Option<(u64, u64)>, LedgerError> {
    let at = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64));
    let id = key.id.as_bytes().as_slice();
    // Cached: applying asks for every write (see `applied_at`).
    let found = conn
        .prepare_cached(
            "SELECT count, idx FROM _covenant_requests_by_time WHERE timestamp = ?1 AND hash = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![sql_time(key.timestamp), id], at)
                .optional()
        })
        .map_err(sql("locate request"))?;
    if found.is_some() || !legacy {
        return Ok(found);
    }
    // Sealed before the index kept timestamps (empty in newer files).
    conn.prepare_cached("SELECT count, idx FROM _covenant_requests WHERE hash = ?1")
        .and_then(|mut s| s.query_row(params![id], at).optional())
        .map_err(sql("locate request"))
}

/// Where an applied request is: sealed in a block, or waiting for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedAt {
    /// In block `count` at position `idx`.
    Block {
        /// The block number.
        count: u64,
        /// The request's position among the block's writes.
        idx: u64,
    },
    /// Applied and pending: it goes into the next block.
    Pending,
}

/// Where the request `key` names was applied, if it was: a signed request
/// is applied at most once, so a replayed or resent one is recognised here.
/// `pending` must mirror the pending writes `conn` holds.
pub fn applied_at(
    conn: &Connection,
    pending: &PendingIndex,
    key: &RequestKey,
) -> Result<Option<AppliedAt>, LedgerError> {
    if pending.contains(&key.id) {
        return Ok(Some(AppliedAt::Pending));
    }
    Ok(locate_in(conn, key, pending.legacy)?.map(|(count, idx)| AppliedAt::Block { count, idx }))
}

/// The outcome the write of request `id`, applied at `at`, had: what a
/// resend of the request is answered with, so a client that lost the
/// answer can send it again without the write applying twice. `None` when
/// its row kept no outcome (written before outcomes were kept) or the
/// block holding it was stored whole. A write applied earlier in the
/// current (uncommitted) batch is found too. `pending` must mirror the
/// pending writes `conn` holds.
pub fn recorded_outcome(
    conn: &Connection,
    pending: &PendingIndex,
    id: &Hash,
    at: AppliedAt,
) -> Result<Option<Outcome>, LedgerError> {
    let id_bytes = id.as_bytes().as_slice();
    let stored: Option<Option<Vec<u8>>> = match (at, pending.seq_of(id)) {
        (AppliedAt::Block { count, idx }, _) => conn
            .prepare_cached(
                "SELECT p.outcome FROM _covenant_blocks b \
                 JOIN _covenant_pending p ON p.seq = b.first_seq + ?2 \
                 WHERE b.count = ?1 AND p.request = ?3",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        i64::try_from(count).unwrap_or(i64::MAX),
                        i64::try_from(idx).unwrap_or(i64::MAX),
                        id_bytes
                    ],
                    |r| r.get(0),
                )
                .optional()
            }),
        (AppliedAt::Pending, Some(seq)) => conn
            .prepare_cached("SELECT outcome FROM _covenant_pending WHERE seq = ?1 AND request = ?2")
            .and_then(|mut s| s.query_row(params![seq, id_bytes], |r| r.get(0)).optional()),
        // Applied earlier in this batch: among the rows after the newest
        // the index knows.
        (AppliedAt::Pending, None) => conn
            .prepare_cached(
                "SELECT outcome FROM _covenant_pending WHERE seq > ?1 AND request = ?2 \
                 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![pending.newest, id_bytes], |r| r.get(0))
                    .optional()
            }),
    }
    .map_err(sql("read a recorded outcome"))?;
    match stored.flatten() {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// What the replica's writer keeps in memory of the pending writes, oldest
/// first: request ids (what [`applied_at`] asks) and leaves and sizes (what
/// sealing asks). The caller keeps it in step with the file:
/// [`PendingIndex::push`] each write [`push_pending`] recorded and
/// [`PendingIndex::seal`] each block [`append_sealed`] stored, once their
/// transaction has committed; [`PendingIndex::load`] after the file changed
/// otherwise (opened, replaced by a snapshot).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PendingIndex {
    /// Request ids and rows, oldest first, as `_covenant_pending` orders them.
    order: VecDeque<(Hash, PendingRow)>,
    /// Each pending request id: how many times it is pending (once, unless
    /// an older file recorded a request twice before the at-most-once
    /// check) and the row of its first application.
    counts: HashMap<Hash, (u32, i64)>,
    /// The newest `_covenant_pending` row (sealed or not); 0 if none.
    newest: i64,
    /// Whether requests may be indexed by id alone (files from before the
    /// index kept timestamps): else applying skips that index.
    legacy: bool,
}

impl PendingIndex {
    /// The index of the pending writes `conn` holds.
    pub fn load(conn: &Connection) -> Result<PendingIndex, LedgerError> {
        let mut stmt = conn
            .prepare(concat!(
                "SELECT request, leaf, size, seq, timestamp FROM _covenant_pending WHERE seq > ",
                sealed_upto!(),
                " ORDER BY seq"
            ))
            .map_err(sql("read pending requests"))?;
        let mut rows = stmt.query([]).map_err(sql("read pending requests"))?;
        let mut index = PendingIndex::default();
        let blob = |row: &rusqlite::Row<'_>, i: usize, what: &str| -> Result<Hash, LedgerError> {
            let bytes = row
                .get_ref(i)
                .map_err(sql("read pending requests"))?
                .as_blob()
                .map_err(|e| LedgerError::Corrupt(format!("a {what}: {e}")))?;
            hash_column(bytes, what)
        };
        while let Some(row) = rows.next().map_err(sql("read pending requests"))? {
            let id = blob(row, 0, "pending request id")?;
            let leaf = blob(row, 1, "pending leaf")?;
            let size: i64 = row.get(2).map_err(sql("read pending requests"))?;
            let seq: i64 = row.get(3).map_err(sql("read pending requests"))?;
            let timestamp: Option<i64> = row.get(4).map_err(sql("read pending requests"))?;
            index.push(
                id,
                PendingRow {
                    seq,
                    timestamp: timestamp.map(|t| t.max(0) as u64),
                    leaf: PendingLeaf {
                        leaf,
                        size: size.max(0) as u64,
                    },
                },
            );
        }
        drop(rows);
        // Pending rows without a timestamp go there when they are sealed.
        index.legacy = index.order.iter().any(|(_, row)| row.timestamp.is_none())
            || conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM _covenant_requests)",
                    [],
                    |r| r.get(0),
                )
                .map_err(sql("read pending requests"))?;
        index.newest = conn
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM _covenant_pending",
                [],
                |r| r.get(0),
            )
            .map_err(sql("read pending requests"))?;
        Ok(index)
    }

    /// Whether the request `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.counts.contains_key(id)
    }

    /// The row of the request `id`'s first pending application.
    pub fn seq_of(&self, id: &Hash) -> Option<i64> {
        self.counts.get(id).map(|(_, seq)| *seq)
    }

    /// Notes the newest pending write: its request id, row, leaf and size.
    pub fn push(&mut self, id: Hash, row: PendingRow) {
        self.counts.entry(id).or_insert((0, row.seq)).0 += 1;
        self.newest = self.newest.max(row.seq);
        self.order.push_back((id, row));
    }

    /// The leaves and sizes of the oldest `limit` pending writes (all if
    /// `None`), oldest first: what [`pending_leaves`] reads from the file.
    pub fn leaves(&self, limit: Option<u64>) -> Vec<PendingLeaf> {
        let n = limit.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        self.order.iter().take(n).map(|(_, row)| row.leaf).collect()
    }

    /// The oldest `n` pending writes (fewer if fewer are pending): what a
    /// block sealing them stores ([`SealedParts::writes`]).
    pub fn oldest(&self, n: u64) -> Vec<(Hash, PendingRow)> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.order.iter().take(n).copied().collect()
    }

    /// Notes that a block sealed the oldest `writes` pending writes.
    pub fn seal(&mut self, writes: u64) {
        for _ in 0..writes {
            let Some((id, _)) = self.order.pop_front() else {
                return;
            };
            if let Some((n, _)) = self.counts.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    self.counts.remove(&id);
                }
            }
        }
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no write is pending.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{NodeId, Nonce, PrivateKey};
    use crate::sqlchain::query::{Args, Query};
    use crate::sqlchain::request::{QueryKind, RequestBody};
    use crate::types::DatabaseId;

    fn db() -> DatabaseId {
        DatabaseId(hash::hash(Tag::Message, b"ledger test"))
    }

    fn entry(k: &PrivateKey, i: u64, kind: QueryKind) -> BlockEntry {
        let body = RequestBody {
            database: db(),
            user: k.public_key().address(),
            timestamp: i,
            sequence: i,
            kind,
            read_level: Default::default(),
            queries: vec![Query {
                sql: format!("INSERT INTO t VALUES ({i}, 'value {i}')"),
                args: Args::default(),
            }],
        };
        BlockEntry {
            request: SignedRequest::sign(body, k).unwrap(),
            response_digest: hash::hash(Tag::Response, &i.to_le_bytes()),
            stamp: (kind == QueryKind::Write).then_some(Stamp {
                timestamp_ms: 1_700_000_000_000 + i,
                seed: [i as u8; 32],
            }),
        }
    }

    fn key(r: &SignedRequest) -> RequestKey {
        RequestKey::of(r, r.hash().unwrap())
    }

    fn push(conn: &Connection, e: &BlockEntry) -> PendingRow {
        let body = EncodedBody::of(&e.request).unwrap();
        push_pending(conn, &e.request, &body, &e.response_digest, e.stamp, None).unwrap()
    }

    fn stored_entries(conn: &Connection) -> Vec<Vec<u8>> {
        let mut stmt = conn
            .prepare("SELECT entry FROM _covenant_pending ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Seals the oldest `k` pending writes (given as `writes`) and `reads`
    /// the way the leader does, from the stored leaves.
    fn seal(
        conn: &Connection,
        miner: &PrivateKey,
        count: u64,
        parent: Hash,
        writes: &[BlockEntry],
        reads: &[BlockEntry],
    ) -> SqlBlock {
        let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
        let block = SqlBlock::seal(
            db(),
            count,
            count * 2,
            parent,
            10 + count,
            writes.to_vec(),
            reads.to_vec(),
            producer,
            miner,
        )
        .unwrap();
        let leaves: Vec<Hash> = pending_leaves(conn, Some(writes.len() as u64))
            .unwrap()
            .into_iter()
            .map(|p| p.leaf)
            .collect();
        assert_eq!(
            block::merkle_root(&leaves, reads).unwrap(),
            block.header.merkle_root,
            "the root from the stored leaves is the root over the entries"
        );
        let hash = block.hash().unwrap();
        let sealed = PendingIndex::load(conn)
            .unwrap()
            .oldest(writes.len() as u64);
        assert_eq!(sealed.len(), writes.len(), "that many writes are pending");
        append_sealed(
            conn,
            SealedParts {
                header: &block.header,
                producer_key: &block.producer_key,
                signature: &block.signature,
                hash: &hash,
                writes: &sealed,
                reads,
            },
        )
        .unwrap();
        block
    }

    #[test]
    fn pending_rows_hold_the_entry_encoding_leaf_and_size() {
        let conn = Connection::open_in_memory().unwrap();
        init(&conn).unwrap();
        let user = PrivateKey::generate().unwrap();
        let entries: Vec<_> = (0..5).map(|i| entry(&user, i, QueryKind::Write)).collect();
        for e in &entries {
            push(&conn, e);
        }
        let expected: Vec<Vec<u8>> = entries.iter().map(|e| codec::encode(e).unwrap()).collect();
        assert_eq!(stored_entries(&conn), expected);
        assert_eq!(pending(&conn).unwrap(), entries);
        assert_eq!(pending_len(&conn).unwrap(), 5);
        let leaves = pending_leaves(&conn, None).unwrap();
        let want: Vec<PendingLeaf> = entries
            .iter()
            .map(|e| PendingLeaf {
                leaf: e.leaf().unwrap(),
                size: e.request.size_hint() as u64,
            })
            .collect();
        assert_eq!(leaves, want);
        assert_eq!(pending_leaves(&conn, Some(2)).unwrap(), want[..2]);
    }

    #[test]
    fn sealed_blocks_are_byte_identical_to_encoded_blocks() {
        let conn = Connection::open_in_memory().unwrap();
        init(&conn).unwrap();
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let writes: Vec<_> = (0..7).map(|i| entry(&user, i, QueryKind::Write)).collect();
        let reads: Vec<_> = (100..103)
            .map(|i| entry(&user, i, QueryKind::Read))
            .collect();
        for e in &writes {
            push(&conn, e);
        }
        let genesis = seal(&conn, &miner, 0, Hash::ZERO, &[], &[]);
        let g_hash = genesis.hash().unwrap();
        assert_eq!(head_link(&conn).unwrap(), Some((0, 0, g_hash)));
        let b1 = seal(&conn, &miner, 1, g_hash, &writes[..4], &reads);
        let b2 = seal(&conn, &miner, 2, b1.hash().unwrap(), &writes[4..], &[]);
        assert_eq!(pending_len(&conn).unwrap(), 0);
        for b in [&genesis, &b1, &b2] {
            let data = block_bytes(&conn, BLOCK_BY_COUNT, &[&(b.header.count as i64)])
                .unwrap()
                .unwrap();
            assert_eq!(data, codec::encode_versioned(b).unwrap());
            let stored = block_by_count(&conn, b.header.count).unwrap().unwrap();
            assert_eq!(&stored, b);
            stored.verify().unwrap();
        }
        b2.verify_follows(&b1).unwrap();
        assert_eq!(head_link(&conn).unwrap(), Some((2, 4, b2.hash().unwrap())));
        for (i, e) in writes[..4].iter().chain(&reads).enumerate() {
            let at = locate(&conn, &key(&e.request)).unwrap();
            assert_eq!(at, Some((1, i as u64)));
        }
        for (i, e) in writes[4..].iter().enumerate() {
            let at = locate(&conn, &key(&e.request)).unwrap();
            assert_eq!(at, Some((2, i as u64)));
        }
    }

    #[test]
    fn sealing_rows_other_than_the_oldest_pending_is_refused_whole() {
        let conn = Connection::open_in_memory().unwrap();
        init(&conn).unwrap();
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let writes: Vec<_> = (1..=3).map(|i| entry(&user, i, QueryKind::Write)).collect();
        for e in &writes {
            push(&conn, e);
        }
        let block = SqlBlock::seal(
            db(),
            0,
            0,
            Hash::ZERO,
            1,
            writes[1..].to_vec(),
            vec![],
            NodeId::compute(&miner.public_key(), &Nonce::default()),
            &miner,
        )
        .unwrap();
        let pending = PendingIndex::load(&conn).unwrap().oldest(3);
        let fake = |seq: i64| {
            (
                pending[0].0,
                PendingRow {
                    seq,
                    ..pending[0].1
                },
            )
        };
        // Skipping the oldest, a row that does not exist, or a gap.
        for rows in [
            pending[1..].to_vec(),
            vec![pending[1], fake(9)],
            vec![pending[0], pending[2]],
        ] {
            let tx = conn.unchecked_transaction().unwrap();
            let err = append_sealed(
                &tx,
                SealedParts {
                    header: &block.header,
                    producer_key: &block.producer_key,
                    signature: &block.signature,
                    hash: &block.hash().unwrap(),
                    writes: &rows,
                    reads: &[],
                },
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("not the oldest pending rows"),
                "{err}"
            );
            drop(tx);
            assert_eq!(pending_len(&conn).unwrap(), 3);
            assert_eq!(head_link(&conn).unwrap(), None);
        }
    }

    #[test]
    fn an_old_pending_table_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let writes: Vec<_> = (0..3).map(|i| entry(&user, i, QueryKind::Write)).collect();
        {
            // The first schema: pending rows held only the encoded entry.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE _covenant_pending (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL);",
            )
            .unwrap();
            for e in &writes {
                conn.execute(
                    "INSERT INTO _covenant_pending (entry) VALUES (?1)",
                    params![codec::encode(e).unwrap()],
                )
                .unwrap();
            }
        }
        let conn = Connection::open(&path).unwrap();
        init(&conn).unwrap();
        init(&conn).unwrap(); // idempotent
        let leaves: Vec<Hash> = pending_leaves(&conn, None)
            .unwrap()
            .into_iter()
            .map(|p| p.leaf)
            .collect();
        let want: Vec<Hash> = writes.iter().map(|e| e.leaf().unwrap()).collect();
        assert_eq!(leaves, want);
        // New writes land after the old ones, and a block seals both.
        let newer = entry(&user, 9, QueryKind::Write);
        push(&conn, &newer);
        let mut all = writes.clone();
        all.push(newer);
        let b = seal(&conn, &miner, 0, Hash::ZERO, &all, &[]);
        assert_eq!(block_by_count(&conn, 0).unwrap().unwrap(), b);
        // Old rows (no timestamp kept) are indexed by id, the new one by
        // time and id: each is found where the block put it.
        let index = PendingIndex::load(&conn).unwrap();
        for (i, e) in all.iter().enumerate() {
            assert_eq!(
                locate(&conn, &key(&e.request)).unwrap(),
                Some((0, i as u64))
            );
            // Applying asks the id-keyed index too, since this file has one.
            assert_eq!(
                applied_at(&conn, &index, &key(&e.request)).unwrap(),
                Some(AppliedAt::Block {
                    count: 0,
                    idx: i as u64
                })
            );
        }
        let by_time: i64 = conn
            .query_row("SELECT COUNT(*) FROM _covenant_requests_by_time", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(by_time, 1);
    }

    #[test]
    fn blocks_stored_whole_still_read_and_later_blocks_keep_their_writes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.db");
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let writes: Vec<_> = (0..5).map(|i| entry(&user, i, QueryKind::Write)).collect();
        let old = SqlBlock::seal(
            db(),
            0,
            0,
            Hash::ZERO,
            10,
            writes[..2].to_vec(),
            vec![],
            NodeId::compute(&miner.public_key(), &Nonce::default()),
            &miner,
        )
        .unwrap();
        {
            // The previous schema: a block's row held the whole block, and
            // the pending rows it sealed were deleted; two writes are pending.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE _covenant_blocks (count INTEGER PRIMARY KEY, height INTEGER NOT NULL,
                     hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO _covenant_blocks (count, height, hash, data) VALUES (0, 0, ?1, ?2)",
                params![
                    old.hash().unwrap().as_bytes().as_slice(),
                    codec::encode_versioned(&old).unwrap()
                ],
            )
            .unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            for e in &writes[2..4] {
                push(&conn, e);
            }
        }
        let conn = Connection::open(&path).unwrap();
        init(&conn).unwrap();
        init(&conn).unwrap(); // idempotent
        assert_eq!(block_by_count(&conn, 0).unwrap().unwrap(), old);
        assert_eq!(pending(&conn).unwrap(), writes[2..4]);
        // A new block seals them where they are; the next write is pending.
        let b1 = seal(&conn, &miner, 1, old.hash().unwrap(), &writes[2..4], &[]);
        push(&conn, &writes[4]);
        assert_eq!(block_by_count(&conn, 1).unwrap().unwrap(), b1);
        assert_eq!(head(&conn).unwrap().unwrap(), b1);
        assert_eq!(pending(&conn).unwrap(), writes[4..]);
        assert_eq!(pending_len(&conn).unwrap(), 1);
        assert_eq!(PendingIndex::load(&conn).unwrap().len(), 1);
        assert_eq!(
            locate(&conn, &key(&writes[3].request)).unwrap(),
            Some((1, 1))
        );
        // A block that sealed nothing keeps the boundary where it was.
        let b2 = seal(&conn, &miner, 2, b1.hash().unwrap(), &[], &[]);
        assert_eq!(
            block_by_hash(&conn, &b2.hash().unwrap()).unwrap().unwrap(),
            b2
        );
        assert_eq!(pending(&conn).unwrap(), writes[4..]);
        // A block row whose writes went missing is refused, not misread.
        conn.execute(
            "UPDATE _covenant_blocks SET last_seq = first_seq WHERE count = 1",
            [],
        )
        .unwrap();
        assert!(block_by_count(&conn, 1).is_err());
    }

    #[test]
    fn the_pending_index_mirrors_the_pending_rows() {
        let conn = Connection::open_in_memory().unwrap();
        // A file from before the index was replaced: init drops it.
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch("CREATE INDEX _covenant_pending_request ON _covenant_pending (request)")
            .unwrap();
        init(&conn).unwrap();
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = '_covenant_pending_request'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let writes: Vec<_> = (0..6).map(|i| entry(&user, i, QueryKind::Write)).collect();
        let mut index = PendingIndex::default();
        for e in &writes {
            let row = push(&conn, e);
            assert_eq!(row.leaf.leaf, e.leaf().unwrap());
            index.push(e.request.hash().unwrap(), row);
        }
        assert_eq!(PendingIndex::load(&conn).unwrap(), index);
        assert_eq!(index.leaves(None), pending_leaves(&conn, None).unwrap());
        assert_eq!(
            index.leaves(Some(2)),
            pending_leaves(&conn, Some(2)).unwrap()
        );
        let first = writes[0].request.hash().unwrap();
        assert!(index.contains(&first));
        assert_eq!(
            applied_at(&conn, &index, &key(&writes[0].request)).unwrap(),
            Some(AppliedAt::Pending)
        );
        // Sealing the oldest four leaves two, and the sealed ones are found in the block.
        let genesis = seal(&conn, &miner, 0, Hash::ZERO, &writes[..4], &[]);
        index.seal(4);
        assert_eq!(index.len(), 2);
        assert_eq!(PendingIndex::load(&conn).unwrap(), index);
        assert!(!index.contains(&first));
        assert_eq!(
            applied_at(&conn, &index, &key(&writes[0].request)).unwrap(),
            Some(AppliedAt::Block { count: 0, idx: 0 })
        );
        assert_eq!(
            applied_at(&conn, &index, &key(&writes[5].request)).unwrap(),
            Some(AppliedAt::Pending)
        );
        seal(&conn, &miner, 1, genesis.hash().unwrap(), &writes[4..], &[]);
        index.seal(2);
        assert!(index.is_empty());
        assert_eq!(PendingIndex::load(&conn).unwrap(), index);
        let unknown = RequestKey {
            id: hash::hash(Tag::Request, b"never applied"),
            timestamp: 0,
        };
        assert_eq!(applied_at(&conn, &index, &unknown).unwrap(), None);
        // Found by id and timestamp: the same id at another time is another key.
        let elsewhere = RequestKey {
            timestamp: writes[0].request.body.timestamp + 1,
            ..key(&writes[0].request)
        };
        assert_eq!(applied_at(&conn, &index, &elsewhere).unwrap(), None);
    }

    #[test]
    fn a_resent_request_finds_the_outcome_its_write_had() {
        let conn = Connection::open_in_memory().unwrap();
        init(&conn).unwrap();
        let user = PrivateKey::generate().unwrap();
        let miner = PrivateKey::generate().unwrap();
        let outcome = |i: u64| {
            Outcome::Ok(vec![crate::sqlchain::query::QueryResult {
                affected_rows: i,
                ..Default::default()
            }])
        };
        let record = |e: &BlockEntry, o: Option<Outcome>| {
            let body = EncodedBody::of(&e.request).unwrap();
            let o = o.map(|o| codec::encode(&o).unwrap());
            push_pending(
                &conn,
                &e.request,
                &body,
                &e.response_digest,
                e.stamp,
                o.as_deref(),
            )
            .unwrap()
        };
        let writes: Vec<_> = (0..4).map(|i| entry(&user, i, QueryKind::Write)).collect();
        let mut index = PendingIndex::default();
        for (i, e) in writes.iter().enumerate() {
            // The last one as a row written before outcomes were kept.
            let row = record(e, (i < 3).then(|| outcome(i as u64)));
            index.push(e.request.hash().unwrap(), row);
        }
        let id = |i: usize| writes[i].request.hash().unwrap();
        let found = |index: &PendingIndex, i: usize| {
            let at = applied_at(&conn, index, &key(&writes[i].request))
                .unwrap()
                .unwrap();
            recorded_outcome(&conn, index, &id(i), at).unwrap()
        };
        assert_eq!(found(&index, 1), Some(outcome(1)));
        assert_eq!(found(&index, 3), None);

        // Sealed writes are found through their block, the rest as pending.
        seal(&conn, &miner, 0, Hash::ZERO, &writes[..2], &[]);
        index.seal(2);
        assert_eq!(
            applied_at(&conn, &index, &key(&writes[1].request)).unwrap(),
            Some(AppliedAt::Block { count: 0, idx: 1 })
        );
        assert_eq!(found(&index, 0), Some(outcome(0)));
        assert_eq!(found(&index, 1), Some(outcome(1)));
        assert_eq!(found(&index, 2), Some(outcome(2)));
        assert_eq!(PendingIndex::load(&conn).unwrap(), index);

        // A write recorded by the batch being applied, not yet in the index.
        let newer = entry(&user, 9, QueryKind::Write);
        record(&newer, Some(outcome(9)));
        let newer_id = newer.request.hash().unwrap();
        assert_eq!(
            recorded_outcome(&conn, &index, &newer_id, AppliedAt::Pending).unwrap(),
            Some(outcome(9))
        );
        // A position that holds another request finds nothing.
        assert_eq!(
            recorded_outcome(&conn, &index, &id(0), AppliedAt::Block { count: 0, idx: 1 }).unwrap(),
            None
        );
    }
}
