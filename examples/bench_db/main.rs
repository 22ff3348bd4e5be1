//! Database write throughput and latency, optionally against dqlite.
//!
//! `cargo run --release --example bench_db -- --nodes 3 [--eventual]
//! [--vs-dqlite] [--clients 1,8,32,128] [--seconds 5]` starts one block
//! producer in this process and N miners each in its own process (`node`;
//! `LocalNet` configs, real TLS on loopback, durable Raft logs), as dqlite's
//! nodes run, and creates a database on all N miners
//! (strong, or eventual with `--eventual`). The load comes from a separate
//! process: for each concurrency level the bench re-executes itself in a
//! hidden `--client-worker` mode (`worker`), whose C clients each insert
//! 1 KiB values as signed write requests for S seconds and report writes/s,
//! p50 and p99. `--vs-dqlite` then runs `dqlite-benchmark --workload
//! kvwrite` on N loopback nodes with one worker (`dqlite`). With one
//! node, raw rusqlite does the same inserts with the same durability (`raw`).
//! `--idle-dbs N` measures idle groups instead (`idle`). Progress and the
//! table go to stderr (the nodes' logs too when `RUST_LOG` is set); stdout
//! ends with one `RESULT` line.

mod child;
mod dqlite;
mod idle;
mod network;
mod node;
mod raw;
mod report;
mod worker;

use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use covenant::core::types::Consistency;

use crate::node::NodeArgs;
use crate::report::Report;
use crate::worker::{ClientPath, WorkerArgs};

// The nodes run in this executable, on the miner binaries' allocator.
covenant::miner::node_allocator!();

/// Covenant database write throughput and latency from a separate client
/// process, optionally against dqlite-benchmark.
#[derive(Parser)]
#[command(name = "bench_db")]
struct BenchArgs {
    /// Miners replicating the database.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Eventual consistency instead of strong.
    #[arg(long)]
    eventual: bool,
    /// Also run dqlite-benchmark (kvwrite, same node count, --dqlite-clients workers) and print the ratio.
    #[arg(long)]
    vs_dqlite: bool,
    /// Concurrent client counts to measure, comma-separated (default 1,8,32,128; 1,32 for one node).
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// dqlite-benchmark worker counts, comma-separated. Debian's go-dqlite
    /// 1.11 benchmark does not retry "database is locked", so with more than
    /// one worker most of its writes fail; hence 1 by default.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    dqlite_clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Bytes per inserted value.
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// How the worker's clients send writes.
    #[arg(long, value_enum, default_value_t = ClientPath::Database)]
    client_path: ClientPath,
    /// The database's block period (`SQLChainPeriod`) in milliseconds.
    #[arg(long, default_value_t = 1000)]
    sql_chain_period_ms: u64,
    /// Write each level's per-write send time and latency to DIR/c<N>.txt (for finding stalls).
    #[arg(long, value_name = "DIR")]
    latency_log: Option<std::path::PathBuf>,
    /// Instead of throughput: idle cost of this many three-node databases on 3 miners.
    #[arg(long)]
    idle_dbs: Option<usize>,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    node: NodeArgs,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = BenchArgs::parse();
    // The nodes' logs (in this process), only when asked for: RUST_LOG=warn.
    if std::env::var_os("RUST_LOG").is_some() && !args.worker.client_worker {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    if args.node.miner_node {
        return node::run(&args.node).await;
    }
    if args.worker.client_worker {
        return worker::run(
            &args.worker,
            args.client_path,
            args.seconds,
            args.value_bytes,
        )
        .await;
    }
    if let Some(dbs) = args.idle_dbs {
        let line = idle::run(dbs).await?;
        println!("{line}");
        return Ok(());
    }
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let levels = args.clients.clone().unwrap_or_else(|| {
        if args.nodes == 1 {
            vec![1, 32]
        } else {
            vec![1, 8, 32, 128]
        }
    });
    // Fail before the long part when the comparison cannot run.
    let dqlite_bin = if args.vs_dqlite {
        Some(dqlite::binary()?)
    } else {
        None
    };
    let (consistency, mode) = if args.eventual {
        (Consistency::Eventual, "eventual")
    } else {
        (Consistency::Strong, "strong")
    };

    let dir = tempfile::tempdir()?;
    let setup = network::start(
        dir.path(),
        args.nodes,
        consistency,
        Duration::from_millis(args.sql_chain_period_ms),
    )
    .await?;
    let mut ours = Vec::new();
    let mut rpc_p50_ms = None;
    for &c in &levels {
        eprintln!(
            "measuring {c} concurrent clients ({:?} path, separate process) for {} s...",
            args.client_path, args.seconds
        );
        let log = match &args.latency_log {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                Some(dir.join(format!("c{c}.txt")))
            }
            None => None,
        };
        let f = worker::spawn(
            &setup.target,
            args.client_path,
            c,
            args.seconds,
            args.value_bytes,
            log.as_deref(),
        )
        .await?;
        let l = f.level();
        rpc_p50_ms.get_or_insert(f.rpc_p50_ms);
        eprintln!(
            "  clients={:>4}  writes/s={:>9.0}  p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.1} ms  errors={}  (rpc p50 {:.2} ms)",
            l.clients, l.wps, l.p50_ms, l.p99_ms, l.max_ms, l.errors, f.rpc_p50_ms
        );
        ours.push(l);
    }
    setup.shutdown().await;

    let raw_wps = if args.nodes == 1 {
        eprintln!("measuring raw rusqlite for {} s...", args.seconds);
        Some(raw::inserts_per_second(
            args.seconds,
            &vec![0xab; args.value_bytes],
        )?)
    } else {
        None
    };

    let dqlite = match &dqlite_bin {
        Some(bin) => {
            let mut out = Vec::new();
            for &c in &args.dqlite_clients {
                eprintln!(
                    "measuring dqlite-benchmark kvwrite, {} nodes, {c} workers for {} s...",
                    args.nodes, args.seconds
                );
                let l = dqlite::run(bin, args.nodes, c, args.seconds, args.value_bytes).await?;
                eprintln!(
                    "  dqlite workers={:>4}  writes/s={:>9.0}  p50={:>7.2} ms  p99={:>7.2} ms  errors={}",
                    l.clients, l.wps, l.p50_ms, l.p99_ms, l.errors
                );
                out.push(l);
            }
            Some(out)
        }
        None => None,
    };

    let report = Report {
        nodes: args.nodes,
        mode,
        ours,
        dqlite,
        raw_wps,
        rpc_p50_ms,
    };
    eprint!("{}", report.table());
    println!("{}", report.result_line());
    Ok(())
}
