//! The node-id proof of work (DESIGN §2): search nonces until
//! `SHA3-256(pubkey || nonce)` has enough leading zero bits.
//!
//! [`mine`] runs on a dedicated rayon pool. Workers claim disjoint chunks of
//! the 256-bit nonce space, counted up from [`PowOptions::start`], so the
//! search is exhaustive and never repeats a nonce; the first hit stops every
//! worker. The hot loop touches no shared state: counters are flushed and
//! the stop flag is read every [`FLUSH_EVERY`] hashes. Progress is reported
//! from the calling thread, which otherwise sleeps.
//!
//! Each hash is `hash_parts(Tag::NodeId, [pubkey, nonce])`, exactly what
//! [`NodeId::compute`] does: sha3 0.12 absorbs straight into its 200-byte
//! state, so cloning a pre-absorbed [`crate::hash::PrefixHasher`] measured no
//! faster (the Keccak permutation is ~90% of the time either way). Must not
//! import network, chain, config or CLI code; the CLI turns [`PowProgress`]
//! into a display.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::crypto::{NodeId, Nonce, PUBLIC_KEY_LEN, PublicKey};
use crate::error::ErrorCode;
use crate::hash::{self, Tag};

/// The largest meaningful difficulty: every bit of the 256-bit id is zero.
pub const MAX_DIFFICULTY: u32 = 256;
/// Default difficulty of `cql generate`.
pub const DEFAULT_DIFFICULTY: u32 = 24;
/// Hashes a worker does between flushing its counter and reading the stop flag.
pub const FLUSH_EVERY: u64 = 4096;
/// Nonces in one chunk a worker claims (a few tens of milliseconds of work).
const CHUNK: u64 = 1 << 16;

/// Why [`mine`] returned without a node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowError {
    /// The [`CancelToken`] was cancelled before a nonce was found.
    #[error("proof of work cancelled")]
    Cancelled,
    /// The worker thread pool could not be started.
    #[error("cannot start the proof-of-work threads: {0}")]
    ThreadPool(String),
    /// Every nonce from the start to the end of the 256-bit space was tried.
    #[error("proof of work exhausted the nonce range without reaching the difficulty")]
    Exhausted,
    /// The difficulty asked for can never be reached.
    #[error("difficulty {difficulty} is impossible: a node id has {MAX_DIFFICULTY} bits")]
    InvalidDifficulty {
        /// The difficulty asked for.
        difficulty: u32,
    },
}

impl PowError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            PowError::Cancelled => ErrorCode::Cancelled,
            PowError::ThreadPool(_) => ErrorCode::Internal,
            PowError::Exhausted => ErrorCode::ProofOfWork,
            PowError::InvalidDifficulty { .. } => ErrorCode::InvalidArgument,
        }
    }
}

/// What to search for and how.
#[derive(Clone, Debug)]
pub struct PowOptions {
    /// Leading zero bits the node id must have (0..=256).
    pub difficulty: u32,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// The first nonce tried; workers take disjoint ranges counting up from it.
    pub start: Nonce,
    /// How often the progress callback is called (at least every millisecond).
    pub progress_interval: Duration,
}

impl Default for PowOptions {
    fn default() -> Self {
        PowOptions {
            difficulty: DEFAULT_DIFFICULTY,
            threads: 0,
            start: Nonce::default(),
            progress_interval: Duration::from_millis(200),
        }
    }
}

/// A snapshot of a running search, handed to the progress callback.
#[derive(Clone, Debug)]
pub struct PowProgress {
    /// Highest difficulty found so far (0 before the first report from a worker).
    pub best_difficulty: u32,
    /// The nonce and id behind `best_difficulty`, once one was found.
    pub best: Option<(Nonce, NodeId)>,
    /// Hashes tried so far (workers report in batches, so this lags slightly).
    pub hashes: u64,
    /// Hashes per second since the start.
    pub hash_rate: f64,
    /// Time since the start.
    pub elapsed: Duration,
    /// Worker threads searching.
    pub threads: usize,
}

