//! Raft messages as bytes: the transport-independent half of the Raft RPC
//! service. A node registers each of its groups in a [`GroupRegistry`]; the
//! server side hands incoming [`RaftMessage`]s to it, and it decodes them,
//! calls the group's `openraft::Raft`, and encodes the answer.
//!
//! A follower's log acknowledges appends to openraft before they are
//! durable (see `log_store`), so [`GroupHandler`] answers an AppendEntries
//! that succeeded only once every append made so far is durable: the
//! leader counts that answer as this replica holding the entries.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{Raft, RaftTypeConfig};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::log_store::{LogFlushError, LogProgress};
use super::types::{GroupId, RaftPeer};
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::NodeId;

/// Which Raft RPC a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpcKind {
    /// Log replication and heartbeats.
    AppendEntries,
    /// Leader election.
    Vote,
    /// A chunk of a snapshot.
    InstallSnapshot,
}

/// One Raft RPC for one group; the payload is the codec encoding of openraft's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftMessage {
    /// The group the message is for.
    pub group: GroupId,
    /// Which RPC.
    pub kind: RaftRpcKind,
    /// The encoded openraft request.
    #[serde(with = "crate::codec::serde_byte_vec")]
    pub payload: Vec<u8>,
}

impl Versioned for RaftMessage {
    const KIND: &'static str = "raft message";
    const VERSION: u16 = 1;
}

/// Why a Raft message could not be delivered to its group.
#[derive(Debug, thiserror::Error)]
pub enum RaftRpcError {
    /// This node hosts no such group (not yet created, or dropped).
    #[error("this node does not serve raft group {0}")]
    UnknownGroup(GroupId),
    /// The sender is not a member of the group it wrote to.
    #[error("node {sender} is not a member of raft group {group}")]
    NotMember {
        /// The group.
        group: GroupId,
        /// The verified sender.
        sender: NodeId,
    },
    /// The request or response did not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// This node's log of the group could not store what it was sent.
    #[error(transparent)]
    Log(#[from] LogFlushError),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A group that can answer Raft RPCs given as bytes.
pub trait RaftGroupHandler: Send + Sync + 'static {
    /// Whether `node` is a voter or learner of this group (only members may send Raft traffic).
    fn is_member(&self, node: &NodeId) -> bool;

    /// Decodes `payload` as a `kind` request, runs it, and returns the encoded result.
    fn handle(
        &self,
        kind: RaftRpcKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<u8>, RaftRpcError>>;
}

/// A group's Raft with its log's durability record: what a node registers.
pub struct GroupHandler<C: RaftTypeConfig> {
    raft: Raft<C>,
    log: LogProgress,
    /// Who may write while the group has no membership yet.
    founders: Vec<NodeId>,
}

impl<C: RaftTypeConfig> GroupHandler<C> {
    /// Serves `raft`, whose log's durability `log` records.
    pub fn new(raft: Raft<C>, log: LogProgress) -> GroupHandler<C> {
        GroupHandler {
            raft,
            log,
            founders: Vec::new(),
        }
    }

    /// Also admits `founders` (the group's configured members) while this
    /// replica has no membership yet: an empty replica joins by hearing the
    /// leader its founding member elected.
    pub fn with_founders(mut self, founders: Vec<NodeId>) -> GroupHandler<C> {
        self.founders = founders;
        self
    }
}

impl<C> RaftGroupHandler for GroupHandler<C>
where
    C: RaftTypeConfig<Node = RaftPeer, SnapshotData = std::io::Cursor<Vec<u8>>>,
    AppendEntriesRequest<C>: DeserializeOwned,
    AppendEntriesResponse<C::NodeId>: Serialize,
    InstallSnapshotRequest<C>: DeserializeOwned,
    InstallSnapshotResponse<C::NodeId>: Serialize,
    VoteRequest<C::NodeId>: DeserializeOwned,
    VoteResponse<C::NodeId>: Serialize,
    RaftError<C::NodeId>: Serialize,
    RaftError<C::NodeId, InstallSnapshotError>: Serialize,
{
    fn is_member(&self, node: &NodeId) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let mut members = m.membership_config.membership().nodes().peekable();
        if members.peek().is_none() {
            return self.founders.contains(node);
        }
        members.any(|(_, peer)| peer.node_id == *node)
    }

    fn handle(
        &self,
        kind: RaftRpcKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<u8>, RaftRpcError>> {
        Box::pin(async move {
            let out = match kind {
                RaftRpcKind::AppendEntries => {
                    let req: AppendEntriesRequest<C> = codec::decode(&payload)?;
                    let resp = self.raft.append_entries(req).await;
                    if let Ok(
                        AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_),
                    ) = &resp
                    {
                        self.log.wait_all().await?;
                    }
                    codec::encode(&resp)?
                }
                RaftRpcKind::Vote => {
                    let req: VoteRequest<C::NodeId> = codec::decode(&payload)?;
                    codec::encode(&self.raft.vote(req).await)?
                }
                RaftRpcKind::InstallSnapshot => {
                    let req: InstallSnapshotRequest<C> = codec::decode(&payload)?;
                    codec::encode(&self.raft.install_snapshot(req).await)?
                }
            };
            Ok(out)
        })
    }
}

/// The Raft groups one node hosts, by [`GroupId`]; shared by its RPC server.
#[derive(Clone, Default)]
pub struct GroupRegistry {
    groups: Arc<RwLock<HashMap<GroupId, Arc<dyn RaftGroupHandler>>>>,
    /// When each group last received AppendEntries (from its leader).
    contact: Arc<RwLock<HashMap<GroupId, Instant>>>,
}

impl GroupRegistry {
    /// An empty registry.
    pub fn new() -> GroupRegistry {
        GroupRegistry::default()
    }

    /// Adds or replaces the handler for `group`.
    pub fn insert(&self, group: GroupId, handler: Arc<dyn RaftGroupHandler>) {
        let mut g = self.groups.write().unwrap_or_else(|p| p.into_inner());
        g.insert(group, handler);
    }

    /// Removes `group`; later messages for it get [`RaftRpcError::UnknownGroup`].
    pub fn remove(&self, group: &GroupId) {
        let mut g = self.groups.write().unwrap_or_else(|p| p.into_inner());
        g.remove(group);
        let mut c = self.contact.write().unwrap_or_else(|p| p.into_inner());
        c.remove(group);
    }

    /// When `group` last heard from its leader (an AppendEntries arrived), if ever.
    pub fn last_leader_contact(&self, group: &GroupId) -> Option<Instant> {
        let c = self.contact.read().unwrap_or_else(|p| p.into_inner());
        c.get(group).copied()
    }

    /// Number of groups hosted.
    pub fn len(&self) -> usize {
        self.groups.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no group is hosted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers one message from the verified `sender` to its group and
    /// returns the encoded answer; senders outside the group are refused.
    pub async fn dispatch(
        &self,
        sender: NodeId,
        msg: RaftMessage,
    ) -> Result<Vec<u8>, RaftRpcError> {
        let handler = {
            let g = self.groups.read().unwrap_or_else(|p| p.into_inner());
            g.get(&msg.group).cloned()
        };
        let Some(h) = handler else {
            return Err(RaftRpcError::UnknownGroup(msg.group));
        };
        if !h.is_member(&sender) {
            return Err(RaftRpcError::NotMember {
                group: msg.group,
                sender,
            });
        }
        if msg.kind == RaftRpcKind::AppendEntries {
            let mut c = self.contact.write().unwrap_or_else(|p| p.into_inner());
            c.insert(msg.group, Instant::now());
        }
        h.handle(msg.kind, msg.payload).await
    }
}
