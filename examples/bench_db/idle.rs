//! `--idle-dbs N`: what many idle database groups cost a miner.
//!
//! Starts a [`LocalNet`] whose block producer runs in the bench process and
//! whose 3 miners each run in their own process ([`node`](crate::node)),
//! creates N three-node databases in one batch of `CreateDatabase`
//! transactions (consecutive nonces of the super client), waits until every
//! miner reports every group's leader, then measures each miner process for
//! a minute of idleness: CPU time (`/proc/<pid>/stat` utime + stime) and
//! resident memory growth (`VmRSS` before the databases were created and
//! after the idle minute) per database. The figures reported are the
//! busiest miner's. Last, it kills (SIGKILL) the miner leading one database
//! and times how long until another miner leads it and a write succeeds.
//! `COVENANT_IDLE_SECONDS` shortens the idle window.
//!
//! `main.rs` calls [`run`] when `--idle-dbs` is given and prints the
//! `RESULT idle_dbs=..` line it returns.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use covenant::client::{Args, Client, Database};
use covenant::core::api::database::GetHead;
use covenant::core::crypto::NodeId;
use covenant::core::types::{
    Consistency, CreateDatabase, DatabaseId, ResourceAsk, Token, TxPayload,
};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

use crate::node::{self, NodeProcess};

/// The database Raft timing this build uses (`raft_config` in
/// covenant-miner/src/miner/host.rs and `HEARTBEAT_PERIOD` in
/// covenant-miner/src/miner/heartbeat.rs), for the report.
const RAFT_SETTINGS: &str = "heartbeats every 750 ms, every led group's at once from one task per miner \
     (openraft's own off); openraft tick 750 ms (1.5 x heartbeat_interval=500ms); \
     election_timeout=1000..1500ms (openraft 0.9: a follower campaigns after leader_lease \
     (= election_timeout_max) + its election timeout without a heartbeat)";

/// Miners in the benchmark network; every database lives on all of them.
const MINERS: usize = 3;

/// Process `pid`'s CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .context("short /proc/<pid>/stat")?
            .parse::<u64>()?)
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(Duration::from_secs_f64(total as f64 / hz as f64))
}

/// A field of `/proc/<pid>/status` (the number before any unit).
fn status_field(pid: u32, name: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(name))
        .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("bad {name} line"))?
        .parse()?)
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_field(pid, "VmRSS:")
}

/// Threads of process `pid`.
fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:").unwrap_or(0)
}

