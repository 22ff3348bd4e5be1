//! Why the executor refused or failed a query.
//!
//! Messages go back to users (console, drivers through the adapter), so each
//! one names the statement and says what to do. Statements are shortened to
//! [`EXCERPT_CHARS`] characters so an 8 MiB INSERT does not flood a log line.

use std::time::Duration;

use crate::error::ErrorCode;

/// Longest statement excerpt an error carries, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// A statement shortened for an error message.
pub(crate) fn excerpt(sql: &str) -> String {
    let sql = sql.trim();
    match sql.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", sql.get(..cut).unwrap_or(sql)),
        None => sql.to_owned(),
    }
}

/// Why a query could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// SQLite rejected or failed the statement (syntax, constraint, missing table, ...).
    #[error("{message} (in `{statement}`)")]
    Sqlite {
        /// SQLite's own message.
        message: String,
        /// The statement (shortened).
        statement: String,
    },
    /// The database was busy; the same request may succeed later.
    #[error("the database is busy (in `{statement}`); retry later")]
    Busy {
        /// The statement (shortened).
        statement: String,
    },
    /// A read request held a statement that writes.
    #[error("`{statement}` is a write; send it as a write request (exec)")]
    ReadOnlyViolation {
        /// The statement (shortened).
        statement: String,
    },
    /// A write would give different results on different replicas.
    #[error(
        "cannot run `{statement}` as a write: {reason}. Writes are replayed on every replica \
         and from the chain and must give the same result on each; compute such a value in \
         the client and pass it as an argument"
    )]
    NonDeterministic {
        /// The statement (shortened).
        statement: String,
        /// What makes it non-deterministic.
        reason: String,
    },
    /// A user statement tried to control the transaction.
    #[error(
        "`{statement}`: transaction control is not allowed. Each request runs as one atomic \
         transaction and no transaction spans requests; send all the statements in one request \
         instead"
    )]
    TransactionControl {
        /// The statement (shortened).
        statement: String,
    },
    /// A statement kind the executor never runs (ATTACH, VACUUM, a file-changing PRAGMA, ...).
    #[error("`{statement}` is not allowed: {reason}")]
    NotAllowed {
        /// The statement (shortened).
        statement: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A SHOW or DESC form the executor does not translate.
    #[error(
        "unsupported statement `{statement}`; supported forms are SHOW TABLES, SHOW CREATE TABLE t, \
         SHOW INDEX FROM t, SHOW TABLE t, SHOW COLUMNS FROM t, DESC t and DESCRIBE t"
    )]
    UnsupportedShow {
        /// The statement (shortened).
        statement: String,
    },
    /// The number of positional arguments does not match the statements' parameters.
    #[error("the statements take {expected} positional argument(s) but {got} were given")]
    ArgCount {
        /// Parameters the statements take (at least this many when too few were given).
        expected: usize,
        /// Arguments given.
        got: usize,
    },
    /// A statement uses a named parameter that no argument provides.
    #[error("no value given for parameter {name} (in `{statement}`)")]
    MissingParameter {
        /// The parameter as written (`:id`).
        name: String,
        /// The statement (shortened).
        statement: String,
    },
    /// A named argument is used by no statement.
    #[error("no statement uses the named argument {name}")]
    UnknownParameter {
        /// The argument's name as given.
        name: String,
    },
    /// Two named arguments name the same parameter (`id` and `:id`).
    #[error("the named argument {name} is given more than once")]
    DuplicateParameter {
        /// The argument's name as given.
        name: String,
    },
    /// Named arguments were given for a statement with `?` parameters.
    #[error(
        "`{statement}` uses positional parameters (? or ?NNN) but named arguments were given; \
         use :name parameters or pass positional arguments"
    )]
    MixedParameters {
        /// The statement (shortened).
        statement: String,
    },
    /// The request holds no statement.
    #[error("the request holds no SQL statement")]
    Empty,
    /// The result has more rows than the configured limit.
    #[error("the result has more than {limit} rows; add a LIMIT, or page with WHERE and ORDER BY")]
    TooManyRows {
        /// The row limit.
        limit: usize,
    },
    /// The result is larger than the configured limit.
    #[error("the result is larger than {limit} bytes; select fewer columns or rows")]
    ResultTooLarge {
        /// The size limit in bytes.
        limit: usize,
    },
    /// A read ran longer than the configured timeout and was interrupted.
    #[error("`{statement}` was stopped after {limit:?}; narrow the query or add an index")]
    Timeout {
        /// The statement (shortened).
        statement: String,
        /// The timeout.
        limit: Duration,
    },
    /// A write ran more SQLite VM steps than its deterministic budget.
    #[error(
        "`{statement}` was stopped after {budget} SQLite steps (the write budget); split the \
         write into smaller requests"
    )]
    StepBudget {
        /// The statement (shortened).
        statement: String,
        /// The budget in VM steps.
        budget: u64,
    },
    /// The database file could not be opened, configured or committed.
    #[error("database storage: {op}: {message}")]
    Storage {
        /// What was being done.
        op: &'static str,
        /// SQLite's or the OS's message.
        message: String,
    },
}

