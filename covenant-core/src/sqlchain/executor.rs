//! The SQLite executor of one database on a miner.
//!
//! [`Executor`] owns the database's SQLite file: one writer connection, fed
//! the writes the database's Raft log commits, and a read-only connection
//! (more with [`Executor::reader`]) for read requests. Writes take
//! `&mut self`; the executor and its readers are `Send`, not `Sync`: give the
//! executor to one writer thread and each reader to one reading thread.
//!
//! - **A request is one transaction.** All statements of all queries of a
//!   write run in one SQLite transaction: all or nothing. User `BEGIN`,
//!   `COMMIT`, `SAVEPOINT`... are refused; no transaction spans requests.
//! - **Writes are deterministic.** They are replayed on every replica and
//!   from the chain. Under [`DeterminismPolicy::Resolve`] (the default) the
//!   writer resolves `random()` and `randomblob()` from the request's
//!   [`WriteEnv::seed`] (`executor/entropy.rs`) and the current time
//!   (`'now'`, `CURRENT_TIMESTAMP`, `unixepoch()`..., column defaults
//!   included) from [`WriteEnv::timestamp_ms`], through a clock VFS
//!   (`executor/clock.rs`); what no stamp can fix — the time zone,
//!   `total_changes()`, the SQLite version, a table at the largest rowid —
//!   is refused (`executor/determinism.rs`). So are temporary objects and
//!   connection-changing PRAGMAs, which would live on one replica only.
//!   `last_insert_rowid()` and `changes()` start at 0 in every request, as on
//!   a freshly opened replica. A write's time limit is a count of SQLite VM
//!   steps, identical on every replica, never a clock.
//! - **Reads use the real clock and real randomness**: they are answered by
//!   one replica and never replayed, and `SELECT date('now')` should say
//!   today. So does the executor's own SQL on the writer between requests
//!   ([`Executor::with_connection`], [`Executor::dump`]).
//! - **Reads are read-only** three times over: a read-only connection with
//!   `PRAGMA query_only`, `sqlite3_stmt_readonly()`, and an authorizer that
//!   denies every write action. They run in one snapshot per request, with a
//!   wall-clock timeout.
//! - **Durability** ([`FileDurability`]). By default WAL with
//!   `synchronous=NORMAL`: a power loss may drop the last transactions, never
//!   corrupt the file. A replica opens its file [`FileDurability::Rebuildable`]
//!   (`synchronous=OFF`, as hiqlite and rqlite run their state machines):
//!   nothing is fsynced, which is acceptable ONLY because the database's Raft
//!   log is fsynced before a write is applied and is the source of truth, and
//!   because a replica whose machine went down with the file open discards
//!   the file and rebuilds it from its stored snapshot and the log
//!   (`consensus/open_marker.rs`). Anything that writes this file outside
//!   the log must not rely on it surviving a crash. Checkpoints run in the background
//!   (`executor/checkpoint.rs`), every 1000 WAL pages as SQLite's
//!   automatic ones would, but not inside the commit that crosses the
//!   threshold: applying never waits for one.
//! - **Applying is cheap.** A Raft entry's writes run in one transaction
//!   ([`Executor::write_batch`]), the caller's per-write checks included
//!   ([`Executor::write_batch_admitting`]); the executor's own statements
//!   (transaction control, savepoints, determinism checks) are cached, and
//!   so are the column defaults an INSERT check reads (`executor/defaults.rs`).
//! - The chain's own tables (`_covenant_*`, [`HIDDEN_TABLE_PREFIX`]) share
//!   the file, written through [`Executor::write_with`] in the same
//!   transaction as the user's rows; user SQL can neither read nor write them.
//!
//! This module must not import the network, consensus or the main chain:
//! time and randomness arrive as a [`WriteEnv`] stamped by the Raft leader.

mod bind;
mod checkpoint;
mod clock;
mod defaults;
mod determinism;
mod entropy;
mod error;
mod guard;
mod lexer;
mod memory;
mod rowid_watch;
mod run;
mod show;

#[cfg(test)]
mod resolve_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

pub use determinism::DeterminismPolicy;
pub use error::{EXCERPT_CHARS, SqlError};
pub use guard::HIDDEN_TABLE_PREFIX;
pub use memory::disable_lookaside;

