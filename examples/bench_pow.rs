//! Node-id proof-of-work hash rate: one thread, all threads, and the plain
//! single-thread `NodeId::compute` loop for comparison.
//!
//! `cargo run --release --example bench_pow [-- --seconds N --threads N]`
//! `--rounds` interleaves the measurements and keeps the best of each.
//! Progress goes to stderr; the last stdout line is
//! `RESULT one_thread_mhs=.. all_threads_mhs=.. threads=.. efficiency=.. baseline_mhs=.. per_core_vs_baseline=..`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use covenant::core::crypto::PrivateKey;
use covenant::core::pow::{
    CancelToken, MAX_DIFFICULTY, PowError, PowOptions, PowProgress, hash_rate_single_thread, mine,
};

#[derive(Parser, Debug)]
#[command(about = "Benchmark the node-id proof of work")]
struct Args {
    /// Seconds to run each measurement in each round.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Threads for the parallel run; 0 = all cores.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Interleaved rounds of the three measurements; the best round of each
    /// counts, which filters out interference from other processes.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
}

/// Runs `mine` at an impossible difficulty for `duration`, then cancels;
/// returns (hashes per second, threads) from the final progress report.
fn measure(
    pk: &covenant::core::crypto::PublicKey,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<(f64, usize)> {
    let cancel = CancelToken::new();
    let last: Mutex<Option<PowProgress>> = Mutex::new(None);
    let opts = PowOptions {
        difficulty: MAX_DIFFICULTY,
        threads,
        progress_interval: Duration::from_millis(100),
        ..PowOptions::default()
    };
    let outcome = mine(pk, &opts, &cancel, &|p: &PowProgress| {
        if p.elapsed >= duration {
            cancel.cancel();
        }
        eprint!(
            "\r  {} threads: {:>6.2} MH/s, {:>12} hashes, best {:>3} bits, {:>5.1}s",
            p.threads,
            p.hash_rate / 1e6,
            p.hashes,
            p.best_difficulty,
            p.elapsed.as_secs_f64()
        );
        if let Ok(mut l) = last.lock() {
            *l = Some(p.clone());
        }
    });
    eprintln!();
    match outcome {
        Err(PowError::Cancelled) => {}
        Ok(r) => bail!(
            "found a {}-bit id, which should be impossible",
            r.difficulty
        ),
        Err(e) => return Err(e.into()),
    }
    let p = last
        .into_inner()
        .ok()
        .flatten()
        .context("no progress reported")?;
    Ok((p.hashes as f64 / p.elapsed.as_secs_f64(), p.threads))
}

/// The plain loop's rate, in batches of a million hashes until `duration` passes.
fn baseline(pk: &covenant::core::crypto::PublicKey, duration: Duration) -> f64 {
    let started = Instant::now();
    let mut rates = Vec::new();
    while started.elapsed() < duration || rates.is_empty() {
        rates.push(hash_rate_single_thread(pk, 1_000_000));
    }
    // Batches are equal in size, so the overall rate is the harmonic mean.
    let rate = rates.len() as f64 / rates.iter().map(|r| 1.0 / r).sum::<f64>();
    eprintln!("  plain loop, 1 thread: {:>6.2} MH/s", rate / 1e6);
    rate
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be positive"
    );
    let duration = Duration::from_secs_f64(args.seconds);
    let pk = PrivateKey::generate()?.public_key();

    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let (mut base, mut one, mut all, mut n) = (0f64, 0f64, 0f64, 0usize);
    for round in 1..=args.rounds {
        eprintln!(
            "round {round}/{}, {:.1}s per measurement",
            args.rounds, args.seconds
        );
        base = base.max(baseline(&pk, duration));
        one = one.max(measure(&pk, 1, duration)?.0);
        let (rate, threads) = measure(&pk, args.threads, duration)?;
        all = all.max(rate);
        n = threads;
    }

    let efficiency = all / (n as f64 * one);
    let per_core = one / base;
    eprintln!(
        "1 thread {:.3} MH/s, {n} threads {:.3} MH/s, scaling efficiency {:.1}%, \
         per core vs plain loop {:.3}x",
        one / 1e6,
        all / 1e6,
        efficiency * 100.0,
        per_core
    );
    println!(
        "RESULT one_thread_mhs={:.3} all_threads_mhs={:.3} threads={n} efficiency={:.3} \
         baseline_mhs={:.3} per_core_vs_baseline={:.3}",
        one / 1e6,
        all / 1e6,
        efficiency,
        base / 1e6,
        per_core
    );
    Ok(())
}