/// A node id that reaches the difficulty, with the nonce that makes it.
#[derive(Clone, Debug)]
pub struct PowResult {
    /// The nonce.
    pub nonce: Nonce,
    /// `NodeId::compute(public_key, nonce)`.
    pub node_id: NodeId,
    /// The id's actual difficulty (at least the one asked for).
    pub difficulty: u32,
    /// Hashes tried in total.
    pub hashes: u64,
    /// Time the search took.
    pub elapsed: Duration,
    /// Worker threads used.
    pub threads: usize,
}

/// A flag another thread (a Ctrl-C handler, a UI) sets to stop [`mine`].
#[derive(Clone, Default, Debug)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Asks every search holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A nonce as a 256-bit big-endian number: `[a, b, c, d]`.
type Words = [u64; 4];

fn words(n: &Nonce) -> Words {
    [n.a, n.b, n.c, n.d]
}

fn nonce(w: Words) -> Nonce {
    let [a, b, c, d] = w;
    Nonce { a, b, c, d }
}

/// `w + offset`, or `None` past the end of the 256-bit space.
fn add(w: Words, offset: u128) -> Option<Words> {
    let [a, b, c, d] = w;
    // Truncations are intended: split the u128 into its two words.
    let (lo, hi) = (offset as u64, (offset >> 64) as u64);
    let (d, carry) = d.overflowing_add(lo);
    let (c, c1) = c.overflowing_add(hi);
    let (c, c2) = c.overflowing_add(u64::from(carry));
    let (b, carry) = b.overflowing_add(u64::from(c1 || c2));
    let (a, carry) = a.overflowing_add(u64::from(carry));
    (!carry).then_some([a, b, c, d])
}

/// A hit or a new personal best, kept under a lock (rare: a few dozen per search).
#[derive(Default)]
struct Best {
    best: Option<(u32, Nonce, NodeId)>,
    found: Option<(u32, Nonce, NodeId)>,
}

/// What the workers share; the hot loop touches none of it.
struct Shared<'a> {
    /// The compressed public key, hashed before every nonce.
    pk: [u8; PUBLIC_KEY_LEN],
    start: Words,
    difficulty: u32,
    cancel: &'a CancelToken,
    stop: AtomicBool,
    next_chunk: AtomicU64,
    hashes: AtomicU64,
    best: Mutex<Best>,
    finished: AtomicUsize,
    done: (Mutex<()>, Condvar),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Workers never panic while holding a lock, but never propagate poison either.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared<'_> {
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.cancel.is_cancelled()
    }

    fn record(&self, difficulty: u32, n: Nonce, id: NodeId) {
        let mut best = lock(&self.best);
        if best.best.is_none_or(|(d, _, _)| difficulty > d) {
            best.best = Some((difficulty, n, id));
        }
        if difficulty >= self.difficulty && best.found.is_none() {
            best.found = Some((difficulty, n, id));
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// One worker: claim chunks until a hit, a stop, or the end of the nonce space.
    fn work(&self) {
        let mut local_best = 0u32;
        let mut pending = 0u64;
        'chunks: while !self.should_stop() {
            let k = self.next_chunk.fetch_add(1, Ordering::Relaxed);
            if k == u64::MAX {
                break;
            }
            let Some(mut w) = add(self.start, u128::from(k) * u128::from(CHUNK)) else {
                break;
            };
            let mut buf = nonce(w).to_bytes();
            let mut left = CHUNK;
            while left > 0 {
                let batch = left.min(FLUSH_EVERY);
                for _ in 0..batch {
                    let id = NodeId(hash::hash_parts(Tag::NodeId, &[&self.pk, &buf]));
                    let lz = id.difficulty();
                    if lz > local_best || lz >= self.difficulty {
                        local_best = local_best.max(lz);
                        self.record(lz, nonce(w), id);
                    }
                    pending += 1;
                    // Next nonce: bump d in place; carry into a, b, c is rare.
                    let (d, wrapped) = w[3].overflowing_add(1);
                    w[3] = d;
                    buf[24..32].copy_from_slice(&d.to_be_bytes());
                    if wrapped {
                        match add([w[0], w[1], w[2], 0], 1u128 << 64) {
                            Some(next) => w = next,
                            None => break 'chunks,
                        }
                        buf = nonce(w).to_bytes();
                    }
                }
                left -= batch;
                self.hashes.fetch_add(pending, Ordering::Relaxed);
                pending = 0;
                if self.should_stop() {
                    break 'chunks;
                }
            }
        }
        self.hashes.fetch_add(pending, Ordering::Relaxed);
        let (m, cv) = &self.done;
        let _g = lock(m);
        self.finished.fetch_add(1, Ordering::SeqCst);
        cv.notify_all();
    }

    fn progress(&self, started: Instant, threads: usize) -> PowProgress {
        let hashes = self.hashes.load(Ordering::Relaxed);
        let elapsed = started.elapsed();
        let secs = elapsed.as_secs_f64();
        let best = lock(&self.best).best;
        PowProgress {
            best_difficulty: best.map_or(0, |(d, _, _)| d),
            best: best.map(|(_, n, id)| (n, id)),
            hashes,
            // Precision loss in u64 -> f64 is irrelevant for a rate.
            hash_rate: if secs > 0.0 {
                hashes as f64 / secs
            } else {
                0.0
            },
            elapsed,
            threads,
        }
    }
}