use checkpoint::Checkpoints;
use defaults::DefaultsCache;
use entropy::Entropy;
use guard::{Guard, Mode};
use rowid_watch::RowidWatch;
use run::Ctx;

use super::query::{Query, QueryResult};
use super::value::Value;

/// What the Raft leader stamps on each write entry, identical on every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WriteEnv {
    /// The leader's clock when it proposed the entry, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// Random bytes drawn by the leader for the entry.
    pub seed: [u8; 32],
}

/// Largest string, blob or row a statement may build or store (SQLite's
/// `SQLITE_LIMIT_LENGTH`, 1 GB by default, on every connection): bounds the
/// memory one request can make every replica allocate (`zeroblob(1e9)`), and
/// no larger value fits in a network frame anyway. Part of the chain
/// format: a write that exceeds it fails alike on every replica.
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Bounds on what one request may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most rows a request may return (all statements together).
    pub max_rows: usize,
    /// Most bytes of values a request may return (all statements together).
    pub max_result_bytes: usize,
    /// Wall-clock limit of a read request.
    pub read_timeout: Duration,
    /// SQLite VM steps a write request may run: deterministic, unlike a clock.
    pub write_vm_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 100_000,
            max_result_bytes: 64 << 20,
            read_timeout: Duration::from_secs(30),
            // Roughly 10 to 60 seconds of work, depending on the statement.
            write_vm_steps: 5_000_000_000,
        }
    }
}

/// What the database file itself survives (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FileDurability {
    /// `synchronous=NORMAL`: a power loss may drop the last commits but
    /// never corrupts the file.
    #[default]
    Consistent,
    /// `synchronous=OFF`: nothing is fsynced until [`Executor::close`]. A
    /// crashed process loses nothing (the kernel holds every write), but a
    /// power loss or kernel crash may corrupt the file, so only a caller
    /// that can rebuild it (a replica, from its snapshot and Raft log) may
    /// choose this.
    Rebuildable,
}

impl FileDurability {
    /// The `synchronous` pragma value for it.
    fn pragma(self) -> &'static str {
        match self {
            FileDurability::Consistent => "NORMAL",
            FileDurability::Rebuildable => "OFF",
        }
    }
}

/// How an [`Executor`] runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Request limits.
    pub limits: Limits,
    /// What the file survives.
    pub durability: FileDurability,
    /// What happens to non-deterministic writes.
    pub determinism: DeterminismPolicy,
}

/// SQLite's wait for a lock held by another connection of this process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// Transaction control, run as cached statements: each runs once per write
// or per batch, and parsing them anew every time shows in profiles.
/// Opens the write transaction.
const BEGIN: &str = "BEGIN IMMEDIATE";
/// Commits it.
const COMMIT: &str = "COMMIT";
/// Drops it.
const ROLLBACK: &str = "ROLLBACK";
/// Opens the savepoint around a request's user statements, inside the write transaction.
const OPEN_REQUEST_SAVEPOINT: &str = "SAVEPOINT covenant_request";
/// Undoes the request's statements (the savepoint stays open).
const UNDO_REQUEST_SAVEPOINT: &str = "ROLLBACK TO covenant_request";
/// Closes the savepoint, keeping what it holds.
const RELEASE_REQUEST_SAVEPOINT: &str = "RELEASE covenant_request";

/// Prepared statements the writer keeps: the executor's own that run per
/// write (transaction control, the ledger's, the determinism checks') and
/// per seal must all stay cached (rusqlite's default keeps 16). Each costs
/// a few KiB, and only statements that ran take room.
const STATEMENT_CACHE: usize = 32;

/// What one write request produced: a result per statement, or why it failed.
pub type WriteOutcome = Result<Vec<QueryResult>, SqlError>;

/// One request of a batch given to [`Executor::write_batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The request's queries.
    pub queries: &'a [Query],
    /// The leader's stamp for it.
    pub env: WriteEnv,
}

/// What a batch did with one of its requests (see [`Executor::write_batch_admitting`]).
#[derive(Debug)]
pub enum Batched<T, S> {
    /// The request ran with this outcome, and `record` returned `T`.
    Ran(WriteOutcome, T),
    /// `admit` kept it from running, saying `S`; nothing was recorded.
    Refused(S),
}

