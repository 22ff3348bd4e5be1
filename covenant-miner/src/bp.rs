//! A block producer: one member of the main chain's Raft group (DESIGN §4).
//!
//! [`BlockProducer::start`] opens the chain store and the Raft log under the
//! config's working root, joins the Raft group of the configured block
//! producers, and serves on one TLS listener: the chain API
//! ([`covenant_core::api::chain`]), the node directory and Raft traffic.
//! While it leads, it cuts a block every `BPPeriod` from its transaction pool
//! ([`producer`]); followers forward submissions to the leader ([`service`]).

mod producer;
mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use covenant_core::chain::{BpSet, ChainStore, Genesis, PoolConfig, TxPool};
use covenant_core::config::Config;
use covenant_core::consensus::founding;
use covenant_core::consensus::main_chain::{ChainShared, MainChainRaft, MainChainStateMachine};
use covenant_core::consensus::{
    GroupHandler, GroupId, GroupRegistry, LogStore, RaftNetwork, RaftPeer, raft_id,
};
use covenant_core::crypto::{NodeId, PrivateKey, keyfile};
use covenant_core::net::directory::{DirectoryService, SqliteDirectory};
use covenant_core::net::{NetConfig, NodeIdentity, Pool, Router, RpcServer, TlsContext};
use openraft::{Raft, SnapshotPolicy};
use tokio::task::JoinHandle;

use crate::error::{MinerError, Result};

/// Raft timing for the block producers: a leader that dies is replaced in
/// about a second, well inside a client's retry budget.
fn raft_config() -> Result<openraft::Config> {
    openraft::Config {
        cluster_name: "covenant-main-chain".into(),
        heartbeat_interval: 150,
        election_timeout_min: 600,
        election_timeout_max: 1200,
        // Blocks are never purged from the log, so followers catch up from it.
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MinerError::Raft(e.to_string()))
}

/// State shared by the services and the block loop.
pub(crate) struct BpInner {
    pub(crate) key: PrivateKey,
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft<MainChainRaft>,
    pub(crate) chain: Arc<ChainShared>,
    pub(crate) pool: Mutex<TxPool>,
    pub(crate) net: Pool,
    pub(crate) period: Duration,
}

impl BpInner {
    pub(crate) fn pool(&self) -> MutexGuard<'_, TxPool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current leader's node id, if known.
    pub(crate) fn leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|p| p.node_id)
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }
}

/// A running block producer.
pub struct BlockProducer {
    inner: Arc<BpInner>,
    server: RpcServer,
    producer: JoinHandle<()>,
    /// Founds the group later if its founder never reached this producer.
    founding: Option<JoinHandle<()>>,
}

/// The main chain's genesis as configured.
pub fn genesis_of(config: &Config) -> Result<Genesis> {
    let g = config.genesis.as_ref().ok_or_else(|| MinerError::Config {
        path: config.config_dir().display().to_string(),
        reason: "no Genesis section: a block producer needs the funded accounts \
                 (`cql testnet init` writes them)"
            .into(),
    })?;
    let timestamp = g
        .timestamp
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Genesis {
        timestamp,
        accounts: g
            .accounts
            .iter()
            .map(|a| (a.address, a.balances.clone()))
            .collect(),
        params: covenant_core::chain::ChainParams::new(config.min_provider_deposit),
    })
}

impl BlockProducer {
    /// Loads the config at `path` and its key (under `master_key`) and starts.
    pub async fn start_from_file(path: &Path, master_key: &[u8]) -> Result<BlockProducer> {
        let config = Config::load(path).map_err(covenant_core::Error::from)?;
        let key = keyfile::read_key_file(&config.private_key_path(), master_key)
            .map_err(covenant_core::Error::from)?;
        BlockProducer::start(config, key).await
    }

