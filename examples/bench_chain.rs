//! Main-chain throughput and confirmation latency on a local 3-BP testnet of
//! real `cqld` processes.
//!
//! `cargo run --release --example bench_chain [-- --seconds 10 --clients 8 --bp-period-ms 1000]`
//!
//! Builds `cql` and `cqld` for this profile, writes a testnet with `cql
//! testnet init`, starts the block producers, funds `--senders` accounts in
//! one batch from the super client, then every sender keeps up to `--window`
//! transfers in flight with consecutive nonces (the next nonce is asked once,
//! then counted locally), spread over `--clients` connections.
//!
//! - Throughput: transfers confirmed *and applied* during the measurement
//!   window = the growth of the senders' account nonces (a failed transfer
//!   does not consume its nonce), divided by the window's length.
//! - Latency: every `--sample-every`-th transfer is followed from just before
//!   its submission until a block producer reports it confirmed, polling
//!   every 20 ms.
//!
//! Progress goes to stderr; the last stdout line is
//! `RESULT tps=.. p50_ms=.. p99_ms=.. bp_period_ms=.. blocks=.. txs_per_block=.. senders=.. samples=.. submit_errors=..`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use covenant::client::{Address, Client, ClientOptions, Token, Transaction, TxBody, TxPayload};
use covenant::core::config::{CONFIG_FILE_NAME, TESTNET_FILE_NAME, TestnetDescriptor};
use covenant::core::crypto::PrivateKey;
use covenant::core::types::TxState;
use tokio::sync::Mutex;

#[derive(Parser, Debug)]
#[command(about = "Benchmark main-chain transfers on a local 3-BP testnet")]
struct Args {
    /// Length of the measurement window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Client connections the senders share.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Funded sender accounts (each keeps `--window` transfers in flight).
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Transfers in flight per sender (the pool accepts nonces up to 64 ahead).
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// BPPeriod in milliseconds.
    #[arg(long, default_value_t = 1000)]
    bp_period_ms: u64,
    /// Block producers.
    #[arg(long, default_value_t = 3)]
    bps: usize,
    /// Follow one transfer in this many for latency.
    #[arg(long, default_value_t = 50)]
    sample_every: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Keep the testnet folder (with the cqld logs) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

/// `target/<profile>` of this example (`target/<profile>/examples/bench_chain`).
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("cannot find the target folder")
}

/// Builds `cql` and `cqld` in this profile; returns their folder.
fn build_binaries() -> anyhow::Result<PathBuf> {
    let dir = profile_dir()?;
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let target = dir.parent().context("no target folder")?;
    eprintln!("building cql and cqld ({profile})...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "covenant-miner",
            "-p",
            "covenant-client",
            "--bins",
        ])
        .args(["--profile", &profile])
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("run cargo build")?;
    ensure!(status.success(), "cargo build of cql and cqld failed");
    Ok(dir)
}

/// The running block producers; killed when dropped.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn transfer(key: &PrivateKey, nonce: u64, to: Address, amount: u64) -> anyhow::Result<Transaction> {
    let body = TxBody {
        sender: key.public_key().address(),
        nonce,
        timestamp: now_ms(),
        payload: TxPayload::Transfer {
            to,
            token: Token::Particle,
            amount,
        },
    };
    Ok(Transaction::sign(body, key)?)
}