/// How running one request inside a batch ended.
enum RequestRun {
    /// The request ran (or failed and undid itself); the transaction goes on.
    Done(Result<Vec<QueryResult>, SqlError>),
    /// The request failed and SQLite dropped the whole transaction; a new one is open.
    TransactionLost(SqlError),
}

/// The rows of every table, in a stable order: `(table, rows)`.
pub type Dump = Vec<(String, Vec<Vec<Value>>)>;

/// Owns one database's SQLite file.
pub struct Executor {
    path: PathBuf,
    options: ExecutorOptions,
    writer: Connection,
    guard: Guard,
    /// The writer's seeded `random()`/`randomblob()`, when the policy resolves them.
    entropy: Option<Entropy>,
    /// Notes rows the writer gives the largest rowid.
    rowids: RowidWatch,
    /// Whether a table may hold the largest rowid, so inserts must check (see run.rs).
    strict_rowids: bool,
    /// Column defaults the determinism check reads; cleared on every rollback.
    defaults: DefaultsCache,
    /// Moves the WAL into the file in the background (see checkpoint.rs).
    checkpoints: Checkpoints,
    reader: Reader,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Opens (creating if missing) the database file with default options.
    pub fn open(path: &Path) -> Result<Executor, SqlError> {
        Executor::open_with(path, ExecutorOptions::default())
    }

