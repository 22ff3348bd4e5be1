//! A miner (`cql-minerd`): hosts databases as replicated SQLite (DESIGN §5).
//!
//! [`Miner::start`] registers with the block producers' directory, offers
//! service on the main chain (`ProvideService` now and every
//! `ProvideServiceInterval`), and follows the main chain to learn which
//! databases it must serve ([`follow`]). Each database is a Raft group over
//! its miners ([`host`]) sharing this miner's one listener and connection
//! pool; the leader seals a block every `SQLChainPeriod` and bills users
//! every `BillingBlockCount` blocks ([`seal`]). Clients reach the databases
//! through the query service ([`service`]).

mod audit;
mod batch;
mod follow;
mod heartbeat;
mod host;
mod seal;
mod service;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use covenant_client::Client;
use covenant_core::config::Config;
use covenant_core::consensus::database::AuditBatch;
use covenant_core::consensus::{GroupRegistry, network};
use covenant_core::crypto::{Address, NodeId, PrivateKey, keyfile};
use covenant_core::metrics::{MetricsServer, MinerMetrics};
use covenant_core::net::{NetConfig, NodeIdentity, Pool, Router, RpcServer, TlsContext};
use covenant_core::types::DatabaseId;
use tokio::task::JoinHandle;

pub use self::host::DatabaseHost;
use crate::error::{MinerError, Result};

/// Settings a test or an embedding app may change; the binary uses defaults
/// plus `METRIC_WEB_ADDR`.
#[derive(Debug, Clone, Default)]
pub struct MinerOptions {
    /// Where to serve `/debug/vars`, `/metrics` and `/readyz` (none if `None`).
    pub metrics_addr: Option<String>,
    /// How often to poll the main chain for assigned databases (default 500 ms).
    pub follow_interval: Option<Duration>,
}

/// Everything the miner's tasks share.
pub(crate) struct MinerInner {
    pub(crate) identity: NodeIdentity,
    pub(crate) config: Config,
    pub(crate) root: PathBuf,
    pub(crate) max_req_time_gap: Duration,
    pub(crate) provide_interval: Duration,
    pub(crate) target_users: Vec<Address>,
    pub(crate) client: Client,
    pub(crate) net: Pool,
    pub(crate) registry: GroupRegistry,
    pub(crate) hosts: RwLock<HashMap<DatabaseId, Arc<DatabaseHost>>>,
    pub(crate) metrics: Arc<MinerMetrics>,
    pub(crate) listen: String,
    pub(crate) follow_interval: Duration,
    /// Where replicas send applied writes for the background signature audit.
    pub(crate) audit: std::sync::mpsc::Sender<AuditBatch>,
}

