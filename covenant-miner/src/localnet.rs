//! A whole Covenant network in one process, on free loopback ports with its
//! data in a folder: block producers, miners and a funded "super client".
//! For tests, benchmarks and the quickstart; nothing here is for production.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use covenant_client::Client;
use covenant_core::api::chain::GetProvider;
use covenant_core::config::{
    BlockProducerInfo, CONFIG_FILE_NAME, Config, GenesisAccount, GenesisConfig, MinerConfig,
};
use covenant_core::crypto::{Address, NodeId, write_key_file};
use covenant_core::net::NodeIdentity;
use covenant_core::types::{Balances, Token};

use crate::bp::BlockProducer;
use crate::error::{MinerError, Result};
use crate::miner::{Miner, MinerOptions};

/// How to build a local network.
#[derive(Debug, Clone)]
pub struct LocalNetOptions {
    /// Number of block producers (1, 3 or 5).
    pub block_producers: usize,
    /// Number of miners.
    pub miners: usize,
    /// Node-id difficulty every identity is mined at (kept low: seconds matter here).
    pub difficulty: u32,
    /// Main-chain block period.
    pub bp_period: Duration,
    /// Database block period.
    pub sql_chain_period: Duration,
    /// Serve each miner's metrics on a free port.
    pub metrics: bool,
    /// Start the miners in this process; when false, only write each one's
    /// config.yaml and private.key (empty passphrase) for another process
    /// to start (see [`LocalNet::miner_config_file`]).
    pub start_miners: bool,
}

impl Default for LocalNetOptions {
    fn default() -> Self {
        LocalNetOptions {
            block_producers: 1,
            miners: 1,
            difficulty: 8,
            bp_period: Duration::from_millis(200),
            sql_chain_period: Duration::from_millis(500),
            metrics: false,
            start_miners: true,
        }
    }
}

/// Tokens every genesis account of a local network receives, per token.
pub const GENESIS_FUNDS: u64 = 1_000_000_000_000_000;

/// A running local network.
pub struct LocalNet {
    dir: PathBuf,
    /// Block producers, in config order.
    pub bps: Vec<BlockProducer>,
    /// Miners.
    pub miners: Vec<Miner>,
    miner_configs: Vec<(Config, NodeIdentity)>,
    client_config: Config,
    super_client: NodeIdentity,
}

fn free_addr() -> Result<String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| MinerError::Config {
        path: "127.0.0.1:0".into(),
        reason: format!("cannot find a free port: {e}"),
    })?;
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    Ok(format!("127.0.0.1:{port}"))
}