    /// Starts the block producer described by `config`, signing with `key`.
    pub async fn start(config: Config, key: PrivateKey) -> Result<BlockProducer> {
        let cfg_err = |reason: String| MinerError::Config {
            path: config.config_dir().display().to_string(),
            reason,
        };
        let nonce = config
            .nonce
            .ok_or_else(|| cfg_err("no Nonce: run `cql idminer` or regenerate".into()))?;
        let identity = NodeIdentity::new(key.clone(), nonce);
        let node_id = identity.node_id();
        let me = config
            .block_producers
            .iter()
            .find(|bp| bp.node_id == node_id)
            .ok_or_else(|| {
                cfg_err(format!(
                    "this node ({node_id}) is not in BlockProducers; only listed producers may run cqld"
                ))
            })?;
        let listen = config
            .listen_addr
            .clone()
            .unwrap_or_else(|| me.addr.clone());

        let net_config = NetConfig {
            min_difficulty: config.min_node_id_difficulty,
            ..NetConfig::default()
        };
        let tls = TlsContext::new(&identity, &net_config)?;
        let net = Pool::new(tls.clone(), net_config.clone());
        for bp in &config.block_producers {
            net.set_address(bp.node_id, bp.addr.clone());
        }

        let producers = BpSet::new(
            config
                .block_producers
                .iter()
                .map(|bp| (bp.node_id, bp.public_key)),
        );
        let members: BTreeMap<u64, RaftPeer> = config
            .block_producers
            .iter()
            .map(|bp| {
                (
                    raft_id(&bp.node_id),
                    RaftPeer {
                        node_id: bp.node_id,
                        addr: bp.addr.clone(),
                    },
                )
            })
            .collect();
        if members.len() != config.block_producers.len() {
            return Err(cfg_err(
                "two block producers share a Raft id; regenerate one of them".into(),
            ));
        }

        let root = config.working_root().join("chain");
        std::fs::create_dir_all(&root).map_err(|e| {
            cfg_err(format!(
                "cannot create data directory {}: {e}",
                root.display()
            ))
        })?;
        let genesis = genesis_of(&config)?;
        let store = ChainStore::open(&root.join("chain.db"))?;
        let chain = ChainShared::open(store, genesis, producers)?;
        let log = LogStore::<MainChainRaft>::open(&root.join("raft.db"))
            .map_err(covenant_core::Error::from)?;
        let progress = log.progress();
        let raft = Raft::new(
            raft_id(&node_id),
            Arc::new(raft_config()?),
            RaftNetwork::<MainChainRaft>::new(GroupId::MainChain, net.clone(), progress.clone()),
            log,
            MainChainStateMachine::new(chain.clone(), progress.clone()),
        )
        .await
        .map_err(|e| MinerError::Raft(e.to_string()))?;

        let inner = Arc::new(BpInner {
            key,
            node_id,
            raft: raft.clone(),
            chain,
            pool: Mutex::new(TxPool::new(PoolConfig::default())),
            net,
            period: config.bp_period,
        });

        let registry = GroupRegistry::new();
        registry.insert(
            GroupId::MainChain,
            Arc::new(
                GroupHandler::new(raft.clone(), progress)
                    .with_founders(members.values().map(|p| p.node_id).collect()),
            ),
        );
        let mut router = Router::new();
        covenant_core::consensus::network::mount(&mut router, registry)?;
        service::mount(&mut router, inner.clone())?;
        let directory = SqliteDirectory::open(&root.join("directory.db"))?;
        Arc::new(
            DirectoryService::new(Arc::new(directory), config.min_node_id_difficulty)
                .with_block_producers(config.block_producers.iter().map(|bp| bp.node_id)),
        )
        .mount(&mut router)?;
        let server = RpcServer::bind(&listen, &tls, router, net_config).await?;

        // One producer founds the group, the others only if it did not reach them.
        let founding = founding::found_group(
            &raft,
            members,
            raft_id(&node_id),
            founding::MAIN_CHAIN_KEY,
            "main chain".into(),
        )
        .await;

        let producer = tokio::spawn(producer::run(inner.clone()));
        tracing::info!(node = %node_id, addr = %server.local_addr(), "block producer serving");
        Ok(BlockProducer {
            inner,
            server,
            producer,
            founding,
        })
    }

    /// This producer's node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The address the RPC listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The chain as this producer has applied it.
    pub fn chain(&self) -> &Arc<ChainShared> {
        &self.inner.chain
    }

    /// The current Raft leader, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.leader()
    }

    /// Stops serving, stops the block loop and shuts Raft down.
    pub async fn shutdown(self) {
        self.producer.abort();
        if let Some(f) = &self.founding {
            f.abort();
        }
        self.server.shutdown().await;
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }
}
