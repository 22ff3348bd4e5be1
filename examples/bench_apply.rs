//! CPU cost of applying replicated writes on one database replica (no
//! network, no Raft log): the state machine's share of a write.
//!
//! `cargo run --release --example bench_apply [-- --batch 1,16 --writes 10000 --seal-every 2000]`
//!
//! Opens a `DatabaseShared` in a temporary directory, seals the genesis
//! block and creates `kv (k INTEGER PRIMARY KEY, v BLOB)` through the log,
//! as a miner does. Then, for each batch size B, it applies Raft entries of
//! B signed single-row INSERTs of a `--value-bytes` blob through
//! `Replica::apply_entry` (the path every replica runs), sealing the pending
//! writes every `--seal-every` writes like the leader's seal loop. Requests
//! are signed before the clock starts. Reported: wall µs per write and per
//! entry (seals excluded), and µs per seal with the writes it sealed.
//!
//! It also times what every replicated write costs besides its apply: the
//! request id (SHA3-256 of the encoded body), the client's signature and a
//! replica's check of it. A 3-node write pays one signature, three checks
//! (leader before proposing, each follower's audit), five ids (client, the
//! leader twice, each follower once) and three applies, wherever the
//! replicas run; `floor_cpu_us_3_replicas` adds them up (applies at the
//! largest batch), and `ceiling_wps` is what this machine's cores could
//! sustain if nothing else (network, Raft log, TLS) cost anything.
//!
//! Progress goes to stderr; the last stdout line is
//! `RESULT apply_us_per_write_b1=.. apply_cpu_us_per_write_b1=.. apply_us_per_write_b16=..
//! apply_cpu_us_per_write_b16=.. seal_us=.. seal_cpu_us=.. seal_writes=.. request_id_us=..
//! sign_us=.. verify_us=.. floor_cpu_us_3_replicas=.. ceiling_wps=..` (the `cpu` figures
//! count this thread's CPU time only: steadier than wall time on a shared machine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use covenant::core::consensus::database::{
    DatabaseShared, DbApplied, DbCommand, SealProposal, StampedWrite,
};
use covenant::core::consensus::state_machine::Replica;
use covenant::core::crypto::{NodeId, Nonce, PrivateKey};
use covenant::core::hash::{self, Hash, Tag};
use covenant::core::sqlchain::block::Stamp;
use covenant::core::sqlchain::query::{Args as QueryArgs, Query};
use covenant::core::sqlchain::request::{Outcome, QueryKind, RequestBody, SignedRequest};
use covenant::core::sqlchain::value::Value;
use covenant::core::types::DatabaseId;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

#[derive(Parser, Debug)]
#[command(about = "Benchmark applying replicated writes on one database replica")]
struct Args {
    /// Writes per Raft entry to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batch: Vec<usize>,
    /// Writes applied per batch size.
    #[arg(long, default_value_t = 10_000)]
    writes: usize,
    /// Seal the pending writes after this many (0: never).
    #[arg(long, default_value_t = 2_000)]
    seal_every: usize,
    /// Bytes per inserted value.
    #[arg(long, default_value_t = 1024)]
    value_bytes: usize,
}

/// The replica and what driving it needs.
struct Bench {
    replica: Arc<DatabaseShared>,
    db: DatabaseId,
    user: PrivateKey,
    miner: PrivateKey,
    index: u64,
    count: u64,
    head: Hash,
    sequence: u64,
    /// Wall time, thread CPU time and writes of each seal.
    seals: Vec<(Duration, Duration, u64)>,
}

