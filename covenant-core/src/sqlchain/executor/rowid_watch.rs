//! Noting rows given SQLite's largest rowid, through a raw update hook.
//!
//! Once a table holds rowid [`MAX_ROWID`], SQLite gives new rows random
//! rowids drawn from its process-wide generator, which no seed controls, so
//! replicas would diverge. [`RowidWatch`] notes the first table a row with
//! that rowid is inserted or updated into (SQLite calls the hook for rowid
//! tables only; WITHOUT ROWID tables have no such fallback), and the
//! executor refuses the write that did it (`run.rs`).
//!
//! The hook is registered through `rusqlite::ffi` rather than rusqlite's safe
//! `update_hook`, which turns both names into `&str` for every row written:
//! about 250 instructions a row, 9% of a bulk `INSERT ... SELECT`. This one
//! compares the rowid first. Its state has two `Arc` references: the
//! watch's, and one owned by the connection as client data, which SQLite
//! releases when the connection closes — so the hook's pointer is valid
//! whenever SQLite can call it.
//!
//! Imports only std and rusqlite.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, ffi};

/// SQLite's largest rowid: once a table holds it, new rows get random rowids.
pub(crate) const MAX_ROWID: i64 = i64::MAX;

/// The name of the watch's client data on its connection.
const CLIENT_DATA: &CStr = c"covenant-rowid-watch";

#[derive(Default)]
struct State {
    /// The first table given a row with [`MAX_ROWID`] since last taken.
    first: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Notes the tables a connection gives a row with [`MAX_ROWID`].
pub(crate) struct RowidWatch {
    state: Arc<State>,
}

impl RowidWatch {
    /// Installs the watch on `conn` (replacing any update hook).
    pub(crate) fn install(conn: &Connection) -> Result<RowidWatch, String> {
        let state = Arc::new(State::default());
        let data = Arc::into_raw(Arc::clone(&state))
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: the handle of an open connection, used only during this
        // call, on the thread that holds `conn`.
        let db = unsafe { conn.handle() };
        // SAFETY: `db` is open and the name a NUL-terminated 'static string.
        // SQLite owns `data` (one Arc reference) from here and calls
        // `release` on it exactly once: before returning if it fails,
        // otherwise when the connection closes.
        let rc =
            unsafe { ffi::sqlite3_set_clientdata(db, CLIENT_DATA.as_ptr(), data, Some(release)) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_set_clientdata returned {rc}"));
        }
        // SAFETY: `data` stays valid until the connection closes (its client
        // data holds it), and SQLite calls no hook after that.
        unsafe { ffi::sqlite3_update_hook(db, Some(on_update), data) };
        Ok(RowidWatch { state })
    }

    /// The first table given a row with [`MAX_ROWID`] since the last call.
    pub(crate) fn take(&self) -> Option<String> {
        lock(&self.state.first).take()
    }
}

/// Client-data destructor: drops the connection's `Arc` reference.
unsafe extern "C" fn release(data: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` came from `Arc::into_raw` in `install`, and SQLite
        // releases it once.
        drop(unsafe { Arc::from_raw(data.cast_const().cast::<State>()) });
    }
}

/// The update hook: notes the table when a row gets [`MAX_ROWID`].
unsafe extern "C" fn on_update(
    data: *mut c_void,
    op: c_int,
    _database: *const c_char,
    table: *const c_char,
    rowid: ffi::sqlite3_int64,
) {
    if rowid != MAX_ROWID || op == ffi::SQLITE_DELETE || data.is_null() || table.is_null() {
        return;
    }
    // SAFETY: `data` is the `State` the connection's client data keeps alive
    // (see `install`); only shared access, through its mutex.
    let state = unsafe { &*data.cast_const().cast::<State>() };
    // SAFETY: SQLite passes the table name NUL-terminated, valid during the call.
    let table = unsafe { CStr::from_ptr(table) };
    lock(&state.first).get_or_insert_with(|| table.to_string_lossy().into_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_rowid_writes_are_noted() {
        let c = Connection::open_in_memory().unwrap();
        let w = RowidWatch::install(&c).unwrap();
        c.execute_batch(
            "CREATE TABLE t (a); CREATE TABLE k (id INTEGER PRIMARY KEY, a) WITHOUT ROWID;
             INSERT INTO t (rowid, a) VALUES (5, 1);
             INSERT INTO k VALUES (9223372036854775807, 1);",
        )
        .unwrap();
        assert_eq!(w.take(), None);
        c.execute_batch("UPDATE t SET rowid = 9223372036854775807")
            .unwrap();
        assert_eq!(w.take().as_deref(), Some("t"));
        assert_eq!(w.take(), None);
        c.execute_batch("DELETE FROM t").unwrap();
        assert_eq!(w.take(), None);
        c.execute_batch("INSERT INTO t (rowid, a) VALUES (9223372036854775807, 1)")
            .unwrap();
        assert_eq!(w.take().as_deref(), Some("t"));
    }

    #[test]
    fn the_state_outlives_the_watch_and_is_released_with_the_connection() {
        let c = Connection::open_in_memory().unwrap();
        let w = RowidWatch::install(&c).unwrap();
        let state = Arc::clone(&w.state);
        drop(w);
        c.execute_batch("CREATE TABLE t (a); INSERT INTO t (rowid) VALUES (9223372036854775807)")
            .unwrap();
        assert_eq!(lock(&state.first).as_deref(), Some("t"));
        assert_eq!(Arc::strong_count(&state), 2);
        c.close().unwrap();
        assert_eq!(Arc::strong_count(&state), 1);
    }
}
