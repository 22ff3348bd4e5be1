//! Raft over Covenant's TLS RPC: one `raft.message` method carries every
//! group's AppendEntries, Vote and InstallSnapshot, keyed by [`GroupId`], so
//! a miner with many databases uses one listener and one connection per peer.
//!
//! Client half: [`RaftNetwork`] implements openraft's `RaftNetworkFactory`
//! over a shared [`Pool`]. Server half: [`mount`] registers the method on a
//! [`Router`] and hands messages to the node's [`GroupRegistry`], which
//! refuses senders that are not members of the group.
//!
//! The leader's log acknowledges appends before they are durable (see
//! `log_store`), so an AppendEntries never tells followers that an index is
//! committed before it is durable on the leader: a message carrying entries
//! goes at once with the commit index lowered to what is durable; one
//! carrying only the commit index waits for the leader's flush.

use std::marker::PhantomData;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork as OpenraftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{LogId, RaftTypeConfig};
use serde::{Serialize, de::DeserializeOwned};

use super::log_store::LogProgress;
use super::rpc::{GroupRegistry, RaftMessage, RaftRpcError, RaftRpcKind};
use super::types::{GroupId, RaftPeer};
use crate::codec;
use crate::crypto::NodeId;
use crate::error::ErrorCode;
use crate::net::{Method, NetError, Pool, Router, RpcError};

/// Largest encoded AppendEntries sent as one message: room below the RPC
/// frame limit for the envelope.
const MAX_APPEND_BYTES: usize = crate::net::DEFAULT_MAX_FRAME_LEN - (1 << 20);

/// The one RPC method that carries Raft traffic for every group.
pub struct RaftRpc;

impl Method for RaftRpc {
    const NAME: &'static str = "raft.message";
    type Request = RaftMessage;
    type Response = Vec<u8>;
}

/// Serves [`RaftRpc`] on `router`, delivering messages to `registry`.
pub fn mount(router: &mut Router, registry: GroupRegistry) -> Result<(), NetError> {
    router.register::<RaftRpc, _, _>(move |peer, msg| {
        let registry = registry.clone();
        async move {
            registry
                .dispatch(peer.node_id, msg)
                .await
                .map_err(|e| match e {
                    RaftRpcError::UnknownGroup(_) => {
                        RpcError::new(ErrorCode::NotFound, e.to_string()).with_retryable(true)
                    }
                    RaftRpcError::NotMember { .. } => {
                        RpcError::new(ErrorCode::PermissionDenied, e.to_string())
                    }
                    RaftRpcError::Codec(_) => RpcError::new(ErrorCode::BadRequest, e.to_string()),
                    RaftRpcError::Log(_) => RpcError::new(ErrorCode::Storage, e.to_string()),
                })
        }
    })?;
    Ok(())
}

/// Creates per-peer Raft clients for one group over a shared connection pool.
pub struct RaftNetwork<C> {
    group: GroupId,
    pool: Pool,
    log: LogProgress,
    _config: PhantomData<fn() -> C>,
}

impl<C> RaftNetwork<C> {
    /// Clients for `group`, dialling through `pool`; `log` is this node's
    /// log of the group (commit indexes sent are durable in it).
    pub fn new(group: GroupId, pool: Pool, log: LogProgress) -> RaftNetwork<C> {
        RaftNetwork {
            group,
            pool,
            log,
            _config: PhantomData,
        }
    }
}

/// The Raft client for one peer of one group.
pub struct RaftPeerClient<C: RaftTypeConfig> {
    group: GroupId,
    pool: Pool,
    target: C::NodeId,
    peer: NodeId,
    log: LogProgress,
}

impl<C> RaftNetworkFactory<C> for RaftNetwork<C>
where
    C: RaftTypeConfig<Node = RaftPeer, SnapshotData = std::io::Cursor<Vec<u8>>>,
    AppendEntriesRequest<C>: Serialize,
    InstallSnapshotRequest<C>: Serialize,
    VoteRequest<C::NodeId>: Serialize,
    AppendEntriesResponse<C::NodeId>: DeserializeOwned,
    InstallSnapshotResponse<C::NodeId>: DeserializeOwned,
    VoteResponse<C::NodeId>: DeserializeOwned,
    RaftError<C::NodeId>: DeserializeOwned,
    RaftError<C::NodeId, InstallSnapshotError>: DeserializeOwned,
{
    type Network = RaftPeerClient<C>;

    async fn new_client(&mut self, target: C::NodeId, node: &RaftPeer) -> Self::Network {
        self.pool.set_address(node.node_id, node.addr.clone());
        RaftPeerClient {
            group: self.group,
            pool: self.pool.clone(),
            target,
            peer: node.node_id,
            log: self.log.clone(),
        }
    }
}