impl MinerInner {
    pub(crate) fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub(crate) fn host(&self, id: &DatabaseId) -> Option<Arc<DatabaseHost>> {
        self.hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// A running miner.
pub struct Miner {
    inner: Arc<MinerInner>,
    server: RpcServer,
    metrics_server: Option<MetricsServer>,
    tasks: Vec<JoinHandle<()>>,
}

impl Miner {
    /// Loads the config at `path` and its key, then starts.
    pub async fn start_from_file(
        path: &std::path::Path,
        master_key: &[u8],
        options: MinerOptions,
    ) -> Result<Miner> {
        let config = Config::load(path).map_err(covenant_core::Error::from)?;
        let key = keyfile::read_key_file(&config.private_key_path(), master_key)
            .map_err(covenant_core::Error::from)?;
        Miner::start(config, key, options).await
    }

    /// Starts the miner described by `config`, signing with `key`.
    pub async fn start(config: Config, key: PrivateKey, options: MinerOptions) -> Result<Miner> {
        let config_path = config.config_dir().display().to_string();
        let cfg_err = |reason: String| MinerError::Config {
            path: config_path.clone(),
            reason,
        };
        let miner = config.resolved_miner().ok_or_else(|| {
            cfg_err(
                "no Miner section: generate a miner config with `cql generate -miner host:port`"
                    .into(),
            )
        })?;
        let nonce = config
            .nonce
            .ok_or_else(|| cfg_err("no Nonce: run `cql idminer` or regenerate".into()))?;
        let listen = config.listen_addr.clone().ok_or_else(|| {
            cfg_err("no ListenAddr: the address clients reach this miner on".into())
        })?;
        if config.block_producers.is_empty() {
            return Err(cfg_err(
                "no BlockProducers: generate with `-testnet DIR/testnet.yaml`".into(),
            ));
        }
        let identity = NodeIdentity::new(key.clone(), nonce);
        let net_config = NetConfig {
            min_difficulty: config.min_node_id_difficulty,
            ..NetConfig::default()
        };
        let tls = TlsContext::new(&identity, &net_config)?;
        let net = Pool::new(tls.clone(), net_config.clone());
        let client = Client::new(config.clone(), key)
            .map_err(|e| cfg_err(format!("cannot build the main-chain client: {e}")))?;
        std::fs::create_dir_all(&miner.root_dir).map_err(|e| {
            cfg_err(format!(
                "cannot create RootDir {}: {e}",
                miner.root_dir.display()
            ))
        })?;
        let metrics = Arc::new(MinerMetrics::new(
            listen.clone(),
            identity.node_id(),
            identity.address(),
            miner.root_dir.clone(),
        ));
        let inner = Arc::new(MinerInner {
            identity,
            root: miner.root_dir.clone(),
            max_req_time_gap: miner.max_req_time_gap,
            provide_interval: miner.provide_service_interval,
            target_users: miner.target_users.clone(),
            client,
            net,
            registry: GroupRegistry::new(),
            hosts: RwLock::new(HashMap::new()),
            metrics: metrics.clone(),
            listen: listen.clone(),
            audit: audit::start(),
            follow_interval: options
                .follow_interval
                .unwrap_or(Duration::from_millis(500)),
            config,
        });

        let mut router = Router::new();
        network::mount(&mut router, inner.registry.clone())?;
        service::mount(&mut router, inner.clone())?;
        let server = RpcServer::bind(&listen, &tls, router, net_config).await?;
        let metrics_server = match &options.metrics_addr {
            Some(addr) => Some(
                covenant_core::metrics::serve(addr, metrics)
                    .await
                    .map_err(|e| cfg_err(format!("cannot serve metrics on {addr}: {e}")))?,
            ),
            None => None,
        };

        // Resume every database this miner served before a restart at once,
        // then keep following the chain.
        follow::resume(&inner).await;
        let tasks = vec![
            tokio::spawn(follow::provide_service_loop(inner.clone())),
            tokio::spawn(follow::follow_loop(inner.clone())),
            tokio::spawn(heartbeat::run(inner.clone())),
        ];
        tracing::info!(node = %inner.node_id(), addr = %server.local_addr(), "miner serving");
        Ok(Miner {
            inner,
            server,
            metrics_server,
            tasks,
        })
    }

    /// This miner's node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id()
    }

    /// This miner's wallet address.
    pub fn address(&self) -> Address {
        self.inner.identity.address()
    }

    /// The RPC listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The metrics listener's address, if serving.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|m| m.local_addr())
    }

    /// The databases this miner currently hosts.
    pub fn databases(&self) -> Vec<DatabaseId> {
        self.inner
            .hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// The hosted database `id`, if any.
    pub fn database(&self, id: &DatabaseId) -> Option<Arc<DatabaseHost>> {
        self.inner.host(id)
    }

    /// Stops every task, every database group and the listeners.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.server.shutdown().await;
        if let Some(m) = self.metrics_server {
            m.shutdown().await;
        }
        let hosts: Vec<_> = self
            .inner
            .hosts
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in hosts {
            h.stop().await;
        }
    }
}
