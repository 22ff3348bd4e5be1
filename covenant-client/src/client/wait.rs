//! Following a transaction until it is confirmed: poll its state (quickly at
//! first, then about five times per block period), report each change, and
//! decide when it is done, failed or lost.

use std::time::Duration;

use covenant_core::api::chain::{GetTxState, TxStatus};
use covenant_core::chain::TxResult;
use covenant_core::hash::Hash;
use covenant_core::types::TxState;
use tokio::time::Instant;

use super::Client;
use crate::error::ClientError;

/// First pause between polls.
const FIRST_POLL: Duration = Duration::from_millis(20);
/// Shortest and longest pause between polls once settled.
const MIN_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(250);
/// Least time a transaction may be unknown before it is called lost.
const MIN_NOT_FOUND_GRACE: Duration = Duration::from_secs(5);

/// What one poll means for the wait.
#[derive(Debug)]
enum Verdict {
    /// Keep polling.
    Wait,
    /// Confirmed and applied.
    Done,
    /// Finished badly.
    Fail(ClientError),
}

/// Judges `status` of `hash`, unknown since `unknown_for` (zero when known), given `grace`.
fn judge(hash: &Hash, status: &TxStatus, unknown_for: Duration, grace: Duration) -> Verdict {
    match status.state {
        TxState::Confirmed => match &status.result {
            Some(TxResult::Ok) => Verdict::Done,
            Some(TxResult::Failed { code, reason }) => Verdict::Fail(ClientError::TxFailed {
                hash: *hash,
                code: *code,
                reason: reason.clone(),
            }),
            None => Verdict::Fail(ClientError::Protocol(format!(
                "transaction {hash} is confirmed but the block producer gave no result"
            ))),
        },
        TxState::Expired => Verdict::Fail(ClientError::TxExpired { hash: *hash }),
        TxState::NotFound if unknown_for >= grace => Verdict::Fail(ClientError::TxNotFound {
            hash: *hash,
            after: unknown_for,
        }),
        TxState::NotFound | TxState::Pending | TxState::Packed => Verdict::Wait,
    }
}

impl Client {
    /// How long a transaction may stay unknown before it is called lost.
    fn not_found_grace(&self) -> Duration {
        self.options()
            .not_found_grace
            .unwrap_or_else(|| (self.config().bp_period * 10).max(MIN_NOT_FOUND_GRACE))
    }

    /// Polls transaction `hash` until it is confirmed and applied, calling
    /// `on_progress` with every new state. A confirmed transaction that failed
    /// is [`ClientError::TxFailed`]; expired, lost (unknown after a grace
    /// period) and `timeout` are errors too.
    pub async fn wait_for_tx(
        &self,
        hash: &Hash,
        timeout: Duration,
        mut on_progress: impl FnMut(&TxStatus),
    ) -> Result<TxStatus, ClientError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let grace = self.not_found_grace();
        let settled = (self.config().bp_period / 5).clamp(MIN_POLL, MAX_POLL);
        let mut pause = FIRST_POLL;
        let mut last: Option<TxStatus> = None;
        let mut unknown_since: Option<Instant> = None;
        loop {
            let status = self
                .inner
                .router
                .call::<GetTxState>(hash, deadline)
                .await
                .map_err(|e| match e {
                    ClientError::Timeout { .. } => ClientError::Timeout {
                        what: format!("confirmation of transaction {hash}"),
                        after: timeout,
                    },
                    other => other,
                })?;
            let now = Instant::now();
            let unknown_for = if status.state == TxState::NotFound {
                now.duration_since(*unknown_since.get_or_insert(now))
            } else {
                unknown_since = None;
                Duration::ZERO
            };
            if last.as_ref() != Some(&status) {
                on_progress(&status);
            }
            match judge(hash, &status, unknown_for, grace) {
                Verdict::Done => return Ok(status),
                Verdict::Fail(e) => return Err(e),
                Verdict::Wait => {}
            }
            last = Some(status);
            if now >= deadline {
                let state = last.as_ref().map_or(TxState::NotFound, |s| s.state);
                return Err(ClientError::Timeout {
                    what: format!("confirmation of transaction {hash} (still {state})"),
                    after: timeout,
                });
            }
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(now))).await;
            pause = (pause * 3 / 2).min(settled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::ErrorCode;

    fn status(state: TxState, result: Option<TxResult>) -> TxStatus {
        TxStatus {
            state,
            height: None,
            result,
        }
    }

    #[test]
    fn verdicts() {
        let h = Hash::ZERO;
        let grace = Duration::from_secs(5);
        let z = Duration::ZERO;
        assert!(matches!(
            judge(
                &h,
                &status(TxState::Confirmed, Some(TxResult::Ok)),
                z,
                grace
            ),
            Verdict::Done
        ));
        let failed = TxResult::Failed {
            code: ErrorCode::InsufficientBalance.as_u32(),
            reason: "insufficient Particle balance".into(),
        };
        match judge(&h, &status(TxState::Confirmed, Some(failed)), z, grace) {
            Verdict::Fail(e) => {
                assert!(e.is(ErrorCode::InsufficientBalance));
                assert!(e.to_string().contains("insufficient Particle balance"));
            }
            other => panic!("{other:?}"),
        }
        for st in [TxState::Pending, TxState::Packed, TxState::NotFound] {
            assert!(matches!(
                judge(&h, &status(st, None), z, grace),
                Verdict::Wait
            ));
        }
        assert!(matches!(
            judge(&h, &status(TxState::NotFound, None), grace, grace),
            Verdict::Fail(ClientError::TxNotFound { .. })
        ));
        assert!(matches!(
            judge(&h, &status(TxState::Expired, None), z, grace),
            Verdict::Fail(ClientError::TxExpired { .. })
        ));
        assert!(matches!(
            judge(&h, &status(TxState::Confirmed, None), z, grace),
            Verdict::Fail(ClientError::Protocol(_))
        ));
    }
}
