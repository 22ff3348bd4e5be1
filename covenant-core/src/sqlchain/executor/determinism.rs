//! Finding writes whose result would differ between replicas.
//!
//! Writes are replayed on every replica and again from the chain, so a write
//! must compute the same rows everywhere. Left alone, `random()`,
//! `randomblob()`, the current time (`'now'`, `CURRENT_TIMESTAMP`, `date()`
//! with no time value, also as a column DEFAULT), the local time zone
//! (`'localtime'`, `'utc'`), `total_changes()` and `sqlite_version()` would
//! not. Under [`DeterminismPolicy::Resolve`] (the default) the executor
//! resolves the first three from the leader's `WriteEnv` (a seeded stream,
//! `entropy.rs`; a frozen clock, `clock.rs`), and only the rest is refused:
//! the time zone (each replica's own), `total_changes()` (counts since the
//! replica's connection opened) and the SQLite version (may differ during an
//! upgrade). Under [`DeterminismPolicy::Refuse`] all of them are refused.
//!
//! Layers, each catching what the previous cannot:
//! 1. [`scan`]: the statement's tokens (strings and comments respected, so
//!    `'nowhere'` or a column `now_col` pass; `date('now')` does not);
//! 2. [`scan_args`]: bound arguments such as `date(?)` with `'now'`;
//! 3. [`default_reason`]: at INSERT time, the target table's column defaults
//!    (`PRAGMA table_info(..).dflt_value`) the INSERT would use;
//! 4. [`function_reason`]: the executor's SQLite authorizer sees every
//!    function a statement calls, also inside views and triggers.
//!
//! Known gaps: a date function applied to stored data holding the text
//! `'localtime'` or `'utc'` (`UPDATE t SET d = datetime(d, col)`) is not
//! detected, nor are those modifiers inside views and triggers created
//! before these checks (their text is scanned only at CREATE). Under
//! `Refuse`, the same holds for stored `'now'`; under `Resolve`, `'now'`
//! anywhere is the stamp's time. The largest-rowid fallback to random
//! rowids is handled apart (`rowid_watch.rs`, `run.rs`).
//!
//! Pure functions over tokens and values: no SQLite connection here.

use super::lexer::{self, Kind, Token};
use crate::sqlchain::value::Value;

/// How writes that depend on randomness, the clock or the time zone are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeterminismPolicy {
    /// Resolve `random()`, `randomblob()` and the current time from the
    /// write's `WriteEnv`, identically on every replica and replay; refuse
    /// what cannot be resolved (time zone, `total_changes()`, SQLite version)
    /// with `SqlError::NonDeterministic`. For replicated databases.
    #[default]
    Resolve,
    /// Refuse every non-deterministic write, the resolvable ones included.
    Refuse,
    /// Run them as they are: only for a single, unreplicated database (e.g.
    /// the adapter's local development storage), never under Raft.
    Allow,
}

/// Date and time functions whose time value may be `'now'`.
const TIME_FUNCTIONS: [&str; 7] = [
    "date",
    "time",
    "datetime",
    "julianday",
    "unixepoch",
    "strftime",
    "timediff",
];

impl DeterminismPolicy {
    /// Whether the leader's stamp resolves `random()`, `randomblob()` and the clock.
    pub(crate) fn resolves(self) -> bool {
        self == DeterminismPolicy::Resolve
    }
}

/// Time-value strings and modifiers that depend on the clock or the time
/// zone, and are not resolved under `policy`.
fn clock_word(s: &str, policy: DeterminismPolicy) -> Option<&'static str> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        (!policy.resolves()).then_some("'now' reads the current time")
    } else if s.eq_ignore_ascii_case("localtime") || s.eq_ignore_ascii_case("utc") {
        Some("the 'localtime' and 'utc' modifiers depend on each replica's time zone")
    } else {
        None
    }
}

