//! The writer's clock: a thin SQLite VFS whose current time is the write's stamp.
//!
//! SQLite reads the current time (`'now'`, `CURRENT_TIMESTAMP`, `unixepoch()`,
//! column defaults...) only through the `xCurrentTimeInt64` method of the
//! connection's VFS, once per statement. [`VFS_NAME`] is a copy of the
//! process's default VFS — the same file, lock, WAL/shared-memory and
//! `pAppData` fields, so files opened through it behave exactly as through
//! the default one, readers included — with its two time methods replaced.
//! They return the time a [`Frozen`] scope set on the calling thread, or,
//! outside any scope (the executor's own SQL between writes), the default
//! VFS's real clock. A thread-local is the only channel SQLite leaves: it
//! passes the time methods the VFS, not the connection; a write runs
//! synchronously on its caller's thread, so the scope covers exactly it.
//!
//! The VFS is registered once per process ([`register`]), never as the
//! default. Only the executor's writer connection opens files through it.
//!
//! Imports only std and `rusqlite::ffi`; every `unsafe` block is here.

use std::cell::Cell;
use std::ffi::{CStr, c_double, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::OnceLock;

use rusqlite::ffi;

/// Name of the clock VFS.
pub(crate) const VFS_NAME: &CStr = c"covenant-clock";

/// The Julian day of the Unix epoch in milliseconds: SQLite's clock unit.
const UNIX_EPOCH_JULIAN_MS: i64 = 210_866_760_000_000;

/// Milliseconds per day, for the floating-point `xCurrentTime`.
const MS_PER_DAY: c_double = 86_400_000.0;

thread_local! {
    /// The frozen time of the write running on this thread, in Julian milliseconds.
    static FROZEN_JULIAN_MS: Cell<Option<i64>> = const { Cell::new(None) };
}

/// The default VFS the clock VFS copies, kept to read the real clock.
struct Original(NonNull<ffi::sqlite3_vfs>);

// SAFETY: a registered `sqlite3_vfs` is immutable shared data that SQLite
// itself uses from every thread; we only read it and call its time method,
// which the SQLite VFS contract requires to be thread-safe.
unsafe impl Send for Original {}
// SAFETY: as above.
unsafe impl Sync for Original {}

static ORIGINAL: OnceLock<Original> = OnceLock::new();

/// Registers the clock VFS (once per process) and returns its name.
pub(crate) fn register() -> Result<&'static CStr, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(register_once)
        .clone()
        .map(|()| VFS_NAME)
}

fn register_once() -> Result<(), String> {
    // SAFETY: with a null name SQLite returns its default VFS (initializing
    // the library first if needed) or null; it takes its own mutex.
    let default = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
    let default = NonNull::new(default).ok_or("SQLite has no default VFS")?;
    // SAFETY: `default` points to a registered VFS, which stays valid for
    // the life of the process; `sqlite3_vfs` is plain data (integers and
    // pointers), so a bitwise copy is a valid value.
    let mut copy: ffi::sqlite3_vfs = unsafe { std::ptr::read(default.as_ptr()) };
    copy.zName = VFS_NAME.as_ptr();
    copy.pNext = std::ptr::null_mut();
    copy.xCurrentTime = Some(current_time);
    copy.xCurrentTimeInt64 = Some(current_time_int64);
    if ORIGINAL.set(Original(default)).is_err() {
        return Err("the clock VFS was set up twice".to_owned());
    }
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(copy));
    // SAFETY: the struct is leaked, so it outlives every connection; its
    // name is a 'static C string; every method is the default VFS's own
    // (with its own `pAppData`) or one of the two functions below.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(format!("sqlite3_vfs_register returned {rc}"))
    }
}

/// `timestamp_ms` (Unix milliseconds) as SQLite's clock value (Julian
/// milliseconds), saturating: an absurd stamp gives an out-of-range date,
/// which SQLite's date functions turn into NULL on every replica alike.
pub(crate) fn julian_ms(timestamp_ms: u64) -> i64 {
    i64::try_from(timestamp_ms)
        .unwrap_or(i64::MAX)
        .saturating_add(UNIX_EPOCH_JULIAN_MS)
}

/// While alive, SQLite's current time on this thread's clock-VFS
/// connections is the given stamp. Restores the previous value on drop.
pub(crate) struct Frozen {
    previous: Option<i64>,
    /// Bound to the thread whose clock it froze.
    _not_send: PhantomData<*const ()>,
}

impl Frozen {
    /// Freezes this thread's clock at `timestamp_ms` (Unix milliseconds).
    pub(crate) fn at(timestamp_ms: u64) -> Result<Frozen, String> {
        let now = julian_ms(timestamp_ms);
        let previous = FROZEN_JULIAN_MS
            .try_with(|c| c.replace(Some(now)))
            .map_err(|e| format!("cannot freeze the clock on this thread: {e}"))?;
        Ok(Frozen {
            previous,
            _not_send: PhantomData,
        })
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = FROZEN_JULIAN_MS.try_with(|c| c.set(self.previous));
    }
}

