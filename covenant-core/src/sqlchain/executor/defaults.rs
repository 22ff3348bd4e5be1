//! The writer's cache of column defaults, for the determinism check of
//! INSERTs (`run.rs`): which columns of a table have a DEFAULT, and its
//! expression.
//!
//! Reading them (`pragma_table_info`) costs more than the rest of the check
//! of a single-row INSERT, and the schema rarely changes, so the writer keeps
//! them per table, valid for one schema: every lookup first reads the
//! schema cookie (`PRAGMA schema_version`, which every schema change
//! increments) and drops everything if it moved. A rollback can move the
//! cookie *back*, to a value whose entries were read under a schema that no
//! longer exists, so the executor also calls [`DefaultsCache::clear`]
//! whenever a transaction or savepoint of the writer is rolled back.
//! Only the `main` schema is cached.
//!
//! Imports rusqlite and the executor's error only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::error::SqlError;

/// `(column, default expression)` of every column of a table that has a default.
pub(crate) type Defaults = Arc<[(String, String)]>;

/// Column defaults per `main` table, for one schema cookie.
#[derive(Debug, Default)]
pub(crate) struct DefaultsCache {
    inner: RefCell<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The schema cookie the entries were read under.
    schema: Option<i64>,
    tables: HashMap<String, Defaults>,
}

impl DefaultsCache {
    /// Forgets every entry (after a rollback).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.schema = None;
        inner.tables.clear();
    }

    /// The defaults of `database.table`, read through the cache.
    pub(crate) fn get(
        &self,
        conn: &Connection,
        database: &str,
        table: &str,
    ) -> Result<Defaults, SqlError> {
        if database != "main" {
            return read(conn, database, table);
        }
        let schema: i64 = conn
            .prepare_cached("PRAGMA main.schema_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(SqlError::storage("read the schema version"))?;
        {
            let mut inner = self.inner.borrow_mut();
            if inner.schema != Some(schema) {
                inner.schema = Some(schema);
                inner.tables.clear();
            }
            if let Some(d) = inner.tables.get(table) {
                return Ok(d.clone());
            }
        }
        let defaults = read(conn, database, table)?;
        self.inner
            .borrow_mut()
            .tables
            .insert(table.to_owned(), defaults.clone());
        Ok(defaults)
    }
}

/// Reads the defaults of `database.table` from SQLite.
pub(crate) fn read(conn: &Connection, database: &str, table: &str) -> Result<Defaults, SqlError> {
    const SQL: &str =
        "SELECT name, dflt_value FROM pragma_table_info(?1, ?2) WHERE dflt_value IS NOT NULL";
    let mut stmt = conn
        .prepare_cached(SQL)
        .map_err(SqlError::storage("read column defaults"))?;
    let rows = stmt
        .query_map([table, database], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(SqlError::storage("read column defaults"))?;
    rows.collect::<Result<Arc<[_]>, _>>()
        .map_err(SqlError::storage("read column defaults"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(d: &Defaults) -> Vec<&str> {
        d.iter().map(|(c, _)| c.as_str()).collect()
    }

    #[test]
    fn entries_follow_the_schema_and_a_clear() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a, b DEFAULT 1)")
            .unwrap();
        let cache = DefaultsCache::default();
        assert_eq!(cols(&cache.get(&conn, "main", "t").unwrap()), vec!["b"]);
        // A schema change is seen at the next lookup.
        conn.execute_batch("ALTER TABLE t ADD COLUMN c DEFAULT 2")
            .unwrap();
        assert_eq!(
            cols(&cache.get(&conn, "main", "t").unwrap()),
            vec!["b", "c"]
        );
        // A rolled-back change restores the cookie: only a clear notices.
        conn.execute_batch("BEGIN; ALTER TABLE t ADD COLUMN d DEFAULT 3")
            .unwrap();
        assert_eq!(cache.get(&conn, "main", "t").unwrap().len(), 3);
        conn.execute_batch("ROLLBACK").unwrap();
        cache.clear();
        assert_eq!(
            cols(&cache.get(&conn, "main", "t").unwrap()),
            vec!["b", "c"]
        );
        assert!(cache.get(&conn, "main", "missing").unwrap().is_empty());
    }
}
