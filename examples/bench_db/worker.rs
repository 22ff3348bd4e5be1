//! The load generator, in its own process: `bench_db --client-worker ...`.
//!
//! The bench re-executes itself ([`spawn`]) once per concurrency level so the
//! load comes from a separate process, as a real application's would. The
//! worker loads the client config and key the bench wrote, opens C clients
//! (each with its own TLS connection), warms them up, then has each insert
//! 1 KiB values as signed write requests for S seconds. Only acknowledged
//! successful writes that completed inside the window count. It prints one
//! `WORKER key=value ...` line on stdout ([`WorkerFigures`]), which the
//! parent parses; errors go to stderr.
//!
//! Two client paths ([`ClientPath`]): `database` (default) goes through the
//! covenant-client `Database` (routing to the leader, retries on leader
//! change); `raw` sends hand-signed `SignedRequest`s straight to the leader
//! over a `Pool`, which isolates the client library's overhead.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, ValueEnum};
use covenant::client::{Args, Client, ClientOptions, Database, Value};
use covenant::core::api::database::{GetHead, Query as QueryMethod};
use covenant::core::config::Config;
use covenant::core::crypto::{NodeId, PrivateKey, read_key_file};
use covenant::core::net::{NetConfig, NodeIdentity, Pool, TlsContext};
use covenant::core::sqlchain::query::Query;
use covenant::core::sqlchain::request::{Outcome, QueryKind, RequestBody, SignedRequest};
use covenant::core::types::DatabaseId;
use tokio::time::Instant;

use crate::report::{Level, percentile};

/// The statement every client repeats.
pub const INSERT: &str = "INSERT INTO kv (v) VALUES (?)";

/// `GetHead` round trips measured before the window.
const PROBES: usize = 100;

/// Errors printed in full per worker; later ones are only counted.
const PRINTED_ERRORS: u64 = 5;

/// How the worker's clients reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientPath {
    /// covenant-client `Database::exec`, one `Database` (own connection) per client.
    Database,
    /// Hand-signed `SignedRequest`s on one `Pool` (own connection) per client, to the leader.
    Raw,
}

impl ClientPath {
    fn name(self) -> &'static str {
        match self {
            ClientPath::Database => "database",
            ClientPath::Raw => "raw",
        }
    }
}

/// The hidden flags of `--client-worker` mode (set by [`spawn`], not by people).
#[derive(Debug, ClapArgs)]
pub struct WorkerArgs {
    /// Run as a load worker (internal).
    #[arg(long, hide = true)]
    pub client_worker: bool,
    /// The client's config.yaml (its private.key beside it, empty passphrase).
    #[arg(long, hide = true)]
    pub worker_config: Option<PathBuf>,
    /// The database's DSN.
    #[arg(long, hide = true)]
    pub worker_db: Option<String>,
    /// The leader's node id (raw path).
    #[arg(long, hide = true)]
    pub worker_leader: Option<NodeId>,
    /// The leader's address (raw path).
    #[arg(long, hide = true)]
    pub worker_leader_addr: Option<String>,
    /// Concurrent clients.
    #[arg(long, hide = true, default_value_t = 1)]
    pub worker_clients: usize,
    /// Where to write every write's start time and latency.
    #[arg(long, hide = true)]
    pub worker_latency_log: Option<PathBuf>,
}

/// Where the worker finds the network: everything [`spawn`] passes on.
#[derive(Debug, Clone)]
pub struct Target {
    /// The client's config.yaml.
    pub config: PathBuf,
    /// The database.
    pub db: DatabaseId,
    /// The group's leader when the bench started.
    pub leader: NodeId,
    /// The leader's address.
    pub leader_addr: String,
}

/// One worker's figures, as printed on its `WORKER` line.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerFigures {
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged successful writes inside the window.
    pub ok: u64,
    /// Failed writes (refused, or no answer).
    pub errors: u64,
    /// The window's length.
    pub seconds: f64,
    /// Median latency of the successful writes.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Slowest successful write.
    pub max_ms: f64,
    /// Median round trip of a `GetHead` call to the leader before the window
    /// (TLS + RPC + routing, no consensus): the floor under a write's latency.
    pub rpc_p50_ms: f64,
}