fn frozen() -> Option<i64> {
    FROZEN_JULIAN_MS.try_with(Cell::get).ok().flatten()
}

/// The default VFS's clock, in Julian milliseconds.
fn real_clock() -> Result<i64, c_int> {
    let vfs = ORIGINAL.get().ok_or(ffi::SQLITE_ERROR)?.0.as_ptr();
    // SAFETY: `vfs` is the registered default VFS (valid for the process).
    // Its time methods take the VFS and a valid out pointer, which we pass.
    unsafe {
        if (*vfs).iVersion >= 2
            && let Some(f) = (*vfs).xCurrentTimeInt64
        {
            let mut now: ffi::sqlite3_int64 = 0;
            let rc = f(vfs, &mut now);
            return if rc == ffi::SQLITE_OK {
                Ok(now)
            } else {
                Err(rc)
            };
        }
        if let Some(f) = (*vfs).xCurrentTime {
            let mut days: c_double = 0.0;
            let rc = f(vfs, &mut days);
            // Float-to-int `as` saturates; the real clock is far from the bounds.
            return if rc == ffi::SQLITE_OK {
                Ok((days * MS_PER_DAY) as i64)
            } else {
                Err(rc)
            };
        }
    }
    Err(ffi::SQLITE_ERROR)
}

fn now() -> Result<i64, c_int> {
    match frozen() {
        Some(now) => Ok(now),
        None => real_clock(),
    }
}

/// `xCurrentTimeInt64`: the frozen time, else the real clock.
unsafe extern "C" fn current_time_int64(
    _vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    if out.is_null() {
        return ffi::SQLITE_MISUSE;
    }
    match now() {
        Ok(now) => {
            // SAFETY: SQLite passes a valid, aligned pointer to its own
            // `sqlite3_int64` (checked non-null above).
            unsafe { out.write(now) };
            ffi::SQLITE_OK
        }
        Err(rc) => rc,
    }
}

/// `xCurrentTime` (older SQLite cores): the same time in Julian days.
unsafe extern "C" fn current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut c_double) -> c_int {
    if out.is_null() {
        return ffi::SQLITE_MISUSE;
    }
    match now() {
        Ok(now) => {
            // SAFETY: SQLite passes a valid, aligned pointer to its own
            // double (checked non-null above).
            unsafe { out.write(now as c_double / MS_PER_DAY) };
            ffi::SQLITE_OK
        }
        Err(rc) => rc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn open(dir: &std::path::Path) -> Connection {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        Connection::open_with_flags_and_vfs(dir.join("c.db"), flags, register().unwrap()).unwrap()
    }

    fn one(c: &Connection, sql: &str) -> String {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn frozen_time_is_what_sqlite_reads_and_is_restored() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        {
            let _f = Frozen::at(1_700_000_000_123).unwrap();
            assert_eq!(
                one(&c, "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"),
                "2023-11-14 22:13:20.123"
            );
            assert_eq!(one(&c, "SELECT CURRENT_TIMESTAMP"), "2023-11-14 22:13:20");
            {
                let _inner = Frozen::at(0).unwrap();
                assert_eq!(one(&c, "SELECT datetime('now')"), "1970-01-01 00:00:00");
            }
            assert_eq!(one(&c, "SELECT date('now')"), "2023-11-14");
        }
        // Unfrozen: the real clock (any year after 2024 will do).
        let year: String = one(&c, "SELECT strftime('%Y', 'now')");
        assert!(year.as_str() >= "2024", "{year}");
    }

    #[test]
    fn other_threads_and_connections_keep_the_real_clock() {
        let dir = tempfile::tempdir().unwrap();
        let _f = Frozen::at(0).unwrap();
        let plain = Connection::open_in_memory().unwrap();
        assert_ne!(one(&plain, "SELECT date('now')"), "1970-01-01");
        let path = dir.path().to_owned();
        let other = std::thread::spawn(move || one(&open(&path), "SELECT date('now')"))
            .join()
            .unwrap();
        assert_ne!(other, "1970-01-01");
    }

    #[test]
    fn absurd_stamps_saturate_into_null_dates() {
        assert_eq!(julian_ms(0), UNIX_EPOCH_JULIAN_MS);
        assert_eq!(julian_ms(u64::MAX), i64::MAX);
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let _f = Frozen::at(u64::MAX).unwrap();
        let d: Option<String> = c.query_row("SELECT date('now')", [], |r| r.get(0)).unwrap();
        assert_eq!(d, None);
    }

    #[test]
    fn registering_again_is_harmless() {
        assert_eq!(register().unwrap(), register().unwrap());
    }
}
