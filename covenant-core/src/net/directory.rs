//! The node directory block producers host (DESIGN §3, "Register self to
//! blockproducer"): nodes register `{node id, role, address, public key, nonce}`
//! and anyone looks nodes up by id or role.
//!
//! Server half: [`DirectoryService`] checks every registration against the
//! caller's verified TLS identity and keeps records in a [`DirectoryStore`]
//! (in memory, or SQLite so a restarted producer remembers). Client half:
//! [`DirectoryClient`]. The methods are [`Register`], [`FindNode`], [`FindByRole`].

mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::store::{DirectoryStore, MemoryDirectory, SqliteDirectory};
use super::client::Connection;
use super::error::{NetError, RpcError};
use super::identity::PeerIdentity;
use super::method::Method;
use super::server::Router;
use crate::codec::Versioned;
use crate::crypto::{NodeId, Nonce, PublicKey};
use crate::error::ErrorCode;

/// Longest accepted listen address (`host:port`).
pub const MAX_ADDR_LEN: usize = 260;

/// What a node does in the network. The wire and disk encodings use the
/// variant's position, so new roles are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NodeRole {
    /// A main-chain block producer (also the directory).
    BlockProducer,
    /// A miner hosting databases.
    Miner,
    /// A client (the `cql` tool or an application).
    Client,
    /// The HTTP adapter.
    Adapter,
}

impl NodeRole {
    /// Every role, in encoding order.
    pub const ALL: [NodeRole; 4] = [
        NodeRole::BlockProducer,
        NodeRole::Miner,
        NodeRole::Client,
        NodeRole::Adapter,
    ];

    /// The stable number stored for this role.
    pub fn as_u8(self) -> u8 {
        match self {
            NodeRole::BlockProducer => 0,
            NodeRole::Miner => 1,
            NodeRole::Client => 2,
            NodeRole::Adapter => 3,
        }
    }
}

/// A directory entry: who a node is and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node id, `H(public key || nonce)`.
    pub node_id: NodeId,
    /// Its role.
    pub role: NodeRole,
    /// Where it accepts connections (`host:port`).
    pub addr: String,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its proof-of-work nonce.
    pub nonce: Nonce,
}

impl Versioned for NodeRecord {
    const KIND: &'static str = "directory record";
    const VERSION: u16 = 1;
}

impl NodeRecord {
    /// The record for the peer identity `who`, listening at `addr` in `role`.
    pub fn for_peer(who: &PeerIdentity, role: NodeRole, addr: impl Into<String>) -> NodeRecord {
        NodeRecord {
            node_id: who.node_id,
            role,
            addr: addr.into(),
            public_key: who.public_key,
            nonce: who.nonce,
        }
    }
}

/// Registers (or updates) the caller's own record.
#[derive(Debug)]
pub struct Register;

impl Method for Register {
    const NAME: &'static str = "directory.register";
    const IDEMPOTENT: bool = true;
    type Request = NodeRecord;
    type Response = ();
}

/// Looks a node up by id.
#[derive(Debug)]
pub struct FindNode;

impl Method for FindNode {
    const NAME: &'static str = "directory.find_node";
    const IDEMPOTENT: bool = true;
    type Request = NodeId;
    type Response = Option<NodeRecord>;
}

/// Lists the nodes registered in a role, by node id.
#[derive(Debug)]
pub struct FindByRole;

impl Method for FindByRole {
    const NAME: &'static str = "directory.find_by_role";
    const IDEMPOTENT: bool = true;
    type Request = NodeRole;
    type Response = Vec<NodeRecord>;
}

/// The server half: validates registrations and answers look-ups.
pub struct DirectoryService {
    store: Arc<dyn DirectoryStore>,
    min_difficulty: u32,
    block_producers: HashSet<NodeId>,
}

impl std::fmt::Debug for DirectoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryService")
            .field("min_difficulty", &self.min_difficulty)
            .field("block_producers", &self.block_producers.len())
            .finish()
    }
}

