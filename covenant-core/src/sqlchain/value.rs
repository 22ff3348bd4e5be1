//! One SQL value as it crosses the wire: SQLite's five storage classes.
//!
//! Owns [`Value`] and its conversions to and from rusqlite. It must not import
//! the executor, the chain or the network: requests, responses, blocks and the
//! executor all build on it.

use std::fmt;

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A SQL value with its SQLite storage class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit IEEE float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(#[serde(with = "crate::codec::serde_byte_vec")] Vec<u8>),
}

impl Value {
    /// The SQLite name of this value's storage class (`null`, `integer`, `real`, `text`, `blob`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// Approximate bytes this value occupies in a result (payload only, at least 1).
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Null => 1,
            Value::Integer(_) | Value::Real(_) => 8,
            Value::Text(s) => s.len().max(1),
            Value::Blob(b) => b.len().max(1),
        }
    }

    /// Copies a value SQLite handed out. TEXT that is not valid UTF-8 (possible
    /// with `CAST(x'ff' AS TEXT)`) is converted lossily, identically on every replica.
    pub(crate) fn from_sqlite(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl FromSql for Value {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Value::from_sqlite(value))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Console rendering: `NULL`, the number, the text as is, a blob as `x'00ff'`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            // `{:?}` keeps a decimal point on whole numbers (1.0, not 1), as SQLite prints them.
            Value::Real(r) => write!(f, "{r:?}"),
            Value::Text(s) => f.write_str(s),
            Value::Blob(b) => write!(f, "x'{}'", hex::encode(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        assert_eq!(Value::Null.to_string(), "NULL");
        assert_eq!(Value::Integer(i64::MIN).to_string(), "-9223372036854775808");
        assert_eq!(Value::Real(1.0).to_string(), "1.0");
        assert_eq!(Value::Real(0.5).to_string(), "0.5");
        assert_eq!(Value::Text("héllo".into()).to_string(), "héllo");
        assert_eq!(Value::Blob(vec![0, 255]).to_string(), "x'00ff'");
    }

    #[test]
    fn sqlite_round_trip_keeps_storage_class() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for v in [
            Value::Null,
            Value::Integer(i64::MAX),
            Value::Real(-2.5),
            Value::Text("日本".into()),
            Value::Blob(vec![0, 1, 0]),
        ] {
            let back: Value = conn.query_row("SELECT ?1", [&v], |r| r.get(0)).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn invalid_utf8_text_is_lossy_not_a_panic() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let v: Value = conn
            .query_row("SELECT CAST(x'61ff' AS TEXT)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, Value::Text("a\u{fffd}".into()));
    }

    #[test]
    fn from_option() {
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::Text("x".into()));
    }
}
