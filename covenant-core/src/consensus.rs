//! The openraft glue shared by every replicated group in Covenant: the block
//! producers' main chain and each database's group of miners.
//!
//! Owns the durable Raft log ([`log_store`]). The chain and SQL-chain state
//! machines never import openraft; this module adapts them. Must not import
//! the network layer except through the Raft RPC service.

pub mod database;
pub mod founding;
pub mod log_store;
pub mod main_chain;
pub mod network;
mod open_marker;
pub mod rpc;
pub mod state_machine;
pub mod types;

pub use log_store::{LogProgress, LogStore, LogStoreError};
pub use network::{RaftNetwork, RaftRpc};
pub use rpc::{GroupHandler, GroupRegistry, RaftMessage, RaftRpcError, RaftRpcKind};
pub use types::{GroupId, RaftPeer, raft_id};
