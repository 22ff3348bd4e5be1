//! Directory storage: the [`DirectoryStore`] trait, an in-memory store and a
//! SQLite store. Records are kept as versioned codec blobs, keyed by node id
//! and indexed by role.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

use rusqlite::{OptionalExtension as _, params};

use super::{NodeRecord, NodeRole};
use crate::codec::{decode_versioned, encode_versioned};
use crate::crypto::NodeId;
use crate::net::NetError;

/// Where the directory keeps its records. Operations are synchronous; the
/// service runs them on blocking threads.
pub trait DirectoryStore: Send + Sync + 'static {
    /// Inserts `record`, replacing any record with the same node id.
    fn upsert(&self, record: &NodeRecord) -> Result<(), NetError>;
    /// The record of `id`, if any.
    fn get(&self, id: &NodeId) -> Result<Option<NodeRecord>, NetError>;
    /// Every record in `role`, ordered by node id.
    fn by_role(&self, role: NodeRole) -> Result<Vec<NodeRecord>, NetError>;
}

/// A directory that lives only as long as the process.
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    records: RwLock<BTreeMap<NodeId, NodeRecord>>,
}

impl DirectoryStore for MemoryDirectory {
    fn upsert(&self, record: &NodeRecord) -> Result<(), NetError> {
        self.records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.node_id, record.clone());
        Ok(())
    }

    fn get(&self, id: &NodeId) -> Result<Option<NodeRecord>, NetError> {
        Ok(self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned())
    }

    fn by_role(&self, role: NodeRole) -> Result<Vec<NodeRecord>, NetError> {
        Ok(self
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.role == role)
            .cloned()
            .collect())
    }
}

/// The schema version this build writes; a newer one on disk is refused.
const SCHEMA_VERSION: i64 = 1;

/// A directory persisted in SQLite, so a restarted block producer keeps it.
#[derive(Debug)]
pub struct SqliteDirectory {
    conn: Mutex<rusqlite::Connection>,
}

fn db_err(op: &'static str) -> impl Fn(rusqlite::Error) -> NetError {
    move |e| NetError::Storage {
        op,
        reason: e.to_string(),
    }
}

impl SqliteDirectory {
    /// Opens (creating if needed) the directory in the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<SqliteDirectory, NetError> {
        let conn = rusqlite::Connection::open(path).map_err(db_err("open"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err("open"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err("open"))?;
        SqliteDirectory::from_connection(conn)
    }

    /// A directory in a private in-memory database.
    pub fn open_in_memory() -> Result<SqliteDirectory, NetError> {
        SqliteDirectory::from_connection(
            rusqlite::Connection::open_in_memory().map_err(db_err("open"))?,
        )
    }

    /// Uses `conn` (for example a database shared with other tables), creating the
    /// directory's tables if they are missing.
    pub fn from_connection(conn: rusqlite::Connection) -> Result<SqliteDirectory, NetError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS directory_schema (version INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS directory_nodes (
                 node_id BLOB PRIMARY KEY NOT NULL,
                 role INTEGER NOT NULL,
                 record BLOB NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS directory_nodes_role ON directory_nodes (role, node_id);",
        )
        .map_err(db_err("create schema"))?;
        let version: Option<i64> = conn
            .query_row("SELECT max(version) FROM directory_schema", [], |r| {
                r.get(0)
            })
            .map_err(db_err("read schema version"))?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO directory_schema (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(db_err("write schema version"))?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(NetError::Storage {
                    op: "open",
                    reason: format!(
                        "directory schema version {v} is newer than this build's {SCHEMA_VERSION}"
                    ),
                });
            }
            Some(_) => {}
        }
        Ok(SqliteDirectory {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn decode_record(blob: &[u8]) -> Result<NodeRecord, NetError> {
    decode_versioned::<NodeRecord>(blob).map_err(|e| NetError::Storage {
        op: "decode record",
        reason: e.to_string(),
    })
}

impl DirectoryStore for SqliteDirectory {
    fn upsert(&self, record: &NodeRecord) -> Result<(), NetError> {
        let blob = encode_versioned(record)?;
        self.lock()
            .execute(
                "INSERT INTO directory_nodes (node_id, role, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node_id) DO UPDATE SET role = excluded.role, record = excluded.record",
                params![
                    record.node_id.as_bytes().as_slice(),
                    record.role.as_u8(),
                    blob
                ],
            )
            .map_err(db_err("upsert"))?;
        Ok(())
    }

    fn get(&self, id: &NodeId) -> Result<Option<NodeRecord>, NetError> {
        let blob: Option<Vec<u8>> = self
            .lock()
            .query_row(
                "SELECT record FROM directory_nodes WHERE node_id = ?1",
                [id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err("get"))?;
        blob.as_deref().map(decode_record).transpose()
    }

    fn by_role(&self, role: NodeRole) -> Result<Vec<NodeRecord>, NetError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT record FROM directory_nodes WHERE role = ?1 ORDER BY node_id")
            .map_err(db_err("by role"))?;
        let blobs = stmt
            .query_map([role.as_u8()], |r| r.get::<_, Vec<u8>>(0))
            .map_err(db_err("by role"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err("by role"))?;
        blobs.iter().map(|b| decode_record(b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NodeIdentity;

    fn record(role: NodeRole, port: u16) -> NodeRecord {
        let id = NodeIdentity::mine_weak(0).unwrap();
        NodeRecord::for_peer(&id.as_peer(), role, format!("127.0.0.1:{port}"))
    }

    fn exercise(store: &dyn DirectoryStore) {
        let a = record(NodeRole::Miner, 1);
        let b = record(NodeRole::Miner, 2);
        let c = record(NodeRole::Client, 3);
        for r in [&a, &b, &c] {
            store.upsert(r).unwrap();
        }
        assert_eq!(store.get(&a.node_id).unwrap(), Some(a.clone()));
        assert_eq!(store.get(&NodeId::default()).unwrap(), None);
        let mut miners = vec![a.clone(), b.clone()];
        miners.sort_by_key(|r| r.node_id);
        assert_eq!(store.by_role(NodeRole::Miner).unwrap(), miners);
        assert_eq!(store.by_role(NodeRole::Adapter).unwrap(), vec![]);
        // Re-registering replaces address and role.
        let mut moved = a.clone();
        moved.addr = "10.0.0.9:99".into();
        moved.role = NodeRole::Adapter;
        store.upsert(&moved).unwrap();
        assert_eq!(store.get(&a.node_id).unwrap(), Some(moved.clone()));
        assert_eq!(store.by_role(NodeRole::Miner).unwrap(), vec![b]);
        assert_eq!(store.by_role(NodeRole::Adapter).unwrap(), vec![moved]);
    }

    #[test]
    fn memory_store_behaves() {
        exercise(&MemoryDirectory::default());
    }

    #[test]
    fn sqlite_store_behaves_and_persists() {
        exercise(&SqliteDirectory::open_in_memory().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.db");
        let r = record(NodeRole::BlockProducer, 4661);
        SqliteDirectory::open(&path).unwrap().upsert(&r).unwrap();
        let reopened = SqliteDirectory::open(&path).unwrap();
        assert_eq!(reopened.get(&r.node_id).unwrap(), Some(r));
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.db");
        drop(SqliteDirectory::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("INSERT INTO directory_schema (version) VALUES (99)", [])
            .unwrap();
        drop(conn);
        let err = SqliteDirectory::open(&path).unwrap_err();
        assert!(err.to_string().contains("99"), "{err}");
    }
}