impl Bench {
    fn apply(&mut self, command: DbCommand) -> anyhow::Result<DbApplied> {
        self.index += 1;
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), self.index),
            payload: EntryPayload::Normal(command),
        };
        self.replica
            .apply_entry(entry)
            .map_err(|e| anyhow::anyhow!("apply: {e}"))
    }

    fn write(&mut self, query: Query) -> anyhow::Result<StampedWrite> {
        self.sequence += 1;
        let body = RequestBody {
            database: self.db,
            user: self.user.public_key().address(),
            timestamp: self.sequence,
            sequence: self.sequence,
            kind: QueryKind::Write,
            read_level: Default::default(),
            queries: vec![query],
        };
        Ok(StampedWrite {
            request: SignedRequest::sign(body, &self.user)?,
            stamp: Stamp {
                timestamp_ms: 1_700_000_000_000 + self.sequence,
                seed: [self.sequence as u8; 32],
            },
        })
    }

    /// Seals every pending write the way the leader does, timing it.
    fn seal(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let cpu_start = thread_cpu();
        let leaves: Vec<Hash> = self
            .replica
            .pending_leaves()?
            .into_iter()
            .map(|p| p.leaf)
            .collect();
        let n = leaves.len() as u64;
        let proposal = SealProposal::sign(
            self.db,
            self.count,
            self.count,
            self.head,
            1_700_000_000_000 + self.count,
            &leaves,
            vec![],
            NodeId::compute(&self.miner.public_key(), &Nonce::default()),
            &self.miner,
        )?;
        match self.apply(DbCommand::Seal(Box::new(proposal)))? {
            DbApplied::Sealed { hash, .. } => self.head = hash,
            other => bail!("seal {} refused: {other:?}", self.count),
        }
        self.count += 1;
        if n > 0 {
            self.seals
                .push((start.elapsed(), thread_cpu().saturating_sub(cpu_start), n));
        }
        Ok(())
    }
}

/// Per-write CPU µs of the request id, the signature and its check.
struct CryptoCost {
    request_id_us: f64,
    sign_us: f64,
    verify_us: f64,
}

/// Times hashing, signing and verifying `n` distinct 1-blob write bodies
/// (each signature is new, so no check is answered from the verified cache).
fn crypto_cost(bench: &mut Bench, n: usize, value_bytes: usize) -> anyhow::Result<CryptoCost> {
    let bodies: Vec<RequestBody> = (0..n)
        .map(|i| {
            bench
                .write(Query {
                    sql: "INSERT INTO kv (v) VALUES (?)".into(),
                    args: QueryArgs::Positional(vec![Value::Blob(vec![i as u8; value_bytes])]),
                })
                .map(|w| w.request.body)
        })
        .collect::<anyhow::Result<_>>()?;
    let per_op = |cpu: Duration| cpu.as_secs_f64() * 1e6 / n as f64;
    let start = thread_cpu();
    let ids = bodies
        .iter()
        .map(RequestBody::hash)
        .collect::<Result<Vec<Hash>, _>>()?;
    let request_id_us = per_op(thread_cpu().saturating_sub(start));
    let start = thread_cpu();
    let signatures: Vec<_> = ids.iter().map(|id| bench.user.sign(id)).collect();
    let sign_us = per_op(thread_cpu().saturating_sub(start));
    let key = bench.user.public_key();
    let start = thread_cpu();
    for (id, signature) in ids.iter().zip(&signatures) {
        key.verify(id, signature)
            .context("a fresh signature did not verify")?;
    }
    let verify_us = per_op(thread_cpu().saturating_sub(start));
    Ok(CryptoCost {
        request_id_us,
        sign_us,
        verify_us,
    })
}

/// `args.writes` signed INSERTs of a blob, in entries of `batch`.
fn sign_entries(
    bench: &mut Bench,
    args: &Args,
    batch: usize,
) -> anyhow::Result<Vec<Vec<StampedWrite>>> {
    let mut entries = Vec::new();
    let mut left = args.writes;
    let mut value = 0u8;
    while left > 0 {
        let n = left.min(batch);
        left -= n;
        let mut writes = Vec::with_capacity(n);
        for _ in 0..n {
            value = value.wrapping_add(1);
            writes.push(bench.write(Query {
                sql: "INSERT INTO kv (v) VALUES (?)".into(),
                args: QueryArgs::Positional(vec![Value::Blob(vec![value; args.value_bytes])]),
            })?);
        }
        entries.push(writes);
    }
    Ok(entries)
}