fn storage_error(e: NetError) -> RpcError {
    RpcError::new(e.code(), e.to_string()).with_retryable(true)
}

impl DirectoryService {
    /// A service over `store`, refusing node ids under `min_difficulty`. No node
    /// may register as a block producer until [`Self::with_block_producers`] names them.
    pub fn new(store: Arc<dyn DirectoryStore>, min_difficulty: u32) -> DirectoryService {
        DirectoryService {
            store,
            min_difficulty,
            block_producers: HashSet::new(),
        }
    }

    /// The configured block producers: only they may register in that role.
    pub fn with_block_producers(mut self, ids: impl IntoIterator<Item = NodeId>) -> Self {
        self.block_producers = ids.into_iter().collect();
        self
    }

    /// Adds the directory's methods to `router`.
    pub fn mount(self: Arc<Self>, router: &mut Router) -> Result<(), NetError> {
        let svc = self.clone();
        router.register::<Register, _, _>(move |peer, record| {
            let svc = svc.clone();
            async move { svc.register(&peer, record).await }
        })?;
        let svc = self.clone();
        router.register::<FindNode, _, _>(move |_peer, id| {
            let svc = svc.clone();
            async move {
                svc.blocking(move |store| store.get(&id))
                    .await
                    .map_err(storage_error)
            }
        })?;
        let svc = self;
        router.register::<FindByRole, _, _>(move |_peer, role| {
            let svc = svc.clone();
            async move {
                svc.blocking(move |store| store.by_role(role))
                    .await
                    .map_err(storage_error)
            }
        })?;
        Ok(())
    }

    /// Why `caller` may not register `record`, if it may not.
    pub fn check_registration(
        &self,
        caller: &PeerIdentity,
        record: &NodeRecord,
    ) -> Result<(), RpcError> {
        if record.node_id != caller.node_id || record.public_key != caller.public_key {
            return Err(RpcError::new(
                ErrorCode::PermissionDenied,
                format!(
                    "node {} may only register itself, not {}",
                    caller.node_id, record.node_id
                ),
            ));
        }
        record
            .node_id
            .verify(&record.public_key, &record.nonce, self.min_difficulty)
            .map_err(|e| RpcError::new(e.code(), e.to_string()))?;
        if record.role == NodeRole::BlockProducer && !self.block_producers.contains(&record.node_id)
        {
            return Err(RpcError::new(
                ErrorCode::PermissionDenied,
                format!("node {} is not a configured block producer", record.node_id),
            ));
        }
        valid_addr(&record.addr).then_some(()).ok_or_else(|| {
            RpcError::new(
                ErrorCode::InvalidArgument,
                format!("address {:?} is not host:port", record.addr),
            )
        })
    }

    async fn register(&self, caller: &PeerIdentity, record: NodeRecord) -> Result<(), RpcError> {
        self.check_registration(caller, &record)?;
        tracing::info!(node = %record.node_id, role = ?record.role, addr = %record.addr, "node registered");
        self.blocking(move |store| store.upsert(&record))
            .await
            .map_err(storage_error)
    }

    /// Runs a store operation off the async threads (SQLite blocks).
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&dyn DirectoryStore) -> Result<T, NetError> + Send + 'static,
    ) -> Result<T, NetError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || op(store.as_ref()))
            .await
            .map_err(|e| NetError::Storage {
                op: "blocking task",
                reason: e.to_string(),
            })?
    }
}