    /// Opens (creating if missing) the database file.
    pub fn open_with(path: &Path, options: ExecutorOptions) -> Result<Executor, SqlError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SqlError::Storage {
                op: "create the database directory",
                message: format!("{}: {e}", dir.display()),
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let resolves = options.determinism.resolves();
        let writer = if resolves {
            let vfs = clock::register().map_err(|message| SqlError::Storage {
                op: "register the clock VFS",
                message,
            })?;
            Connection::open_with_flags_and_vfs(path, flags, vfs)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(SqlError::storage("open the database"))?;
        lean(&writer)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        configure_writer(&writer, options.durability)?;
        let entropy = if resolves {
            let e = Entropy::install(&writer)
                .map_err(SqlError::storage("install the seeded random functions"))?;
            Some(e)
        } else {
            None
        };
        let strict_rowids = options.determinism != DeterminismPolicy::Allow
            && run::any_table_at_max_rowid(&writer)?;
        let rowids = RowidWatch::install(&writer).map_err(|message| SqlError::Storage {
            op: "install the rowid watch",
            message,
        })?;
        let guard = Guard::install(&writer, options.determinism);
        let reader = Reader::open(path, options.limits.clone())?;
        let checkpoints = Checkpoints::install(&writer, path, options.durability.pragma());
        Ok(Executor {
            path: path.to_owned(),
            options,
            writer,
            guard,
            entropy,
            rowids,
            strict_rowids,
            defaults: DefaultsCache::default(),
            checkpoints,
            reader,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options it runs with.
    pub fn options(&self) -> &ExecutorOptions {
        &self.options
    }

    /// Runs a write request as one transaction: every statement of every
    /// query, all or nothing. Returns one result per statement, in order.
    pub fn write(
        &mut self,
        queries: &[Query],
        env: &WriteEnv,
    ) -> Result<Vec<QueryResult>, SqlError> {
        let (outcome, ()) = self.write_with(queries, env, |_, _| Ok::<(), SqlError>(()))?;
        outcome
    }

    /// Runs a write request, then `record` in the SAME transaction, then commits.
    ///
    /// Under [`DeterminismPolicy::Resolve`], `random()`, `randomblob()` and
    /// the current time come from `env` for the whole call, `record` included.
    ///
    /// The user's statements run inside a savepoint: if they fail, their
    /// changes are undone but the transaction goes on, so `record` (the
    /// chain's bookkeeping, with full access to the connection) can store the
    /// failed request too. The outer `Ok` carries the user's outcome; the
    /// outer `Err` means nothing was committed (storage failure or `record`
    /// failed).
    pub fn write_with<T, E, F>(
        &mut self,
        queries: &[Query],
        env: &WriteEnv,
        record: F,
    ) -> Result<(Result<Vec<QueryResult>, SqlError>, T), E>
    where
        E: From<SqlError>,
        F: FnOnce(&Connection, &Result<Vec<QueryResult>, SqlError>) -> Result<T, E>,
    {
        let mut record = Some(record);
        let mut out = self.write_batch(
            &[BatchItem { queries, env: *env }],
            |_, conn, outcome| match record.take() {
                Some(f) => f(conn, outcome),
                None => Err(SqlError::Storage {
                    op: "record",
                    message: "a single write was recorded twice".into(),
                }
                .into()),
            },
            |_| Ok(()),
        )?;
        out.pop().ok_or_else(|| {
            SqlError::Storage {
                op: "write",
                message: "a single write produced no outcome".into(),
            }
            .into()
        })
    }

    /// Runs several write requests in ONE SQLite transaction, each atomic on
    /// its own (a failed request undoes only itself), calling `record` after
    /// each (same transaction, with the request's stamp still in force) and
    /// `finish` before the commit.
    ///
    /// This is how a Raft entry holding a batch of client writes is applied:
    /// one commit for the batch, the same outcomes as running the requests
    /// one by one. If SQLite rolls the whole transaction back while running a
    /// request (an interrupted write does), the requests before it are run
    /// again, deterministically, and that request is recorded as failed.
    /// `record` may therefore be called again for an index it has seen; it
    /// must only write to the connection. The outer `Err` means nothing was
    /// committed.
    pub fn write_batch<T, E, F, G>(
        &mut self,
        items: &[BatchItem<'_>],
        record: F,
        finish: G,
    ) -> Result<Vec<(WriteOutcome, T)>, E>
    where
        E: From<SqlError>,
        F: FnMut(usize, &Connection, &Result<Vec<QueryResult>, SqlError>) -> Result<T, E>,
        G: FnOnce(&Connection) -> Result<(), E>,
    {
        let out = self.write_batch_admitting(
            items,
            |_, _| Ok::<Result<(), std::convert::Infallible>, E>(Ok(())),
            record,
            finish,
        )?;
        Ok(out
            .into_iter()
            .map(|b| match b {
                Batched::Ran(outcome, t) => (outcome, t),
                Batched::Refused(never) => match never {},
            })
            .collect())
    }

    /// [`Self::write_batch`], asking `admit` first, in the batch's
    /// transaction, whether to run each request: `Ok(Err(s))` skips it
    /// (nothing is run or recorded for it; its result is
    /// [`Batched::Refused`]`(s)`). `admit` sees what the requests before it
    /// recorded, so it can refuse a request the batch already holds. It is
    /// asked again if the batch is run again (see [`Self::write_batch`]), so
    /// it must only read the connection.
    pub fn write_batch_admitting<T, S, E, A, F, G>(
        &mut self,
        items: &[BatchItem<'_>],
        mut admit: A,
        mut record: F,
        finish: G,
    ) -> Result<Vec<Batched<T, S>>, E>
    where
        E: From<SqlError>,
        A: FnMut(usize, &Connection) -> Result<Result<(), S>, E>,
        F: FnMut(usize, &Connection, &Result<Vec<QueryResult>, SqlError>) -> Result<T, E>,
        G: FnOnce(&Connection) -> Result<(), E>,
    {
        // Outcomes decided by an earlier attempt: requests that made SQLite
        // drop the whole transaction are not run again.
        let mut decided: Vec<Option<SqlError>> = vec![None; items.len()];
        'attempt: loop {
            {
                self.guard.set_mode(Mode::Internal);
                begin(&self.writer, &self.defaults)?;
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                self.guard.set_mode(Mode::Internal);
                match admit(i, &self.writer) {
                    Ok(Ok(())) => {}
                    Ok(Err(refusal)) => {
                        out.push(Batched::Refused(refusal));
                        continue;
                    }
                    Err(e) => {
                        rollback(&self.writer, &self.defaults);
                        return Err(e);
                    }
                }
                // The executor's own SQL gave a row the largest rowid since
                // the last request: from now on, inserts check their tables.
                if self.rowids.take().is_some() {
                    self.strict_rowids = true;
                }
                // Held to the end of the request: SQLite reads the clock and
                // the seeded stream while statements step and in `record`.
                let _resolving = match &self.entropy {
                    Some(entropy) => {
                        let frozen = clock::Frozen::at(item.env.timestamp_ms).map_err(|message| {
                            SqlError::Storage {
                                op: "freeze the clock",
                                message,
                            }
                        });
                        match frozen {
                            Ok(f) => Some((f, entropy.scope(&item.env.seed))),
                            Err(e) => {
                                rollback(&self.writer, &self.defaults);
                                return Err(e.into());
                            }
                        }
                    }
                    None => None,
                };
                let outcome = match decided.get_mut(i).and_then(Option::take) {
                    Some(failed) => Err(failed),
                    None => match self.run_request(item.queries) {
                        Ok(RequestRun::Done(outcome)) => outcome,
                        Ok(RequestRun::TransactionLost(failed)) if i > 0 => {
                            // Earlier requests of the batch went with it: run them again.
                            if let Some(slot) = decided.get_mut(i) {
                                *slot = Some(failed);
                            }
                            continue 'attempt;
                        }
                        Ok(RequestRun::TransactionLost(failed)) => Err(failed),
                        Err(e) => {
                            rollback(&self.writer, &self.defaults);
                            return Err(e.into());
                        }
                    },
                };
                match record(i, &self.writer, &outcome) {
                    Ok(t) => out.push(Batched::Ran(outcome, t)),
                    Err(e) => {
                        rollback(&self.writer, &self.defaults);
                        return Err(e);
                    }
                }
            }
            let conn = &self.writer;
            if let Err(e) = finish(conn) {
                rollback(conn, &self.defaults);
                return Err(e);
            }
            commit(conn, &self.defaults)?;
            self.checkpoints.after_commit(conn);
            return Ok(out);
        }
    }

    /// Runs one request's statements inside its savepoint, in the open
    /// transaction; `Err` is a storage failure (the caller rolls back).
    fn run_request(&self, queries: &[Query]) -> Result<RequestRun, SqlError> {
        let conn = &self.writer;
        let guard = &self.guard;
        guard.set_mode(Mode::Internal);
        start_request(conn)?;
        run_cached(conn, OPEN_REQUEST_SAVEPOINT).map_err(SqlError::storage("savepoint"))?;
        guard.start_request(None, Some(self.options.limits.write_vm_steps));
        guard.set_mode(Mode::Write);
        let ctx = Ctx {
            conn,
            guard,
            mode: Mode::Write,
            limits: &self.options.limits,
            policy: self.options.determinism,
            rowids: Some(&self.rowids),
            strict_rowids: self.strict_rowids,
            defaults: Some(&self.defaults),
        };
        let outcome = run::run_queries(&ctx, queries);
        guard.set_mode(Mode::Internal);
        match outcome {
            Ok(results) => {
                run_cached(conn, RELEASE_REQUEST_SAVEPOINT)
                    .map_err(SqlError::storage("release"))?;
                Ok(RequestRun::Done(Ok(results)))
            }
            Err(failed) if conn.is_autocommit() => {
                // SQLite already rolled the whole transaction back (an
                // interrupt, a full disk): reopen it for the record.
                self.defaults.clear();
                run_cached(conn, BEGIN).map_err(SqlError::storage("begin"))?;
                Ok(RequestRun::TransactionLost(failed))
            }
            Err(failed) => {
                self.defaults.clear();
                run_cached(conn, UNDO_REQUEST_SAVEPOINT)
                    .and_then(|()| run_cached(conn, RELEASE_REQUEST_SAVEPOINT))
                    .map_err(SqlError::storage("roll back the request"))?;
                Ok(RequestRun::Done(Err(failed)))
            }
        }
    }

    /// Runs a read request in one snapshot on the executor's read connection.
    pub fn read(&self, queries: &[Query]) -> Result<Vec<QueryResult>, SqlError> {
        self.reader.read(queries)
    }

    /// A new read-only connection, for reads on other threads.
    pub fn reader(&self) -> Result<Reader, SqlError> {
        Reader::open(&self.path, self.options.limits.clone())
    }

    /// Runs `f` on the writer connection with every check off: for the
    /// chain's own tables, outside user requests. Not for user SQL.
    pub fn with_connection<T>(&mut self, f: impl FnOnce(&Connection) -> T) -> T {
        self.guard.set_mode(Mode::Internal);
        // `f` may roll back what it changes (see `DefaultsCache`).
        self.defaults.clear();
        f(&self.writer)
    }

    /// Runs `f` on the writer connection, like [`Self::with_connection`],
    /// inside one immediate transaction that commits if `f` succeeds and
    /// rolls back if it fails.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<SqlError>,
    {
        self.guard.set_mode(Mode::Internal);
        // `f` may roll back what it changes (see `DefaultsCache`).
        self.defaults.clear();
        let conn = &self.writer;
        begin(conn, &self.defaults)?;
        match f(conn) {
            Ok(t) => {
                commit(conn, &self.defaults)?;
                self.checkpoints.after_commit(conn);
                Ok(t)
            }
            Err(e) => {
                rollback(conn, &self.defaults);
                Err(e)
            }
        }
    }

    /// Moves the WAL's content into the database file and truncates the WAL.
    pub fn checkpoint(&mut self) -> Result<(), SqlError> {
        self.guard.set_mode(Mode::Internal);
        self.writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(SqlError::storage("checkpoint"))
    }

    /// Checkpoints and closes both connections, reporting failures. Once it
    /// returns `Ok`, every commit is on disk, whatever the durability.
    pub fn close(mut self) -> Result<(), SqlError> {
        self.checkpoints.close();
        self.checkpoint()?;
        if self.options.durability == FileDurability::Rebuildable {
            std::fs::File::open(&self.path)
                .and_then(|f| f.sync_all())
                .map_err(|e| SqlError::Storage {
                    op: "fsync the database",
                    message: format!("{}: {e}", self.path.display()),
                })?;
        }
        self.reader
            .conn
            .close()
            .map_err(|(_, e)| SqlError::storage("close the reader")(e))?;
        self.writer
            .close()
            .map_err(|(_, e)| SqlError::storage("close the writer")(e))
    }

    /// Every user table's rows, tables by name, rows by rowid (or primary key
    /// for WITHOUT ROWID tables). The first entry, `sqlite_schema`, holds the
    /// schema (`type, name, tbl_name, sql` by type and name), so two replicas
    /// are equal exactly when their dumps are. Chain tables are left out.
    pub fn dump(&self) -> Result<Dump, SqlError> {
        self.guard.set_mode(Mode::Internal);
        let conn = &self.writer;
        let q = |sql: &str| -> Result<Vec<Vec<Value>>, SqlError> {
            let mut stmt = conn.prepare(sql).map_err(SqlError::storage("dump"))?;
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())
                .map_err(SqlError::storage("dump"))?;
            rows.collect::<Result<Vec<Vec<Value>>, _>>()
                .map_err(SqlError::storage("dump"))
        };
        let user = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_covenant\\_%' ESCAPE '\\'";
        let mut out = vec![(
            "sqlite_schema".to_owned(),
            q(&format!(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE {user} ORDER BY type, name"
            ))?,
        )];
        let tables = q(&format!(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND {user} \
             AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
        ))?;
        for row in tables {
            let Some(Value::Text(table)) = row.into_iter().next() else {
                continue;
            };
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            let rows = match q(&format!("SELECT * FROM {quoted} ORDER BY _rowid_")) {
                Ok(rows) => rows,
                Err(_) => {
                    // WITHOUT ROWID: order by the primary key, which such tables must have.
                    let pk = q(&format!(
                        "SELECT name FROM pragma_table_info('{}') WHERE pk > 0 ORDER BY pk",
                        table.replace('\'', "''")
                    ))?;
                    let order: Vec<String> = pk
                        .into_iter()
                        .filter_map(|r| match r.into_iter().next() {
                            Some(Value::Text(c)) => Some(format!("\"{}\"", c.replace('"', "\"\""))),
                            _ => None,
                        })
                        .collect();
                    let order = if order.is_empty() {
                        "1".to_owned()
                    } else {
                        order.join(", ")
                    };
                    q(&format!("SELECT * FROM {quoted} ORDER BY {order}"))?
                }
            };
            out.push((table, rows));
        }
        Ok(out)
    }
}

/// Trims a fresh connection's fixed memory (many idle databases share a
/// miner); a refusal only costs memory, so it is logged, not returned.
/// Settings of every connection: no lookaside allocator, and values no
/// longer than [`MAX_VALUE_BYTES`].
fn lean(conn: &Connection) -> Result<(), SqlError> {
    if let Err(rc) = memory::disable_lookaside(conn) {
        tracing::warn!(rc, "SQLite kept its lookaside allocator");
    }
    let max = i32::try_from(MAX_VALUE_BYTES).unwrap_or(i32::MAX);
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, max)
        .map_err(SqlError::storage("limit value sizes"))?;
    Ok(())
}

/// Pragmas of the writer connection (see the module doc for `synchronous`).
fn configure_writer(conn: &Connection, durability: FileDurability) -> Result<(), SqlError> {
    let op = SqlError::storage;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(op("configure"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(op("configure"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(op("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqlError::Storage {
            op: "enable WAL",
            message: format!("SQLite kept journal_mode {mode}"),
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};
         PRAGMA foreign_keys = ON;
         CREATE TEMP TABLE IF NOT EXISTS covenant_reset (x);",
        durability.pragma()
    ))
    .map_err(op("configure"))
}

/// Makes `last_insert_rowid()` and `changes()` 0, as on a freshly opened
/// replica, so a request that reads them first gives the same answer everywhere.
fn start_request(conn: &Connection) -> Result<(), SqlError> {
    for sql in [
        "INSERT OR REPLACE INTO temp.covenant_reset (rowid, x) VALUES (0, 0)",
        "UPDATE temp.covenant_reset SET x = 0 WHERE 0",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map_err(SqlError::storage("start the request"))?;
    }
    Ok(())
}

/// Runs one of the executor's own statements that returns no rows, cached.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Opens the writer's write transaction, first rolling back one left open
/// (and with it what `defaults` read under it).
fn begin(conn: &Connection, defaults: &DefaultsCache) -> Result<(), SqlError> {
    if !conn.is_autocommit() {
        defaults.clear();
        run_cached(conn, ROLLBACK).map_err(SqlError::storage("reset the transaction"))?;
    }
    run_cached(conn, BEGIN).map_err(SqlError::storage("begin"))
}

/// Commits the writer's transaction; if that fails, rolls it back.
fn commit(conn: &Connection, defaults: &DefaultsCache) -> Result<(), SqlError> {
    run_cached(conn, COMMIT).map_err(|e| {
        rollback(conn, defaults);
        SqlError::storage("commit")(e)
    })
}

/// Rolls the writer's open transaction back, and with it what `defaults`
/// read under it.
fn rollback(conn: &Connection, defaults: &DefaultsCache) {
    defaults.clear();
    if !conn.is_autocommit()
        && let Err(e) = run_cached(conn, ROLLBACK)
    {
        tracing::warn!(error = %e, "rolling back a failed write");
    }
}

/// A read-only connection to a database.
pub struct Reader {
    conn: Connection,
    guard: Guard,
    limits: Limits,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Reader {
    fn open(path: &Path, limits: Limits) -> Result<Reader, SqlError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(SqlError::storage("open a read connection"))?;
        lean(&conn)?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(SqlError::storage("configure the reader"))?;
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(SqlError::storage("configure the reader"))?;
        let guard = Guard::install(&conn, DeterminismPolicy::Allow);
        Ok(Reader {
            conn,
            guard,
            limits,
        })
    }

    /// Runs a read request in one snapshot; a statement that writes is refused.
    pub fn read(&self, queries: &[Query]) -> Result<Vec<QueryResult>, SqlError> {
        let conn = &self.conn;
        self.guard.set_mode(Mode::Internal);
        if !conn.is_autocommit() {
            run_cached(conn, ROLLBACK).map_err(SqlError::storage("reset the read"))?;
        }
        run_cached(conn, "BEGIN").map_err(SqlError::storage("begin a read"))?;
        self.guard
            .start_request(Some(Instant::now() + self.limits.read_timeout), None);
        self.guard.set_mode(Mode::Read);
        let ctx = Ctx {
            conn,
            guard: &self.guard,
            mode: Mode::Read,
            limits: &self.limits,
            policy: DeterminismPolicy::Allow,
            rowids: None,
            strict_rowids: false,
            defaults: None,
        };
        let outcome = run::run_queries(&ctx, queries);
        self.guard.set_mode(Mode::Internal);
        if !conn.is_autocommit() {
            run_cached(conn, COMMIT).map_err(SqlError::storage("end a read"))?;
        }
        outcome
    }
}
