//! The background signature audit (DESIGN §5): every replica re-checks the
//! client signatures of the writes it applied, off the commit path, and
//! reports any that fail — the leader verified them before proposing, so a
//! bad one means the leader forwarded a forgery, which the blocks prove.
//!
//! One thread per miner serves every database; checks hit the verified
//! signature cache when this miner already verified the request (as leader).

use std::sync::mpsc;

use covenant_core::consensus::database::AuditBatch;

/// Starts the audit thread and returns where to send applied writes.
pub(crate) fn start() -> mpsc::Sender<AuditBatch> {
    let (tx, rx) = mpsc::channel::<AuditBatch>();
    let spawned = std::thread::Builder::new()
        .name("signature-audit".into())
        .spawn(move || {
            for batch in rx {
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
}
