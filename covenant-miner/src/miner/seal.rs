//! The leader's seal loop for one database: every `SQLChainPeriod`, if there
//! were requests, seal a block of them and commit it through the group; the
//! first block (number 0) is sealed as soon as the group has a leader. Every
//! `BillingBlockCount` blocks the leader bills the users on the main chain.
//!
//! Sealing reads only the pending writes' stored leaves and sizes, never the
//! writes themselves, so it holds the replica's writer (and the apply path)
//! for a moment only; the merkle root and the signature are computed off the
//! async runtime's threads.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use covenant_core::consensus::database::{DbApplied, DbCommand, SealProposal};
use covenant_core::hash::Hash;
use covenant_core::types::{BillingEntry, TxPayload, UpdateBilling};
use tokio::time::MissedTickBehavior;

use super::MinerInner;
use super::host::DatabaseHost;

/// Most request bytes (roughly) one block holds: well under the 16 MiB RPC
/// frame, so any client can fetch any block.
const MAX_BLOCK_BYTES: usize = 10 << 20;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs until aborted.
pub(crate) async fn run(inner: Arc<MinerInner>, host: Arc<DatabaseHost>, period: Duration) {
    let period = period.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut genesis_ts: Option<u64> = None;
    loop {
        tick.tick().await;
        if let Some(h) = host.shared().head() {
            inner
                .metrics
                .set_chain_head(&host.id(), h.count, h.height, h.hash, h.timestamp);
        }
        if !host.is_leader() {
            continue;
        }
        if genesis_ts.is_none() {
            genesis_ts = match host.shared().block(0) {
                Ok(Some(b)) => Some(b.header.timestamp),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the genesis block");
                    continue;
                }
            };
        }
        if let Err(e) = seal_once(&inner, &host, period, &mut genesis_ts).await {
            tracing::warn!(database = %host.id().to_hex(), error = %e, "sealing failed");
        }
    }
}

async fn seal_once(
    inner: &Arc<MinerInner>,
    host: &DatabaseHost,
    period: Duration,
    genesis_ts: &mut Option<u64>,
) -> Result<(), String> {
    let now = now_ms();
    let head = host.shared().head();
    let (count, height, parent, writes, reads) = match head {
        None => (0, 0, Hash::ZERO, Vec::new(), Vec::new()),
        Some(h) => {
            let pending = host.shared().pending_leaves().map_err(|e| e.to_string())?;
            let reads = host.shared().take_reads();
            // A block must fit in one RPC frame for clients to fetch it; what
            // does not fit waits for the next block (at least one write goes).
            let mut budget = MAX_BLOCK_BYTES
                .saturating_sub(reads.iter().map(|e| e.request.size_hint()).sum::<usize>());
            let fits = pending
                .iter()
                .take_while(|p| {
                    let size = usize::try_from(p.size).unwrap_or(usize::MAX);
                    let ok = size <= budget;
                    budget = budget.saturating_sub(size);
                    ok
                })
                .count();
            let writes: Vec<Hash> = pending.iter().take(fits.max(1)).map(|p| p.leaf).collect();
            if writes.is_empty() && reads.is_empty() {
                return Ok(());
            }
            let start = genesis_ts.unwrap_or(h.timestamp);
            let height =
                (now.saturating_sub(start) / period.as_millis().max(1) as u64).max(h.height);
            (h.count + 1, height, h.hash, writes, reads)
        }
    };
    let database = host.id();
    let timestamp = now.max(head.map(|h| h.timestamp).unwrap_or(0));
    let producer = inner.node_id();
    let signer = inner.clone();
    let block_reads = reads.clone();
    let proposal = tokio::task::spawn_blocking(move || {
        SealProposal::sign(
            database,
            count,
            height,
            parent,
            timestamp,
            &writes,
            block_reads,
            producer,
            signer.identity.private_key(),
        )
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let proposal = match proposal {
        Ok(p) => p,
        Err(e) => {
            host.shared().restore_reads(reads);
            return Err(e);
        }
    };
    match host
        .raft
        .client_write(DbCommand::Seal(Box::new(proposal)))
        .await
    {
        Ok(resp) => match resp.data {
            DbApplied::Sealed { count, hash } => {
                if count == 0 {
                    *genesis_ts = Some(now);
                }
                tracing::debug!(database = %host.id().to_hex(), count, %hash, "sealed block");
                if let Some(h) = host.shared().head() {
                    inner.metrics.set_chain_head(
                        &host.id(),
                        h.count,
                        h.height,
                        h.hash,
                        h.timestamp,
                    );
                }
                let every = inner.config.billing_block_count.max(1);
                if count > 0 && count % every == 0 {
                    bill(inner, host, count / every);
                }
                Ok(())
            }
            DbApplied::Refused(reason) => {
                host.shared().restore_reads(reads);
                Err(format!("block refused: {reason}"))
            }
            DbApplied::Writes(_) => Err("unexpected write outcome for a seal".into()),
        },
        Err(e) => {
            host.shared().restore_reads(reads);
            Err(e.to_string())
        }
    }
}

/// Sends `UpdateBilling` for the usage since the last bill (in the background).
fn bill(inner: &Arc<MinerInner>, host: &DatabaseHost, period: u64) {
    let usage = host.shared().take_usage();
    if usage.is_empty() {
        return;
    }
    let users = usage
        .into_iter()
        .map(|(user, u)| BillingEntry {
            user,
            rows_read: u.rows_read,
            rows_affected: u.rows_affected,
        })
        .collect();
    let payload = TxPayload::UpdateBilling(UpdateBilling {
        database: host.id(),
        period,
        users,
    });
    let inner = inner.clone();
    let db = host.id();
    tokio::spawn(async move {
        match inner.client.submit(payload).await {
            Ok(tx) => tracing::info!(database = %db.to_hex(), period, %tx, "sent UpdateBilling"),
            Err(e) => {
                tracing::warn!(database = %db.to_hex(), error = %e, "cannot send UpdateBilling")
            }
        }
    });
}
