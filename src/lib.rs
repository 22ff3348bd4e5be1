//! Covenant: a decentralized SQL database whose every query is signed and
//! recorded in a hash-chained block chain per database.
//!
//! This facade re-exports the workspace crates so examples and workspace
//! tests reach everything through one name. Apps normally depend on
//! [`covenant_client`] alone.

pub use covenant_adapter as adapter;
pub use covenant_client as client;
pub use covenant_core as core;
pub use covenant_miner as miner;
