//! The miners' database service: signed queries, blocks and heads.
//!
//! Writes must reach the database group's leader: any other miner answers
//! [`ErrorCode::NotLeader`](crate::ErrorCode::NotLeader) with the leader's
//! node id as the hint, and clients follow it. Reads are answered by the
//! leader too (linearizable), unless the request allows a follower.

use serde::{Deserialize, Serialize};

use crate::consensus::database::ChainHeadInfo;
use crate::crypto::NodeId;
use crate::hash::Hash;
use crate::net::Method;
use crate::sqlchain::block::SqlBlock;
use crate::sqlchain::request::{QueryResponse, SignedRequest};
use crate::types::DatabaseId;

/// Runs a signed read or write request.
pub struct Query;
impl Method for Query {
    const NAME: &'static str = "db.query";
    type Request = SignedRequest;
    type Response = QueryResponse;
}

/// A block by number (`None` past the head).
pub struct GetBlock;
impl Method for GetBlock {
    const NAME: &'static str = "db.block";
    const IDEMPOTENT: bool = true;
    type Request = (DatabaseId, u64);
    type Response = Option<SqlBlock>;
}

/// A block by hash.
pub struct GetBlockByHash;
impl Method for GetBlockByHash {
    const NAME: &'static str = "db.block_by_hash";
    const IDEMPOTENT: bool = true;
    type Request = (DatabaseId, Hash);
    type Response = Option<SqlBlock>;
}

/// A database's head as one replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbHead {
    /// The last sealed block, if any.
    pub head: Option<ChainHeadInfo>,
    /// The group's leader, if known.
    pub leader: Option<NodeId>,
    /// The answering miner.
    pub miner: NodeId,
    /// Writes applied but not yet sealed.
    pub pending: u64,
}

/// The head of a database's chain.
pub struct GetHead;
impl Method for GetHead {
    const NAME: &'static str = "db.head";
    const IDEMPOTENT: bool = true;
    type Request = DatabaseId;
    type Response = DbHead;
}

/// Which block (number, position) recorded a request, once sealed; the
/// request is named by its id and its body's timestamp (ms), which the
/// index is ordered by.
pub struct LocateRequest;
impl Method for LocateRequest {
    const NAME: &'static str = "db.locate";
    const IDEMPOTENT: bool = true;
    type Request = (DatabaseId, Hash, u64);
    type Response = Option<(u64, u64)>;
}