impl<C> RaftPeerClient<C>
where
    C: RaftTypeConfig<Node = RaftPeer>,
{
    async fn send<Req, Resp, E>(
        &self,
        kind: RaftRpcKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<C::NodeId, RaftPeer, RaftError<C::NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        RaftError<C::NodeId, E>: DeserializeOwned,
    {
        let payload = codec::encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.send_encoded(kind, payload, option).await
    }

    async fn send_encoded<Resp, E>(
        &self,
        kind: RaftRpcKind,
        payload: Vec<u8>,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<C::NodeId, RaftPeer, RaftError<C::NodeId, E>>>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        RaftError<C::NodeId, E>: DeserializeOwned,
    {
        let msg = RaftMessage {
            group: self.group,
            kind,
            payload,
        };
        let bytes = self
            .pool
            .call::<RaftRpc>(self.peer, &msg, option.hard_ttl())
            .await
            .map_err(|e| match e {
                NetError::Timeout { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                e if e.retryable() => RPCError::Unreachable(Unreachable::new(&e)),
                e => RPCError::Network(NetworkError::new(&e)),
            })?;
        let result: Result<Resp, RaftError<C::NodeId, E>> =
            codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target.clone(), e)))
    }
}

impl<C> OpenraftNetwork<C> for RaftPeerClient<C>
where
    C: RaftTypeConfig<Node = RaftPeer, SnapshotData = std::io::Cursor<Vec<u8>>>,
    AppendEntriesRequest<C>: Serialize,
    InstallSnapshotRequest<C>: Serialize,
    VoteRequest<C::NodeId>: Serialize,
    AppendEntriesResponse<C::NodeId>: DeserializeOwned,
    InstallSnapshotResponse<C::NodeId>: DeserializeOwned,
    VoteResponse<C::NodeId>: DeserializeOwned,
    RaftError<C::NodeId>: DeserializeOwned,
    RaftError<C::NodeId, InstallSnapshotError>: DeserializeOwned,
{
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C::NodeId>, RPCError<C::NodeId, RaftPeer, RaftError<C::NodeId>>>
    {
        if let Some(commit) = rpc.leader_commit.as_ref().map(|c| c.index)
            && !self.log.is_durable(commit)
        {
            if rpc.entries.is_empty() {
                self.log
                    .wait_index(commit)
                    .await
                    .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            } else {
                rpc.leader_commit = durable_commit(&self.log, rpc.prev_log_id.as_ref(), commit);
            }
        }
        // Entries are replicated in runs; a run that would not fit in one
        // frame is split (openraft retries with the hinted number of entries).
        let n = rpc.entries.len() as u64;
        let payload = codec::encode(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if n > 1 && payload.len() > MAX_APPEND_BYTES {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((n / 2).max(1)),
            ));
        }
        self.send_encoded(RaftRpcKind::AppendEntries, payload, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<C::NodeId>,
        RPCError<C::NodeId, RaftPeer, RaftError<C::NodeId, InstallSnapshotError>>,
    > {
        self.send(RaftRpcKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C::NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<C::NodeId>, RPCError<C::NodeId, RaftPeer, RaftError<C::NodeId>>> {
        self.send(RaftRpcKind::Vote, &rpc, &option).await
    }
}

/// The commit index to send instead of `commit` while that is not durable
/// here: `prev` (the entry before those sent) if it is committed and
/// durable, else none. Followers only ever raise their commit index, so a
/// lower one just tells them later.
fn durable_commit<N: openraft::NodeId>(
    log: &LogProgress,
    prev: Option<&LogId<N>>,
    commit: u64,
) -> Option<LogId<N>> {
    prev.filter(|p| p.index <= commit && log.is_durable(p.index))
        .cloned()
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;

    fn id(index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    #[test]
    fn followers_are_never_told_of_a_commit_the_leader_has_not_stored() {
        let log = LogProgress::new();
        let seq = log.submit(5, 8);
        // Entries 5..=8 sent after 4: 4 is durable and committed, so it may be said.
        assert_eq!(durable_commit(&log, Some(&id(4)), 7), Some(id(4)));
        // prev is past the commit index: nothing may be said.
        assert_eq!(durable_commit(&log, Some(&id(4)), 3), None);
        // prev itself is still being written (a rewrite after truncation).
        let again = log.submit(4, 4);
        assert_eq!(durable_commit(&log, Some(&id(4)), 7), None);
        assert_eq!(durable_commit::<u64>(&log, None, 7), None);
        log.flushed(seq, Ok(()));
        log.flushed(again, Ok(()));
        assert_eq!(durable_commit(&log, Some(&id(4)), 7), Some(id(4)));
    }
}
