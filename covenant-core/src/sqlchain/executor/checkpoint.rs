//! WAL checkpoints off the apply path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold: that commit copies megabytes into the database file and
//! fsyncs it while the replica's next writes wait. Here the writer only
//! notes how long its WAL has grown (a WAL hook, read right after each
//! commit on the same thread); past [`BACKGROUND_PAGES`] it asks one
//! process-wide thread to run a `PASSIVE` checkpoint through a connection
//! of its own, which SQLite lets run beside the writer. If that
//! thread falls far behind, the writer checkpoints itself past
//! [`INLINE_PAGES`], so the WAL stays bounded.
//!
//! Each checkpoint opens its connection and closes it after (one per
//! thousand pages written; idle databases keep nothing for it), under a
//! lock that [`Checkpoints::close`] takes too: once it returns, nothing
//! touches the file any more.
//!
//! Imports rusqlite only; no consensus, no network.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

/// WAL pages after which a background checkpoint is asked for (SQLite's
/// own automatic threshold).
pub(super) const BACKGROUND_PAGES: i32 = 1000;
/// WAL pages after which the writer checkpoints itself. A writer that
/// never pauses keeps the WAL from restarting (SQLite rewinds it only when
/// a checkpoint has caught up between two transactions), so this also
/// bounds the WAL file: about 16 MiB. By then the background checkpoints
/// have copied nearly everything, so this one is short.
pub(super) const INLINE_PAGES: i32 = 4 * BACKGROUND_PAGES;
/// How long a checkpoint waits for a lock SQLite holds briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    /// The WAL length the last commit on this thread reported.
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The WAL hook: remembers the length for [`Checkpoints::after_commit`].
fn note_wal(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// What the checkpoint thread shares with one executor.
struct Shared {
    path: PathBuf,
    /// The writer's `synchronous` pragma value, for the checkpoint's connection.
    synchronous: &'static str,
    /// Whether the executor closed; held while a checkpoint runs, so
    /// closing waits for it.
    closed: Mutex<bool>,
    /// A checkpoint is queued and not done yet.
    queued: AtomicBool,
}

fn lock(m: &Mutex<bool>) -> MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Runs one passive checkpoint on a connection of its own, closed
    /// afterwards (an idle database keeps no connection or cache for it).
    fn run(&self) {
        let closed = lock(&self.closed);
        if *closed {
            return;
        }
        let done = open(&self.path, self.synchronous).and_then(|conn| passive(&conn));
        if let Err(e) = done {
            tracing::warn!(path = %self.path.display(), error = %e, "background checkpoint failed");
        }
        drop(closed);
    }
}

fn open(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    // Never creates: a file removed meanwhile is simply not checkpointed.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A checkpoint fsyncs as its connection's `synchronous` says, not the writer's.
    conn.execute_batch(&format!("PRAGMA synchronous = {synchronous}"))?;
    Ok(conn)
}

/// Copies what the WAL holds into the file, without waiting for the writer.
fn passive(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// The process-wide checkpoint thread, started on first use; `None` if it
/// could not be started (writers then checkpoint themselves).
fn worker() -> Option<&'static Mutex<Sender<Arc<Shared>>>> {
    static WORKER: OnceLock<Option<Mutex<Sender<Arc<Shared>>>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = channel::<Arc<Shared>>();
            let started = std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || {
                    for job in rx {
                        job.run();
                        job.queued.store(false, Ordering::Release);
                    }
                });
            match started {
                Ok(_) => Some(Mutex::new(tx)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the checkpoint thread; writers checkpoint inline");
                    None
                }
            }
        })
        .as_ref()
}

/// One executor's checkpoints.
pub(super) struct Checkpoints {
    shared: Arc<Shared>,
    /// The WAL length when the last background checkpoint was asked for.
    asked_at: Cell<i32>,
}