/// `host:port` with a non-empty host and a numeric port, of bounded length.
fn valid_addr(addr: &str) -> bool {
    addr.len() <= MAX_ADDR_LEN
        && addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// The client half: the directory's methods over one connection to a block producer.
#[derive(Clone, Debug)]
pub struct DirectoryClient {
    conn: Connection,
}

impl DirectoryClient {
    /// A client over `conn`.
    pub fn new(conn: Connection) -> DirectoryClient {
        DirectoryClient { conn }
    }

    /// Registers this node (the record must describe the connection's own identity).
    pub async fn register(&self, record: &NodeRecord, timeout: Duration) -> Result<(), NetError> {
        self.conn.call::<Register>(record, timeout).await
    }

    /// The record of `id`, if registered.
    pub async fn find_node(
        &self,
        id: NodeId,
        timeout: Duration,
    ) -> Result<Option<NodeRecord>, NetError> {
        self.conn.call::<FindNode>(&id, timeout).await
    }

    /// Every node registered in `role`, ordered by node id.
    pub async fn find_by_role(
        &self,
        role: NodeRole,
        timeout: Duration,
    ) -> Result<Vec<NodeRecord>, NetError> {
        self.conn.call::<FindByRole>(&role, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::NodeIdentity;

    fn service(min: u32) -> DirectoryService {
        DirectoryService::new(Arc::new(MemoryDirectory::default()), min)
    }

    #[test]
    fn registration_must_match_the_caller() {
        let me = NodeIdentity::mine_weak(4).unwrap();
        let other = NodeIdentity::mine_weak(4).unwrap();
        let svc = service(4);
        let mine = NodeRecord::for_peer(&me.as_peer(), NodeRole::Miner, "127.0.0.1:1");
        svc.check_registration(&me.as_peer(), &mine).unwrap();
        // Someone else's record.
        let theirs = NodeRecord::for_peer(&other.as_peer(), NodeRole::Miner, "127.0.0.1:1");
        let e = svc.check_registration(&me.as_peer(), &theirs).unwrap_err();
        assert!(e.is(ErrorCode::PermissionDenied), "{e}");
        // My id with another key.
        let mut forged = mine.clone();
        forged.public_key = other.public_key();
        assert!(svc.check_registration(&me.as_peer(), &forged).is_err());
        // My id and key with a nonce that does not give my id.
        let mut bad_nonce = mine.clone();
        bad_nonce.nonce.d ^= 1;
        let e = svc
            .check_registration(&me.as_peer(), &bad_nonce)
            .unwrap_err();
        assert!(e.is(ErrorCode::BadNodeId), "{e}");
        // Too easy for this directory.
        let strict = service(me.node_id().difficulty() + 1);
        let e = strict.check_registration(&me.as_peer(), &mine).unwrap_err();
        assert!(e.is(ErrorCode::BadNodeId), "{e}");
        // Bad addresses.
        for addr in ["", "nohost", ":80", "h:port", "h:70000"] {
            let mut r = mine.clone();
            r.addr = addr.into();
            assert!(svc.check_registration(&me.as_peer(), &r).is_err(), "{addr}");
        }
    }

    #[test]
    fn only_configured_block_producers_take_that_role() {
        let bp = NodeIdentity::mine_weak(0).unwrap();
        let rogue = NodeIdentity::mine_weak(0).unwrap();
        let svc = service(0).with_block_producers([bp.node_id()]);
        let r = NodeRecord::for_peer(&bp.as_peer(), NodeRole::BlockProducer, "bp:4661");
        svc.check_registration(&bp.as_peer(), &r).unwrap();
        let r = NodeRecord::for_peer(&rogue.as_peer(), NodeRole::BlockProducer, "x:1");
        let e = svc.check_registration(&rogue.as_peer(), &r).unwrap_err();
        assert!(e.is(ErrorCode::PermissionDenied), "{e}");
    }

    #[test]
    fn role_numbers_are_stable() {
        let nums: Vec<u8> = NodeRole::ALL.iter().map(|r| r.as_u8()).collect();
        assert_eq!(nums, [0, 1, 2, 3]);
        // The wire encoding agrees with the stored number.
        for r in NodeRole::ALL {
            assert_eq!(crate::codec::encode(&r).unwrap(), [r.as_u8()]);
        }
    }
}
