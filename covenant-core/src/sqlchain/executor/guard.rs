//! SQLite's own checkpoints on what a statement may touch and how long it may run.
//!
//! [`Guard`] installs two hooks on a connection:
//! - an **authorizer**, consulted by SQLite while it prepares a statement,
//!   also for the bodies of views and triggers the statement reaches. In the
//!   user modes ([`Mode::Read`], [`Mode::Write`]) it denies transaction
//!   control, ATTACH/DETACH, PRAGMAs outside a read-only list, temporary
//!   objects (they would live on one replica's connection only), the chain's
//!   hidden `_covenant_*` tables, `load_extension()`, every write in read
//!   mode and, in write mode, functions the [`DeterminismPolicy`] refuses.
//!   The reason is kept, so the caller can turn SQLite's bare "not
//!   authorized" into a clear error. [`Mode::Internal`] allows everything,
//!   for the executor's own SQL.
//! - a **progress handler**: reads stop at a wall-clock deadline; writes stop
//!   after a budget of VM steps, which is deterministic (every replica runs
//!   the same steps on the same data), where a clock is not.
//!
//! No statement execution here; the hooks only record and decide.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::determinism::{self, DeterminismPolicy};

/// Prefix of the chain's own tables inside a database file; user SQL may not name them.
pub const HIDDEN_TABLE_PREFIX: &str = "_covenant_";

/// SQLite VM instructions between two progress-handler calls.
pub(crate) const PROGRESS_OPS: u64 = 1000;

/// Whether `name` is one of the chain's hidden tables.
pub(crate) fn is_hidden(name: &str) -> bool {
    name.get(..HIDDEN_TABLE_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(HIDDEN_TABLE_PREFIX))
}

/// What the statements being prepared may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The executor's own SQL: anything.
    Internal,
    /// A user's read request.
    Read,
    /// A user's write request.
    Write,
}

/// Why the authorizer refused a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denial {
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE.
    Transaction,
    /// A write in a read request.
    Write,
    /// Not deterministic, with the reason.
    NonDeterministic(String),
    /// Never allowed, with the reason.
    NotAllowed(String),
}

/// Tables a statement inserts into (collected while it is prepared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Schema name (`main`).
    pub(crate) database: String,
    /// Table name.
    pub(crate) table: String,
    /// Whether a trigger does the insert (not the statement itself).
    pub(crate) by_trigger: bool,
}

struct AuthState {
    mode: Mode,
    policy: DeterminismPolicy,
    denial: Option<Denial>,
    inserted: Vec<Inserted>,
}

/// Why the progress handler interrupted a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trip {
    /// The read deadline passed.
    Deadline,
    /// The write step budget ran out.
    Budget,
}

#[derive(Default)]
struct Progress {
    active: AtomicBool,
    calls: AtomicU64,
    max_calls: AtomicU64,
    deadline: Mutex<Option<Instant>>,
    tripped: AtomicU8,
}

const TRIP_NONE: u8 = 0;
const TRIP_DEADLINE: u8 = 1;
const TRIP_BUDGET: u8 = 2;

