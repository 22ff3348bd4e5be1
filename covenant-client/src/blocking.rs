//! A blocking facade over the async client, for programs without a tokio
//! runtime: [`Client`] owns a small runtime (one worker thread that keeps
//! connections serviced between calls) and every method runs the async
//! method of the same name to completion on it. [`Database`] handles opened
//! from it share that runtime.
//!
//! Do not call these methods from inside an async runtime (tokio panics when
//! a runtime blocks inside another); async code uses [`crate::Client`].
//!
//! ```no_run
//! use covenant_client::blocking::Client;
//! use covenant_client::{Args, CreateOptions, RowsExt as _, Value};
//!
//! # fn main() -> Result<(), covenant_client::ClientError> {
//! let client = Client::from_config_file("config.yaml".as_ref(), b"")?;
//! let id = client.create_database(CreateOptions::default())?;
//! let db = client.open_database(&id.to_dsn())?;
//! db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", Args::default())?;
//! db.exec("INSERT INTO t (name) VALUES (?)", Args::Positional(vec![Value::from("ann")]))?;
//! let names: Vec<(i64, String)> = db.query("SELECT id, name FROM t", Args::default())?.rows_as()?;
//! println!("{names:?}");
//! # Ok(())
//! # }
//! ```
//!
//! Must not hold logic of its own: each method forwards to the async API.

mod database;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use covenant_core::api::chain::{ChainInfo, TxStatus};
use covenant_core::config::Config;
use covenant_core::crypto::{Address, NodeId, PrivateKey};
use covenant_core::hash::Hash;
use covenant_core::types::{Account, DatabaseId, DatabaseProfile, Permission, Token};
use tokio::runtime::Runtime;

pub use self::database::Database;
use crate::client::{ClientOptions, CreateOptions};
use crate::error::ClientError;

/// The blocking twin of [`crate::Client`]: one account's connection to a
/// Covenant network. Cheap to clone; clones share connections and runtime.
#[derive(Clone, Debug)]
pub struct Client {
    // Declared before the runtime so its connections drop first.
    inner: crate::Client,
    rt: Arc<Runtime>,
}

/// A small runtime for the facade.
fn runtime() -> Result<Arc<Runtime>, ClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("covenant-client")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(ClientError::Runtime)
}

impl Client {
    /// Loads the config at `path` and its `PrivateKeyFile` opened with `master_key`.
    pub fn from_config_file(path: &Path, master_key: &[u8]) -> Result<Client, ClientError> {
        Client::from_config_file_with(path, master_key, ClientOptions::default())
    }

    /// [`Client::from_config_file`] with explicit options.
    pub fn from_config_file_with(
        path: &Path,
        master_key: &[u8],
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let rt = runtime()?;
        let inner = {
            let _entered = rt.enter();
            crate::Client::from_config_file_with(path, master_key, options)?
        };
        Ok(Client { inner, rt })
    }

    /// A client for `config` signing with `key`.
    pub fn new(config: Config, key: PrivateKey) -> Result<Client, ClientError> {
        Client::with_options(config, key, ClientOptions::default())
    }

    /// [`Client::new`] with explicit options.
    pub fn with_options(
        config: Config,
        key: PrivateKey,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let rt = runtime()?;
        let inner = {
            let _entered = rt.enter();
            crate::Client::with_options(config, key, options)?
        };
        Ok(Client { inner, rt })
    }

    /// The async client underneath (use it through [`Client::block_on`]).
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    /// Runs any future (for example a call on [`Client::as_async`]) to completion on this client's runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// This client's account (wallet) address.
    pub fn address(&self) -> Address {
        self.inner.address()
    }

    /// This client's node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id()
    }

    /// The config the client was built from.
    pub fn config(&self) -> &Config {
        self.inner.config()
    }

    /// An account's balances and next nonce.
    pub fn account(&self, address: &Address) -> Result<Account, ClientError> {
        self.block_on(self.inner.account(address))
    }

    /// This client's balance of `token`.
    pub fn balance(&self, token: Token) -> Result<u64, ClientError> {
        self.block_on(self.inner.balance(token))
    }

    /// The main chain's head and the block producers' leader.
    pub fn head(&self) -> Result<ChainInfo, ClientError> {
        self.block_on(self.inner.head())
    }

    /// Transfers `amount` of `token` to `to`; returns the transaction id unconfirmed.
    pub fn transfer(&self, to: Address, token: Token, amount: u64) -> Result<Hash, ClientError> {
        self.block_on(self.inner.transfer(to, token, amount))
    }

    /// Where transaction `hash` is in its life.
    pub fn tx_state(&self, hash: &Hash) -> Result<TxStatus, ClientError> {
        self.block_on(self.inner.tx_state(hash))
    }

    /// Waits until transaction `hash` is confirmed (a failed one is [`ClientError::TxFailed`]).
    pub fn wait_for_tx(&self, hash: &Hash, timeout: Duration) -> Result<TxStatus, ClientError> {
        self.block_on(self.inner.wait_for_tx(hash, timeout, |_| {}))
    }

    /// Creates a database and waits until the main chain has it.
    pub fn create_database(&self, opts: CreateOptions) -> Result<DatabaseId, ClientError> {
        self.block_on(self.inner.create_database(opts))
    }

    /// Drops database `id` (a Super user only) and waits for confirmation.
    pub fn drop_database(&self, id: &DatabaseId) -> Result<Hash, ClientError> {
        self.block_on(self.inner.drop_database(id))
    }

    /// Sets `user`'s permission on database `id` (a Super user only) and waits for confirmation.
    pub fn grant(
        &self,
        id: &DatabaseId,
        user: Address,
        permission: Permission,
    ) -> Result<Hash, ClientError> {
        self.block_on(self.inner.grant(id, user, permission))
    }

    /// The databases this client's account is a user of.
    pub fn databases(&self) -> Result<Vec<DatabaseProfile>, ClientError> {
        self.block_on(self.inner.databases())
    }

    /// What the main chain knows of database `id`.
    pub fn database_profile(&self, id: &DatabaseId) -> Result<DatabaseProfile, ClientError> {
        self.block_on(self.inner.database_profile(id))
    }

    /// Opens database `dsn_or_id` (`covenantsql://<hex>` or bare hex).
    pub fn open_database(&self, dsn_or_id: &str) -> Result<Database, ClientError> {
        let db = self.block_on(self.inner.open_database(dsn_or_id))?;
        Ok(Database::new(db, self.rt.clone()))
    }
}
