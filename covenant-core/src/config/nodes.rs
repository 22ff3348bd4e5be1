//! The node entries of a config: `KnownNodes` and `BlockProducers`.

use serde::{Deserialize, Serialize};

use crate::crypto::{NodeId, Nonce, PublicKey};

/// What a node does in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeRole {
    /// A block producer (`cqld`). The original configs' `Leader` and
    /// `Follower` are read as this: Raft picks the leader at run time.
    #[serde(alias = "Leader", alias = "Follower")]
    BlockProducer,
    /// A miner (`cql-minerd`) that hosts databases.
    Miner,
    /// A client (`cql`, an app using `covenant-client`).
    Client,
    /// The HTTP adapter (`cql-adapter`).
    Adapter,
}

/// A node this process knows: its id, role, address and the proof of its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct KnownNode {
    /// The node id; must equal `H(PublicKey || Nonce)`.
    #[serde(rename = "ID")]
    pub id: NodeId,
    /// What the node does.
    pub role: NodeRole,
    /// `host:port` where it listens; clients that do not listen have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Its compressed public key (hex).
    pub public_key: PublicKey,
    /// Its proof-of-work nonce.
    pub nonce: Nonce,
}

/// One block producer of the network: where to reach it and how to check its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct BlockProducerInfo {
    /// The BP's node id; must equal `H(PublicKey || Nonce)`.
    #[serde(rename = "NodeID", alias = "ID")]
    pub node_id: NodeId,
    /// `host:port` of its RPC listener.
    pub addr: String,
    /// Its compressed public key (hex).
    pub public_key: PublicKey,
    /// Its proof-of-work nonce.
    pub nonce: Nonce,
}

impl BlockProducerInfo {
    /// The same BP as a [`KnownNode`] with role [`NodeRole::BlockProducer`].
    pub fn to_known_node(&self) -> KnownNode {
        KnownNode {
            id: self.node_id,
            role: NodeRole::BlockProducer,
            addr: Some(self.addr.clone()),
            public_key: self.public_key,
            nonce: self.nonce,
        }
    }
}