/// Writes `config`'s config.yaml and the identity's private.key (empty
/// passphrase) into its config folder, as `cql generate -miner` would.
fn write_node_files(config: &Config, id: &NodeIdentity) -> Result<()> {
    let dir = config.config_dir();
    let failed = |e: String| MinerError::Config {
        path: dir.display().to_string(),
        reason: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    config
        .save(&dir.join(CONFIG_FILE_NAME))
        .map_err(|e| failed(e.to_string()))?;
    write_key_file(&config.private_key_path(), id.private_key(), b"")
        .map_err(|e| failed(e.to_string()))
}

fn identity(difficulty: u32) -> Result<NodeIdentity> {
    NodeIdentity::mine_weak(difficulty).map_err(|e| MinerError::Core(e.into()))
}

impl LocalNet {
    /// Starts the network with its data under `dir`.
    pub async fn start(dir: &Path, options: LocalNetOptions) -> Result<LocalNet> {
        let bp_ids = (0..options.block_producers.max(1))
            .map(|_| identity(options.difficulty))
            .collect::<Result<Vec<_>>>()?;
        let miner_ids = (0..options.miners)
            .map(|_| identity(options.difficulty))
            .collect::<Result<Vec<_>>>()?;
        let super_client = identity(options.difficulty)?;
        let mut bps = Vec::new();
        for id in &bp_ids {
            bps.push(BlockProducerInfo {
                node_id: id.node_id(),
                addr: free_addr()?,
                public_key: id.public_key(),
                nonce: id.nonce(),
            });
        }
        let funds = Balances::new()
            .with(Token::Particle, GENESIS_FUNDS)
            .with(Token::Wave, GENESIS_FUNDS);
        let genesis = GenesisConfig {
            timestamp: SystemTime::now(),
            accounts: std::iter::once(super_client.address())
                .chain(miner_ids.iter().map(|m| m.address()))
                .map(|address| GenesisAccount {
                    address,
                    balances: funds.clone(),
                })
                .collect(),
        };
        let base = |id: &NodeIdentity, sub: String| -> Config {
            let mut c = Config::default();
            c.nonce = Some(id.nonce());
            c.this_node_id = Some(id.node_id());
            c.wallet_address = Some(id.address());
            c.min_node_id_difficulty = options.difficulty;
            c.bp_period = options.bp_period;
            c.sql_chain_period = options.sql_chain_period;
            c.block_producers = bps.clone();
            c.set_config_dir(dir.join(sub));
            c
        };
        let mut started = Vec::new();
        for (i, id) in bp_ids.iter().enumerate() {
            let mut c = base(id, format!("bp_{i}"));
            c.listen_addr = Some(bps[i].addr.clone());
            c.genesis = Some(genesis.clone());
            std::fs::create_dir_all(c.config_dir()).map_err(|e| MinerError::Config {
                path: c.config_dir().display().to_string(),
                reason: e.to_string(),
            })?;
            started.push(BlockProducer::start(c, id.private_key().clone()).await?);
        }
        let mut miner_configs = Vec::new();
        let mut miners = Vec::new();
        for (i, id) in miner_ids.into_iter().enumerate() {
            let mut c = base(&id, format!("miner_{i}"));
            c.listen_addr = Some(free_addr()?);
            c.miner = Some(MinerConfig {
                root_dir: dir.join(format!("miner_{i}/data")),
                provide_service_interval: Duration::from_secs(5),
                ..MinerConfig::default()
            });
            if !options.start_miners {
                write_node_files(&c, &id)?;
                miner_configs.push((c, id));
                continue;
            }
            let m = Miner::start(
                c.clone(),
                id.private_key().clone(),
                MinerOptions {
                    metrics_addr: options.metrics.then(|| "127.0.0.1:0".to_string()),
                    follow_interval: Some(Duration::from_millis(100)),
                },
            )
            .await?;
            miners.push(m);
            miner_configs.push((c, id));
        }
        let client_config = base(&super_client, "super_client_config".into());
        Ok(LocalNet {
            dir: dir.to_path_buf(),
            bps: started,
            miners,
            miner_configs,
            client_config,
            super_client,
        })
    }

    /// The folder holding the network's data.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client acting as the funded super client.
    pub fn super_client(&self) -> Result<Client> {
        Client::new(
            self.client_config.clone(),
            self.super_client.private_key().clone(),
        )
        .map_err(|e| MinerError::Config {
            path: self.dir.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// A client config for `identity` on this network (block producers, difficulty).
    pub fn client_config_for(&self, identity: &NodeIdentity) -> Config {
        let mut c = self.client_config.clone();
        c.nonce = Some(identity.nonce());
        c.this_node_id = Some(identity.node_id());
        c.wallet_address = Some(identity.address());
        c
    }

    /// The super client's identity.
    pub fn super_identity(&self) -> &NodeIdentity {
        &self.super_client
    }

    /// Every miner's wallet address.
    pub fn miner_addresses(&self) -> Vec<Address> {
        self.miner_configs
            .iter()
            .map(|(_, id)| id.address())
            .collect()
    }

    /// Miner `i`'s config.yaml, written when the network was started
    /// without running its miners (`start_miners: false`).
    pub fn miner_config_file(&self, i: usize) -> Option<PathBuf> {
        self.miner_configs
            .get(i)
            .map(|(c, _)| c.config_dir().join(CONFIG_FILE_NAME))
    }

    /// Miner `i`'s listen address.
    pub fn miner_listen_addr(&self, i: usize) -> Option<&str> {
        self.miner_configs
            .get(i)
            .and_then(|(c, _)| c.listen_addr.as_deref())
    }

    /// Every miner's node id.
    pub fn miner_ids(&self) -> Vec<NodeId> {
        self.miner_configs
            .iter()
            .map(|(_, id)| id.node_id())
            .collect()
    }

    /// Waits until the main chain holds every miner's service offer, so a
    /// database can be created on them; an error after `timeout`.
    pub async fn wait_for_providers(&self, timeout: Duration) -> Result<()> {
        let client = self.super_client()?;
        let deadline = tokio::time::Instant::now() + timeout;
        for m in self.miner_addresses() {
            while client
                .call::<GetProvider>(&m)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                if tokio::time::Instant::now() >= deadline {
                    return Err(MinerError::Config {
                        path: self.dir.display().to_string(),
                        reason: format!(
                            "miner {m} did not offer service on the chain within {timeout:?}"
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Stops miner `i` (its data stays); [`Self::restart_miner`] brings it back.
    pub async fn stop_miner(&mut self, i: usize) -> Option<()> {
        if i >= self.miners.len() {
            return None;
        }
        let m = self.miners.remove(i);
        m.shutdown().await;
        Some(())
    }

    /// Restarts miner `i` from its data and puts it back at position `i`.
    pub async fn restart_miner(&mut self, i: usize) -> Result<()> {
        let (c, id) = self
            .miner_configs
            .get(i)
            .cloned()
            .ok_or_else(|| MinerError::Config {
                path: self.dir.display().to_string(),
                reason: format!("no miner {i}"),
            })?;
        let m = Miner::start(
            c,
            id.private_key().clone(),
            MinerOptions {
                metrics_addr: None,
                follow_interval: Some(Duration::from_millis(100)),
            },
        )
        .await?;
        let at = i.min(self.miners.len());
        self.miners.insert(at, m);
        Ok(())
    }

    /// Stops everything.
    pub async fn shutdown(self) {
        for m in self.miners {
            m.shutdown().await;
        }
        for b in self.bps {
            b.shutdown().await;
        }
    }
}
