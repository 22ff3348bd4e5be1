//! SQLite persistence of the main chain: blocks, accounts, databases (live
//! profiles and dropped ids), providers, the chain parameters, the
//! transaction index and the head, so a restarted block producer resumes
//! from disk.
//!
//! - Every row value is `codec::encode_versioned` bytes; SQL columns hold only
//!   what is looked up (heights, hashes, addresses, database ids).
//! - A block, its receipts (the transaction index), the accounts, databases
//!   and providers it changed and the new head are written in ONE SQLite
//!   transaction: after a crash the store is at some block boundary, never
//!   in between.
//! - The schema has a version; a store of another version is refused before
//!   anything is read or written (an older one cannot be converted: the
//!   state and the genesis block changed with it).
//! - `journal_mode=WAL` with `synchronous=FULL`: a committed block is final
//!   (DESIGN §4), so when `commit_block` returns it must survive power loss;
//!   the cost is one fsync per block (one block per `BPPeriod`).
//! - One writer: the store owns its connection; callers serialize access.
//!
//! This is the only file of `chain` that performs I/O.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::ChainError;
use super::params::ChainParams;
use super::state::{BlockOutcome, ChainHead, ChainState, Genesis, StateParts, TxReceipt};
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::Address;
use crate::error::ErrorCode;
use crate::hash::Hash;
use crate::types::{Account, Block, DatabaseId, DatabaseProfile, ProviderProfile};

/// The schema version this build writes. History: 1 = blocks, accounts,
/// index; 2 = plus databases, dropped databases, providers and parameters.
const SCHEMA_VERSION: i64 = 2;

/// Meta keys this module reserves; callers' keys must differ.
const RESERVED_META: [&str; 3] = ["schema_version", "head", "params"];

const META_TABLE: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash   BLOB NOT NULL UNIQUE,
    data   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address BLOB PRIMARY KEY,
    data    BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tx_index (
    hash     BLOB PRIMARY KEY,
    height   INTEGER NOT NULL,
    position INTEGER NOT NULL,
    ok       INTEGER NOT NULL,
    receipt  BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS databases (
    id   BLOB PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped_databases (
    id     BLOB PRIMARY KEY,
    height INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS providers (
    address BLOB PRIMARY KEY,
    data    BLOB NOT NULL
) WITHOUT ROWID;
";

/// Why the chain store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("chain store: {op} failed: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored value does not decode.
    #[error("chain store: stored {what} is unreadable: {source}")]
    Decode {
        /// What was being read.
        what: &'static str,
        /// The decoder's error.
        source: CodecError,
    },
    /// A value could not be encoded for storage.
    #[error("chain store: cannot encode {what}: {source}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// The encoder's error.
        source: CodecError,
    },
    /// The stored data is inconsistent.
    #[error("chain store is corrupt: {what}")]
    Corrupt {
        /// What is inconsistent.
        what: String,
    },
    /// The store was written by a newer build.
    #[error(
        "chain store schema version {found} is not supported by this build (it reads {supported}); \
         upgrade this node"
    )]
    SchemaVersion {
        /// The version found on disk.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },
    /// The store was written by an older build, in a format this one cannot convert.
    #[error(
        "chain store schema version {found} was written by an older build; this build reads only \
         version {supported} and cannot convert it (the chain state and the genesis block \
         changed): move the chain data directory aside and start this node from an empty one"
    )]
    SchemaTooOld {
        /// The version found on disk.
        found: i64,
        /// The version this build writes.
        supported: i64,
    },
    /// A block that does not extend the stored head.
    #[error(
        "block {height} ({hash}) does not extend the stored head (next height {expected_height}, \
         parent {expected_parent})"
    )]
    NotNext {
        /// The block's height.
        height: u64,
        /// The block's hash.
        hash: Hash,
        /// The height the store expects.
        expected_height: u64,
        /// The parent the store expects (zero before genesis).
        expected_parent: Hash,
    },
    /// The outcome does not belong to the block.
    #[error("{receipts} receipts given for a block of {transactions} transactions")]
    ReceiptMismatch {
        /// Receipts given.
        receipts: usize,
        /// Transactions in the block.
        transactions: usize,
    },
    /// A meta key reserved by the store.
    #[error("meta key {key:?} is reserved by the chain store")]
    ReservedKey {
        /// The key.
        key: String,
    },
    /// The stored chain started from another genesis than the configured one.
    #[error(
        "the stored chain starts from genesis block {stored}, but the configuration gives {configured}; \
         wrong data directory or changed genesis configuration"
    )]
    GenesisMismatch {
        /// The stored genesis hash.
        stored: Hash,
        /// The configured genesis hash.
        configured: Hash,
    },
    /// Building the genesis state failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl StoreError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::Sqlite { .. } | StoreError::Encode { .. } => ErrorCode::Storage,
            StoreError::Decode { source, .. } => match source.code() {
                ErrorCode::UnsupportedVersion => ErrorCode::UnsupportedVersion,
                _ => ErrorCode::StorageCorrupt,
            },
            StoreError::Corrupt { .. } => ErrorCode::StorageCorrupt,
            StoreError::SchemaVersion { .. } | StoreError::SchemaTooOld { .. } => {
                ErrorCode::UnsupportedVersion
            }
            StoreError::NotNext { .. } | StoreError::ReceiptMismatch { .. } => {
                ErrorCode::InvalidBlock
            }
            StoreError::ReservedKey { .. } => ErrorCode::InvalidArgument,
            StoreError::GenesisMismatch { .. } => ErrorCode::InvalidGenesis,
            StoreError::Chain(e) => e.code(),
        }
    }
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

