//! Each miner in its own process, as in a deployment and as dqlite's nodes
//! run: the bench re-executes itself in a hidden `--miner-node` mode
//! ([`spawn`]) once per miner, from the config.yaml and private.key the
//! [`LocalNet`](covenant::miner::localnet::LocalNet) wrote for it. Separate
//! processes keep separate signature caches, so every follower checks every
//! client signature itself, as it would on its own machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;
use covenant::miner::miner::{Miner, MinerOptions};

/// The hidden flags of `--miner-node` mode (set by [`spawn`], not by people).
#[derive(Debug, ClapArgs)]
pub struct NodeArgs {
    /// Run one miner from `--node-config` until SIGTERM (internal).
    #[arg(long, hide = true)]
    pub miner_node: bool,
    /// The miner's config.yaml (its private.key beside it, empty passphrase).
    #[arg(long, hide = true)]
    pub node_config: Option<PathBuf>,
}

/// Runs the miner `args` names until SIGTERM or until the bench exits.
pub async fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let path = args
        .node_config
        .as_deref()
        .context("--miner-node needs --node-config")?;
    // Exit with the bench even when it dies without stopping us.
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    let miner = Miner::start_from_file(
        path,
        b"",
        // The shipped defaults: the bench measures the miner operators run.
        MinerOptions::default(),
    )
    .await
    .with_context(|| format!("starting the miner from {}", path.display()))?;
    covenant::miner::signal::shutdown().await;
    miner.shutdown().await;
    Ok(())
}

/// One miner process.
pub struct NodeProcess {
    child: tokio::process::Child,
    log: PathBuf,
}

/// Starts the miner whose config.yaml is `config`; its output goes to
/// `node.log` beside the config (or to the bench's stderr with `RUST_LOG`).
pub fn spawn(config: &Path) -> anyhow::Result<NodeProcess> {
    let exe = std::env::current_exe().context("finding this benchmark's executable")?;
    let log = config.with_file_name("node.log");
    let err = if std::env::var_os("RUST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::from(std::fs::File::create(&log)?)
    };
    let child = tokio::process::Command::new(&exe)
        .arg("--miner-node")
        .arg("--node-config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting a miner process {}", exe.display()))?;
    Ok(NodeProcess { child, log })
}

impl NodeProcess {
    /// Fails, pointing at the log, if the process has already exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => anyhow::bail!(
                "a miner process exited ({status}); its log: {}",
                self.log.display()
            ),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the miner at once (SIGKILL), as a crash would, and reaps it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks the miner to stop (SIGTERM) and kills it if it lingers.
    pub async fn stop(mut self) {
        crate::child::terminate(&mut self.child, Duration::from_secs(10)).await;
    }
}