/// CPU time this thread has used (user and system), less noisy than wall
/// time on a machine shared with builds.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.writes > 0 && args.batch.iter().all(|b| *b > 0),
        "counts must be positive"
    );
    let dir = tempfile::tempdir()?;
    let db = DatabaseId(hash::hash(Tag::Message, b"bench_apply"));
    let replica = DatabaseShared::open(db, &dir.path().join("data.db")).context("open")?;
    let mut bench = Bench {
        replica,
        db,
        user: PrivateKey::generate()?,
        miner: PrivateKey::generate()?,
        index: 0,
        count: 0,
        head: Hash::ZERO,
        sequence: 0,
        seals: Vec::new(),
    };
    bench.seal()?;
    let create = bench.write(Query::new(
        "CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB)",
    ))?;
    bench.apply(DbCommand::Writes(vec![create]))?;

    let crypto = crypto_cost(&mut bench, 2_000, args.value_bytes)?;
    eprintln!(
        "request id {:.1} µs, signing {:.1} µs, checking a signature {:.1} µs (CPU, {} B values)",
        crypto.request_id_us, crypto.sign_us, crypto.verify_us, args.value_bytes
    );

    let mut result = Vec::new();
    let mut last_apply_cpu_us = 0.0;
    for &batch in &args.batch {
        eprintln!(
            "batch {batch}: signing {} writes of {} bytes",
            args.writes, args.value_bytes
        );
        // Signed on a thread of its own, so a profile of this one (`perf
        // report --comm bench_apply`) shows only applying.
        let entries = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("sign".into())
                .spawn_scoped(s, || sign_entries(&mut bench, &args, batch))
                .map_err(anyhow::Error::from)?
                .join()
                .map_err(|_| anyhow::anyhow!("the signing thread panicked"))?
        })?;
        let n_entries = entries.len();
        let mut applied = 0usize;
        let mut since_seal = 0usize;
        let mut busy = Duration::ZERO;
        let mut cpu = Duration::ZERO;
        for writes in entries {
            let n = writes.len();
            let start = Instant::now();
            let cpu_start = thread_cpu();
            let DbApplied::Writes(outcomes) = bench.apply(DbCommand::Writes(writes))? else {
                bail!("writes refused");
            };
            cpu += thread_cpu().saturating_sub(cpu_start);
            busy += start.elapsed();
            if let Some(o) = outcomes.iter().find(|o| !matches!(o, Outcome::Ok(_))) {
                bail!("a write failed: {o:?}");
            }
            applied += n;
            since_seal += n;
            if args.seal_every > 0 && since_seal >= args.seal_every {
                bench.seal()?;
                since_seal = 0;
            }
        }
        bench.seal()?;
        let per_write = busy.as_secs_f64() * 1e6 / applied as f64;
        let per_entry = busy.as_secs_f64() * 1e6 / n_entries as f64;
        let cpu_per_write = cpu.as_secs_f64() * 1e6 / applied as f64;
        eprintln!(
            "  {per_write:.1} µs per write ({cpu_per_write:.1} µs of CPU), \
             {per_entry:.1} µs per entry ({n_entries} entries)"
        );
        last_apply_cpu_us = cpu_per_write;
        result.push(format!(
            "apply_us_per_write_b{batch}={per_write:.1} apply_cpu_us_per_write_b{batch}={cpu_per_write:.1}"
        ));
    }
    let (sealed, seal_time, seal_cpu) = bench.seals.iter().fold(
        (0u64, Duration::ZERO, Duration::ZERO),
        |(n, t, c), (d, cpu, w)| (n + w, t + *d, c + *cpu),
    );
    let seals = bench.seals.len().max(1) as f64;
    let seal_us = seal_time.as_secs_f64() * 1e6 / seals;
    let seal_cpu_us = seal_cpu.as_secs_f64() * 1e6 / seals;
    let seal_writes = sealed as f64 / seals;
    eprintln!(
        "seals: {} of {seal_writes:.0} writes on average, {seal_us:.0} µs each \
         ({seal_cpu_us:.0} µs of CPU)",
        bench.seals.len()
    );
    let file = std::fs::metadata(dir.path().join("data.db")).map_or(0, |m| m.len());
    let wal = std::fs::metadata(dir.path().join("data.db-wal")).map_or(0, |m| m.len());
    eprintln!("file {} KiB, WAL {} KiB", file >> 10, wal >> 10);
    let floor = crypto.sign_us
        + 3.0 * crypto.verify_us
        + 5.0 * crypto.request_id_us
        + 3.0 * last_apply_cpu_us;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ceiling = cores as f64 * 1e6 / floor;
    eprintln!(
        "a 3-node write needs at least {floor:.0} µs of CPU (1 signature, 3 checks, 5 ids, \
         3 applies): at most {ceiling:.0} writes/s on {cores} cores if nothing else cost anything"
    );
    println!(
        "RESULT {} seal_us={seal_us:.0} seal_cpu_us={seal_cpu_us:.0} seal_writes={seal_writes:.0} \
         request_id_us={:.1} sign_us={:.1} verify_us={:.1} floor_cpu_us_3_replicas={floor:.0} \
         ceiling_wps={ceiling:.0}",
        result.join(" "),
        crypto.request_id_us,
        crypto.sign_us,
        crypto.verify_us,
    );
    Ok(())
}
