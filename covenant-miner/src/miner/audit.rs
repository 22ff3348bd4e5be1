//! The background signature audit (DESIGN §5): every replica re-checks the
//! client signatures of the writes it applied, off the commit path, and
//! reports any that fail — the leader verified them before proposing, so a
//! bad one means the leader forwarded a forgery, which the blocks prove.
//!
//! One thread per miner serves every database; checks hit the verified
//! signature cache when this miner already verified the request (as leader).
//! The thread runs at the lowest CPU priority (Linux `SCHED_IDLE`), so on
//! a busy machine it checks in the gaps the commit path leaves rather than
//! competing with it. If it falls [`BEHIND`] the applies, it returns to
//! normal priority until it has caught up, which bounds its backlog. Where
//! the system would not let it return (an unprivileged process without
//! `RLIMIT_NICE`), it stays at normal priority throughout.

use std::sync::mpsc;
use std::time::Duration;

use covenant_core::consensus::database::AuditBatch;

/// How far behind the applies the audit may fall before it stops yielding.
const BEHIND: Duration = Duration::from_secs(2);
/// How close it must come again before it yields again.
const CAUGHT_UP: Duration = Duration::from_millis(200);

/// The audit thread's CPU priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    /// Runs only when nothing else wants the CPU.
    Background,
    /// Like every other thread.
    Normal,
}

/// The priority to audit a batch at, given the current one and how long
/// ago the batch was applied.
fn next_priority(current: Priority, lag: Duration) -> Priority {
    match current {
        Priority::Background if lag > BEHIND => Priority::Normal,
        Priority::Normal if lag < CAUGHT_UP => Priority::Background,
        unchanged => unchanged,
    }
}

/// Puts the calling thread in `priority`'s scheduling class; whether it took.
#[cfg(target_os = "linux")]
fn set_priority(priority: Priority) -> bool {
    let policy = match priority {
        Priority::Background => libc::SCHED_IDLE,
        Priority::Normal => libc::SCHED_OTHER,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 names the calling thread, and `param` is a valid
    // `sched_param` that outlives the call.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn set_priority(_: Priority) -> bool {
    false
}

/// Whether a thread may go to the background and come back (leaving
/// `SCHED_IDLE` needs root, `CAP_SYS_NICE` or `RLIMIT_NICE`); tried on a
/// scratch thread, which is left wherever it ends up.
fn can_yield_and_return() -> bool {
    std::thread::Builder::new()
        .name("audit-probe".into())
        .spawn(|| set_priority(Priority::Background) && set_priority(Priority::Normal))
        .ok()
        .and_then(|t| t.join().ok())
        .unwrap_or(false)
}

/// Starts the audit thread and returns where to send applied writes.
pub(crate) fn start() -> mpsc::Sender<AuditBatch> {
    let (tx, rx) = mpsc::channel::<AuditBatch>();
    let spawned = std::thread::Builder::new()
        .name("signature-audit".into())
        .spawn(move || {
            let mut priority = Priority::Normal;
            let yields = can_yield_and_return();
            for batch in rx {
                let next = next_priority(priority, batch.applied_at.elapsed());
                if yields && next != priority && set_priority(next) {
                    tracing::debug!(
                        lag_ms = batch.applied_at.elapsed().as_millis() as u64,
                        ?next,
                        "signature audit priority"
                    );
                    priority = next;
                }
                audit(&batch);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the signature audit thread; writes are not re-checked");
    }
    tx
}

/// Re-checks the client signatures in one applied entry, logs each that
/// fails, and returns how many failed.
fn audit(batch: &AuditBatch) -> usize {
    let mut forged = 0;
    for (position, (request, id)) in batch.requests.iter().enumerate() {
        let checked = match id {
            Some(id) => request.verify_as(*id),
            None => request.verify(),
        };
        if let Err(e) = checked {
            forged += 1;
            tracing::error!(
                database = %batch.database.to_hex(),
                log_index = batch.index,
                position,
                user = %request.body.user,
                error = %e,
                "the leader replicated a write whose client signature does not verify"
            );
        }
    }
    forged
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use covenant_core::crypto::PrivateKey;
    use covenant_core::sqlchain::query::{Args, Query};
    use covenant_core::sqlchain::request::{QueryKind, RequestBody, SignedRequest};
    use covenant_core::types::DatabaseId;

    use super::*;

    fn signed(key: &PrivateKey, sql: &str) -> SignedRequest {
        let body = RequestBody {
            database: DatabaseId::default(),
            user: key.public_key().address(),
            timestamp: 1,
            sequence: 1,
            kind: QueryKind::Write,
            read_level: Default::default(),
            queries: vec![Query {
                sql: sql.into(),
                args: Args::Positional(vec![]),
            }],
        };
        SignedRequest::sign(body, key).unwrap()
    }

    #[test]
    fn flags_exactly_the_writes_a_leader_altered_after_signing() {
        let key = PrivateKey::generate().unwrap();
        let honest = signed(&key, "INSERT INTO t VALUES (1)");
        let mut altered = signed(&key, "INSERT INTO t VALUES (2)");
        altered.body.queries[0].sql = "DELETE FROM t".into();
        // The id a replica computed from the altered body while applying it.
        let altered_id = altered.hash().unwrap();
        let mut foreign = signed(&key, "INSERT INTO t VALUES (3)");
        foreign.body.user = PrivateKey::generate().unwrap().public_key().address();
        let batch = |requests| AuditBatch {
            database: DatabaseId::default(),
            index: 7,
            requests,
            applied_at: Instant::now(),
        };
        assert_eq!(audit(&batch(vec![(honest.clone(), None)])), 0);
        assert_eq!(
            audit(&batch(vec![
                (honest, None),
                (altered.clone(), None),
                (altered, Some(altered_id)),
                (foreign, None),
            ])),
            3
        );
    }

    #[test]
    fn yields_until_it_falls_behind_and_again_once_caught_up() {
        use Priority::{Background, Normal};
        let ms = Duration::from_millis;
        assert_eq!(next_priority(Normal, ms(0)), Background);
        assert_eq!(next_priority(Background, ms(1_999)), Background);
        assert_eq!(next_priority(Background, ms(2_001)), Normal);
        // Between the two marks it keeps what it has (no flapping).
        assert_eq!(next_priority(Normal, ms(1_000)), Normal);
        assert_eq!(next_priority(Background, ms(1_000)), Background);
        assert_eq!(next_priority(Normal, ms(199)), Background);
    }
}
