//! `covenant-miner`: the node processes of Covenant.
//!
//! It will hold the block producer (`cqld`, main chain on openraft) and the
//! miner (`cql-minerd`, replicated SQLite databases); the binaries stay thin
//! and call into this library so tests and the quickstart can start whole
//! networks in-process. Identity, codec and transport come from
//! [`covenant_core`].
#![warn(missing_docs, unreachable_pub)]

pub use covenant_core as core;