impl Checkpoints {
    /// Takes over checkpointing of `writer`'s file at `path` (SQLite's
    /// automatic checkpoints stop: the WAL hook replaces them); checkpoints
    /// run with the writer's `synchronous` value.
    pub(super) fn install(
        writer: &Connection,
        path: &Path,
        synchronous: &'static str,
    ) -> Checkpoints {
        writer.wal_hook(Some(note_wal));
        Checkpoints {
            shared: Arc::new(Shared {
                path: path.to_owned(),
                synchronous,
                closed: Mutex::new(false),
                queued: AtomicBool::new(false),
            }),
            asked_at: Cell::new(0),
        }
    }

    /// Called right after the writer committed, on the committing thread:
    /// asks for a checkpoint when the WAL is long, or runs one on `writer`
    /// when it is far too long.
    pub(super) fn after_commit(&self, writer: &Connection) {
        let pages = WAL_PAGES.with(|p| p.replace(0));
        if pages < self.asked_at.get() {
            // The WAL was rewound.
            self.asked_at.set(0);
        }
        if pages >= INLINE_PAGES {
            if let Err(e) = passive(writer) {
                tracing::warn!(path = %self.shared.path.display(), error = %e, "checkpoint failed");
            }
            return;
        }
        // Once per BACKGROUND_PAGES new pages, not after every commit while
        // the WAL stays long.
        if pages - self.asked_at.get() < BACKGROUND_PAGES
            || self.shared.queued.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.asked_at.set(pages);
        let sent = worker().is_some_and(|w| {
            w.lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(self.shared.clone())
                .is_ok()
        });
        if !sent {
            self.shared.queued.store(false, Ordering::Release);
            if let Err(e) = passive(writer) {
                tracing::warn!(path = %self.shared.path.display(), error = %e, "checkpoint failed");
            }
        }
    }

    /// Closes the checkpoint connection, waiting for a running checkpoint;
    /// none runs afterwards.
    pub(super) fn close(&self) {
        *lock(&self.shared.closed) = true;
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(path: &Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        c.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        c
    }

    /// Commits `n` rows of a page each, telling `cp` after every commit.
    fn write_pages(writer: &Connection, cp: &Checkpoints, n: i32) {
        let mut stmt = writer
            .prepare("INSERT INTO t VALUES (zeroblob(4000))")
            .unwrap();
        for _ in 0..n {
            stmt.execute([]).unwrap();
            cp.after_commit(writer);
        }
    }

    /// Waits until the checkpoint `cp` queued has been taken by the thread.
    fn wait_for_queued(cp: &Checkpoints) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while cp.shared.queued.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the queued checkpoint never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The database file's length: pages reach it only by checkpoints.
    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn a_long_wal_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = wal_db(&path);
        let cp = Checkpoints::install(&writer, &path, "NORMAL");
        // Each row fills a page: the WAL passes the threshold.
        write_pages(&writer, &cp, BACKGROUND_PAGES + 10);
        wait_for_queued(&cp);
        assert!(
            file_len(&path) > 4000 * BACKGROUND_PAGES as u64,
            "the rows were copied into the file"
        );
    }

    #[test]
    fn a_writer_that_never_pauses_keeps_its_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = wal_db(&path);
        let cp = Checkpoints::install(&writer, &path, "NORMAL");
        write_pages(&writer, &cp, 3 * INLINE_PAGES);
        let wal = std::fs::metadata(dir.path().join("db-wal")).unwrap().len();
        let bound = (INLINE_PAGES as u64 + 100) * (4096 + 24);
        assert!(wal < bound, "the WAL grew to {wal} bytes");
    }

    #[test]
    fn a_short_wal_is_left_alone_and_close_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = wal_db(&path);
        let cp = Checkpoints::install(&writer, &path, "NORMAL");
        let before = file_len(&path);
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        cp.after_commit(&writer);
        assert_eq!(file_len(&path), before);
        assert!(!cp.shared.queued.load(Ordering::Acquire));
        // Once closed, a queued checkpoint does nothing.
        cp.close();
        write_pages(&writer, &cp, BACKGROUND_PAGES + 10);
        wait_for_queued(&cp);
        cp.shared.run();
        assert_eq!(file_len(&path), before);
    }
}