impl SqlError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SqlError::Sqlite { .. } => ErrorCode::SqlExecution,
            SqlError::Busy { .. } => ErrorCode::SqlBusy,
            SqlError::ReadOnlyViolation { .. } => ErrorCode::SqlReadOnly,
            SqlError::NonDeterministic { .. } => ErrorCode::SqlNonDeterministic,
            SqlError::TransactionControl { .. }
            | SqlError::NotAllowed { .. }
            | SqlError::UnsupportedShow { .. } => ErrorCode::SqlNotAllowed,
            SqlError::ArgCount { .. }
            | SqlError::MissingParameter { .. }
            | SqlError::UnknownParameter { .. }
            | SqlError::DuplicateParameter { .. }
            | SqlError::MixedParameters { .. } => ErrorCode::SqlArguments,
            SqlError::Empty => ErrorCode::SqlEmpty,
            SqlError::TooManyRows { .. } | SqlError::ResultTooLarge { .. } => ErrorCode::SqlLimit,
            SqlError::Timeout { .. } | SqlError::StepBudget { .. } => ErrorCode::SqlTimeout,
            SqlError::Storage { .. } => ErrorCode::Storage,
        }
    }

    /// Whether sending the same request again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, SqlError::Busy { .. })
    }

    /// SQLite's failure while running `statement`.
    pub(crate) fn from_sqlite(e: &rusqlite::Error, statement: &str) -> SqlError {
        if matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        ) {
            return SqlError::Busy {
                statement: excerpt(statement),
            };
        }
        let message = match e {
            // SQLite's own check, or `randomblob()`'s (whose code becomes SQLITE_ERROR).
            rusqlite::Error::SqliteFailure(f, Some(msg))
                if f.code == rusqlite::ErrorCode::TooBig || msg == "string or blob too big" =>
            {
                format!(
                    "{msg}: a string, blob or row may hold at most {} MiB; store larger data in pieces",
                    super::MAX_VALUE_BYTES >> 20
                )
            }
            rusqlite::Error::SqliteFailure(_, Some(msg)) if !msg.is_empty() => msg.clone(),
            rusqlite::Error::MultipleStatement => {
                "could not split the SQL into single statements".to_owned()
            }
            other => other.to_string(),
        };
        SqlError::Sqlite {
            message,
            statement: excerpt(statement),
        }
    }

    /// A storage-level failure of `op`.
    pub(crate) fn storage(op: &'static str) -> impl FnOnce(rusqlite::Error) -> SqlError {
        move |e| SqlError::Storage {
            op,
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_shortens_on_char_boundaries() {
        let long = "é".repeat(EXCERPT_CHARS + 10);
        let e = excerpt(&long);
        assert!(e.ends_with("...") && e.chars().count() == EXCERPT_CHARS + 3);
        assert_eq!(excerpt("  SELECT 1 "), "SELECT 1");
    }

    #[test]
    fn codes_are_in_the_sql_range() {
        for e in [
            SqlError::Empty,
            SqlError::ReadOnlyViolation {
                statement: "x".into(),
            },
            SqlError::ArgCount {
                expected: 1,
                got: 0,
            },
            SqlError::TooManyRows { limit: 1 },
        ] {
            let c = e.code().as_u32();
            assert!((4000..5000).contains(&c), "{e}: {c}");
        }
        assert!(
            SqlError::Busy {
                statement: "x".into()
            }
            .retryable()
        );
    }

    #[test]
    fn read_only_message_says_what_to_do() {
        let e = SqlError::ReadOnlyViolation {
            statement: "DELETE FROM t".into(),
        };
        assert_eq!(
            e.to_string(),
            "`DELETE FROM t` is a write; send it as a write request (exec)"
        );
    }
}
