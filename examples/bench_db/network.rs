//! The network under test: a [`LocalNet`] whose block producer runs in the
//! bench process and whose N miners each run in their own process
//! ([`node`](crate::node)), with real TLS on loopback and durable Raft logs;
//! one database on all N miners with a `kv` table; and the super client's
//! config + key written to disk for the worker processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use covenant::client::{Args, CreateOptions};
use covenant::core::config::{CONFIG_FILE_NAME, PRIVATE_KEY_FILE_NAME};
use covenant::core::crypto::write_key_file;
use covenant::core::types::Consistency;
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

use crate::node::{self, NodeProcess};
use crate::worker::Target;

/// A running network with the benchmark's database on it.
pub struct Setup {
    /// The network (its block producer; the miners run in `nodes`).
    pub net: LocalNet,
    /// The miner processes.
    pub nodes: Vec<NodeProcess>,
    /// What the workers need to reach the database.
    pub target: Target,
}

/// Starts the network under `dir` and creates the database (`kv` table included).
pub async fn start(
    dir: &Path,
    nodes: usize,
    consistency: Consistency,
    sql_chain_period: Duration,
) -> anyhow::Result<Setup> {
    let options = LocalNetOptions {
        miners: nodes,
        sql_chain_period,
        start_miners: false,
        ..LocalNetOptions::default()
    };
    eprintln!("starting 1 block producer and {nodes} miner processes...");
    let net = LocalNet::start(dir, options).await?;
    let mut processes = Vec::new();
    for i in 0..nodes {
        let config = net
            .miner_config_file(i)
            .context("the network wrote no miner config")?;
        processes.push(node::spawn(&config)?);
    }
    let client = net.super_client()?;
    if let Err(e) = net.wait_for_providers(Duration::from_secs(30)).await {
        for p in &mut processes {
            p.check_alive()?;
        }
        return Err(e.into());
    }
    let db = client
        .create_database(CreateOptions {
            node_count: u16::try_from(nodes).context("--nodes is too large")?,
            target_miners: net.miner_addresses(),
            consistency,
            advance_payment: 1_000_000_000,
            ..CreateOptions::default()
        })
        .await
        .context("creating the database")?;
    eprintln!("database {} ({consistency:?})", db.to_dsn());
    let handle = client.open_database(&db.to_dsn()).await?;
    handle
        .wait_ready(Duration::from_secs(60))
        .await
        .context("the database never became ready")?;
    handle
        .exec(
            "CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB)",
            Args::default(),
        )
        .await
        .context("creating the kv table")?;
    let leader = handle
        .leader_guess()
        .context("the database has no leader")?;
    let leader_addr = net
        .miner_ids()
        .iter()
        .position(|m| *m == leader)
        .and_then(|i| net.miner_listen_addr(i))
        .map(str::to_string)
        .context("the leader is not one of the miners")?;
    eprintln!("leader {leader} at {leader_addr}");
    let config = write_client_config(&net, &dir.join("bench_client"))?;
    Ok(Setup {
        net,
        nodes: processes,
        target: Target {
            config,
            db,
            leader,
            leader_addr,
        },
    })
}

impl Setup {
    /// Stops the miner processes, then the block producer.
    pub async fn shutdown(self) {
        for n in self.nodes {
            n.stop().await;
        }
        self.net.shutdown().await;
    }
}

/// Writes the super client's config.yaml and private.key (empty
/// passphrase) into `dir`; returns the config's path.
fn write_client_config(net: &LocalNet, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let identity = net.super_identity();
    let mut config = net.client_config_for(identity);
    config.set_config_dir(dir);
    let path = dir.join(CONFIG_FILE_NAME);
    config.save(&path)?;
    write_key_file(
        &dir.join(PRIVATE_KEY_FILE_NAME),
        identity.private_key(),
        b"",
    )?;
    Ok(path)
}
