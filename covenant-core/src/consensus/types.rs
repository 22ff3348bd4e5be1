//! The types every Raft group shares: how a member is named and addressed,
//! which group a message belongs to, and the timing defaults.

use serde::{Deserialize, Serialize};

use crate::crypto::NodeId;
use crate::hash::Hash;

/// A Raft member: its verified Covenant node id and where to dial it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftPeer {
    /// The member's node id; the transport checks it on every connection.
    pub node_id: NodeId,
    /// `host:port` of the member's RPC listener.
    pub addr: String,
}

impl std::fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.node_id, self.addr)
    }
}

/// The Raft-internal id of a member: the first 8 bytes of its node id.
///
/// Node ids are SHA3 outputs, so within one group of a handful of members a
/// collision of the 64 bits after the proof-of-work zeros is negligible;
/// groups check for it when they are formed ([`raft_id_collision`]).
pub fn raft_id(node: &NodeId) -> u64 {
    let b = node.as_bytes();
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        ^ u64::from_be_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]])
}

/// Whether two members of a group would share a Raft id.
pub fn raft_id_collision(members: &[NodeId]) -> bool {
    let mut ids: Vec<u64> = members.iter().map(raft_id).collect();
    ids.sort_unstable();
    ids.windows(2).any(|w| w[0] == w[1])
}

/// Which replicated group a Raft message is for; one transport carries them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupId {
    /// The block producers' main chain.
    MainChain,
    /// One database's group of miners, by database id.
    Database(Hash),
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupId::MainChain => f.write_str("main-chain"),
            GroupId::Database(h) => write!(f, "db:{}", h),
        }
    }
}
