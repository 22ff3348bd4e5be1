//! `cql-minerd`: runs one Covenant miner.
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use covenant_miner::miner::{Miner, MinerOptions};

covenant_miner::node_allocator!();

/// Runs a Covenant miner: hosts databases assigned to it by the main chain.
#[derive(Parser)]
#[command(name = "cql-minerd", version, about)]
struct Args {
    /// The miner's config.yaml (from `cql generate -miner host:port`);
    /// defaults to $COVENANT_CONF, then ~/.cql/config.yaml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Master key that opens private.key (empty by default).
    #[arg(long, default_value = "")]
    password: String,
    /// Serve /debug/vars, /metrics and /readyz here; defaults to $METRIC_WEB_ADDR.
    #[arg(long)]
    metric_web: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse_from(covenant_miner::args::normalize(std::env::args_os()));
    covenant_miner::logging::init();
    let path = args
        .config
        .or_else(|| std::env::var_os("COVENANT_CONF").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cql/config.yaml")
        });
    let options = MinerOptions {
        metrics_addr: args.metric_web.or_else(|| {
            std::env::var("METRIC_WEB_ADDR")
                .ok()
                .filter(|s| !s.is_empty())
        }),
        ..MinerOptions::default()
    };
    let miner = Miner::start_from_file(&path, args.password.as_bytes(), options)
        .await
        .with_context(|| format!("cannot start the miner from {}", path.display()))?;
    println!(
        "miner {} serving on {}",
        miner.node_id(),
        miner.local_addr()
    );
    if let Some(m) = miner.metrics_addr() {
        println!("metrics on http://{m}/debug/vars");
    }
    covenant_miner::signal::shutdown().await;
    tracing::info!("shutting down");
    miner.shutdown().await;
    Ok(())
}