fn enc<T: Versioned>(what: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    codec::encode_versioned(v).map_err(|source| StoreError::Encode { what, source })
}

fn dec<T: Versioned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    codec::decode_versioned(bytes).map_err(|source| StoreError::Decode { what, source })
}

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: format!("{what} {v} does not fit in SQLite's integer range"),
    })
}

fn to_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: format!("negative {what} {v}"),
    })
}

/// A row's key and encoded value.
type KeyValue = (Vec<u8>, Vec<u8>);

/// Where a committed transaction is, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxLocation {
    /// The block height.
    pub height: u64,
    /// The position in the block.
    pub position: u64,
    /// Its receipt.
    pub receipt: TxReceipt,
}

/// The main chain on disk.
#[derive(Debug)]
pub struct ChainStore {
    conn: Connection,
}

impl ChainStore {
    /// Opens (creating if needed) the store at `path`; an existing store resumes.
    pub fn open(path: &Path) -> Result<ChainStore, StoreError> {
        let conn = Connection::open(path).map_err(sql("open"))?;
        ChainStore::init(conn, true)
    }

    /// A store in memory, for tests and tools.
    pub fn open_in_memory() -> Result<ChainStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql("open"))?;
        ChainStore::init(conn, false)
    }

    fn init(conn: Connection, wal: bool) -> Result<ChainStore, StoreError> {
        if wal {
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(sql("set journal_mode"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Corrupt {
                    what: format!("cannot switch to WAL journal mode (got {mode})"),
                });
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql("set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy_timeout"))?;
        conn.execute_batch(META_TABLE)
            .map_err(sql("create meta table"))?;
        let found: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read schema version"))?;
        match found {
            None => {
                let tables: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name <> 'meta'",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(sql("inspect schema"))?;
                if tables > 0 {
                    return Err(StoreError::Corrupt {
                        what: "tables exist but no schema version is recorded".into(),
                    });
                }
                let tx = conn.unchecked_transaction().map_err(sql("begin"))?;
                tx.execute_batch(SCHEMA).map_err(sql("create schema"))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION],
                )
                .map_err(sql("write schema version"))?;
                tx.commit().map_err(sql("commit"))?;
            }
            Some(SCHEMA_VERSION) => {
                conn.execute_batch(SCHEMA).map_err(sql("create schema"))?;
            }
            Some(found) if found < SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooOld {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) => {
                return Err(StoreError::SchemaVersion {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        Ok(ChainStore { conn })
    }

    /// The head, `None` before genesis.
    pub fn head(&self) -> Result<Option<ChainHead>, StoreError> {
        read_head(&self.conn)
    }

    /// Returns the state on disk; on an empty store commits `genesis` first.
    /// Refuses a store whose genesis block differs from `genesis`'s.
    pub fn load_or_init(&mut self, genesis: &Genesis) -> Result<ChainState, StoreError> {
        let (initial, block) = ChainState::genesis(genesis)?;
        let configured = block.hash().map_err(ChainError::from)?;
        match self.block_by_height(0)? {
            None => {
                self.commit_genesis(&block, &initial)?;
                Ok(initial)
            }
            Some(stored) => {
                let stored = stored.hash().map_err(ChainError::from)?;
                if stored != configured {
                    return Err(StoreError::GenesisMismatch { stored, configured });
                }
                self.load_state()
            }
        }
    }

    /// Writes the genesis block, the parameters and everything in `state`
    /// (the genesis state).
    pub fn commit_genesis(&mut self, block: &Block, state: &ChainState) -> Result<(), StoreError> {
        let outcome = BlockOutcome {
            receipts: Vec::new(),
            changed_accounts: state.accounts().cloned().collect(),
            changed_databases: state.databases().cloned().collect(),
            dropped_databases: state.dropped_databases().copied().collect(),
            changed_providers: state.providers().cloned().collect(),
        };
        self.commit(block, &outcome, &[], Some(state.params()))
    }

    /// Writes `block`, its receipts, the accounts it changed and the new head atomically.
    pub fn commit_block(
        &mut self,
        block: &Block,
        outcome: &BlockOutcome,
    ) -> Result<(), StoreError> {
        self.commit_block_with_meta(block, outcome, &[])
    }

    /// [`commit_block`](Self::commit_block), also setting caller meta entries in
    /// the same transaction (e.g. the last applied Raft log id).
    pub fn commit_block_with_meta(
        &mut self,
        block: &Block,
        outcome: &BlockOutcome,
        meta: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        for (key, _) in meta {
            check_key(key)?;
        }
        self.commit(block, outcome, meta, None)
    }

    /// Writes a block and its outcome (and, for genesis, the parameters) atomically.
    fn commit(
        &mut self,
        block: &Block,
        outcome: &BlockOutcome,
        meta: &[(&str, &[u8])],
        params: Option<&ChainParams>,
    ) -> Result<(), StoreError> {
        if outcome.receipts.len() != block.transactions.len() {
            return Err(StoreError::ReceiptMismatch {
                receipts: outcome.receipts.len(),
                transactions: block.transactions.len(),
            });
        }
        let hash = block.hash().map_err(|source| StoreError::Encode {
            what: "block",
            source,
        })?;
        let height = block.header.height;
        let head = ChainHead {
            height,
            hash,
            timestamp: block.header.timestamp,
        };
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        let (expected_height, expected_parent) = match read_head(&tx)? {
            None => (0, block.header.parent),
            Some(h) => (h.height.saturating_add(1), h.hash),
        };
        if height != expected_height || block.header.parent != expected_parent {
            return Err(StoreError::NotNext {
                height,
                hash,
                expected_height,
                expected_parent: if expected_height == 0 {
                    Hash::ZERO
                } else {
                    expected_parent
                },
            });
        }
        let h = to_i64("height", height)?;
        tx.execute(
            "INSERT INTO blocks (height, hash, data) VALUES (?1, ?2, ?3)",
            params![h, hash.as_bytes().as_slice(), enc("block", block)?],
        )
        .map_err(sql("insert block"))?;
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO accounts (address, data) VALUES (?1, ?2)")
                .map_err(sql("prepare account write"))?;
            for a in &outcome.changed_accounts {
                put.execute(params![a.address.as_bytes().as_slice(), enc("account", a)?])
                    .map_err(sql("write account"))?;
            }
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO databases (id, data) VALUES (?1, ?2)")
                .map_err(sql("prepare database write"))?;
            for d in &outcome.changed_databases {
                put.execute(params![d.id.0.as_bytes().as_slice(), enc("database", d)?])
                    .map_err(sql("write database"))?;
            }
            let mut delete = tx
                .prepare_cached("DELETE FROM databases WHERE id = ?1")
                .map_err(sql("prepare database delete"))?;
            let mut dropped = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO dropped_databases (id, height) VALUES (?1, ?2)",
                )
                .map_err(sql("prepare dropped database write"))?;
            for id in &outcome.dropped_databases {
                delete
                    .execute(params![id.0.as_bytes().as_slice()])
                    .map_err(sql("delete database"))?;
                dropped
                    .execute(params![id.0.as_bytes().as_slice(), h])
                    .map_err(sql("write dropped database"))?;
            }
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO providers (address, data) VALUES (?1, ?2)")
                .map_err(sql("prepare provider write"))?;
            for p in &outcome.changed_providers {
                put.execute(params![
                    p.address.as_bytes().as_slice(),
                    enc("provider", p)?
                ])
                .map_err(sql("write provider"))?;
            }
            // A transaction applies at most once (its nonce), so an id already
            // indexed as failed may later be indexed as applied, never the reverse.
            let mut index = tx
                .prepare_cached(
                    "INSERT INTO tx_index (hash, height, position, ok, receipt)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(hash) DO UPDATE SET
                        height = excluded.height, position = excluded.position,
                        ok = excluded.ok, receipt = excluded.receipt
                     WHERE tx_index.ok = 0 AND excluded.ok = 1",
                )
                .map_err(sql("prepare index write"))?;
            for (pos, r) in outcome.receipts.iter().enumerate() {
                index
                    .execute(params![
                        r.tx.as_bytes().as_slice(),
                        h,
                        to_i64("position", pos as u64)?,
                        r.is_ok(),
                        enc("receipt", r)?
                    ])
                    .map_err(sql("write index"))?;
            }
            let mut put_meta = tx
                .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
                .map_err(sql("prepare meta write"))?;
            put_meta
                .execute(params!["head", enc("head", &head)?])
                .map_err(sql("write head"))?;
            if let Some(p) = params {
                put_meta
                    .execute(params!["params", enc("chain parameters", p)?])
                    .map_err(sql("write chain parameters"))?;
            }
            for (key, value) in meta {
                put_meta
                    .execute(params![key, value])
                    .map_err(sql("write meta"))?;
            }
        }
        tx.commit().map_err(sql("commit"))
    }

    /// Sets caller meta entries atomically (e.g. consensus progress for an
    /// entry that carried no block).
    pub fn put_meta(&mut self, meta: &[(&str, &[u8])]) -> Result<(), StoreError> {
        for (key, _) in meta {
            check_key(key)?;
        }
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
                .map_err(sql("prepare meta write"))?;
            for (key, value) in meta {
                put.execute(params![key, value])
                    .map_err(sql("write meta"))?;
            }
        }
        tx.commit().map_err(sql("commit"))
    }

    /// Deletes every block, account, database, provider, index entry and
    /// meta entry but the schema version, so a snapshot can be installed
    /// from scratch.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("begin"))?;
        tx.execute_batch(
            "DELETE FROM blocks; DELETE FROM accounts; DELETE FROM tx_index;
             DELETE FROM databases; DELETE FROM dropped_databases; DELETE FROM providers;
             DELETE FROM meta WHERE key <> 'schema_version';",
        )
        .map_err(sql("reset"))?;
        tx.commit().map_err(sql("commit"))
    }

    /// Rebuilds the state from disk (empty state before genesis).
    pub fn load_state(&self) -> Result<ChainState, StoreError> {
        let head = self.head()?;
        let params = self.read_params(head.is_some())?;
        let mut accounts = Vec::new();
        for (key, data) in self.scan(
            "accounts",
            "SELECT address, data FROM accounts ORDER BY address",
        )? {
            let mut account: Account = dec("account", &data)?;
            check_row("account", &key, account.address.as_bytes())?;
            account.balances.normalize();
            accounts.push(account);
        }
        let mut databases = Vec::new();
        for (key, data) in self.scan("databases", "SELECT id, data FROM databases ORDER BY id")? {
            let profile: DatabaseProfile = dec("database", &data)?;
            check_row("database", &key, profile.id.0.as_bytes())?;
            databases.push(profile);
        }
        let mut dropped = Vec::new();
        for (key, _) in self.scan(
            "dropped databases",
            "SELECT id, x'' FROM dropped_databases ORDER BY id",
        )? {
            let id = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| StoreError::Corrupt {
                what: format!("dropped database id {} is not 32 bytes", hex::encode(&key)),
            })?;
            dropped.push(DatabaseId(Hash(id)));
        }
        let mut providers = Vec::new();
        for (key, data) in self.scan(
            "providers",
            "SELECT address, data FROM providers ORDER BY address",
        )? {
            let profile: ProviderProfile = dec("provider", &data)?;
            check_row("provider", &key, profile.address.as_bytes())?;
            providers.push(profile);
        }
        Ok(ChainState::from_parts(StateParts {
            params,
            accounts,
            databases,
            dropped,
            providers,
            head,
        }))
    }

    /// The stored parameters; the defaults only before genesis.
    fn read_params(&self, has_genesis: bool) -> Result<ChainParams, StoreError> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'params'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read chain parameters"))?;
        match data {
            Some(d) => dec("chain parameters", &d),
            None if has_genesis => Err(StoreError::Corrupt {
                what: "the chain has a head but no stored parameters".into(),
            }),
            None => Ok(ChainParams::default()),
        }
    }

    /// Every (key, value) row of a two-column query; `what` names the table in errors.
    fn scan(&self, what: &'static str, query: &str) -> Result<Vec<KeyValue>, StoreError> {
        let mut stmt = self.conn.prepare(query).map_err(sql("prepare scan"))?;
        let rows = stmt
            .query_map([], |r| {
                let key: Vec<u8> = r.get(0)?;
                let value: Vec<u8> = r.get(1)?;
                Ok((key, value))
            })
            .map_err(|source| StoreError::Sqlite { op: "scan", source })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|source| StoreError::Corrupt {
                what: format!("unreadable {what} row: {source}"),
            })?);
        }
        Ok(out)
    }

    /// The live database `id`, if stored.
    pub fn database(&self, id: &DatabaseId) -> Result<Option<DatabaseProfile>, StoreError> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM databases WHERE id = ?1",
                params![id.0.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read database"))?;
        data.map(|d| dec("database", &d)).transpose()
    }

    /// The account at `address`, if stored.
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM accounts WHERE address = ?1",
                params![address.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read account"))?;
        data.map(|d| dec("account", &d)).transpose()
    }

    /// The block at `height`.
    pub fn block_by_height(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let Ok(h) = i64::try_from(height) else {
            return Ok(None);
        };
        let data: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM blocks WHERE height = ?1",
                params![h],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read block"))?;
        data.map(|d| dec("block", &d)).transpose()
    }

    /// The block with hash `hash`.
    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, StoreError> {
        let data: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT data FROM blocks WHERE hash = ?1",
                params![hash.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read block"))?;
        data.map(|d| dec("block", &d)).transpose()
    }

    /// Where transaction `hash` was committed, with its receipt.
    pub fn tx_location(&self, hash: &Hash) -> Result<Option<TxLocation>, StoreError> {
        let row: Option<(i64, i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT height, position, receipt FROM tx_index WHERE hash = ?1",
                params![hash.as_bytes().as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("read tx index"))?;
        let Some((height, position, receipt)) = row else {
            return Ok(None);
        };
        Ok(Some(TxLocation {
            height: to_u64("height", height)?,
            position: to_u64("position", position)?,
            receipt: dec("receipt", &receipt)?,
        }))
    }

    /// A caller meta entry written by [`commit_block_with_meta`](Self::commit_block_with_meta).
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(sql("read meta"))
    }
}

