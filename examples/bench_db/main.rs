//! Database write throughput and latency on an in-process local network.
//!
//! `cargo run --release --example bench_db -- --nodes 1` starts one block
//! producer and N miners in this process (real TLS on loopback, durable
//! Raft logs), creates a database on them, and has 1, 32, ... concurrent
//! clients (each on its own connection) insert 1 KiB rows as signed write
//! requests for a few seconds each. Beside it, raw rusqlite does the same
//! inserts with the same durability (WAL, `synchronous=FULL`, one
//! transaction per insert). Progress goes to stderr; stdout ends with one
//! `RESULT` line.

mod idle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use covenant::core::api::chain::GetProvider;
use covenant::core::api::database::{GetHead, Query as QueryMethod};
use covenant::core::crypto::NodeId;
use covenant::core::net::{NetConfig, NodeIdentity, Pool, TlsContext};
use covenant::core::sqlchain::query::{Args, Query};
use covenant::core::sqlchain::request::{Outcome, QueryKind, RequestBody, SignedRequest};
use covenant::core::sqlchain::value::Value;
use covenant::core::types::{
    Consistency, CreateDatabase, DatabaseId, ResourceAsk, Token, TxPayload,
};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

#[derive(Parser)]
struct BenchArgs {
    /// Miners replicating the database.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Eventual consistency instead of strong.
    #[arg(long)]
    eventual: bool,
    /// Concurrent client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Bytes per inserted value.
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
    /// Instead of throughput: idle cost of this many three-node databases on 3 miners.
    #[arg(long)]
    idle_dbs: Option<usize>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Level {
    clients: usize,
    wps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    identity: &NodeIdentity,
    difficulty: u32,
    leader: NodeId,
    leader_addr: &str,
    db: DatabaseId,
    clients: usize,
    seconds: u64,
    value: &[u8],
) -> anyhow::Result<Level> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..clients {
        let net = NetConfig {
            min_difficulty: difficulty,
            ..NetConfig::default()
        };
        let pool = Pool::new(TlsContext::new(identity, &net)?, net);
        pool.set_address(leader, leader_addr.to_string());
        let key = identity.private_key().clone();
        let user = identity.address();
        let value = value.to_vec();
        let stop = stop.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut seq = (w as u64) << 40;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let body = RequestBody {
                    database: db,
                    user,
                    timestamp: now_ms(),
                    sequence: seq,
                    kind: QueryKind::Write,
                    read_level: Default::default(),
                    queries: vec![Query {
                        sql: "INSERT INTO kv (v) VALUES (?)".into(),
                        args: Args::Positional(vec![Value::Blob(value.clone())]),
                    }],
                };
                let Ok(req) = SignedRequest::sign(body, &key) else {
                    break;
                };
                let t = Instant::now();
                match pool
                    .call::<QueryMethod>(leader, &req, Duration::from_secs(10))
                    .await
                {
                    Ok(r) if matches!(r.outcome, Outcome::Ok(_)) => {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => eprintln!("write failed: {:?}", r.outcome),
                    Err(e) => eprintln!("call failed: {e}"),
                }
            }
            lat
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(Level {
        clients,
        wps: done.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
    })
}

/// Raw rusqlite: the same inserts, one transaction each, WAL + synchronous=FULL.
fn raw_rusqlite(seconds: u64, value: &[u8]) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB);",
    )?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        conn.execute("INSERT INTO kv (v) VALUES (?1)", rusqlite::params![value])?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = BenchArgs::parse();
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
    let value = vec![0xabu8; args.value_bytes];
    let dir = tempfile::tempdir()?;
    let options = LocalNetOptions {
        miners: args.nodes,
        sql_chain_period: Duration::from_secs(1),
        ..LocalNetOptions::default()
    };
    eprintln!("starting 1 block producer and {} miners...", args.nodes);
    let net = LocalNet::start(dir.path(), options.clone()).await?;
    let client = net.super_client()?;
    for m in net.miner_addresses() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client
            .call::<GetProvider>(&m)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            if Instant::now() > deadline {
                bail!("miner {m} never offered service");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let nonce = client.next_nonce().await?;
    let tx = client.sign(
        nonce,
        TxPayload::CreateDatabase(CreateDatabase {
            node_count: args.nodes as u16,
            target_miners: net.miner_addresses(),
            consistency: if args.eventual {
                Consistency::Eventual
            } else {
                Consistency::Strong
            },
            resources: ResourceAsk::default(),
            gas_price: 1,
            advance_payment: 1_000_000_000,
            token: Token::Particle,
        }),
    )?;
    let hash = client.submit_transaction(&tx).await?;
    client
        .wait_for_tx(&hash, Duration::from_secs(30), |_| {})
        .await
        .context("creating the database")?;
    let db = DatabaseId::derive(&net.super_identity().address(), nonce);
    eprintln!("database {}", db.to_dsn());

    // Find the group's leader.
    let identity = net.super_identity().clone();
    let netcfg = NetConfig {
        min_difficulty: options.difficulty,
        ..NetConfig::default()
    };
    let pool = Pool::new(TlsContext::new(&identity, &netcfg)?, netcfg);
    let addrs: Vec<(NodeId, String)> = net
        .miners
        .iter()
        .map(|m| (m.node_id(), m.local_addr().to_string()))
        .collect();
    for (id, a) in &addrs {
        pool.set_address(*id, a.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let mut found = None;
        for (id, _) in &addrs {
            if let Ok(h) = pool.call::<GetHead>(*id, &db, Duration::from_secs(2)).await
                && h.head.is_some()
                && let Some(l) = h.leader
            {
                found = Some(l);
            }
        }
        if let Some(l) = found {
            break l;
        }
        if Instant::now() > deadline {
            bail!("the database never elected a leader");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let leader_addr = addrs
        .iter()
        .find(|(id, _)| *id == leader)
        .map(|(_, a)| a.clone())
        .context("leader is not one of the miners")?;
    let body = RequestBody {
        database: db,
        user: identity.address(),
        timestamp: now_ms(),
        sequence: 0,
        kind: QueryKind::Write,
        read_level: Default::default(),
        queries: vec![Query {
            sql: "CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB)".into(),
            args: Args::default(),
        }],
    };
    let req = SignedRequest::sign(body, identity.private_key())?;
    pool.call::<QueryMethod>(leader, &req, Duration::from_secs(10))
        .await?;

    let mut results = Vec::new();
    for &c in &levels {
        eprintln!("measuring {c} concurrent clients for {} s...", args.seconds);
        let l = measure(
            &identity,
            options.difficulty,
            leader,
            &leader_addr,
            db,
            c,
            args.seconds,
            &value,
        )
        .await?;
        eprintln!(
            "  clients={:>4}  writes/s={:>9.0}  p50={:>7.2} ms  p99={:>7.2} ms",
            l.clients, l.wps, l.p50_ms, l.p99_ms
        );
        results.push(l);
    }
    net.shutdown().await;
    eprintln!("measuring raw rusqlite for {} s...", args.seconds);
    let raw = raw_rusqlite(args.seconds, &value)?;
    eprintln!("  raw rusqlite (WAL, synchronous=FULL, 1 txn/insert): {raw:.0} inserts/s");

    let wps = |c: usize| {
        results
            .iter()
            .find(|l| l.clients == c)
            .map(|l| l.wps)
            .unwrap_or(0.0)
    };
    let mode = if args.eventual { "eventual" } else { "strong" };
    let mut line = format!("RESULT nodes={} mode={mode}", args.nodes);
    for l in &results {
        line.push_str(&format!(
            " c{}_wps={:.0} c{}_p50_ms={:.2} c{}_p99_ms={:.2}",
            l.clients, l.wps, l.clients, l.p50_ms, l.clients, l.p99_ms
        ));
    }
    let top = levels.iter().copied().max().unwrap_or(1);
    line.push_str(&format!(
        " raw_wps={raw:.0} ratio_c{top}={:.3}",
        wps(top) / raw.max(1.0)
    ));
    println!("{line}");
    Ok(())
}