impl WorkerFigures {
    /// The machine-readable line.
    pub fn to_line(&self) -> String {
        format!(
            "WORKER clients={} ok={} errors={} seconds={:.3} wps={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} rpc_p50_ms={:.3}",
            self.clients,
            self.ok,
            self.errors,
            self.seconds,
            self.wps(),
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.rpc_p50_ms
        )
    }

    /// Parses the `WORKER` line among `stdout`'s lines.
    pub fn parse(stdout: &str) -> anyhow::Result<WorkerFigures> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("WORKER "))
            .context("the worker printed no WORKER line")?;
        let kv: HashMap<&str, &str> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|p| p.split_once('='))
            .collect();
        let get = |k: &str| {
            kv.get(k)
                .with_context(|| format!("the WORKER line lacks `{k}`: {line}"))
        };
        Ok(WorkerFigures {
            clients: get("clients")?.parse()?,
            ok: get("ok")?.parse()?,
            errors: get("errors")?.parse()?,
            seconds: get("seconds")?.parse()?,
            p50_ms: get("p50_ms")?.parse()?,
            p99_ms: get("p99_ms")?.parse()?,
            max_ms: get("max_ms")?.parse()?,
            rpc_p50_ms: get("rpc_p50_ms")?.parse()?,
        })
    }

    /// Successful writes per second.
    pub fn wps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// As a row of the report.
    pub fn level(&self) -> Level {
        Level {
            clients: self.clients,
            wps: self.wps(),
            p50_ms: self.p50_ms,
            p99_ms: self.p99_ms,
            max_ms: self.max_ms,
            errors: self.errors,
        }
    }
}