/// Sets the flag when dropped, including while unwinding.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Searches for a nonce giving `public_key` a node id of `opts.difficulty`,
/// calling `progress` every `opts.progress_interval` and once at the end.
pub fn mine(
    public_key: &PublicKey,
    opts: &PowOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(&PowProgress) + Sync),
) -> Result<PowResult, PowError> {
    if opts.difficulty > MAX_DIFFICULTY {
        return Err(PowError::InvalidDifficulty {
            difficulty: opts.difficulty,
        });
    }
    if cancel.is_cancelled() {
        return Err(PowError::Cancelled);
    }
    if opts.difficulty == 0 {
        // Any id qualifies: the start nonce wins without a pool.
        let started = Instant::now();
        let node_id = NodeId::compute(public_key, &opts.start);
        let difficulty = node_id.difficulty();
        let elapsed = started.elapsed();
        progress(&PowProgress {
            best_difficulty: difficulty,
            best: Some((opts.start, node_id)),
            hashes: 1,
            hash_rate: 0.0,
            elapsed,
            threads: 1,
        });
        return Ok(PowResult {
            nonce: opts.start,
            node_id,
            difficulty,
            hashes: 1,
            elapsed,
            threads: 1,
        });
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .thread_name(|i| format!("covenant-pow-{i}"))
        .build()
        .map_err(|e| PowError::ThreadPool(e.to_string()))?;
    let threads = pool.current_num_threads();
    let shared = Shared {
        pk: *public_key.as_bytes(),
        start: words(&opts.start),
        difficulty: opts.difficulty,
        cancel,
        stop: AtomicBool::new(false),
        next_chunk: AtomicU64::new(0),
        hashes: AtomicU64::new(0),
        best: Mutex::new(Best::default()),
        finished: AtomicUsize::new(0),
        done: (Mutex::new(()), Condvar::new()),
    };
    let interval = opts.progress_interval.max(Duration::from_millis(1));

    let started = Instant::now();
    pool.in_place_scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|_| shared.work());
        }
        // If the progress callback panics, stop the workers so the scope can end.
        let _stop = StopOnDrop(&shared.stop);
        // This closure runs on the calling thread while the pool works.
        let (m, cv) = &shared.done;
        let mut next_report = Instant::now() + interval;
        let mut guard = lock(m);
        while shared.finished.load(Ordering::SeqCst) < threads {
            let wait = next_report.saturating_duration_since(Instant::now());
            guard = cv
                .wait_timeout(guard, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if shared.finished.load(Ordering::SeqCst) < threads && Instant::now() >= next_report {
                drop(guard);
                progress(&shared.progress(started, threads));
                next_report = Instant::now() + interval;
                guard = lock(m);
            }
        }
    });

    let last = shared.progress(started, threads);
    progress(&last);
    let found = lock(&shared.best).found;
    match found {
        Some((difficulty, nonce, node_id)) => Ok(PowResult {
            nonce,
            node_id,
            difficulty,
            hashes: last.hashes,
            elapsed: last.elapsed,
            threads,
        }),
        None if cancel.is_cancelled() => Err(PowError::Cancelled),
        None => Err(PowError::Exhausted),
    }
}