/// Fails unless a row's key is the key of the value it holds.
fn check_row(what: &str, key: &[u8], expected: &[u8]) -> Result<(), StoreError> {
    if key == expected {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        what: format!(
            "{what} row {} holds {what} {}",
            hex::encode(key),
            hex::encode(expected)
        ),
    })
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if RESERVED_META.contains(&key) {
        return Err(StoreError::ReservedKey {
            key: key.to_string(),
        });
    }
    Ok(())
}

fn read_head(conn: &Connection) -> Result<Option<ChainHead>, StoreError> {
    let data: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'head'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql("read head"))?;
    data.map(|d| dec("head", &d)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::testkit::*;
    use crate::chain::{TxResult, produce_block};
    use crate::types::Token;

    /// Applies `txs` in a new block and commits it.
    fn step(
        store: &mut ChainStore,
        s: &mut ChainState,
        txs: Vec<crate::types::Transaction>,
    ) -> Block {
        let block = block_on(s, txs);
        let out = s.apply_block(&block, &bps()).unwrap();
        store.commit_block(&block, &out).unwrap();
        block
    }

    #[test]
    fn round_trip_and_resume_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        let (b1, failed_tx, ok_tx, digest) = {
            let mut store = ChainStore::open(&path).unwrap();
            assert_eq!(store.head().unwrap(), None);
            let mut s = store.load_or_init(&genesis()).unwrap();
            assert_eq!(s, state());
            let ok_tx = transfer(1, 2, 100, 0);
            let failed_tx = transfer(2, 1, 1_000_000, 0);
            let b1 = step(&mut store, &mut s, vec![ok_tx.clone(), failed_tx.clone()]);
            step(&mut store, &mut s, vec![transfer(2, 6, 5, 0)]);
            assert_eq!(store.load_state().unwrap(), s);
            (b1, failed_tx, ok_tx, s.state_digest().unwrap())
        };

        // Reopen: the state, blocks and index are all there.
        let mut store = ChainStore::open(&path).unwrap();
        let mut s = store.load_or_init(&genesis()).unwrap();
        assert_eq!(s.state_digest().unwrap(), digest);
        let head = store.head().unwrap().unwrap();
        assert_eq!(head.height, 2);
        assert_eq!(s.head(), Some(head));
        assert_eq!(s.balances(&addr(6)).get(Token::Particle), 5);
        assert_eq!(store.block_by_height(1).unwrap().unwrap(), b1);
        assert_eq!(
            store.block_by_hash(&b1.hash().unwrap()).unwrap().unwrap(),
            b1
        );
        assert!(store.block_by_height(3).unwrap().is_none());
        assert!(store.block_by_height(u64::MAX).unwrap().is_none());
        assert!(store.block_by_hash(&Hash::ZERO).unwrap().is_none());
        assert_eq!(
            store.block_by_height(0).unwrap().unwrap(),
            ChainState::genesis(&genesis()).unwrap().1
        );
        let ok = store.tx_location(&ok_tx.hash().unwrap()).unwrap().unwrap();
        assert_eq!((ok.height, ok.position), (1, 0));
        assert!(ok.receipt.is_ok());
        let failed = store
            .tx_location(&failed_tx.hash().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!((failed.height, failed.position), (1, 1));
        assert!(
            matches!(&failed.receipt.result, TxResult::Failed { reason, .. } if reason.contains("insufficient"))
        );
        assert!(store.tx_location(&Hash::ZERO).unwrap().is_none());
        assert_eq!(
            store
                .account(&addr(6))
                .unwrap()
                .unwrap()
                .balances
                .get(Token::Particle),
            5
        );
        assert!(store.account(&addr(42)).unwrap().is_none());

        // The resumed node carries on where it stopped.
        let block = produce_block(&s, &[transfer(1, 2, 1, 1)], 9_999, &bp_key(), bp_id()).unwrap();
        let out = s.apply_block(&block, &bps()).unwrap();
        store.commit_block(&block, &out).unwrap();
        assert_eq!(store.head().unwrap().unwrap().height, 3);
        assert_eq!(store.load_state().unwrap(), s);
    }

    #[test]
    fn a_block_that_does_not_extend_the_head_is_refused_atomically() {
        let mut store = ChainStore::open_in_memory().unwrap();
        let mut s = store.load_or_init(&genesis()).unwrap();
        let before = store.load_state().unwrap();
        let mut other = s.clone();
        let b1 = block_on(&s, vec![transfer(1, 2, 1, 0)]);
        let out = other.apply_block(&b1, &bps()).unwrap();
        // Height 2 on a store at height 0.
        let b2 = block_on(&other, vec![]);
        let out2 = other.clone().apply_block(&b2, &bps()).unwrap();
        let err = store.commit_block(&b2, &out2).unwrap_err();
        assert!(
            matches!(err, StoreError::NotNext { height: 2, .. }),
            "{err}"
        );
        assert_eq!(store.load_state().unwrap(), before);
        // Receipts that do not match the block.
        let bad = BlockOutcome::default();
        assert!(matches!(
            store.commit_block(&b1, &bad),
            Err(StoreError::ReceiptMismatch { .. })
        ));
        assert_eq!(store.load_state().unwrap(), before);
        // The right block goes in once, not twice.
        store.commit_block(&b1, &out).unwrap();
        assert!(store.commit_block(&b1, &out).is_err());
        s.apply_block(&b1, &bps()).unwrap();
        assert_eq!(store.load_state().unwrap(), s);
    }

    #[test]
    fn another_genesis_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        ChainStore::open(&path)
            .unwrap()
            .load_or_init(&genesis())
            .unwrap();
        let mut g = genesis();
        g.timestamp += 1;
        let err = ChainStore::open(&path)
            .unwrap()
            .load_or_init(&g)
            .unwrap_err();
        assert!(matches!(err, StoreError::GenesisMismatch { .. }), "{err}");
        assert_eq!(err.code(), ErrorCode::InvalidGenesis);
        assert!(
            err.to_string().contains("different") || err.to_string().contains("changed genesis"),
            "{err}"
        );
    }

    #[test]
    fn meta_entries_commit_with_the_block() {
        let mut store = ChainStore::open_in_memory().unwrap();
        let mut s = store.load_or_init(&genesis()).unwrap();
        let b1 = block_on(&s, vec![]);
        let out = s.apply_block(&b1, &bps()).unwrap();
        store
            .commit_block_with_meta(&b1, &out, &[("raft_applied", b"7".as_slice())])
            .unwrap();
        assert_eq!(store.meta("raft_applied").unwrap(), Some(b"7".to_vec()));
        assert_eq!(store.meta("missing").unwrap(), None);
        assert!(matches!(
            store.meta("head"),
            Err(StoreError::ReservedKey { .. })
        ));
        let b2 = block_on(&s, vec![]);
        let out2 = s.clone().apply_block(&b2, &bps()).unwrap();
        assert!(
            store
                .commit_block_with_meta(&b2, &out2, &[("schema_version", b"9".as_slice())])
                .is_err()
        );
    }

    #[test]
    fn a_later_success_replaces_an_indexed_failure() {
        let mut store = ChainStore::open_in_memory().unwrap();
        let mut s = store.load_or_init(&genesis()).unwrap();
        // Bob cannot pay 15 yet: recorded as failed.
        let pay = transfer(2, 5, 15, 0);
        step(&mut store, &mut s, vec![pay.clone()]);
        let first = store.tx_location(&pay.hash().unwrap()).unwrap().unwrap();
        assert!(!first.receipt.is_ok());
        // Funded, the same signed transaction applies in a later block.
        step(&mut store, &mut s, vec![transfer(1, 2, 10, 0), pay.clone()]);
        let second = store.tx_location(&pay.hash().unwrap()).unwrap().unwrap();
        assert!(second.receipt.is_ok());
        assert_eq!((second.height, second.position), (2, 1));
        // A replay of an applied transaction fails but does not hide the success.
        step(&mut store, &mut s, vec![pay.clone()]);
        let third = store.tx_location(&pay.hash().unwrap()).unwrap().unwrap();
        assert_eq!(third, second);
    }

    #[test]
    fn corrupt_rows_and_newer_schemas_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        {
            let mut store = ChainStore::open(&path).unwrap();
            store.load_or_init(&genesis()).unwrap();
        }
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute("UPDATE accounts SET data = x'0100ff'", [])
                .unwrap();
        }
        let store = ChainStore::open(&path).unwrap();
        let err = store.load_state().unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageCorrupt, "{err}");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'", [])
                .unwrap();
        }
        let err = ChainStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 3, .. }),
            "{err}"
        );
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    }

    /// A store as a schema-1 build left it: no database or provider tables.
    fn write_v1_store(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, data BLOB NOT NULL);
             CREATE TABLE accounts (address BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE tx_index (hash BLOB PRIMARY KEY, height INTEGER NOT NULL,
                 position INTEGER NOT NULL, ok INTEGER NOT NULL, receipt BLOB NOT NULL) WITHOUT ROWID;
             INSERT INTO meta (key, value) VALUES ('schema_version', 1);",
        )
        .unwrap();
    }

    #[test]
    fn an_older_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        write_v1_store(&path);
        let err = ChainStore::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooOld {
                    found: 1,
                    supported: 2
                }
            ),
            "{err}"
        );
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        let msg = err.to_string();
        assert!(msg.contains("written by an older build"), "{msg}");
        assert!(msg.contains("start this node from an empty one"), "{msg}");
        // Nothing was added to the old store.
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'databases'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        drop(conn);
        // A store with tables but no version is corrupt, not adopted.
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE blocks (height INTEGER PRIMARY KEY);")
            .unwrap();
        let err = ChainStore::open(&other).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageCorrupt, "{err}");
    }

    #[test]
    fn databases_providers_and_drops_round_trip() {
        use crate::types::{
            DatabaseId, DropDatabase, Permission, TxPayload, UpdateBilling, UpdatePermission,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.db");
        let g = db_genesis();
        let (kept, dropped, digest) = {
            let mut store = ChainStore::open(&path).unwrap();
            let mut s = store.load_or_init(&g).unwrap();
            assert_eq!(s.params().min_provider_deposit, 100);
            step(
                &mut store,
                &mut s,
                vec![
                    signed(MINER_1, 0, TxPayload::ProvideService(offer(MINER_1, 100))),
                    signed(MINER_2, 0, TxPayload::ProvideService(offer(MINER_2, 200))),
                ],
            );
            let kept = DatabaseId::derive(&addr(USER_A), 0);
            let dropped = DatabaseId::derive(&addr(USER_B), 0);
            let block = block_on(
                &s,
                vec![
                    signed(USER_A, 0, TxPayload::CreateDatabase(create_db(2, &[]))),
                    signed(
                        USER_B,
                        0,
                        TxPayload::CreateDatabase(create_db(1, &[MINER_2])),
                    ),
                ],
            );
            let out = s.apply_block(&block, &bps()).unwrap();
            assert!(out.receipts.iter().all(|r| r.is_ok()), "{:?}", out.receipts);
            assert_eq!(out.changed_databases.len(), 2);
            assert!(out.changed_providers.is_empty());
            store.commit_block(&block, &out).unwrap();
            // Grant and bill on A's database, drop B's.
            let block = block_on(
                &s,
                vec![
                    signed(
                        USER_A,
                        1,
                        TxPayload::UpdatePermission(UpdatePermission {
                            database: kept,
                            user: addr(USER_C),
                            permission: "Read".parse::<Permission>().unwrap(),
                        }),
                    ),
                    signed(
                        MINER_1,
                        1,
                        TxPayload::UpdateBilling(UpdateBilling {
                            database: kept,
                            period: 1,
                            users: vec![],
                        }),
                    ),
                    signed(
                        USER_B,
                        1,
                        TxPayload::DropDatabase(DropDatabase { database: dropped }),
                    ),
                ],
            );
            let out = s.apply_block(&block, &bps()).unwrap();
            assert!(out.receipts.iter().all(|r| r.is_ok()), "{:?}", out.receipts);
            assert_eq!(out.dropped_databases, vec![dropped]);
            assert_eq!(out.changed_databases.len(), 1);
            assert_eq!(out.changed_databases[0].id, kept);
            store.commit_block(&block, &out).unwrap();
            assert_eq!(store.load_state().unwrap(), s);
            assert!(store.database(&dropped).unwrap().is_none());
            assert_eq!(store.database(&kept).unwrap().as_ref(), s.database(&kept));
            (kept, dropped, s.state_digest().unwrap())
        };
        let mut store = ChainStore::open(&path).unwrap();
        let s = store.load_or_init(&g).unwrap();
        assert_eq!(s.state_digest().unwrap(), digest);
        assert_eq!(s.params().min_provider_deposit, 100);
        assert!(s.is_dropped(&dropped) && s.database(&dropped).is_none());
        let p = s.database(&kept).unwrap();
        assert_eq!(p.users.len(), 2);
        assert_eq!(p.last_billed_period, 1);
        assert_eq!(s.provider(&addr(MINER_2)).unwrap().deposit, 200);
        assert_eq!(s.providers().count(), 2);
        // Other parameters are another genesis.
        let other = g.clone().with_params(ChainParams::new(101));
        let err = ChainStore::open(&path)
            .unwrap()
            .load_or_init(&other)
            .unwrap_err();
        assert!(matches!(err, StoreError::GenesisMismatch { .. }), "{err}");
        // A reset store holds nothing and can take a genesis again.
        store.reset().unwrap();
        assert_eq!(store.load_state().unwrap(), ChainState::default());
        assert_eq!(store.load_or_init(&g).unwrap(), db_state());
    }
}
