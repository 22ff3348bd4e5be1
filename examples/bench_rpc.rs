//! RPC throughput over one loopback connection: TLS 1.3 with node identities
//! beside plain TCP with the same framing and envelopes.
//!
//! `cargo run --release --example bench_rpc [-- --seconds N --rounds N --in-flight N --payload N]`
//!
//! Two measurements per transport: sequential round trips (one call at a time)
//! and closed-loop concurrency (`--in-flight` calls outstanding). Rounds are
//! interleaved and the best of each counts, which filters out interference.
//! Progress goes to stderr; the last stdout line is
//! `RESULT tls_seq_rps=.. plain_seq_rps=.. tls_rps_64=.. plain_rps_64=.. ratio_64=.. ratio_seq=..`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use covenant::core::net::{
    Connection, Method, NetConfig, NodeIdentity, Router, RpcServer, TlsContext, serve_stream,
};

#[derive(Parser, Debug)]
#[command(about = "Benchmark RPC round trips over TLS and plain TCP")]
struct Args {
    /// Seconds per measurement per round.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Interleaved rounds; the best of each measurement counts.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Calls outstanding in the concurrent measurement.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Request payload bytes (echoed back).
    #[arg(long, default_value_t = 32)]
    payload: usize,
}

/// Echoes its payload.
struct Echo;
impl Method for Echo {
    const NAME: &'static str = "bench.echo";
    type Request = Vec<u8>;
    type Response = Vec<u8>;
}

fn router() -> anyhow::Result<Router> {
    let mut r = Router::new();
    r.register::<Echo, _, _>(|_peer, body: Vec<u8>| async move { Ok(body) })?;
    Ok(r)
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls per second, one call at a time.
async fn sequential(conn: &Connection, payload: &[u8], run: Duration) -> anyhow::Result<f64> {
    let body = payload.to_vec();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run {
        let back = conn.call::<Echo>(&body, CALL_TIMEOUT).await?;
        anyhow::ensure!(back.len() == body.len(), "wrong echo");
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Calls per second with `in_flight` calls always outstanding.
async fn concurrent(
    conn: &Connection,
    payload: &[u8],
    in_flight: usize,
    run: Duration,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (conn, done, body) = (conn.clone(), done.clone(), payload.to_vec());
            tokio::spawn(async move {
                while start.elapsed() < run {
                    let back = conn.call::<Echo>(&body, CALL_TIMEOUT).await?;
                    anyhow::ensure!(back.len() == body.len(), "wrong echo");
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.await.context("worker panicked")??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// A plain-TCP server with the same router and framing; returns its address.
async fn plain_server(
    router: Arc<Router>,
    client: &NodeIdentity,
    config: &NetConfig,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (peer, config) = (client.as_peer(), config.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let (router, config) = (router.clone(), config.clone());
            tokio::spawn(async move { serve_stream(router, tcp, peer, &config).await });
        }
    });
    Ok(addr)
}

#[derive(Default)]
struct Best {
    tls_seq: f64,
    plain_seq: f64,
    tls_many: f64,
    plain_many: f64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = NetConfig::default();
    let server_id = NodeIdentity::mine_weak(8)?;
    let client_id = NodeIdentity::mine_weak(8)?;
    let server_tls = TlsContext::new(&server_id, &config)?;
    let client_tls = TlsContext::new(&client_id, &config)?;

    let server = RpcServer::bind("127.0.0.1:0", &server_tls, router()?, config.clone()).await?;
    let tls_conn = Connection::dial(
        &client_tls,
        &server.local_addr().to_string(),
        Some(server_id.node_id()),
        &config,
    )
    .await?;

    let plain_addr = plain_server(Arc::new(router()?), &client_id, &config).await?;
    let tcp = tokio::net::TcpStream::connect(&plain_addr).await?;
    tcp.set_nodelay(true)?;
    let plain_conn = Connection::from_stream(tcp, server_id.as_peer(), plain_addr, &config);

    let payload = vec![0xa5u8; args.payload];
    let run_for = Duration::from_secs_f64(args.seconds);
    // Warm up both paths (allocators, TLS buffers).
    sequential(&tls_conn, &payload, Duration::from_millis(200)).await?;
    sequential(&plain_conn, &payload, Duration::from_millis(200)).await?;

    let mut best = Best::default();
    for round in 1..=args.rounds {
        let ts = sequential(&tls_conn, &payload, run_for).await?;
        let ps = sequential(&plain_conn, &payload, run_for).await?;
        let tm = concurrent(&tls_conn, &payload, args.in_flight, run_for).await?;
        let pm = concurrent(&plain_conn, &payload, args.in_flight, run_for).await?;
        eprintln!(
            "round {round}: sequential tls {ts:.0}/s plain {ps:.0}/s; \
             {} in flight tls {tm:.0}/s plain {pm:.0}/s",
            args.in_flight
        );
        best.tls_seq = best.tls_seq.max(ts);
        best.plain_seq = best.plain_seq.max(ps);
        best.tls_many = best.tls_many.max(tm);
        best.plain_many = best.plain_many.max(pm);
    }
    server.shutdown().await;

    println!(
        "RESULT tls_seq_rps={:.0} plain_seq_rps={:.0} tls_rps_{n}={:.0} plain_rps_{n}={:.0} ratio_{n}={:.3} ratio_seq={:.3}",
        best.tls_seq,
        best.plain_seq,
        best.tls_many,
        best.plain_many,
        best.tls_many / best.plain_many,
        best.tls_seq / best.plain_seq,
        n = args.in_flight,
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}