/// Why calling the function `name` in a write is not deterministic under
/// `policy`, if it is not.
pub(crate) fn function_reason(name: &str, policy: DeterminismPolicy) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "random" | "randomblob" | "current_timestamp" | "current_date" | "current_time"
            if policy.resolves() =>
        {
            return None;
        }
        "random" => "random() returns a different value on each replica",
        "randomblob" => "randomblob() returns different bytes on each replica",
        "current_timestamp" | "current_date" | "current_time" => {
            "CURRENT_TIMESTAMP, CURRENT_DATE and CURRENT_TIME read the current time"
        }
        "total_changes" => "total_changes() counts since the replica's connection opened",
        "sqlite_version" | "sqlite_source_id" => {
            "the SQLite version may differ between replicas during an upgrade"
        }
        _ => return None,
    })
}

/// Words after which `name (` names a table, view or CTE, not a function call.
const NOT_A_CALL_AFTER: [&str; 10] = [
    "table",
    "into",
    "on",
    "references",
    "view",
    "exists",
    "trigger",
    "index",
    "with",
    "recursive",
];

/// Whether the identifier at `i` followed by `(` is a function call.
fn is_call(tokens: &[Token<'_>], i: usize) -> bool {
    if tokens.get(i + 1).map(|t| t.kind) != Some(Kind::LParen) {
        return false;
    }
    // Step over a schema qualifier: `main.t(`.
    let mut p = i.checked_sub(1);
    if let Some(j) = p
        && tokens.get(j).map(|t| t.kind) == Some(Kind::Dot)
    {
        p = j.checked_sub(2);
    }
    match p.and_then(|j| tokens.get(j)) {
        Some(prev) => !NOT_A_CALL_AFTER.iter().any(|kw| prev.is_word(kw)),
        None => true,
    }
}

/// The lower-cased function name called at `i`, if `i` starts a call.
fn call_name(tokens: &[Token<'_>], i: usize) -> Option<String> {
    let t = tokens.get(i)?;
    let name = t.ident()?;
    is_call(tokens, i).then(|| name.to_ascii_lowercase())
}

struct Frame {
    time_fn: Option<&'static str>,
    commas: usize,
    nonempty: bool,
}

/// Why the statement's text is not deterministic under `policy`, if it is not.
pub(crate) fn scan(tokens: &[Token<'_>], policy: DeterminismPolicy) -> Option<String> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut pending_call: Option<&'static str> = None;
    for (i, tok) in tokens.iter().enumerate() {
        if let Some(top) = frames.last_mut()
            && !matches!(tok.kind, Kind::RParen | Kind::Comma)
        {
            top.nonempty = true;
        }
        match tok.kind {
            Kind::Word
                if !policy.resolves()
                    && ["current_timestamp", "current_date", "current_time"]
                        .iter()
                        .any(|kw| tok.is_word(kw)) =>
            {
                let upper = tok.text.to_ascii_uppercase();
                let is_default = i
                    .checked_sub(1)
                    .and_then(|j| tokens.get(j))
                    .is_some_and(|p| p.is_word("default"));
                return Some(if is_default {
                    format!(
                        "the column default {upper} reads the current time when a row is inserted"
                    )
                } else {
                    format!("{upper} reads the current time")
                });
            }
            Kind::Word | Kind::QuotedIdent => {
                if let Some(name) = call_name(tokens, i) {
                    if let Some(reason) = function_reason(&name, policy) {
                        return Some(reason.to_owned());
                    }
                    pending_call = TIME_FUNCTIONS.iter().copied().find(|f| *f == name);
                    continue;
                }
                // With double-quoted strings enabled, `date("now")` is `date('now')`.
                if tok.kind == Kind::QuotedIdent
                    && let Some(reason) = clock_in_time_call(tok, &frames, policy)
                {
                    return Some(reason);
                }
            }
            Kind::Str => {
                if let Some(reason) = clock_in_time_call(tok, &frames, policy) {
                    return Some(reason);
                }
            }
            Kind::LParen => {
                frames.push(Frame {
                    time_fn: pending_call.take(),
                    commas: 0,
                    nonempty: false,
                });
                continue;
            }
            Kind::Comma => {
                if let Some(top) = frames.last_mut() {
                    top.commas += 1;
                }
            }
            Kind::RParen => {
                if let Some(frame) = frames.pop()
                    && let Some(f) = frame.time_fn
                {
                    let args = if frame.nonempty { frame.commas + 1 } else { 0 };
                    let needs = if f == "strftime" { 1 } else { 0 };
                    if args == needs && f != "timediff" && !policy.resolves() {
                        return Some(format!("{f}() without a time value reads the current time"));
                    }
                }
            }
            _ => {}
        }
        pending_call = None;
    }
    None
}

fn clock_in_time_call(
    tok: &Token<'_>,
    frames: &[Frame],
    policy: DeterminismPolicy,
) -> Option<String> {
    let value = tok.name()?;
    let reason = clock_word(&value, policy)?;
    let f = frames.iter().rev().find_map(|fr| fr.time_fn)?;
    Some(format!("{reason} (in {f}())"))
}

/// Whether the statement calls a date or time function.
fn calls_time_function(tokens: &[Token<'_>]) -> Option<&'static str> {
    (0..tokens.len()).find_map(|i| {
        let name = call_name(tokens, i)?;
        TIME_FUNCTIONS.iter().copied().find(|f| *f == name)
    })
}

/// Why the statement is not deterministic under `policy` given the values
/// bound to it (`date(?)` with `'now'` or `'localtime'`), if it is not.
pub(crate) fn scan_args(
    tokens: &[Token<'_>],
    bound: &[&Value],
    policy: DeterminismPolicy,
) -> Option<String> {
    let f = calls_time_function(tokens)?;
    bound.iter().find_map(|v| match v {
        Value::Text(s) => clock_word(s, policy).map(|reason| {
            format!(
                "argument '{}' given to a statement calling {f}(): {reason}",
                s.trim()
            )
        }),
        _ => None,
    })
}

/// Why a column default expression (as `PRAGMA table_info` shows it) is
/// not deterministic under `policy`.
pub(crate) fn default_reason(dflt_value: &str, policy: DeterminismPolicy) -> Option<String> {
    let tokens = lexer::tokenize(dflt_value);
    scan(&tokens, policy)
        .map(|_| format!("DEFAULT {dflt_value} is evaluated on each replica at insert time"))
}

/// The table a top-level INSERT writes and the columns it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InsertTarget {
    /// The table name as written (unquoted).
    pub(crate) table: String,
    /// The explicit column list, if any (unquoted).
    pub(crate) columns: Option<Vec<String>>,
    /// `INSERT ... DEFAULT VALUES`: every column takes its default.
    pub(crate) default_values: bool,
}

impl InsertTarget {
    /// Whether the insert leaves `column` to its default value.
    pub(crate) fn uses_default_of(&self, column: &str) -> bool {
        if self.default_values {
            return true;
        }
        match &self.columns {
            // Without a column list every column is given a value (or the insert fails).
            None => false,
            Some(cols) => !cols.iter().any(|c| c.eq_ignore_ascii_case(column)),
        }
    }
}

/// Parses `[WITH ...] INSERT|REPLACE [OR x] INTO [schema.]table [AS a] [(cols)] ...`.
pub(crate) fn insert_target(tokens: &[Token<'_>]) -> Option<InsertTarget> {
    let mut i = 0;
    if tokens.first()?.is_word("with") {
        let mut depth = 0usize;
        loop {
            let t = tokens.get(i)?;
            match t.kind {
                Kind::LParen => depth += 1,
                Kind::RParen => depth = depth.saturating_sub(1),
                _ if depth == 0 && (t.is_word("insert") || t.is_word("replace")) => break,
                _ => {}
            }
            i += 1;
        }
    }
    let first = tokens.get(i)?;
    if !(first.is_word("insert") || first.is_word("replace")) {
        return None;
    }
    i += 1;
    if tokens.get(i)?.is_word("or") {
        i += 2;
    }
    if !tokens.get(i)?.is_word("into") {
        return None;
    }
    i += 1;
    let mut table = tokens.get(i)?.name()?.into_owned();
    i += 1;
    if tokens.get(i).map(|t| t.kind) == Some(Kind::Dot) {
        table = tokens.get(i + 1)?.name()?.into_owned();
        i += 2;
    }
    if tokens.get(i).is_some_and(|t| t.is_word("as")) {
        i += 2;
    }
    let mut columns = None;
    if tokens.get(i).map(|t| t.kind) == Some(Kind::LParen) {
        let mut cols = Vec::new();
        i += 1;
        while let Some(t) = tokens.get(i) {
            i += 1;
            match t.kind {
                Kind::RParen => break,
                Kind::Comma => {}
                _ => cols.push(t.name()?.into_owned()),
            }
        }
        columns = Some(cols);
    }
    let default_values = tokens.get(i).is_some_and(|t| t.is_word("default"))
        && tokens.get(i + 1).is_some_and(|t| t.is_word("values"));
    Some(InsertTarget {
        table,
        columns,
        default_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(sql: &str) -> Option<String> {
        scan(&lexer::tokenize(sql), DeterminismPolicy::Refuse)
    }

    fn resolved(sql: &str) -> Option<String> {
        scan(&lexer::tokenize(sql), DeterminismPolicy::Resolve)
    }

    #[test]
    fn refuses_each_nondeterministic_form() {
        for sql in [
            "INSERT INTO t VALUES (random())",
            "INSERT INTO t VALUES (RANDOM ( ))",
            "INSERT INTO t VALUES (\"random\"())",
            "INSERT INTO t VALUES (abs(random()) % 10)",
            "INSERT INTO t VALUES (randomblob(16))",
            "INSERT INTO t VALUES (CURRENT_TIMESTAMP)",
            "INSERT INTO t VALUES (current_date)",
            "UPDATE t SET d = CURRENT_TIME",
            "INSERT INTO t VALUES (julianday('now'))",
            "INSERT INTO t VALUES (date('NOW'))",
            "INSERT INTO t VALUES (datetime( 'now' , '+1 day'))",
            "INSERT INTO t VALUES (strftime('%s', 'now'))",
            "INSERT INTO t VALUES (strftime('%s'))",
            "INSERT INTO t VALUES (unixepoch())",
            "INSERT INTO t VALUES (date())",
            "INSERT INTO t VALUES (time(coalesce(NULL, 'now')))",
            "INSERT INTO t VALUES (datetime(\"now\"))",
            "INSERT INTO t VALUES (datetime(x, 'localtime'))",
            "INSERT INTO t VALUES (timediff('now', '2020-01-01'))",
            "CREATE TABLE t (a, b DEFAULT CURRENT_TIMESTAMP)",
            "CREATE TABLE t (a, b DEFAULT (datetime('now')))",
            "CREATE VIEW v AS SELECT random() AS r",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET d = date('now'); END",
            "SELECT total_changes()",
        ] {
            assert!(reason(sql).is_some(), "not refused: {sql}");
        }
    }

    #[test]
    fn resolve_lifts_randomness_and_the_clock_only() {
        for sql in [
            "INSERT INTO t VALUES (random(), randomblob(16), abs(random()) % 10)",
            "INSERT INTO t VALUES (CURRENT_TIMESTAMP, current_date, CURRENT_TIME)",
            "INSERT INTO t VALUES (julianday('now'), date('NOW'), datetime(\"now\"))",
            "INSERT INTO t VALUES (strftime('%s', 'now'), strftime('%s'), unixepoch(), date())",
            "INSERT INTO t VALUES (datetime('now', '+1 day', 'subsec'))",
            "INSERT INTO t VALUES (timediff('now', '2020-01-01'))",
            "CREATE TABLE t (a, b DEFAULT CURRENT_TIMESTAMP, c DEFAULT (randomblob(16)))",
            "CREATE TABLE t (a, b DEFAULT (datetime('now')))",
            "CREATE VIEW v AS SELECT random() AS r",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET d = date('now'); END",
        ] {
            assert_eq!(resolved(sql), None, "refused: {sql}");
            assert!(reason(sql).is_some(), "not refused under Refuse: {sql}");
        }
        for (sql, why) in [
            (
                "INSERT INTO t VALUES (datetime(x, 'localtime'))",
                "time zone",
            ),
            ("INSERT INTO t VALUES (datetime('now', 'utc'))", "time zone"),
            (
                "CREATE TABLE t (a DEFAULT (datetime('now', 'localtime')))",
                "time zone",
            ),
            ("SELECT total_changes()", "total_changes()"),
            ("INSERT INTO t VALUES (sqlite_version())", "version"),
            ("INSERT INTO t VALUES (sqlite_source_id())", "version"),
        ] {
            let got = resolved(sql).unwrap_or_default();
            assert!(got.contains(why), "{sql}: {got:?}");
        }
        let toks = lexer::tokenize("INSERT INTO t VALUES (date(?, ?))");
        let (now, local) = (Value::Text("now".into()), Value::Text("localtime".into()));
        assert_eq!(scan_args(&toks, &[&now], DeterminismPolicy::Resolve), None);
        assert!(scan_args(&toks, &[&now, &local], DeterminismPolicy::Resolve).is_some());
        assert_eq!(function_reason("RANDOM", DeterminismPolicy::Resolve), None);
        assert!(function_reason("total_changes", DeterminismPolicy::Resolve).is_some());
        assert!(default_reason("CURRENT_TIMESTAMP", DeterminismPolicy::Resolve).is_none());
        assert!(default_reason("(randomblob(16))", DeterminismPolicy::Resolve).is_none());
        assert!(
            default_reason("datetime('now','localtime')", DeterminismPolicy::Resolve).is_some()
        );
    }

    #[test]
    fn accepts_near_misses() {
        for sql in [
            "INSERT INTO t VALUES ('nowhere', 'now')",
            "INSERT INTO t (now_col, random) VALUES (1, 2)",
            "SELECT now_col, random FROM t",
            "INSERT INTO t VALUES (date('2024-01-01', '+1 day'))",
            "INSERT INTO t VALUES (strftime('%Y', '2024-01-01'))",
            "INSERT INTO t VALUES ('random()', 'CURRENT_TIMESTAMP') -- random()",
            "CREATE TABLE random (a)",
            "CREATE TABLE IF NOT EXISTS main.random (a)",
            "INSERT INTO random (a) VALUES (1)",
            "CREATE TABLE t (d DATETIME(6), s VARCHAR(255) DEFAULT 'now')",
            "INSERT INTO t VALUES (date(?))",
            "/* date('now') */ SELECT 1",
        ] {
            assert_eq!(reason(sql), None, "refused: {sql}");
        }
    }

    #[test]
    fn reasons_are_specific() {
        assert!(
            reason("CREATE TABLE t (b DEFAULT CURRENT_TIMESTAMP)")
                .unwrap()
                .contains("column default")
        );
        assert_eq!(
            reason("SELECT date('now')").unwrap(),
            "'now' reads the current time (in date())"
        );
        assert!(
            reason("SELECT unixepoch()")
                .unwrap()
                .contains("unixepoch()")
        );
    }

    #[test]
    fn bound_now_is_refused_only_for_time_functions() {
        let refuse = DeterminismPolicy::Refuse;
        let toks = lexer::tokenize("INSERT INTO t VALUES (date(?))");
        assert!(scan_args(&toks, &[&Value::Text(" Now ".into())], refuse).is_some());
        assert!(scan_args(&toks, &[&Value::Text("2024-01-01".into())], refuse).is_none());
        let plain = lexer::tokenize("INSERT INTO t VALUES (?)");
        assert!(scan_args(&plain, &[&Value::Text("now".into())], refuse).is_none());
    }

    #[test]
    fn defaults() {
        let refuse = DeterminismPolicy::Refuse;
        assert!(default_reason("CURRENT_TIMESTAMP", refuse).is_some());
        assert!(default_reason("datetime('now','localtime')", refuse).is_some());
        assert!(default_reason("'now'", refuse).is_none());
        assert!(default_reason("0", refuse).is_none());
    }

    #[test]
    fn insert_targets() {
        let t = |sql| insert_target(&lexer::tokenize(sql));
        let got = t("INSERT OR REPLACE INTO main.\"My T\" AS x (a, \"b\") VALUES (1, 2)").unwrap();
        assert_eq!(got.table, "My T");
        assert_eq!(got.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert!(!got.uses_default_of("A") && got.uses_default_of("c"));
        let got = t("WITH c(x) AS (SELECT 1) REPLACE INTO t SELECT x FROM c").unwrap();
        assert_eq!((got.table.as_str(), got.columns), ("t", None));
        assert!(!t("INSERT INTO t VALUES (1)").unwrap().uses_default_of("c"));
        assert!(
            t("INSERT INTO t DEFAULT VALUES")
                .unwrap()
                .uses_default_of("c")
        );
        assert_eq!(t("SELECT 1"), None);
        assert_eq!(t("WITH c AS (SELECT 1) SELECT * FROM c"), None);
    }
}
