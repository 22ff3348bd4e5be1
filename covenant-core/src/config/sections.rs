//! The role-specific sections of a config: `Miner`, `Adapter` and the main
//! chain's `Genesis`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::serde_time::{duration, timestamp};
use crate::crypto::Address;
use crate::types::Balances;

/// The `Miner` section: present only in a miner's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "PascalCase")]
pub struct MinerConfig {
    /// Where the miner keeps every database it serves; relative to the config's folder.
    pub root_dir: PathBuf,
    /// The largest accepted gap between a request's timestamp and the miner's clock.
    #[serde(with = "duration")]
    pub max_req_time_gap: Duration,
    /// How often the miner re-announces its offer (`ProvideService`).
    #[serde(with = "duration")]
    pub provide_service_interval: Duration,
    /// When not empty, the only users (wallet addresses) this miner serves.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_users: Vec<Address>,
    /// Raft log entries a database group applies between two snapshots of a
    /// replica (after one, the log it covers is purged); 0 never snapshots.
    /// The default suits every deployment; tests lower it.
    #[serde(skip_serializing_if = "MinerConfig::is_default_snapshot_log_entries")]
    pub snapshot_log_entries: u64,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            root_dir: PathBuf::from(MinerConfig::DEFAULT_ROOT_DIR),
            max_req_time_gap: Duration::from_secs(5 * 60),
            provide_service_interval: Duration::from_secs(10),
            target_users: Vec::new(),
            snapshot_log_entries: MinerConfig::DEFAULT_SNAPSHOT_LOG_ENTRIES,
        }
    }
}

impl MinerConfig {
    /// The `RootDir` that `cql generate -miner` writes.
    pub const DEFAULT_ROOT_DIR: &'static str = "./data";

    /// The default `SnapshotLogEntries`.
    pub const DEFAULT_SNAPSHOT_LOG_ENTRIES: u64 = 50_000;

    fn is_default_snapshot_log_entries(n: &u64) -> bool {
        *n == MinerConfig::DEFAULT_SNAPSHOT_LOG_ENTRIES
    }
}

/// Where the adapter keeps data: on the Covenant network or in local SQLite files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StorageDriver {
    /// Databases on Covenant miners (the normal mode).
    #[default]
    #[serde(rename = "covenantsql")]
    Covenant,
    /// Plain local SQLite files under `StorageRoot` (development mode).
    #[serde(rename = "sqlite3")]
    Sqlite3,
}

/// The `Adapter` section (see `specs/adapter-http-api.md`, "TLS and privileges").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "PascalCase")]
pub struct AdapterConfig {
    /// `host:port` of the HTTP(S) listener.
    pub listen_addr: String,
    /// Server certificate (PEM); HTTPS when this and `PrivateKeyPath` are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_path: Option<PathBuf>,
    /// Server private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<PathBuf>,
    /// Request and verify client certificates (needs `ClientCAPath`).
    pub verify_certificate: bool,
    /// CA bundle that client certificates must chain to.
    #[serde(rename = "ClientCAPath", skip_serializing_if = "Option::is_none")]
    pub client_ca_path: Option<PathBuf>,
    /// Certificate files whose holders have admin privilege.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_certs: Vec<PathBuf>,
    /// Certificate files whose holders may write.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_certs: Vec<PathBuf>,
    /// Where data lives.
    pub storage_driver: StorageDriver,
    /// Folder of the `sqlite3` driver's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_root: Option<PathBuf>,
    /// Address of a mirror server to read from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            listen_addr: AdapterConfig::DEFAULT_LISTEN_ADDR.to_string(),
            certificate_path: None,
            private_key_path: None,
            verify_certificate: false,
            client_ca_path: None,
            admin_certs: Vec::new(),
            write_certs: Vec::new(),
            storage_driver: StorageDriver::Covenant,
            storage_root: None,
            mirror: None,
        }
    }
}

impl AdapterConfig {
    /// The listener used when `ListenAddr` is absent.
    pub const DEFAULT_LISTEN_ADDR: &'static str = "127.0.0.1:4661";

    /// Whether the adapter serves HTTPS (certificate and key both set).
    pub fn tls_enabled(&self) -> bool {
        self.certificate_path.is_some() && self.private_key_path.is_some()
    }
}

/// The main chain's genesis: its time and the accounts funded in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GenesisConfig {
    /// The genesis block's timestamp (RFC 3339, UTC).
    #[serde(with = "timestamp")]
    pub timestamp: SystemTime,
    /// The accounts funded in genesis; no later transaction mints tokens.
    #[serde(default, alias = "BaseAccounts")]
    pub accounts: Vec<GenesisAccount>,
}

/// One account funded in genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct GenesisAccount {
    /// The wallet address.
    pub address: Address,
    /// Token (`Particle`, `Wave`, ...) to amount.
    #[serde(default)]
    pub balances: Balances,
}
