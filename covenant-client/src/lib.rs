//! `covenant-client`: what apps `cargo add` to use a Covenant network, and
//! the library behind the `cql` command line.
//!
//! [`Client`] is one account's connection to the block producers: balances,
//! nonces, transfers and other transactions, following them until confirmed;
//! creating, dropping and granting databases. [`Database`] is that account's
//! handle on one database: signed queries routed to its leader miner.
//! [`RowsExt`] reads result rows into your own types with serde, and
//! [`Database::verify`] checks the database's signed, hash-chained blocks
//! and proves that your writes are in them. [`blocking`] offers the same
//! for programs without an async runtime.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use covenant_client::{Args, Client, RowsExt as _, Value, VerifiedHead, VerifyOptions};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct Person {
//!     id: i64,
//!     name: String,
//!     email: Option<String>,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), covenant_client::ClientError> {
//!     // The config and key `cql generate` wrote; the master key is empty by default.
//!     let client = Client::from_config_file(Path::new("conf/config.yaml"), b"")?;
//!     let db = client
//!         .open_database("covenantsql://0a10b74439f2376d828c9a70fd538dac4b69e0f4065424feebc0f5dbc8b34872")
//!         .await?;
//!
//!     db.exec(
//!         "CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
//!         Args::default(),
//!     )
//!     .await?;
//!     let inserted = db
//!         .exec(
//!             "INSERT INTO people (name, email) VALUES (?, ?)",
//!             Args::Positional(vec![Value::from("Ann"), Value::Null]),
//!         )
//!         .await?;
//!     println!("new id {}", inserted.last_insert_id);
//!
//!     let result = db
//!         .query("SELECT id, name, email FROM people WHERE id >= ?", Args::Positional(vec![1.into()]))
//!         .await?;
//!     let people: Vec<Person> = result.rows_as()?;
//!     println!("{people:?}");
//!
//!     // Check the chain (from the head verified last time, if any) and prove the writes above.
//!     let head_file = Path::new("conf/.verified/people-db");
//!     let trusted = VerifiedHead::load_if_exists(head_file)?;
//!     let report = db.verify(VerifyOptions { trusted, ..VerifyOptions::default() }).await?;
//!     print!("{report}");
//!     if let Some(head) = report.head {
//!         head.save(head_file)?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! Modules stay private; the public surface is re-exported here.
#![warn(missing_docs, unreachable_pub)]

pub mod blocking;
pub mod cli;
mod client;
mod database;
mod dsn;
mod error;
mod rows;
mod verify;

pub use client::{Client, ClientOptions, CreateOptions};
pub use covenant_core as core;
pub use covenant_core::api::chain::{ChainInfo, TxStatus};
pub use covenant_core::chain::TxResult;
pub use covenant_core::crypto::{Address, NodeId};
pub use covenant_core::hash::Hash;
pub use covenant_core::sqlchain::query::{Args, Query, QueryResult};
pub use covenant_core::sqlchain::request::QueryKind;
pub use covenant_core::sqlchain::request::ReadLevel;
pub use covenant_core::sqlchain::value::Value;
pub use covenant_core::types::{Account, Token, Transaction, TxBody, TxPayload, TxState};
pub use covenant_core::types::{DatabaseId, DatabaseProfile, Permission, Roles};
pub use database::Database;
pub use dsn::{DEFAULT_MAX_LAG_MS, Dsn};
pub use error::ClientError;
pub use rows::{RowError, RowsExt, from_row};
pub use verify::{
    ACK_CAPACITY, BlockCheck, HEAD_FILE_VERSION, VerifiedHead, VerifyOptions, VerifyReport,
    WriteProof,
};
