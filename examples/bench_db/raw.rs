//! The single-node yardstick: raw rusqlite doing the same inserts with the
//! same durability (WAL, `synchronous=FULL`, one transaction per insert),
//! in this process, no network, no signatures.

use std::time::{Duration, Instant};

/// Inserts `value` for `seconds` and returns inserts per second.
pub fn inserts_per_second(seconds: u64, value: &[u8]) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB);",
    )?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        conn.execute("INSERT INTO kv (v) VALUES (?1)", rusqlite::params![value])?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
