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
                for (position, (request, id)) in batch.requests.iter().enumerate() {
                    let checked = match id {
                        Some(id) => request.verify_as(*id),
                        None => request.verify(),
                    };
                    if let Err(e) = checked {
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
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the signature audit thread; writes are not re-checked");
    }
    tx
}
