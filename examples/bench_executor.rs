//! Throughput of one database's SQLite executor (no network, no Raft).
//!
//! `cargo run --release --example bench_executor [-- --writes 20000 --batch 100 --reads 50000]`
//!
//! - `write_tps`: single-row INSERT requests per second, each its own
//!   transaction with every check of a replicated write (determinism scan,
//!   authorizer, step budget), WAL with `synchronous=NORMAL`.
//! - `batch_rows_per_s`: rows per second when each request holds `--batch`
//!   INSERT statements (one transaction).
//! - `read_qps`: point SELECTs by primary key per second on the read connection.
//!
//! Progress goes to stderr; the last stdout line is
//! `RESULT write_tps=.. batch_rows_per_s=.. read_qps=.. writes=.. batch=.. reads=..`.

use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::Parser;
use covenant::core::sqlchain::executor::{Executor, WriteEnv};
use covenant::core::sqlchain::query::Query;
use covenant::core::sqlchain::value::Value;

#[derive(Parser, Debug)]
#[command(about = "Benchmark the SQLite executor of one database")]
struct Args {
    /// Single-row write requests to run.
    #[arg(long, default_value_t = 20_000)]
    writes: u64,
    /// Statements per request in the batched phase.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Point reads to run.
    #[arg(long, default_value_t = 50_000)]
    reads: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.writes > 0 && args.batch > 0 && args.reads > 0,
        "counts must be positive"
    );
    let dir = tempfile::tempdir()?;
    let mut ex = Executor::open(&dir.path().join("bench.db")).context("open")?;
    let env = WriteEnv {
        timestamp_ms: 0,
        seed: [0; 32],
    };
    ex.write(
        &[Query::new(
            "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        )],
        &env,
    )?;

    eprintln!("single-row writes: {}", args.writes);
    let start = Instant::now();
    for i in 0..args.writes {
        let q = Query::positional(
            "INSERT INTO kv (id, v) VALUES (?, ?)",
            vec![
                Value::Integer(i64::try_from(i)?),
                Value::Text(format!("value-{i}")),
            ],
        );
        ex.write(&[q], &env)?;
    }
    let write_tps = args.writes as f64 / start.elapsed().as_secs_f64();
    eprintln!("  {write_tps:.0} requests/s");

    let requests = (args.writes / args.batch).max(1);
    eprintln!("batched writes: {requests} requests x {} rows", args.batch);
    let start = Instant::now();
    let mut next = i64::try_from(args.writes)?;
    for _ in 0..requests {
        let queries: Vec<Query> = (0..args.batch)
            .map(|_| {
                next += 1;
                Query::positional(
                    "INSERT INTO kv (id, v) VALUES (?, ?)",
                    vec![Value::Integer(next), Value::Text(format!("value-{next}"))],
                )
            })
            .collect();
        ex.write(&queries, &env)?;
    }
    let batch_rows_per_s = (requests * args.batch) as f64 / start.elapsed().as_secs_f64();
    eprintln!("  {batch_rows_per_s:.0} rows/s");

    eprintln!("point reads: {}", args.reads);
    let start = Instant::now();
    for i in 0..args.reads {
        let id = i64::try_from(i % args.writes)?;
        let res = ex.read(&[Query::positional(
            "SELECT v FROM kv WHERE id = ?",
            vec![Value::Integer(id)],
        )])?;
        ensure!(
            res.first().is_some_and(|r| r.rows.len() == 1),
            "row {id} missing"
        );
    }
    let read_qps = args.reads as f64 / start.elapsed().as_secs_f64();
    eprintln!("  {read_qps:.0} reads/s");

    println!(
        "RESULT write_tps={write_tps:.0} batch_rows_per_s={batch_rows_per_s:.0} read_qps={read_qps:.0} \
         writes={} batch={} reads={}",
        args.writes, args.batch, args.reads
    );
    Ok(())
}
