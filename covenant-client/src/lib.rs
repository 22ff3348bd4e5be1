//! `covenant-client`: what apps `cargo add` to use a Covenant network, and
//! the library behind the `cql` command line.
//!
//! [`Client`] is one account's connection to the block producers: balances,
//! nonces, transfers and other transactions, following them until confirmed;
//! creating, dropping and granting databases. [`Database`] is that account's
//! handle on one database: signed queries routed to its leader miner.
//! Modules stay private; the public surface is re-exported here.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
mod client;
mod database;
mod error;

pub use client::{Client, ClientOptions, CreateOptions};
pub use covenant_core as core;
pub use covenant_core::api::chain::{ChainInfo, TxStatus};
pub use covenant_core::chain::TxResult;
pub use covenant_core::crypto::{Address, NodeId};
pub use covenant_core::hash::Hash;
pub use covenant_core::sqlchain::query::{Args, Query, QueryResult};
pub use covenant_core::sqlchain::request::QueryKind;
pub use covenant_core::sqlchain::value::Value;
pub use covenant_core::types::{Account, Token, Transaction, TxBody, TxPayload, TxState};
pub use covenant_core::types::{DatabaseId, DatabaseProfile, Permission, Roles};
pub use database::Database;
pub use error::ClientError;