/// Hashes per second of a plain single-thread loop of [`NodeId::compute`]
/// over `hashes` incrementing nonces: the baseline the benchmark compares to.
pub fn hash_rate_single_thread(public_key: &PublicKey, hashes: u64) -> f64 {
    let started = Instant::now();
    let mut n = Nonce::default();
    let mut acc = 0u32;
    for i in 0..hashes {
        n.d = i;
        acc = acc.wrapping_add(std::hint::black_box(NodeId::compute(public_key, &n)).difficulty());
    }
    std::hint::black_box(acc);
    let secs = started.elapsed().as_secs_f64();
    if secs > 0.0 {
        hashes as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;
    use std::sync::atomic::AtomicUsize;

    fn pk() -> PublicKey {
        PrivateKey::generate().unwrap().public_key()
    }

    fn opts(difficulty: u32, threads: usize) -> PowOptions {
        PowOptions {
            difficulty,
            threads,
            start: Nonce::default(),
            progress_interval: Duration::from_millis(20),
        }
    }

    #[test]
    fn finds_verifying_ids_on_one_and_many_threads() {
        let pk = pk();
        for threads in [1, 2, 4] {
            let r = mine(&pk, &opts(12, threads), &CancelToken::new(), &|_| {}).unwrap();
            assert_eq!(r.threads, threads);
            assert!(r.difficulty >= 12);
            assert_eq!(r.node_id.difficulty(), r.difficulty);
            r.node_id.verify(&pk, &r.nonce, 12).unwrap();
            assert!(r.hashes >= 1);
        }
    }

    #[test]
    fn all_cores_by_default() {
        let pk = pk();
        let r = mine(&pk, &opts(8, 0), &CancelToken::new(), &|_| {}).unwrap();
        assert!(r.threads >= 1);
        r.node_id.verify(&pk, &r.nonce, 8).unwrap();
    }

    #[test]
    fn single_thread_finds_the_first_hit_from_start() {
        // One thread scans nonces in order, so the result is the first qualifying one.
        let pk = pk();
        let start = Nonce {
            a: 7,
            b: 0,
            c: 3,
            d: u64::MAX - 5, // crosses a carry into c on the way
        };
        let o = PowOptions {
            start,
            ..opts(10, 1)
        };
        let r = mine(&pk, &o, &CancelToken::new(), &|_| {}).unwrap();
        let mut w = words(&start);
        loop {
            let n = nonce(w);
            if NodeId::compute(&pk, &n).difficulty() >= 10 {
                assert_eq!(n, r.nonce);
                break;
            }
            w = add(w, 1).unwrap();
        }
    }

    #[test]
    fn cancel_from_another_thread_stops_promptly() {
        let pk = pk();
        let cancel = CancelToken::new();
        let calls = AtomicUsize::new(0);
        let canceller = cancel.clone();
        let err = mine(&pk, &opts(200, 2), &cancel, &move |p: &PowProgress| {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                assert!(p.hashes > 0 || p.elapsed > Duration::ZERO);
                let c = canceller.clone();
                std::thread::spawn(move || c.cancel());
            }
        })
        .unwrap_err();
        assert_eq!(err, PowError::Cancelled);
        assert_eq!(err.code(), ErrorCode::Cancelled);
        // Already cancelled: returns at once.
        assert_eq!(
            mine(&pk, &opts(12, 1), &cancel, &|_| {}).unwrap_err(),
            PowError::Cancelled
        );
    }

    #[test]
    fn progress_is_reported() {
        let pk = pk();
        let reports = Mutex::new(Vec::<PowProgress>::new());
        let cancel = CancelToken::new();
        let c = cancel.clone();
        let err = mine(&pk, &opts(200, 2), &cancel, &|p: &PowProgress| {
            let mut r = reports.lock().unwrap();
            r.push(p.clone());
            if r.len() >= 3 {
                c.cancel();
            }
        })
        .unwrap_err();
        assert_eq!(err, PowError::Cancelled);
        let reports = reports.into_inner().unwrap();
        // Three periodic reports plus the final one.
        assert!(reports.len() >= 4, "{}", reports.len());
        let last = reports.last().unwrap();
        assert!(last.hashes >= FLUSH_EVERY);
        assert!(last.hash_rate > 0.0);
        assert_eq!(last.threads, 2);
        assert!(last.best_difficulty >= 1);
        let (n, id) = last.best.unwrap();
        assert_eq!(id.difficulty(), last.best_difficulty);
        id.verify(&pk, &n, last.best_difficulty).unwrap();
        for pair in reports.windows(2) {
            assert!(pair[1].hashes >= pair[0].hashes);
            assert!(pair[1].best_difficulty >= pair[0].best_difficulty);
        }
    }

    #[test]
    fn difficulty_zero_and_impossible() {
        let pk = pk();
        let start = Nonce {
            a: 1,
            b: 2,
            c: 3,
            d: 4,
        };
        let calls = AtomicUsize::new(0);
        let r = mine(
            &pk,
            &PowOptions {
                start,
                ..opts(0, 2)
            },
            &CancelToken::new(),
            &|_| {
                calls.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
        assert_eq!(r.nonce, start);
        assert_eq!(r.node_id, NodeId::compute(&pk, &start));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let err = mine(&pk, &opts(257, 1), &CancelToken::new(), &|_| {}).unwrap_err();
        assert_eq!(err, PowError::InvalidDifficulty { difficulty: 257 });
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn end_of_nonce_space_is_exhausted_not_a_panic() {
        let pk = pk();
        let o = PowOptions {
            start: Nonce {
                a: u64::MAX,
                b: u64::MAX,
                c: u64::MAX,
                d: u64::MAX - 999,
            },
            ..opts(200, 2)
        };
        let seen = Mutex::new(0u64);
        let err = mine(&pk, &o, &CancelToken::new(), &|p: &PowProgress| {
            *seen.lock().unwrap() = p.hashes;
        })
        .unwrap_err();
        assert_eq!(err, PowError::Exhausted);
        assert_eq!(err.code(), ErrorCode::ProofOfWork);
        assert_eq!(*seen.lock().unwrap(), 1000);
    }

    #[test]
    fn nonce_arithmetic() {
        assert_eq!(add([0, 0, 0, u64::MAX], 1), Some([0, 0, 1, 0]));
        assert_eq!(add([0, 0, u64::MAX, u64::MAX], 1), Some([0, 1, 0, 0]));
        assert_eq!(add([1, 2, 3, 4], 5u128 << 64), Some([1, 2, 8, 4]));
        assert_eq!(add([u64::MAX; 4], 1), None);
        assert_eq!(add([u64::MAX; 4], 0), Some([u64::MAX; 4]));
    }

    #[test]
    fn baseline_rate_is_positive() {
        assert!(hash_rate_single_thread(&pk(), 1000) > 0.0);
    }
}
