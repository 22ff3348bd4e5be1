//! `--idle-dbs N`: what many idle database groups cost a miner.
//!
//! Starts an in-process [`LocalNet`] (1 block producer, 3 miners, real TLS
//! on loopback), creates N three-node databases in one batch of
//! `CreateDatabase` transactions (consecutive nonces of the super client),
//! waits until every miner has opened every database and each group has a
//! leader, then measures the whole process for a minute of idleness: CPU
//! time (`/proc/self/stat` utime + stime) divided by the 3 miners that share
//! the process, and resident memory growth (`VmRSS` before the databases
//! were created and after the idle minute) per database per miner. The
//! block producer, the client and one tokio runtime share the process too,
//! so both figures are upper bounds for a miner. Last, it stops the miner
//! leading one database and times how long until another miner leads it and
//! a write succeeds. `COVENANT_IDLE_SECONDS` shortens the idle window.
//!
//! `main.rs` calls [`run`] when `--idle-dbs` is given and prints the
//! `RESULT idle_dbs=..` line it returns.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use covenant::client::{Args, Client};
use covenant::core::crypto::NodeId;
use covenant::core::types::{
    Consistency, CreateDatabase, DatabaseId, ResourceAsk, Token, TxPayload,
};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

/// The database Raft timing this build uses (`raft_config` in
/// covenant-miner/src/miner/host.rs), for the report.
const RAFT_SETTINGS: &str = "heartbeat_interval=500ms election_timeout=1000..1500ms (openraft 0.9: a follower \
     campaigns after leader_lease (= election_timeout_max) + its election timeout without \
     a heartbeat)";

/// Miners in the benchmark network; every database lives on all of them.
const MINERS: usize = 3;

/// Process CPU time so far (user + system), from `/proc/self/stat`.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .context("short /proc/self/stat")?
            .parse::<u64>()?)
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(Duration::from_secs_f64(total as f64 / hz as f64))
}

/// Resident memory of the process in KiB, from `/proc/self/status`.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad VmRSS line")?
        .parse()?)
}

/// Heap bytes malloc has handed out and not had back, in KiB (glibc's
/// `mallinfo2`): tells growing data apart from a fragmented heap.
fn heap_in_use_kib() -> u64 {
    // SAFETY: mallinfo2 only reads allocator statistics.
    let info = unsafe { libc::mallinfo2() };
    ((info.uordblks + info.hblkhd) / 1024) as u64
}

/// Threads of the process, from `/proc/self/status`.
fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
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

