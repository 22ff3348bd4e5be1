//! Running a request's statements on a connection the caller has prepared.
//!
//! For each statement: refuse the kinds never run (transaction control,
//! ATTACH, VACUUM, `load_extension`, any mention of a `_covenant_*` table —
//! SQLite does not consult the authorizer for a view's body at CREATE VIEW),
//! translate SHOW/DESC, check determinism
//! (writes), prepare under the [`Guard`]'s authorizer, refuse writes in read
//! requests, bind arguments, check the column defaults an INSERT relies on,
//! then step and collect rows within the request's limits; refuse a write
//! that gave a row the largest rowid (SQLite then draws new rowids from its
//! process-wide random generator, which no seed controls).
//!
//! Transactions are the caller's (`executor.rs`): this module never begins,
//! commits or rolls back.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Statement};

use super::Limits;
use super::bind::Binder;
use super::defaults::{self, DefaultsCache};
use super::determinism::{self, DeterminismPolicy};
use super::error::{SqlError, excerpt};
use super::guard::{Denial, Guard, Inserted, Mode, Trip, is_hidden};
use super::lexer::{self, Piece, Token};
use super::rowid_watch::{MAX_ROWID, RowidWatch};
use super::show;
use crate::sqlchain::query::{Query, QueryResult};
use crate::sqlchain::value::Value;

/// Everything a request's statements run with.
pub(crate) struct Ctx<'a> {
    /// The connection, inside the caller's transaction.
    pub(crate) conn: &'a Connection,
    /// Its hooks, already in `mode`.
    pub(crate) guard: &'a Guard,
    /// Read or write.
    pub(crate) mode: Mode,
    /// Row, size and time limits.
    pub(crate) limits: &'a Limits,
    /// Which non-deterministic writes are resolved, refused or allowed.
    pub(crate) policy: DeterminismPolicy,
    /// The writer's watch for rows given [`MAX_ROWID`] (None for reads).
    pub(crate) rowids: Option<&'a RowidWatch>,
    /// Whether a table may already hold [`MAX_ROWID`] (written before the
    /// checks or by the executor's own SQL): then every insert checks the
    /// tables it wrote. Otherwise the watch suffices.
    pub(crate) strict_rowids: bool,
    /// The writer's cache of column defaults (None: read them every time).
    pub(crate) defaults: Option<&'a DefaultsCache>,
}

impl Ctx<'_> {
    fn checks_determinism(&self) -> bool {
        self.mode == Mode::Write && self.policy != DeterminismPolicy::Allow
    }
}

/// Rows and bytes returned so far in this request.
#[derive(Default)]
struct Spent {
    rows: usize,
    bytes: usize,
}

/// Runs every statement of every query, in order; one result per statement.
pub(crate) fn run_queries(ctx: &Ctx<'_>, queries: &[Query]) -> Result<Vec<QueryResult>, SqlError> {
    let mut out = Vec::new();
    let mut spent = Spent::default();
    for query in queries {
        let mut binder = Binder::new(&query.args)?;
        for piece in lexer::split(&query.sql) {
            out.push(run_statement(ctx, &piece, &mut binder, &mut spent)?);
        }
        binder.finish()?;
    }
    if out.is_empty() {
        return Err(SqlError::Empty);
    }
    Ok(out)
}

