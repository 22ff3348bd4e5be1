//! `cqld`: runs one Covenant block producer.
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use covenant_miner::bp::BlockProducer;

covenant_miner::node_allocator!();

/// Runs one block producer of the Covenant main chain.
#[derive(Parser)]
#[command(name = "cqld", version, about)]
struct Args {
    /// The block producer's config.yaml (written by `cql testnet init`).
    #[arg(long, default_value = "~/.cql/config.yaml")]
    config: String,
    /// Master key that opens private.key (empty by default).
    #[arg(long, default_value = "")]
    password: String,
}

fn expand(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => dirs_home().join(rest),
        None => PathBuf::from(path),
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse_from(covenant_miner::args::normalize(std::env::args_os()));
    covenant_miner::logging::init();
    let path = expand(&args.config);
    let bp = BlockProducer::start_from_file(&path, args.password.as_bytes())
        .await
        .with_context(|| format!("cannot start the block producer from {}", path.display()))?;
    println!(
        "block producer {} serving on {}",
        bp.node_id(),
        bp.local_addr()
    );
    covenant_miner::signal::shutdown().await;
    tracing::info!("shutting down");
    bp.shutdown().await;
    Ok(())
}
