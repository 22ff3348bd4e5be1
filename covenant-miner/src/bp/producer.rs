//! The leader's block loop: every `BPPeriod`, if the pool holds
//! transactions, seal a block over the applied head and commit it through
//! Raft. A committed block is final; its transactions leave the pool.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use covenant_core::chain::produce_block;
use covenant_core::consensus::main_chain::{MainChainApplied, MainChainCommand};
use covenant_core::types::block::transaction_ids;
use tokio::time::MissedTickBehavior;

use super::BpInner;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs until the task is aborted.
pub(crate) async fn run(bp: Arc<BpInner>) {
    let mut tick = tokio::time::interval(bp.period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !bp.is_leader() {
            continue;
        }
        if let Err(e) = produce_once(&bp).await {
            tracing::warn!(error = %e, "block production failed");
        }
    }
}

async fn produce_once(bp: &BpInner) -> Result<(), String> {
    let now = now_ms();
    let candidates = {
        let state = bp.chain.state();
        let mut pool = bp.pool();
        let expired = pool.prune(&state, now);
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "transactions expired in the pool");
        }
        pool.candidates()
    };
    if candidates.is_empty() {
        return Ok(());
    }
    let block = {
        let state = bp.chain.state();
        produce_block(&state, &candidates, now, &bp.key, bp.node_id).map_err(|e| e.to_string())?
    };
    if block.transactions.is_empty() {
        return Ok(());
    }
    let ids = transaction_ids(&block.transactions).map_err(|e| e.to_string())?;
    let height = block.header.height;
    bp.pool().mark_packed(&ids);
    match bp.raft.client_write(MainChainCommand::Block(block)).await {
        Ok(resp) => match resp.data {
            MainChainApplied::Applied { receipts, .. } => {
                let failed = receipts.iter().filter(|r| !r.is_ok()).count();
                tracing::info!(height, txs = receipts.len(), failed, "block committed");
                bp.pool().remove_committed(&ids);
                Ok(())
            }
            MainChainApplied::Rejected { reason } => {
                bp.pool().unmark_packed(&ids);
                Err(format!("block {height} was refused: {reason}"))
            }
        },
        Err(e) => {
            bp.pool().unmark_packed(&ids);
            Err(format!("block {height} was not committed: {e}"))
        }
    }
}
