//! What a client asks a database to run, and what comes back.
//!
//! Owns [`Query`], [`Args`] and [`QueryResult`]: plain data that is signed
//! inside requests, recorded in blocks and returned to clients. It must not
//! import the executor, the chain or the network.

use serde::{Deserialize, Serialize};

use super::value::Value;

/// Arguments bound to a query's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Args {
    /// Bound in order to `?`, `?NNN` (by number) and, by position, to named
    /// parameters; consumed statement by statement across a multi-statement query.
    Positional(Vec<Value>),
    /// Bound by name to `:name`, `@name` and `$name` in every statement that
    /// uses the name. Keys may carry the prefix or not (`"id"`, `":id"`).
    Named(Vec<(String, Value)>),
}

impl Default for Args {
    fn default() -> Self {
        Args::Positional(Vec::new())
    }
}

impl Args {
    /// How many values the arguments hold.
    pub fn len(&self) -> usize {
        match self {
            Args::Positional(v) => v.len(),
            Args::Named(v) => v.len(),
        }
    }

    /// Whether no value is given.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// SQL text (one or more statements separated by `;`) and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// The SQL; may hold several statements separated by `;`.
    pub sql: String,
    /// Values for the statements' parameters.
    pub args: Args,
}

impl Query {
    /// A query without arguments.
    pub fn new(sql: impl Into<String>) -> Self {
        Query {
            sql: sql.into(),
            args: Args::default(),
        }
    }

    /// A query with positional arguments.
    pub fn positional(sql: impl Into<String>, args: Vec<Value>) -> Self {
        Query {
            sql: sql.into(),
            args: Args::Positional(args),
        }
    }

    /// A query with named arguments.
    pub fn named<K: Into<String>>(sql: impl Into<String>, args: Vec<(K, Value)>) -> Self {
        let args = args.into_iter().map(|(k, v)| (k.into(), v)).collect();
        Query {
            sql: sql.into(),
            args: Args::Named(args),
        }
    }
}

/// The outcome of one executed statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// Result column names (empty for statements that return no rows).
    pub columns: Vec<String>,
    /// Each column's declared type, upper-cased (`INTEGER`, `VARCHAR(255)`); `""` for expressions.
    pub decl_types: Vec<String>,
    /// The rows; each has exactly `columns.len()` values.
    pub rows: Vec<Vec<Value>>,
    /// Rows the statement itself inserted, updated or deleted (0 for reads and DDL).
    pub affected_rows: u64,
    /// The connection's last inserted rowid after the statement.
    pub last_insert_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_args_are_empty_positional() {
        assert_eq!(Args::default(), Args::Positional(vec![]));
        assert!(Args::default().is_empty());
        let q = Query::named("SELECT :a", vec![("a", Value::Integer(1))]);
        assert_eq!(q.args.len(), 1);
    }

    #[test]
    fn codec_round_trip() {
        let q = Query::positional("SELECT ?", vec![Value::Real(1.5), Value::Blob(vec![0])]);
        let bytes = crate::codec::encode(&q).unwrap();
        let back: Query = crate::codec::decode(&bytes).unwrap();
        assert_eq!(back, q);
    }
}
