//! `covenant-miner`: the node processes of Covenant.
//!
//! - [`bp`]: a block producer (`cqld`): one member of the main chain's Raft
//!   group, serving the chain API, the node directory and Raft traffic.
//!
//! - [`miner`]: a miner (`cql-minerd`): hosts the databases the main chain
//!   assigns it as replicated SQLite, one Raft group per database.
//!
//! The binaries stay thin and call into this library, so tests and the
//! quickstart can start whole networks in-process.
#![warn(missing_docs, unreachable_pub)]

pub mod allocator;
pub mod args;
pub mod bp;
pub mod error;
pub mod localnet;
pub mod logging;
pub mod miner;
pub mod signal;

pub use covenant_core as core;
pub use error::{MinerError, Result};