impl Progress {
    fn tick(&self) -> bool {
        if !self.active.load(Ordering::Relaxed) {
            return false;
        }
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let max = self.max_calls.load(Ordering::Relaxed);
        if max > 0 && calls > max {
            self.tripped.store(TRIP_BUDGET, Ordering::Relaxed);
            return true;
        }
        if lock(&self.deadline).is_some_and(|d| Instant::now() >= d) {
            self.tripped.store(TRIP_DEADLINE, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Locks ignoring poisoning: the state stays consistent field by field.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The hooks installed on one connection, and the handle to steer them.
pub(crate) struct Guard {
    auth: Arc<Mutex<AuthState>>,
    progress: Arc<Progress>,
}

impl Guard {
    /// Installs the authorizer and the progress handler on `conn`, in internal mode.
    pub(crate) fn install(conn: &Connection, policy: DeterminismPolicy) -> Guard {
        let auth = Arc::new(Mutex::new(AuthState {
            mode: Mode::Internal,
            policy,
            denial: None,
            inserted: Vec::new(),
        }));
        let progress = Arc::new(Progress::default());
        let a = Arc::clone(&auth);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut st = lock(&a);
            match decide(&mut st, &ctx) {
                Ok(()) => Authorization::Allow,
                Err(d) => {
                    st.denial.get_or_insert(d);
                    Authorization::Deny
                }
            }
        }));
        let p = Arc::clone(&progress);
        let ops = i32::try_from(PROGRESS_OPS).unwrap_or(i32::MAX);
        conn.progress_handler(ops, Some(move || p.tick()));
        Guard { auth, progress }
    }

    /// Switches what statements prepared from now on may do.
    pub(crate) fn set_mode(&self, mode: Mode) {
        lock(&self.auth).mode = mode;
    }

    /// Forgets the previous statement's denial and inserted tables.
    pub(crate) fn begin_statement(&self) {
        let mut st = lock(&self.auth);
        st.denial = None;
        st.inserted.clear();
    }

    /// The reason of the last denial, if the authorizer denied something.
    pub(crate) fn take_denial(&self) -> Option<Denial> {
        lock(&self.auth).denial.take()
    }

    /// Tables the last prepared statement inserts into (directly or by triggers).
    pub(crate) fn take_inserted(&self) -> Vec<Inserted> {
        std::mem::take(&mut lock(&self.auth).inserted)
    }

    /// Starts a request's limits: a deadline (reads) and/or a VM step budget (writes).
    pub(crate) fn start_request(&self, deadline: Option<Instant>, step_budget: Option<u64>) {
        let p = &self.progress;
        p.calls.store(0, Ordering::Relaxed);
        let max_calls = step_budget.map_or(0, |b| (b / PROGRESS_OPS).max(1));
        p.max_calls.store(max_calls, Ordering::Relaxed);
        *lock(&p.deadline) = deadline;
        p.tripped.store(TRIP_NONE, Ordering::Relaxed);
    }

    /// Counts (and limits) only while a user statement steps, not while the executor's own SQL runs.
    pub(crate) fn set_stepping(&self, on: bool) {
        self.progress.active.store(on, Ordering::Relaxed);
    }

    /// Why the progress handler interrupted the last statement, if it did.
    pub(crate) fn take_trip(&self) -> Option<Trip> {
        match self.progress.tripped.swap(TRIP_NONE, Ordering::Relaxed) {
            TRIP_DEADLINE => Some(Trip::Deadline),
            TRIP_BUDGET => Some(Trip::Budget),
            _ => None,
        }
    }
}

/// Read-only PRAGMAs whose value is an argument (a table or index name, a limit).
const ARG_PRAGMAS: [&str; 10] = [
    "table_info",
    "table_xinfo",
    "index_info",
    "index_xinfo",
    "index_list",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "table_list",
];

/// PRAGMAs that may be queried (never set).
const QUERY_PRAGMAS: [&str; 19] = [
    "foreign_keys",
    "user_version",
    "application_id",
    "schema_version",
    "data_version",
    "encoding",
    "page_size",
    "page_count",
    "freelist_count",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "compile_options",
    "journal_mode",
    "synchronous",
    "auto_vacuum",
    "defer_foreign_keys",
    "recursive_triggers",
];

/// PRAGMAs a write may set: stored in the database itself, or reset at the end of the transaction.
const WRITE_PRAGMAS: [&str; 3] = ["user_version", "application_id", "defer_foreign_keys"];

fn pragma_allowed(mode: Mode, name: &str, value: Option<&str>) -> Result<(), Denial> {
    let n = name.to_ascii_lowercase();
    let listed = |list: &[&str]| list.contains(&n.as_str());
    if listed(&ARG_PRAGMAS) {
        if value.is_some_and(is_hidden) {
            return Err(hidden_denial(value.unwrap_or_default()));
        }
        return Ok(());
    }
    match value {
        None if listed(&QUERY_PRAGMAS) => Ok(()),
        Some(_) if mode == Mode::Write && listed(&WRITE_PRAGMAS) => Ok(()),
        Some(_) if mode == Mode::Read && listed(&WRITE_PRAGMAS) => Err(Denial::Write),
        _ => Err(Denial::NotAllowed(format!(
            "PRAGMA {name}{} would change the connection or the file of one replica only; \
             only read-only PRAGMAs (table_info, index_list, foreign_keys, ...) and setting \
             user_version, application_id or defer_foreign_keys are allowed",
            value.map(|v| format!(" = {v}")).unwrap_or_default()
        ))),
    }
}

fn hidden_denial(name: &str) -> Denial {
    Denial::NotAllowed(format!("{name} is one of the database chain's own tables"))
}

fn decide(st: &mut AuthState, ctx: &AuthContext<'_>) -> Result<(), Denial> {
    use AuthAction as A;
    let mode = st.mode;
    if mode == Mode::Internal {
        return Ok(());
    }
    if let Some(t) = table_of(&ctx.action)
        && is_hidden(t)
    {
        return Err(hidden_denial(t));
    }
    match &ctx.action {
        A::Transaction { .. } | A::Savepoint { .. } => return Err(Denial::Transaction),
        A::Attach { .. } | A::Detach { .. } => {
            return Err(Denial::NotAllowed(
                "ATTACH and DETACH would reach files outside this database".to_owned(),
            ));
        }
        A::Pragma {
            pragma_name,
            pragma_value,
        } => {
            return pragma_allowed(mode, pragma_name, *pragma_value);
        }
        A::Function { function_name } => {
            if function_name.eq_ignore_ascii_case("load_extension") {
                return Err(Denial::NotAllowed("extensions cannot be loaded".to_owned()));
            }
            if mode == Mode::Write
                && st.policy != DeterminismPolicy::Allow
                && let Some(reason) = determinism::function_reason(function_name, st.policy)
            {
                let reason = match ctx.accessor {
                    Some(obj) => format!("{reason} (called from the view or trigger {obj})"),
                    None => reason.to_owned(),
                };
                return Err(Denial::NonDeterministic(reason));
            }
            return Ok(());
        }
        A::Select | A::Read { .. } | A::Recursive => return Ok(()),
        _ => {}
    }
    if mode == Mode::Read {
        return Err(Denial::Write);
    }
    match &ctx.action {
        A::CreateTempIndex { .. }
        | A::CreateTempTable { .. }
        | A::CreateTempTrigger { .. }
        | A::CreateTempView { .. }
        | A::DropTempIndex { .. }
        | A::DropTempTable { .. }
        | A::DropTempTrigger { .. }
        | A::DropTempView { .. } => Err(Denial::NotAllowed(
            "temporary tables, views and triggers would exist on one replica's connection only; \
             use a regular table"
                .to_owned(),
        )),
        A::Insert { table_name } => {
            st.inserted.push(Inserted {
                database: ctx.database_name.unwrap_or("main").to_owned(),
                table: (*table_name).to_owned(),
                by_trigger: ctx.accessor.is_some(),
            });
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The table an action touches, when it names one.
fn table_of<'c>(action: &AuthAction<'c>) -> Option<&'c str> {
    use AuthAction as A;
    Some(match action {
        A::CreateIndex { table_name, .. }
        | A::CreateTable { table_name }
        | A::CreateTempIndex { table_name, .. }
        | A::CreateTempTable { table_name }
        | A::CreateTempTrigger { table_name, .. }
        | A::CreateTrigger { table_name, .. }
        | A::Delete { table_name }
        | A::DropIndex { table_name, .. }
        | A::DropTable { table_name }
        | A::DropTempIndex { table_name, .. }
        | A::DropTempTable { table_name }
        | A::DropTempTrigger { table_name, .. }
        | A::DropTrigger { table_name, .. }
        | A::Insert { table_name }
        | A::Read { table_name, .. }
        | A::Update { table_name, .. }
        | A::AlterTable { table_name, .. }
        | A::Analyze { table_name }
        | A::CreateVtable { table_name, .. }
        | A::DropVtable { table_name, .. } => table_name,
        A::CreateView { view_name } | A::DropView { view_name } => view_name,
        A::Reindex { index_name } => index_name,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> (Connection, Guard) {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(a); CREATE TABLE _covenant_x(a);")
            .unwrap();
        let g = Guard::install(&c, DeterminismPolicy::Refuse);
        (c, g)
    }

    fn denial(c: &Connection, g: &Guard, sql: &str) -> Option<Denial> {
        g.begin_statement();
        match c.prepare(sql) {
            Ok(_) => None,
            Err(_) => Some(g.take_denial().expect("denied without a recorded reason")),
        }
    }

    #[test]
    fn read_mode_denies_writes_and_allows_reads() {
        let (c, g) = conn();
        g.set_mode(Mode::Read);
        assert_eq!(denial(&c, &g, "SELECT a FROM t"), None);
        assert_eq!(denial(&c, &g, "PRAGMA table_info(t)"), None);
        assert_eq!(
            denial(&c, &g, "INSERT INTO t VALUES (1)"),
            Some(Denial::Write)
        );
        assert_eq!(denial(&c, &g, "CREATE TABLE u(a)"), Some(Denial::Write));
        assert_eq!(
            denial(&c, &g, "PRAGMA user_version = 3"),
            Some(Denial::Write)
        );
        assert_eq!(denial(&c, &g, "BEGIN"), Some(Denial::Transaction));
    }

    #[test]
    fn write_mode_refusals() {
        let (c, g) = conn();
        g.set_mode(Mode::Write);
        assert_eq!(denial(&c, &g, "INSERT INTO t VALUES (1)"), None);
        assert_eq!(denial(&c, &g, "PRAGMA user_version = 3"), None);
        assert!(matches!(
            denial(&c, &g, "PRAGMA journal_mode = DELETE"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "PRAGMA writable_schema = 1"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "ATTACH 'x.db' AS x"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "CREATE TEMP TABLE x(a)"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "SELECT * FROM _covenant_x"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "PRAGMA table_info(_covenant_x)"),
            Some(Denial::NotAllowed(_))
        ));
        assert!(matches!(
            denial(&c, &g, "SELECT load_extension('x')"),
            Some(Denial::NotAllowed(_))
        ));
        assert_eq!(denial(&c, &g, "SAVEPOINT s"), Some(Denial::Transaction));
        assert!(matches!(
            denial(&c, &g, "INSERT INTO t VALUES (random())"),
            Some(Denial::NonDeterministic(_))
        ));
        assert!(matches!(
            denial(&c, &g, "INSERT INTO t VALUES (CURRENT_TIMESTAMP)"),
            Some(Denial::NonDeterministic(_))
        ));
        g.set_mode(Mode::Internal);
        assert_eq!(denial(&c, &g, "BEGIN"), None);
    }

    #[test]
    fn functions_inside_views_and_triggers_are_seen() {
        let (c, g) = conn();
        c.execute_batch(
            "CREATE VIEW v AS SELECT random() AS r; CREATE TABLE log(a); \
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (randomblob(4)); END;",
        )
        .unwrap();
        g.set_mode(Mode::Write);
        let d = denial(&c, &g, "INSERT INTO t SELECT r FROM v");
        assert!(
            matches!(&d, Some(Denial::NonDeterministic(r)) if r.contains("v")),
            "{d:?}"
        );
        let d = denial(&c, &g, "INSERT INTO t VALUES (1)");
        assert!(
            matches!(&d, Some(Denial::NonDeterministic(r)) if r.contains("tr")),
            "{d:?}"
        );
    }

    #[test]
    fn resolve_policy_lets_resolvable_functions_through() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(a)").unwrap();
        let g = Guard::install(&c, DeterminismPolicy::Resolve);
        g.set_mode(Mode::Write);
        for sql in [
            "INSERT INTO t VALUES (random())",
            "INSERT INTO t VALUES (randomblob(4))",
            "INSERT INTO t VALUES (CURRENT_TIMESTAMP)",
        ] {
            assert_eq!(denial(&c, &g, sql), None, "{sql}");
        }
        assert!(matches!(
            denial(&c, &g, "INSERT INTO t VALUES (total_changes())"),
            Some(Denial::NonDeterministic(_))
        ));
        assert!(matches!(
            denial(&c, &g, "INSERT INTO t VALUES (sqlite_version())"),
            Some(Denial::NonDeterministic(_))
        ));
    }

    #[test]
    fn inserts_are_collected_with_trigger_flag() {
        let (c, g) = conn();
        c.execute_batch(
            "CREATE TABLE log(a); \
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (1); END;",
        )
        .unwrap();
        g.set_mode(Mode::Write);
        assert_eq!(denial(&c, &g, "INSERT INTO t VALUES (1)"), None);
        let got = g.take_inserted();
        assert!(got.contains(&Inserted {
            database: "main".into(),
            table: "t".into(),
            by_trigger: false
        }));
        assert!(got.contains(&Inserted {
            database: "main".into(),
            table: "log".into(),
            by_trigger: true
        }));
    }

    #[test]
    fn budget_interrupts_deterministically() {
        let (c, g) = conn();
        g.set_mode(Mode::Write);
        g.start_request(None, Some(50_000));
        g.set_stepping(true);
        let r: rusqlite::Result<i64> = c.query_row(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n",
            [],
            |r| r.get(0),
        );
        g.set_stepping(false);
        assert!(r.is_err());
        assert_eq!(g.take_trip(), Some(Trip::Budget));
        assert_eq!(g.take_trip(), None);
    }

    #[test]
    fn hidden_prefix_is_case_insensitive() {
        assert!(is_hidden("_Covenant_blocks"));
        assert!(!is_hidden("covenant"));
        assert!(!is_hidden("_cov"));
    }
}