fn idle_seconds() -> u64 {
    std::env::var("COVENANT_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// Submits `dbs` CreateDatabase transactions with consecutive nonces and
/// waits until they are all confirmed; returns the database ids.
async fn create_databases(
    net: &LocalNet,
    client: &Client,
    dbs: usize,
) -> anyhow::Result<Vec<DatabaseId>> {
    let first = client.next_nonce().await?;
    let mut hashes = Vec::with_capacity(dbs);
    let mut ids = Vec::with_capacity(dbs);
    for i in 0..dbs as u64 {
        let tx = client.sign(
            first + i,
            TxPayload::CreateDatabase(CreateDatabase {
                node_count: MINERS as u16,
                target_miners: net.miner_addresses(),
                consistency: Consistency::Strong,
                resources: ResourceAsk::default(),
                gas_price: 1,
                advance_payment: 1_000_000,
                token: Token::Particle,
            }),
        )?;
        hashes.push(client.submit_transaction(&tx).await?);
        ids.push(DatabaseId::derive(&client.address(), first + i));
    }
    for (i, hash) in hashes.iter().enumerate() {
        client
            .wait_for_tx(hash, Duration::from_secs(120), |_| {})
            .await
            .with_context(|| format!("creating database {i}"))?;
    }
    Ok(ids)
}

/// The leader every miner in `miners` names for `db`, if they all name the
/// same one and it is one of them.
async fn agreed_leader(db: &Database, miners: &[NodeId]) -> Option<NodeId> {
    let mut leader = None;
    for m in miners {
        let l = db.call_miner::<GetHead>(*m, &db.id()).await.ok()?.leader?;
        if leader.is_some_and(|x| x != l) || !miners.contains(&l) {
            return None;
        }
        leader = Some(l);
    }
    leader
}

/// Waits until every miner hosts every database and names its group's leader.
async fn wait_for_leaders(dbs: &[Database], miners: &[NodeId]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut report = Instant::now();
    let mut waiting: Vec<&Database> = dbs.iter().collect();
    loop {
        let mut still = Vec::new();
        for db in waiting {
            if agreed_leader(db, miners).await.is_none() {
                still.push(db);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(());
        }
        let led = dbs.len() - waiting.len();
        if report.elapsed() >= Duration::from_secs(5) {
            eprintln!("  {led}/{} groups with a leader", dbs.len());
            report = Instant::now();
        }
        if Instant::now() > deadline {
            bail!("after 10 min: {led}/{} groups with a leader", dbs.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Kills the process of `db`'s leader; returns (ms until the others agree
/// on a new leader, ms until a write succeeded).
async fn failover(
    net: &LocalNet,
    nodes: &mut [Option<NodeProcess>],
    db: &Database,
) -> anyhow::Result<(u64, u64)> {
    let ids = net.miner_ids();
    db.exec("CREATE TABLE t (x INTEGER)", Args::default())
        .await
        .context("the write before the failover")?;
    let old = agreed_leader(db, &ids)
        .await
        .context("the database has no leader")?;
    let index = ids
        .iter()
        .position(|m| *m == old)
        .context("the leader is not one of the miners")?;
    eprintln!(
        "killing miner {index} ({old}), the leader of {}...",
        db.id().to_hex()
    );
    let start = Instant::now();
    if let Some(p) = nodes.get_mut(index).and_then(Option::take) {
        p.kill().await;
    }
    let rest: Vec<NodeId> = ids.iter().copied().filter(|m| *m != old).collect();
    let deadline = start + Duration::from_secs(60);
    let elected = loop {
        if agreed_leader(db, &rest).await.is_some() {
            break start.elapsed();
        }
        if Instant::now() > deadline {
            bail!("no new leader within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    loop {
        match db
            .exec("INSERT INTO t (x) VALUES (1)", Args::default())
            .await
        {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                eprintln!("  write after failover failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(e).context("no write succeeded within 60 s"),
        }
    }
    Ok((
        elected.as_millis() as u64,
        start.elapsed().as_millis() as u64,
    ))
}

/// Measures 3 miners hosting `dbs` idle three-node databases and returns
/// the `RESULT idle_dbs=.. cpu_pct_per_miner=.. rss_kib_per_db=.. failover_ms=..` line.
pub async fn run(dbs: usize) -> anyhow::Result<String> {
    if dbs == 0 {
        bail!("--idle-dbs must be at least 1");
    }
    let seconds = idle_seconds();
    let dir = tempfile::tempdir()?;
    let options = LocalNetOptions {
        miners: MINERS,
        sql_chain_period: Duration::from_secs(1),
        start_miners: false,
        ..LocalNetOptions::default()
    };
    eprintln!("starting 1 block producer and {MINERS} miner processes...");
    let net = LocalNet::start(dir.path(), options).await?;
    let mut nodes = Vec::new();
    for i in 0..MINERS {
        let config = net
            .miner_config_file(i)
            .context("the network wrote no miner config")?;
        nodes.push(Some(node::spawn(&config)?));
    }
    let result = measure(&net, &mut nodes, dbs, seconds).await;
    for n in nodes.into_iter().flatten() {
        n.stop().await;
    }
    net.shutdown().await;
    result
}

/// The miner processes' pids, in miner order.
fn pids(nodes: &[Option<NodeProcess>]) -> anyhow::Result<Vec<u32>> {
    nodes
        .iter()
        .map(|n| {
            n.as_ref()
                .and_then(NodeProcess::pid)
                .context("a miner process has exited")
        })
        .collect()
}

async fn measure(
    net: &LocalNet,
    nodes: &mut [Option<NodeProcess>],
    dbs: usize,
    seconds: u64,
) -> anyhow::Result<String> {
    let client = net.super_client()?;
    if let Err(e) = net.wait_for_providers(Duration::from_secs(30)).await {
        for n in nodes.iter_mut().flatten() {
            n.check_alive()?;
        }
        return Err(e.into());
    }
    let pids = pids(nodes)?;
    let rss_before = pids
        .iter()
        .map(|p| rss_kib(*p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let threads_before: Vec<u64> = pids.iter().map(|p| threads(*p)).collect();

    eprintln!("creating {dbs} three-node databases...");
    let started = Instant::now();
    let ids = create_databases(net, &client, dbs).await?;
    eprintln!("  confirmed in {:.1} s", started.elapsed().as_secs_f64());
    let mut handles = Vec::with_capacity(ids.len());
    for id in &ids {
        handles.push(client.open_database(&id.to_dsn()).await?);
    }
    wait_for_leaders(&handles, &net.miner_ids()).await?;
    let ready_s = started.elapsed().as_secs_f64();
    eprintln!("  every group has a leader after {ready_s:.1} s");

    eprintln!("idle for {seconds} s...");
    let cpu0 = pids
        .iter()
        .map(|p| cpu_time(*p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(15)),
        )
        .await;
        let mut line = format!("  {:>3.0} s:", t0.elapsed().as_secs_f64());
        for (i, p) in pids.iter().enumerate() {
            line += &format!(
                "  miner {i} rss {} KiB cpu {:.2} s",
                rss_kib(*p)?,
                cpu_time(*p)?.saturating_sub(cpu0[i]).as_secs_f64()
            );
        }
        eprintln!("{line}");
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let mut cpu_pct = Vec::new();
    let mut rss_per_db = Vec::new();
    let mut rss_after = Vec::new();
    for (i, p) in pids.iter().enumerate() {
        let cpu = cpu_time(*p)?.saturating_sub(cpu0[i]);
        cpu_pct.push(cpu.as_secs_f64() / elapsed * 100.0);
        let rss = rss_kib(*p)?;
        rss_after.push(rss);
        rss_per_db.push(rss.saturating_sub(rss_before[i]) as f64 / dbs as f64);
    }
    let threads_after: Vec<u64> = pids.iter().map(|p| threads(*p)).collect();
    let cpu_pct_per_miner = cpu_pct.iter().copied().fold(0.0, f64::max);
    let rss_kib_per_db = rss_per_db.iter().copied().fold(0.0, f64::max);

    let db = handles.first().context("no database")?;
    let (elect_ms, failover_ms) = failover(net, nodes, db).await?;

    eprintln!("--- idle cost of {dbs} three-node databases on {MINERS} miner processes");
    eprintln!("raft settings: {RAFT_SETTINGS}");
    for i in 0..pids.len() {
        eprintln!(
            "miner {i}: cpu {:.2} % of a core over {elapsed:.0} s; rss {} KiB before the \
             databases, {} KiB after {seconds} s idle ({:.0} KiB per database); threads {} -> {}",
            cpu_pct[i],
            rss_before[i],
            rss_after[i],
            rss_per_db[i],
            threads_before[i],
            threads_after[i]
        );
    }
    eprintln!("setup: {ready_s:.1} s until all {dbs} groups had a leader");
    eprintln!(
        "failover: new leader after {elect_ms} ms, first write after {failover_ms} ms \
         (timed from killing the leader miner's process)"
    );
    Ok(format!(
        "RESULT idle_dbs={dbs} cpu_pct_per_miner={cpu_pct_per_miner:.2} \
         rss_kib_per_db={rss_kib_per_db:.0} failover_ms={failover_ms}"
    ))
}
