//! Per-connection memory settings of SQLite connections (the executor's
//! and the Raft logs').
//!
//! A miner hosts hundreds of mostly idle databases, each with a writer and a
//! reader connection, so per-connection overhead is what idle databases
//! cost. SQLite's lookaside allocator pre-allocates a slab per connection
//! (about 120 KiB by default) for small objects; turning it off cut the
//! resident memory of idle databases by about a third at no measurable write
//! throughput cost (see README's benchmark notes).
//!
//! Imports only `rusqlite`; the one `unsafe` call of this job is here.

use rusqlite::{Connection, ffi};

/// Turns SQLite's lookaside allocator off for `conn`. Call right after
/// opening, before any statement: SQLite refuses (busy) while lookaside
/// memory is in use, and then this returns its result code.
pub fn disable_lookaside(conn: &Connection) -> Result<(), i32> {
    // SAFETY: `handle()` is the live `sqlite3*` owned by `conn`, which
    // outlives this call and is not used concurrently (`&Connection` on this
    // thread; connections are `!Sync`). SQLITE_DBCONFIG_LOOKASIDE takes
    // exactly three more arguments (a buffer pointer, a slot size and a slot
    // count); a null buffer with zero size and count frees and disables the
    // lookaside slab, leaving SQLite to use its ordinary allocator.
    let rc = unsafe {
        ffi::sqlite3_db_config(
            conn.handle(),
            ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookaside_used(conn: &Connection) -> i32 {
        let (mut cur, mut high) = (0, 0);
        // SAFETY: the live handle of `conn`; two valid out-pointers.
        let rc = unsafe {
            ffi::sqlite3_db_status(
                conn.handle(),
                ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
                &mut cur,
                &mut high,
                0,
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        high
    }

    #[test]
    fn a_connection_without_lookaside_never_uses_it() {
        let plain = Connection::open_in_memory().unwrap();
        let lean = Connection::open_in_memory().unwrap();
        disable_lookaside(&lean).unwrap();
        for c in [&plain, &lean] {
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
                .unwrap();
        }
        assert!(lookaside_used(&plain) > 0);
        assert_eq!(lookaside_used(&lean), 0);
    }
}