/// Statement kinds refused before SQLite sees them, for a clear message.
fn refuse_kind(tokens: &[Token<'_>], text: &str) -> Result<(), SqlError> {
    let Some(first) = tokens.first() else {
        return Ok(());
    };
    let not_allowed = |reason: &str| SqlError::NotAllowed {
        statement: excerpt(text),
        reason: reason.to_owned(),
    };
    if ["begin", "commit", "end", "rollback", "savepoint", "release"]
        .iter()
        .any(|kw| first.is_word(kw))
    {
        return Err(SqlError::TransactionControl {
            statement: excerpt(text),
        });
    }
    if first.is_word("attach") || first.is_word("detach") {
        return Err(not_allowed(
            "ATTACH and DETACH would reach files outside this database",
        ));
    }
    if first.is_word("vacuum") {
        return Err(not_allowed(
            "VACUUM rewrites the file outside any transaction (VACUUM INTO writes another file); \
             the miner maintains the database file itself",
        ));
    }
    if let Some(name) = tokens
        .iter()
        .filter_map(|t| t.ident())
        .find(|n| is_hidden(n))
    {
        return Err(not_allowed(&format!(
            "{name} is one of the database chain's own tables"
        )));
    }
    let calls_load_extension = tokens.windows(2).any(|w| {
        matches!(w, [f, p] if p.kind == lexer::Kind::LParen
            && f.ident().is_some_and(|n| n.eq_ignore_ascii_case("load_extension")))
    });
    if calls_load_extension {
        return Err(not_allowed("extensions cannot be loaded"));
    }
    Ok(())
}

fn denial_error(d: Denial, text: &str) -> SqlError {
    let statement = excerpt(text);
    match d {
        Denial::Transaction => SqlError::TransactionControl { statement },
        Denial::Write => SqlError::ReadOnlyViolation { statement },
        Denial::NonDeterministic(reason) => SqlError::NonDeterministic { statement, reason },
        Denial::NotAllowed(reason) => SqlError::NotAllowed { statement, reason },
    }
}

/// Maps a failure while preparing or stepping, preferring the hooks' own reasons.
fn failure(ctx: &Ctx<'_>, e: &rusqlite::Error, text: &str) -> SqlError {
    match ctx.guard.take_trip() {
        Some(Trip::Deadline) => {
            return SqlError::Timeout {
                statement: excerpt(text),
                limit: ctx.limits.read_timeout,
            };
        }
        Some(Trip::Budget) => {
            return SqlError::StepBudget {
                statement: excerpt(text),
                budget: ctx.limits.write_vm_steps,
            };
        }
        None => {}
    }
    match ctx.guard.take_denial() {
        Some(d) => denial_error(d, text),
        None => SqlError::from_sqlite(e, text),
    }
}

fn run_statement(
    ctx: &Ctx<'_>,
    piece: &Piece<'_>,
    binder: &mut Binder<'_>,
    spent: &mut Spent,
) -> Result<QueryResult, SqlError> {
    let text = piece.text;
    refuse_kind(&piece.tokens, text)?;
    let translated = show::translate(&piece.tokens, text)?;
    if ctx.checks_determinism()
        && translated.is_none()
        && let Some(reason) = determinism::scan(&piece.tokens, ctx.policy)
    {
        return Err(SqlError::NonDeterministic {
            statement: excerpt(text),
            reason,
        });
    }
    ctx.guard.begin_statement();
    let sql = translated.as_deref().unwrap_or(text);
    let mut stmt = ctx.conn.prepare(sql).map_err(|e| failure(ctx, &e, text))?;
    if ctx.mode == Mode::Read && !stmt.readonly() {
        return Err(SqlError::ReadOnlyViolation {
            statement: excerpt(text),
        });
    }
    let bound = binder.bind(&mut stmt, text)?;
    if !ctx.checks_determinism() {
        return execute(ctx, &mut stmt, text, spent);
    }
    if let Some(reason) = determinism::scan_args(&piece.tokens, &bound, ctx.policy) {
        return Err(SqlError::NonDeterministic {
            statement: excerpt(text),
            reason,
        });
    }
    let inserted = ctx.guard.take_inserted();
    check_defaults(ctx, &inserted, &piece.tokens, text)?;
    let result = execute(ctx, &mut stmt, text, spent);
    let reached = ctx.rowids.and_then(RowidWatch::take);
    let result = result?;
    if let Some(table) = reached {
        return Err(rowid_refusal(&table, "would hold", text));
    }
    if ctx.strict_rowids {
        check_rowids(ctx, &inserted, text)?;
    }
    Ok(result)
}

fn rowid_refusal(table: &str, verb: &str, text: &str) -> SqlError {
    SqlError::NonDeterministic {
        statement: excerpt(text),
        reason: format!(
            "table {table} {verb} the largest rowid ({MAX_ROWID}), after which SQLite picks \
             random rowids for new rows; keep rowids (INTEGER PRIMARY KEY values) below it"
        ),
    }
}

/// Refuses an INSERT that leaves a column to a non-deterministic DEFAULT.
fn check_defaults(
    ctx: &Ctx<'_>,
    inserted: &[Inserted],
    tokens: &[Token<'_>],
    text: &str,
) -> Result<(), SqlError> {
    if inserted.is_empty() {
        return Ok(());
    }
    let target = determinism::insert_target(tokens);
    ctx.guard.set_mode(Mode::Internal);
    let found = (|| -> Result<Option<String>, SqlError> {
        for ins in inserted {
            let defaults = match ctx.defaults {
                Some(cache) => cache.get(ctx.conn, &ins.database, &ins.table)?,
                None => defaults::read(ctx.conn, &ins.database, &ins.table)?,
            };
            for (column, dflt) in defaults.iter() {
                let Some(reason) = determinism::default_reason(dflt, ctx.policy) else {
                    continue;
                };
                let direct = !ins.by_trigger
                    && target
                        .as_ref()
                        .is_some_and(|t| t.table.eq_ignore_ascii_case(&ins.table));
                let uses_default =
                    !direct || target.as_ref().is_some_and(|t| t.uses_default_of(column));
                if uses_default {
                    let via = if ins.by_trigger {
                        " (through a trigger)"
                    } else {
                        ""
                    };
                    return Ok(Some(format!(
                        "the insert into {}{via} leaves column {column} to its {reason}; \
                         give the column a value",
                        ins.table
                    )));
                }
            }
        }
        Ok(None)
    })();
    ctx.guard.set_mode(ctx.mode);
    match found? {
        Some(reason) => Err(SqlError::NonDeterministic {
            statement: excerpt(text),
            reason,
        }),
        None => Ok(()),
    }
}

/// Refuses a write after which a table it inserted into holds [`MAX_ROWID`]
/// (strict mode: some table may have held it before the statement).
fn check_rowids(ctx: &Ctx<'_>, inserted: &[Inserted], text: &str) -> Result<(), SqlError> {
    if inserted.is_empty() {
        return Ok(());
    }
    ctx.guard.set_mode(Mode::Internal);
    let found = (|| -> Result<Option<&str>, SqlError> {
        for (i, ins) in inserted.iter().enumerate() {
            let seen = inserted
                .get(..i)
                .is_some_and(|before| before.iter().any(|b| b == ins));
            if !seen && at_max_rowid(ctx.conn, &ins.database, &ins.table)? {
                return Ok(Some(&ins.table));
            }
        }
        Ok(None)
    })();
    ctx.guard.set_mode(ctx.mode);
    match found? {
        Some(table) => Err(rowid_refusal(table, "holds", text)),
        None => Ok(()),
    }
}

/// Whether any rowid table of the connection holds [`MAX_ROWID`]. Run on
/// opening a writer: a file written before the checks, or under
/// `DeterminismPolicy::Allow`, may.
pub(crate) fn any_table_at_max_rowid(conn: &Connection) -> Result<bool, SqlError> {
    let tables = (|| -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = conn.prepare(
            "SELECT schema, name FROM pragma_table_list \
             WHERE type = 'table' AND wr = 0 AND schema <> 'temp'",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })()
    .map_err(SqlError::storage("list tables"))?;
    for (database, table) in tables {
        if at_max_rowid(conn, &database, &table)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `database.table` holds [`MAX_ROWID`], read through `_rowid_` (a
/// user column of that name shadows it; then that column is read). False for
/// SQLite's own tables and tables without rowid.
fn at_max_rowid(conn: &Connection, database: &str, table: &str) -> Result<bool, SqlError> {
    if table.to_ascii_lowercase().starts_with("sqlite_") {
        return Ok(false);
    }
    let sql = format!(
        "SELECT max(_rowid_) FROM {}.{}",
        quote(database),
        quote(table)
    );
    // No `_rowid_` (WITHOUT ROWID, some virtual tables): nothing to check.
    let Ok(mut stmt) = conn.prepare_cached(&sql) else {
        return Ok(false);
    };
    stmt.query_row([], |r| {
        Ok(matches!(r.get_ref(0)?, ValueRef::Integer(MAX_ROWID)))
    })
    .map_err(SqlError::storage("check the largest rowid"))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn execute(
    ctx: &Ctx<'_>,
    stmt: &mut Statement<'_>,
    text: &str,
    spent: &mut Spent,
) -> Result<QueryResult, SqlError> {
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let decl_types: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| {
            c.decl_type()
                .map(str::to_ascii_uppercase)
                .unwrap_or_default()
        })
        .collect();
    let width = columns.len();
    let total_before = ctx.conn.total_changes();
    ctx.guard.set_stepping(true);
    let stepped = collect_rows(ctx, stmt, width, spent);
    ctx.guard.set_stepping(false);
    let rows = match stepped {
        Ok(rows) => rows,
        Err(Step::Sqlite(e)) => return Err(failure(ctx, &e, text)),
        Err(Step::Limit(e)) => return Err(e),
    };
    let affected_rows = if ctx.conn.total_changes() > total_before {
        ctx.conn.changes()
    } else {
        0
    };
    Ok(QueryResult {
        columns,
        decl_types,
        rows,
        affected_rows,
        last_insert_id: ctx.conn.last_insert_rowid(),
    })
}

enum Step {
    Sqlite(rusqlite::Error),
    Limit(SqlError),
}

fn collect_rows(
    ctx: &Ctx<'_>,
    stmt: &mut Statement<'_>,
    width: usize,
    spent: &mut Spent,
) -> Result<Vec<Vec<Value>>, Step> {
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(Step::Sqlite)? {
        spent.rows += 1;
        if spent.rows > ctx.limits.max_rows {
            return Err(Step::Limit(SqlError::TooManyRows {
                limit: ctx.limits.max_rows,
            }));
        }
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let v = Value::from_sqlite(row.get_ref(i).map_err(Step::Sqlite)?);
            spent.bytes += v.size_hint();
            values.push(v);
        }
        if spent.bytes > ctx.limits.max_result_bytes {
            return Err(Step::Limit(SqlError::ResultTooLarge {
                limit: ctx.limits.max_result_bytes,
            }));
        }
        out.push(values);
    }
    Ok(out)
}
