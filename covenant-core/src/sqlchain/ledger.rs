//! The chain's bookkeeping inside the database's own SQLite file.
//!
//! Blocks, the applied-but-unsealed writes ("pending"), the request index and
//! the consensus progress live in hidden `_covenant_*` tables of the same
//! file as the user's data, so one SQLite transaction covers a write's rows
//! and its record: after a crash the data and the chain can never disagree,
//! and a snapshot of the file carries both. User statements may not name
//! these tables (the executor refuses them; see
//! [`HIDDEN_TABLE_PREFIX`](super::executor::HIDDEN_TABLE_PREFIX)).

use rusqlite::{Connection, OptionalExtension, params};

use super::block::{BlockEntry, SqlBlock};
use crate::codec::{self, CodecError};
use crate::error::ErrorCode;
use crate::hash::Hash;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _covenant_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _covenant_blocks (
    count  INTEGER PRIMARY KEY,
    height INTEGER NOT NULL,
    hash   BLOB NOT NULL UNIQUE,
    data   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS _covenant_pending (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS _covenant_requests (
    hash  BLOB PRIMARY KEY,
    count INTEGER NOT NULL,
    idx   INTEGER NOT NULL
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

/// Creates the hidden tables if missing.
pub fn init(conn: &Connection) -> Result<(), LedgerError> {
    conn.execute_batch(SCHEMA).map_err(sql("create tables"))
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

/// Appends an applied write to the pending list.
pub fn push_pending(conn: &Connection, entry: &BlockEntry) -> Result<(), LedgerError> {
    let bytes = codec::encode(entry)?;
    conn.prepare_cached("INSERT INTO _covenant_pending (entry) VALUES (?1)")
        .and_then(|mut s| s.execute(params![bytes]))
        .map(|_| ())
        .map_err(sql("write pending"))
}

/// The applied writes not yet in a block, oldest first.
pub fn pending(conn: &Connection) -> Result<Vec<BlockEntry>, LedgerError> {
    let mut stmt = conn
        .prepare_cached("SELECT entry FROM _covenant_pending ORDER BY seq")
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
    conn.query_row("SELECT COUNT(*) FROM _covenant_pending", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
    .map_err(sql("count pending"))
}

/// Stores `block`, indexes its requests and drops the first
/// `block.writes.len()` pending writes (which it seals).
pub fn append_block(conn: &Connection, block: &SqlBlock, hash: &Hash) -> Result<(), LedgerError> {
    let data = codec::encode_versioned(block)?;
    let count = i64::try_from(block.header.count).unwrap_or(i64::MAX);
    let height = i64::try_from(block.header.height).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO _covenant_blocks (count, height, hash, data) VALUES (?1, ?2, ?3, ?4)",
        params![count, height, hash.as_bytes().as_slice(), data],
    )
    .map_err(sql("write block"))?;
    {
        let mut idx = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO _covenant_requests (hash, count, idx) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql("index requests"))?;
        for (i, e) in block.writes.iter().chain(&block.reads).enumerate() {
            let h = e.request.hash()?;
            idx.execute(params![h.as_bytes().as_slice(), count, i as i64])
                .map_err(sql("index requests"))?;
        }
    }
    let n = block.writes.len() as i64;
    conn.execute(
        "DELETE FROM _covenant_pending WHERE seq IN
           (SELECT seq FROM _covenant_pending ORDER BY seq LIMIT ?1)",
        params![n],
    )
    .map_err(sql("drop sealed pending"))?;
    Ok(())
}

fn decode_block(data: Vec<u8>) -> Result<SqlBlock, LedgerError> {
    Ok(codec::decode_versioned(&data)?)
}

/// The last block.
pub fn head(conn: &Connection) -> Result<Option<SqlBlock>, LedgerError> {
    let data: Option<Vec<u8>> = conn
        .query_row(
            "SELECT data FROM _covenant_blocks ORDER BY count DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read head"))?;
    data.map(decode_block).transpose()
}

/// The block with number `count`.
pub fn block_by_count(conn: &Connection, count: u64) -> Result<Option<SqlBlock>, LedgerError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let data: Option<Vec<u8>> = conn
        .query_row(
            "SELECT data FROM _covenant_blocks WHERE count = ?1",
            params![count],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read block"))?;
    data.map(decode_block).transpose()
}

/// The block with hash `hash`.
pub fn block_by_hash(conn: &Connection, hash: &Hash) -> Result<Option<SqlBlock>, LedgerError> {
    let data: Option<Vec<u8>> = conn
        .query_row(
            "SELECT data FROM _covenant_blocks WHERE hash = ?1",
            params![hash.as_bytes().as_slice()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read block"))?;
    data.map(decode_block).transpose()
}

/// Which block (number) and position hold the request `hash`.
pub fn locate(conn: &Connection, hash: &Hash) -> Result<Option<(u64, u64)>, LedgerError> {
    conn.query_row(
        "SELECT count, idx FROM _covenant_requests WHERE hash = ?1",
        params![hash.as_bytes().as_slice()],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .optional()
    .map_err(sql("locate request"))
}