/// Runs one worker process with `clients` clients for `seconds` and returns its figures.
pub async fn spawn(
    target: &Target,
    path: ClientPath,
    clients: usize,
    seconds: u64,
    value_bytes: usize,
    latency_log: Option<&Path>,
) -> anyhow::Result<WorkerFigures> {
    let exe = std::env::current_exe().context("finding this benchmark's executable")?;
    let mut command = tokio::process::Command::new(&exe);
    if let Some(log) = latency_log {
        command.arg("--worker-latency-log").arg(log);
    }
    let mut child = command
        .arg("--client-worker")
        .arg("--worker-config")
        .arg(&target.config)
        .args(["--worker-db", &target.db.to_dsn()])
        .args(["--worker-leader", &target.leader.to_string()])
        .args(["--worker-leader-addr", &target.leader_addr])
        .args(["--worker-clients", &clients.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .args(["--value-bytes", &value_bytes.to_string()])
        .args(["--client-path", path.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the worker {}", exe.display()))?;
    let mut stdout = child.stdout.take().context("the worker's stdout")?;
    // Setting up 128 connections plus the window plus a slow last write.
    let limit = Duration::from_secs(seconds + 120);
    let run = async {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out).await?;
        let status = child.wait().await?;
        anyhow::Ok((out, status))
    };
    let (out, status) = tokio::time::timeout(limit, run)
        .await
        .with_context(|| format!("the worker with {clients} clients ran over {limit:?}"))??;
    if !status.success() {
        bail!("the worker with {clients} clients failed ({status}); its stdout: {out}");
    }
    WorkerFigures::parse(&out)
}

/// `--client-worker` mode: runs the load and prints the `WORKER` line.
pub async fn run(
    args: &WorkerArgs,
    path: ClientPath,
    seconds: u64,
    value_bytes: usize,
) -> anyhow::Result<()> {
    let config_path = args
        .worker_config
        .as_deref()
        .context("--worker-config is required")?;
    let dsn = args
        .worker_db
        .as_deref()
        .context("--worker-db is required")?;
    let db = DatabaseId::from_dsn(dsn).context("--worker-db")?;
    let clients = args.worker_clients.max(1);
    let senders = match path {
        ClientPath::Database => database_senders(config_path, dsn, clients).await?,
        ClientPath::Raw => {
            let leader = args.worker_leader.context("--worker-leader is required")?;
            let addr = args
                .worker_leader_addr
                .as_deref()
                .context("--worker-leader-addr is required")?;
            raw_senders(config_path, db, leader, addr, clients).await?
        }
    };
    let figures = drive(
        senders,
        Duration::from_secs(seconds),
        value_bytes,
        args.worker_latency_log.as_deref(),
    )
    .await?;
    println!("{}", figures.to_line());
    Ok(())
}

/// One client: sends one insert of `value` and says whether it was acknowledged.
enum Sender {
    Database(Database),
    Raw {
        pool: Pool,
        leader: NodeId,
        key: PrivateKey,
        db: DatabaseId,
        user: covenant::client::Address,
        sequence: u64,
    },
}

impl Sender {
    async fn insert(&mut self, value: Vec<u8>) -> Result<(), String> {
        match self {
            Sender::Database(db) => db
                .exec(INSERT, Args::Positional(vec![Value::Blob(value)]))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Sender::Raw {
                pool,
                leader,
                key,
                db,
                user,
                sequence,
            } => {
                *sequence += 1;
                let body = RequestBody {
                    database: *db,
                    user: *user,
                    timestamp: now_ms(),
                    sequence: *sequence,
                    kind: QueryKind::Write,
                    read_level: Default::default(),
                    queries: vec![Query {
                        sql: INSERT.into(),
                        args: Args::Positional(vec![Value::Blob(value)]),
                    }],
                };
                let req = SignedRequest::sign(body, key).map_err(|e| e.to_string())?;
                match pool
                    .call::<QueryMethod>(*leader, &req, Duration::from_secs(10))
                    .await
                {
                    Ok(r) => match r.outcome {
                        Outcome::Ok(_) => Ok(()),
                        other => Err(format!("{other:?}")),
                    },
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    /// One `GetHead` round trip to the leader.
    async fn probe(&self) -> Result<(), String> {
        match self {
            Sender::Database(db) => db.head().await.map(|_| ()).map_err(|e| e.to_string()),
            Sender::Raw {
                pool, leader, db, ..
            } => pool
                .call::<GetHead>(*leader, db, Duration::from_secs(10))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// One round trip that opens the connection and finds the leader.
    async fn warm_up(&self) -> Result<(), String> {
        match self {
            Sender::Database(db) => db
                .wait_ready(Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string()),
            Sender::Raw {
                pool, leader, db, ..
            } => pool
                .call::<GetHead>(*leader, db, Duration::from_secs(10))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn load_config(config_path: &Path) -> anyhow::Result<(Config, PrivateKey)> {
    let config =
        Config::load(config_path).with_context(|| format!("loading {}", config_path.display()))?;
    let key = read_key_file(&config.private_key_path(), b"")
        .with_context(|| format!("reading {}", config.private_key_path().display()))?;
    Ok((config, key))
}

async fn database_senders(
    config_path: &Path,
    dsn: &str,
    clients: usize,
) -> anyhow::Result<Vec<Sender>> {
    let options = ClientOptions {
        op_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    let (config, key) = load_config(config_path)?;
    let client = Client::with_options(config, key, options)?;
    let mut out = Vec::with_capacity(clients);
    for _ in 0..clients {
        // Each `Database` has its own miner pool, hence its own connection.
        out.push(Sender::Database(client.open_database(dsn).await?));
    }
    Ok(out)
}

async fn raw_senders(
    config_path: &Path,
    db: DatabaseId,
    leader: NodeId,
    addr: &str,
    clients: usize,
) -> anyhow::Result<Vec<Sender>> {
    let (config, key) = load_config(config_path)?;
    let nonce = config
        .nonce
        .with_context(|| format!("{} has no Nonce", config_path.display()))?;
    let identity = NodeIdentity::new(key.clone(), nonce);
    let net = NetConfig {
        min_difficulty: config.min_node_id_difficulty,
        ..NetConfig::default()
    };
    let mut out = Vec::with_capacity(clients);
    for w in 0..clients {
        let pool = Pool::new(TlsContext::new(&identity, &net)?, net.clone());
        pool.set_address(leader, addr.to_string());
        out.push(Sender::Raw {
            pool,
            leader,
            key: key.clone(),
            db,
            user: identity.address(),
            sequence: (w as u64) << 40,
        });
    }
    Ok(out)
}

/// One acknowledged write.
struct Sample {
    client: usize,
    /// When it was sent, from the window's start.
    start_ms: f64,
    latency_ms: f64,
}

/// Writes `client start_ms latency_ms` per write, in sending order.
fn write_latency_log(path: &Path, samples: &mut [Sample]) -> anyhow::Result<()> {
    use std::io::Write as _;
    samples.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(out, "# client start_ms latency_ms")?;
    for s in samples.iter() {
        writeln!(out, "{} {:.3} {:.3}", s.client, s.start_ms, s.latency_ms)?;
    }
    out.flush()?;
    Ok(())
}

/// A 1 KiB-style value whose first bytes make every request distinct.
fn value(client: usize, n: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0xab; len];
    let tag = ((client as u64) << 40 | n).to_be_bytes();
    for (d, s) in v.iter_mut().zip(tag) {
        *d = s;
    }
    v
}

/// Warms every sender up, then runs them together for `window`.
async fn drive(
    senders: Vec<Sender>,
    window: Duration,
    value_bytes: usize,
    latency_log: Option<&Path>,
) -> anyhow::Result<WorkerFigures> {
    let clients = senders.len();
    let errors = Arc::new(AtomicU64::new(0));
    let mut warming = Vec::with_capacity(clients);
    for (i, sender) in senders.into_iter().enumerate() {
        warming.push(tokio::spawn(async move {
            match sender.warm_up().await {
                Ok(()) => Ok(sender),
                Err(e) => Err(format!("client {i} could not reach the database: {e}")),
            }
        }));
    }
    let mut ready = Vec::with_capacity(clients);
    for t in warming {
        ready.push(t.await?.map_err(anyhow::Error::msg)?);
    }
    let mut rpc = Vec::with_capacity(PROBES);
    if let Some(first) = ready.first() {
        for _ in 0..PROBES {
            let t = Instant::now();
            first.probe().await.map_err(anyhow::Error::msg)?;
            rpc.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    rpc.sort_by(|a, b| a.total_cmp(b));
    let start = Instant::now();
    let end = start + window;
    let mut tasks = Vec::with_capacity(clients);
    for (i, mut sender) in ready.into_iter().enumerate() {
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<Sample> = Vec::new();
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let t = Instant::now();
                let r = sender.insert(value(i, n, value_bytes)).await;
                let done = Instant::now();
                match r {
                    Ok(()) if done <= end => lat.push(Sample {
                        client: i,
                        start_ms: (t - start).as_secs_f64() * 1000.0,
                        latency_ms: (done - t).as_secs_f64() * 1000.0,
                    }),
                    Ok(()) => {}
                    Err(e) => {
                        let seen = errors.fetch_add(1, Ordering::Relaxed);
                        if seen < PRINTED_ERRORS {
                            eprintln!("worker: client {i}: write failed: {e}");
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await?);
    }
    if let Some(path) = latency_log {
        write_latency_log(path, &mut samples)?;
    }
    let mut lat: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    let errors = errors.load(Ordering::Relaxed);
    if errors > PRINTED_ERRORS {
        eprintln!(
            "worker: {} more failed writes not shown",
            errors - PRINTED_ERRORS
        );
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(WorkerFigures {
        clients,
        ok: lat.len() as u64,
        errors,
        seconds: window.as_secs_f64(),
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        rpc_p50_ms: percentile(&rpc, 0.5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_line_round_trips() {
        let f = WorkerFigures {
            clients: 32,
            ok: 12345,
            errors: 2,
            seconds: 5.0,
            p50_ms: 1.25,
            p99_ms: 9.5,
            max_ms: 120.0,
            rpc_p50_ms: 0.25,
        };
        let out = format!("noise\n{}\n", f.to_line());
        assert_eq!(WorkerFigures::parse(&out).unwrap(), f);
        assert!(WorkerFigures::parse("nothing here").is_err());
    }

    #[test]
    fn values_are_distinct_and_sized() {
        assert_eq!(value(3, 7, 1024).len(), 1024);
        assert_ne!(value(3, 7, 1024), value(3, 8, 1024));
        assert_ne!(value(3, 7, 1024), value(4, 7, 1024));
    }
}
