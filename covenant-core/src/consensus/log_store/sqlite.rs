//! The SQL a log store runs on its own SQLite connection: schema, format
//! check and every read and write, all synchronous and free of openraft.
//!
//! Only the writer threads ([`super::writer`]) call these, each on the
//! connection of a store pinned to it. A connection is kept small, because
//! a miner holds one per hosted database: a bounded page cache, no
//! lookaside buffer (SQLite's default reserves ~120 KB per connection for
//! it), and exclusive locking, which
//! also spares the WAL's shared-memory index (a 32 KiB mapping) and keeps a
//! second process from ever writing the same log. Must not import openraft
//! or tokio.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{LOG_FORMAT_VERSION, LogDurability, LogStoreError};
use crate::sqlchain::executor::disable_lookaside;

/// Most SQLite page cache a log connection keeps, in KiB. A log is appended
/// at its tail and read near it; a small cache is enough, and it keeps
/// hundreds of busy groups from holding SQLite's default 2 MiB each.
const CACHE_KIB: i64 = 256;

/// How long opening waits for an earlier connection to the same log (a
/// store of the same group being closed on its writer thread) to let go.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (or creates) the log database at `path` and checks its format.
pub(super) fn open(path: &Path, durability: LogDurability) -> Result<Connection, LogStoreError> {
    let open_err = |source| LogStoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    if let Err(rc) = disable_lookaside(&conn) {
        tracing::debug!(rc, "cannot turn off SQLite lookaside on a raft log");
    }
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let synchronous = match durability {
        LogDurability::Fsync => "FULL",
        LogDurability::Deferred => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA cache_size=-{CACHE_KIB};
         PRAGMA locking_mode=EXCLUSIVE;
         PRAGMA journal_mode=WAL;
         PRAGMA synchronous={synchronous};
         CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    ))
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
    Ok(conn)
}

/// Clamps an index into SQLite's signed integer range.
fn sql_index(i: u64) -> i64 {
    i.min(i64::MAX as u64) as i64
}

/// Writes every row of `batches` in one transaction (one commit, one fsync
/// in [`LogDurability::Fsync`] mode).
pub(super) fn append<'a>(
    conn: &mut Connection,
    batches: impl IntoIterator<Item = &'a [(u64, Vec<u8>)]>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare_cached("INSERT OR REPLACE INTO log(idx, entry) VALUES(?1, ?2)")?;
        for rows in batches {
            for (idx, bytes) in rows {
                stmt.execute(params![sql_index(*idx), bytes])?;
            }
        }
    }
    tx.commit()
}

/// Entries with `start <= idx < end` (no upper bound when `end` is `None`).
pub(super) fn read_range(
    conn: &Connection,
    start: u64,
    end: Option<u64>,
) -> rusqlite::Result<Vec<Vec<u8>>> {
    let end = sql_index(end.unwrap_or(u64::MAX));
    let mut stmt =
        conn.prepare_cached("SELECT entry FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")?;
    let rows = stmt.query_map(params![sql_index(start), end], |r| r.get::<_, Vec<u8>>(0))?;
    rows.collect()
}

/// The entry with the highest index, if any.
pub(super) fn last_entry(conn: &Connection) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT entry FROM log ORDER BY idx DESC LIMIT 1")?
        .query_row([], |r| r.get::<_, Vec<u8>>(0))
        .optional()
}

/// Deletes every entry at or after `index`.
pub(super) fn truncate_from(conn: &Connection, index: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM log WHERE idx >= ?1")?
        .execute(params![sql_index(index)])
        .map(|_| ())
}

/// Records `log_id` as the last purged id and deletes every entry up to `index`.
pub(super) fn purge(conn: &mut Connection, index: u64, log_id: &[u8]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES('last_purged', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![log_id],
    )?;
    tx.execute("DELETE FROM log WHERE idx <= ?1", params![sql_index(index)])?;
    tx.commit()
}

/// Sets (or with `None` deletes) a metadata value.
pub(super) fn put_meta(conn: &Connection, key: &str, value: Option<&[u8]>) -> rusqlite::Result<()> {
    match value {
        Some(v) => conn
            .prepare_cached(
                "INSERT INTO meta(key, value) VALUES(?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, v]),
        None => conn
            .prepare_cached("DELETE FROM meta WHERE key = ?1")?
            .execute(params![key]),
    }
    .map(|_| ())
}

/// A metadata value, if set.
pub(super) fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |r| r.get::<_, Vec<u8>>(0))
        .optional()
}

/// Makes every committed transaction durable on a `synchronous=NORMAL`
/// connection: a passive checkpoint fsyncs the WAL before copying it into
/// the database file (and fsyncs that file after).
pub(super) fn flush(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