/// Writes the testnet and starts its block producers; returns the super client's config.
async fn start_testnet(
    args: &Args,
    bin: &Path,
    dir: &Path,
) -> anyhow::Result<(Processes, PathBuf, TestnetDescriptor)> {
    let net = dir.join("net");
    let out = Command::new(bin.join("cql"))
        .args(["testnet", "init"])
        .arg(&net)
        .args(["-bps", &args.bps.to_string(), "-difficulty", "8"])
        .args(["-bp-period", &format!("{}ms", args.bp_period_ms)])
        .stdin(Stdio::null())
        .output()
        .context("run cql testnet init")?;
    ensure!(
        out.status.success(),
        "cql testnet init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let descriptor = TestnetDescriptor::load(&net.join(TESTNET_FILE_NAME))?;
    let mut procs = Processes(Vec::new());
    for i in 0..args.bps {
        let bp = net.join(format!("bp_{i}"));
        let log = std::fs::File::create(bp.join("cqld.log"))?;
        let child = Command::new(bin.join("cqld"))
            .arg("-config")
            .arg(bp.join(CONFIG_FILE_NAME))
            .current_dir(&bp)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start cqld")?;
        procs.0.push(child);
    }
    let super_config = net.join("super_client_config").join(CONFIG_FILE_NAME);
    let probe = Client::from_config_file_with(
        &super_config,
        b"",
        ClientOptions {
            op_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(1),
            unreachable_timeout: Duration::from_secs(1),
            not_found_grace: None,
        },
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    'wait: loop {
        ensure!(
            Instant::now() < deadline,
            "the testnet did not come up within 60 s"
        );
        for c in &mut procs.0 {
            if let Some(status) = c.try_wait()? {
                bail!(
                    "a cqld exited during start-up ({status}); see {}",
                    net.display()
                );
            }
        }
        let mut leader = None;
        for bp in &descriptor.block_producers {
            match probe.head_of(bp.node_id).await {
                Ok(info)
                    if info.leader.is_some() && (leader.is_none() || leader == info.leader) =>
                {
                    leader = info.leader;
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'wait;
                }
            }
        }
        break;
    }
    Ok((procs, super_config, descriptor))
}

/// Funds every sender with one pipelined batch from the super client.
async fn fund(root: &Client, senders: &[PrivateKey]) -> anyhow::Result<()> {
    let root_key = covenant::core::crypto::read_key_file(&root.config().private_key_path(), b"")?;
    for chunk in senders.chunks(60) {
        let first = root.next_nonce().await?;
        let mut hashes = Vec::new();
        for (i, s) in chunk.iter().enumerate() {
            let tx = transfer(
                &root_key,
                first + i as u64,
                s.public_key().address(),
                1_000_000_000_000,
            )?;
            hashes.push(root.submit_transaction(&tx).await?);
        }
        for h in &hashes {
            root.wait_for_tx(h, Duration::from_secs(60), |_| {}).await?;
        }
    }
    Ok(())
}

/// Shared counters of the load.
struct Load {
    stop: AtomicBool,
    measuring: AtomicBool,
    submit_errors: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

/// One sender: keeps `window` transfers in flight; samples some for latency.
async fn run_sender(
    client: Client,
    key: PrivateKey,
    sink: Address,
    window: u64,
    sample_every: u64,
    load: Arc<Load>,
) -> anyhow::Result<()> {
    let me = key.public_key().address();
    let mut next = client.next_nonce_of(&me).await?;
    let mut confirmed = next;
    while !load.stop.load(Ordering::Relaxed) {
        while next - confirmed < window && !load.stop.load(Ordering::Relaxed) {
            let tx = transfer(&key, next, sink, 1)?;
            let started = Instant::now();
            match client.submit_transaction(&tx).await {
                Ok(hash) => {
                    if next % sample_every == 0 && load.measuring.load(Ordering::Relaxed) {
                        tokio::spawn(follow(client.clone(), hash, started, load.clone()));
                    }
                    next += 1;
                }
                Err(e) => {
                    load.submit_errors.fetch_add(1, Ordering::Relaxed);
                    tracing_free_log(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    next = client.next_nonce_of(&me).await?;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        confirmed = client.account(&me).await?.next_nonce;
    }
    Ok(())
}

fn tracing_free_log(e: &covenant::client::ClientError) {
    static SHOWN: AtomicU64 = AtomicU64::new(0);
    if SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("submit failed: {e}");
    }
}

/// Polls a sampled transfer every 20 ms until it is confirmed.
async fn follow(client: Client, hash: covenant::client::Hash, started: Instant, load: Arc<Load>) {
    loop {
        if let Ok(status) = client.tx_state(&hash).await
            && status.state == TxState::Confirmed
        {
            load.latencies.lock().await.push(started.elapsed());
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of the senders' account nonces (= their applied transfers).
async fn applied(client: &Client, senders: &[Address]) -> anyhow::Result<u64> {
    let mut total = 0;
    for a in senders {
        total += client.account(a).await?.next_nonce;
    }
    Ok(total)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.clients > 0 && args.senders > 0 && args.window > 0,
        "counts must be positive"
    );
    let bin = build_binaries()?;
    let tmp = tempfile::tempdir()?;
    let dir = if args.keep {
        tmp.keep()
    } else {
        tmp.path().to_path_buf()
    };
    eprintln!(
        "starting {} block producers (BPPeriod {} ms) in {}",
        args.bps,
        args.bp_period_ms,
        dir.display()
    );
    let (_procs, super_config, _descriptor) = start_testnet(&args, &bin, &dir).await?;

    let root = Client::from_config_file(&super_config, b"")?;
    let leader = root.head().await?.leader.context("no leader")?;
    eprintln!("leader {leader}; funding {} senders...", args.senders);
    let keys: Vec<PrivateKey> = (0..args.senders)
        .map(|_| PrivateKey::generate())
        .collect::<Result<_, _>>()?;
    fund(&root, &keys).await?;
    let addresses: Vec<Address> = keys.iter().map(|k| k.public_key().address()).collect();
    let sink = PrivateKey::generate()?.public_key().address();

    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let c = Client::from_config_file(&super_config, b"")?;
        c.head().await?; // learn the leader: submissions go straight to it
        clients.push(c);
    }
    let load = Arc::new(Load {
        stop: AtomicBool::new(false),
        measuring: AtomicBool::new(false),
        submit_errors: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });
    let mut tasks = Vec::new();
    for (i, key) in keys.into_iter().enumerate() {
        let client = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(run_sender(
            client,
            key,
            sink,
            args.window,
            args.sample_every.max(1),
            load.clone(),
        )));
    }

    eprintln!("warming up for {:.1} s...", args.warmup);
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let h0 = root.head().await?.head.height;
    let n0 = applied(&root, &addresses).await?;
    let t0 = Instant::now();
    load.measuring.store(true, Ordering::Relaxed);
    let window = Duration::from_secs_f64(args.seconds);
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1).min(window.saturating_sub(t0.elapsed()))).await;
        let n = applied(&root, &addresses).await?;
        eprintln!(
            "{:>5.1} s: {} transfers applied, {:.0}/s",
            t0.elapsed().as_secs_f64(),
            n - n0,
            (n - n0) as f64 / t0.elapsed().as_secs_f64()
        );
    }
    load.measuring.store(false, Ordering::Relaxed);
    let n1 = applied(&root, &addresses).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let h1 = root.head().await?.head.height;
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("a sender stopped early: {e:#}"),
            Err(e) => eprintln!("a sender panicked: {e}"),
        }
    }
    // Let the sampled transfers still in flight finish.
    tokio::time::sleep(Duration::from_millis(2 * args.bp_period_ms + 500)).await;

    let tps = (n1 - n0) as f64 / elapsed;
    let blocks = h1 - h0;
    let mut lat = load.latencies.lock().await.clone();
    lat.sort();
    let p50 = percentile(&lat, 0.50);
    let p99 = percentile(&lat, 0.99);
    eprintln!(
        "{} transfers in {blocks} blocks over {elapsed:.1} s; latency over {} samples: p50 {p50:.0} ms, p99 {p99:.0} ms",
        n1 - n0,
        lat.len()
    );
    println!(
        "RESULT tps={tps:.0} p50_ms={p50:.0} p99_ms={p99:.0} bp_period_ms={} blocks={blocks} txs_per_block={:.0} senders={} samples={} submit_errors={}",
        args.bp_period_ms,
        if blocks > 0 {
            (n1 - n0) as f64 / blocks as f64
        } else {
            0.0
        },
        args.senders,
        lat.len(),
        load.submit_errors.load(Ordering::Relaxed)
    );
    Ok(())
}