/// Waits until every miner hosts every database and each group has a leader.
async fn wait_for_leaders(net: &LocalNet, ids: &[DatabaseId]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut report = Instant::now();
    loop {
        let mut open = 0;
        let mut led = 0;
        for id in ids {
            let hosts: Vec<_> = net.miners.iter().filter_map(|m| m.database(id)).collect();
            open += hosts.len();
            if hosts.len() == MINERS && hosts.iter().all(|h| h.leader().is_some()) {
                led += 1;
            }
        }
        if led == ids.len() {
            return Ok(());
        }
        if report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  {open}/{} replicas open, {led}/{} groups with a leader",
                ids.len() * MINERS,
                ids.len()
            );
            report = Instant::now();
        }
        if Instant::now() > deadline {
            bail!(
                "after 10 min: {open}/{} replicas open, {led}/{} groups with a leader",
                ids.len() * MINERS,
                ids.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The leader of `id` as a majority of the running miners see it.
fn leader_of(net: &LocalNet, id: &DatabaseId) -> Option<NodeId> {
    let views: Vec<NodeId> = net
        .miners
        .iter()
        .filter_map(|m| m.database(id)?.leader())
        .collect();
    let first = *views.first()?;
    (views.iter().filter(|v| **v == first).count() * 2 > views.len()).then_some(first)
}

/// Stops the leader of `id`; returns (ms until another miner leads, ms until a write succeeded).
async fn failover(
    net: &mut LocalNet,
    client: &Client,
    id: &DatabaseId,
) -> anyhow::Result<(u64, u64)> {
    let handle = client.open_database(&id.to_dsn()).await?;
    handle
        .exec("CREATE TABLE t (x INTEGER)", Args::default())
        .await
        .context("the write before the failover")?;
    let old = leader_of(net, id).context("the database has no leader")?;
    let index = net
        .miners
        .iter()
        .position(|m| m.node_id() == old)
        .context("the leader is not one of the miners")?;
    eprintln!(
        "stopping miner {index} ({old}), the leader of {}...",
        id.to_hex()
    );
    let start = Instant::now();
    net.stop_miner(index).await;
    eprintln!("  stopped in {} ms", start.elapsed().as_millis());
    let deadline = start + Duration::from_secs(60);
    let elected = loop {
        if leader_of(net, id).is_some_and(|l| l != old) {
            break start.elapsed();
        }
        if Instant::now() > deadline {
            bail!("no new leader within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    loop {
        match handle
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
        ..LocalNetOptions::default()
    };
    eprintln!("starting 1 block producer and {MINERS} miners...");
    let mut net = LocalNet::start(dir.path(), options).await?;
    let client = net.super_client()?;
    net.wait_for_providers(Duration::from_secs(30)).await?;
    let rss_before = rss_kib()?;
    let threads_before = threads();

    eprintln!("creating {dbs} three-node databases...");
    let started = Instant::now();
    let ids = create_databases(&net, &client, dbs).await?;
    eprintln!("  confirmed in {:.1} s", started.elapsed().as_secs_f64());
    wait_for_leaders(&net, &ids).await?;
    let ready_s = started.elapsed().as_secs_f64();
    eprintln!("  every group has a leader after {ready_s:.1} s");

    eprintln!("idle for {seconds} s...");
    let cpu0 = cpu_time()?;
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_secs(15)),
        )
        .await;
        eprintln!(
            "  {:>3.0} s: rss {} KiB, heap in use {} KiB, cpu {:.2} s",
            t0.elapsed().as_secs_f64(),
            rss_kib()?,
            heap_in_use_kib(),
            cpu_time()?.saturating_sub(cpu0).as_secs_f64()
        );
    }
    let cpu = cpu_time()?.saturating_sub(cpu0);
    let elapsed = t0.elapsed();
    let rss_after = rss_kib()?;
    let threads_after = threads();
    let cpu_pct_process = cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
    let cpu_pct_per_miner = cpu_pct_process / MINERS as f64;
    let rss_kib_per_db = rss_after.saturating_sub(rss_before) as f64 / (MINERS * dbs) as f64;

    let (elect_ms, failover_ms) = failover(&mut net, &client, &ids[0]).await?;
    net.shutdown().await;

    eprintln!("--- idle cost of {dbs} three-node databases on {MINERS} miners (one process)");
    eprintln!("raft settings: {RAFT_SETTINGS}");
    eprintln!(
        "cpu: {:.2} % of a core for the whole process (1 block producer + {MINERS} miners + \
         client, one tokio runtime) over {:.0} s; divided by {MINERS} miners: {cpu_pct_per_miner:.2} %",
        cpu_pct_process,
        elapsed.as_secs_f64()
    );
    eprintln!(
        "rss: {rss_before} KiB before the databases, {rss_after} KiB after {seconds} s idle: \
         {rss_kib_per_db:.0} KiB per database per miner"
    );
    eprintln!("threads: {threads_before} before the databases, {threads_after} after");
    eprintln!("setup: {ready_s:.1} s until all {dbs} groups had a leader");
    eprintln!(
        "failover: new leader after {elect_ms} ms, first write after {failover_ms} ms \
         (timed from the start of stopping the whole leader miner)"
    );
    Ok(format!(
        "RESULT idle_dbs={dbs} cpu_pct_per_miner={cpu_pct_per_miner:.2} \
         rss_kib_per_db={rss_kib_per_db:.0} failover_ms={failover_ms}"
    ))
}
