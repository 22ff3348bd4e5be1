//! The pure block producer: from a state and a pool, the next block.
//!
//! Selection rule (deterministic: the order of `pool` does not matter):
//! - Transactions are grouped by sender (senders in address order) and
//!   walked from the sender's next nonce upwards.
//! - At each nonce, the candidates (several if a client re-signed) are tried
//!   in id order against the state as changed by the transactions already
//!   picked; the first that applies is included and the walk continues.
//! - A sender whose next candidate does not apply is retried in a later pass
//!   (up to [`MAX_PASSES`]), so a spend funded by a transfer from a sender
//!   later in address order still makes it into the same block.
//! - After the passes, for each sender still stuck, the first candidate whose
//!   failure is final for this state (insufficient balance, zero amount,
//!   overflow, any refused database or provider effect) is included as a
//!   failed transaction so its sender learns the reason (the nonce stays
//!   unused, later nonces wait).
//! - Candidates with a bad signature or a signer other than the sender, stale
//!   nonces (below the next nonce) and nonces after a gap are never
//!   included; the pool prunes stale ones and keeps the rest.
//! - At most [`MAX_TXS_PER_BLOCK`] transactions; an empty pool gives an empty block.
//! - The timestamp is raised to the head's if it is earlier, so a producer
//!   whose clock lags never makes a block the chain refuses.

use std::collections::{BTreeMap, BTreeSet};

use super::apply::plan_tx;
use super::error::{ChainError, TxError};
use super::state::{ChainState, MAX_TXS_PER_BLOCK};
use super::view::{Layered, StateView};
use crate::crypto::{Address, NodeId, PrivateKey};
use crate::hash::Hash;
use crate::types::{Block, Transaction};

/// How many times stuck senders are retried within one block.
pub const MAX_PASSES: usize = 4;

/// Whether a failure is worth recording in a block (the sender's fault, final for this state).
fn is_final_failure(e: &TxError) -> bool {
    e.is_effect_failure()
}

/// Seals the next block over the head of `state` from the transactions in `pool`.
pub fn produce_block(
    state: &ChainState,
    pool: &[Transaction],
    timestamp: u64,
    producer: &PrivateKey,
    producer_id: NodeId,
) -> Result<Block, ChainError> {
    let head = state.head().ok_or(ChainError::NoGenesis)?;

    // sender -> nonce -> candidates sorted by id (deduplicated).
    let mut by_sender: BTreeMap<Address, BTreeMap<u64, BTreeMap<Hash, &Transaction>>> =
        BTreeMap::new();
    for tx in pool {
        // A transaction that cannot be encoded cannot be in a block.
        let Ok(id) = tx.hash() else { continue };
        by_sender
            .entry(tx.body.sender)
            .or_default()
            .entry(tx.body.nonce)
            .or_default()
            .insert(id, tx);
    }

    // The state with the picked transactions' writes on top, without cloning it.
    let mut overlay = Layered::new(state);
    let mut picked: Vec<Transaction> = Vec::new();
    // Senders with nothing more to include (gap, or only unusable candidates).
    let mut done: BTreeSet<Address> = BTreeSet::new();
    'passes: for _ in 0..MAX_PASSES {
        let mut progress = false;
        for (sender, nonces) in &by_sender {
            if done.contains(sender) {
                continue;
            }
            loop {
                let next = overlay.account(sender).map_or(0, |a| a.next_nonce);
                let Some(candidates) = nonces.get(&next) else {
                    done.insert(*sender);
                    break;
                };
                if picked.len() >= MAX_TXS_PER_BLOCK {
                    break 'passes;
                }
                let mut retry_later = false;
                let mut applied = false;
                for (id, tx) in candidates {
                    match plan_tx(&overlay, tx, id) {
                        Ok(writes) => {
                            overlay.merge(writes);
                            picked.push((*tx).clone());
                            applied = true;
                            break;
                        }
                        Err(e) => retry_later |= is_final_failure(&e),
                    }
                }
                if applied {
                    progress = true;
                    continue;
                }
                if !retry_later {
                    done.insert(*sender);
                }
                break;
            }
        }
        if !progress {
            break;
        }
    }

    // Record one final failure per sender still stuck, so its client learns why.
    for (sender, nonces) in &by_sender {
        if done.contains(sender) || picked.len() >= MAX_TXS_PER_BLOCK {
            continue;
        }
        let next = overlay.account(sender).map_or(0, |a| a.next_nonce);
        let failing = nonces.get(&next).and_then(|candidates| {
            candidates
                .iter()
                .find(|(id, tx)| plan_tx(&overlay, tx, id).is_err_and(|e| is_final_failure(&e)))
        });
        if let Some((_, tx)) = failing {
            picked.push((*tx).clone());
        }
    }

    let timestamp = timestamp.max(head.timestamp);
    let height = head.height.saturating_add(1);
    Ok(Block::seal(
        height,
        head.hash,
        timestamp,
        producer_id,
        picked,
        producer,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::TxResult;
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;
    use crate::types::{DatabaseId, DropDatabase, Token, TxPayload};

    fn produce(state: &ChainState, pool: &[Transaction], ts: u64) -> Block {
        produce_block(state, pool, ts, &bp_key(), bp_id()).unwrap()
    }

    #[test]
    fn picks_in_nonce_order_and_applies_cleanly() {
        let mut s = state();
        // Out of order in the pool, from two senders, plus a gap for Bob.
        let pool = vec![
            transfer(1, 2, 3, 2),
            transfer(2, 1, 1, 0),
            transfer(1, 2, 1, 0),
            transfer(2, 1, 1, 2), // gap: nonce 1 missing
            transfer(1, 2, 2, 1),
        ];
        let block = produce(&s, &pool, 5_000);
        let nonces_of = |who: u8| -> Vec<u64> {
            block
                .transactions
                .iter()
                .filter(|t| t.body.sender == addr(who))
                .map(|t| t.body.nonce)
                .collect()
        };
        assert_eq!(block.transactions.len(), 4);
        assert_eq!(nonces_of(1), [0, 1, 2]);
        assert_eq!(nonces_of(2), [0]);
        let out = s.apply_block(&block, &bps()).unwrap();
        assert!(out.receipts.iter().all(|r| r.is_ok()));
        assert_eq!(s.next_nonce(&addr(1)), 3);
        assert_eq!(s.next_nonce(&addr(2)), 1);
        // The pool's order does not matter.
        let mut reversed = pool.clone();
        reversed.reverse();
        assert_eq!(produce(&state(), &reversed, 5_000), block);
    }

    #[test]
    fn a_final_failure_is_recorded_and_stops_the_sender() {
        let mut s = state();
        let drop = signed(
            2,
            1,
            TxPayload::DropDatabase(DropDatabase {
                database: DatabaseId::derive(&addr(2), 0),
            }),
        );
        let pool = vec![
            transfer(2, 1, 5, 0),
            drop.clone(),
            transfer(2, 1, 1, 2),     // waits: nonce 1 stays unused
            transfer(1, 2, 5_000, 0), // insufficient: recorded
            transfer(1, 2, 1, 1),     // waits
        ];
        let block = produce(&s, &pool, 5_000);
        assert_eq!(block.transactions.len(), 3);
        let out = s.apply_block(&block, &bps()).unwrap();
        let mut failed: Vec<u32> = out
            .receipts
            .iter()
            .filter_map(|r| match &r.result {
                TxResult::Failed { code, .. } => Some(*code),
                TxResult::Ok => None,
            })
            .collect();
        failed.sort();
        assert_eq!(
            failed,
            [
                ErrorCode::InsufficientBalance.as_u32(),
                ErrorCode::UnknownDatabase.as_u32()
            ]
        );
        assert_eq!(s.next_nonce(&addr(1)), 0);
        assert_eq!(s.next_nonce(&addr(2)), 1);
    }

    #[test]
    fn database_effects_that_depend_on_each_other_share_a_block() {
        use crate::types::{Permission, UpdatePermission};
        let mut s = db_state();
        provide(&mut s, MINER_1, offer(MINER_1, 100));
        let id = DatabaseId::derive(&addr(USER_A), 0);
        // B pays into A's database, which A creates and grants B in the same pool.
        let pool = vec![
            signed(
                USER_B,
                0,
                TxPayload::Transfer {
                    to: id.account_address(),
                    token: Token::Particle,
                    amount: 40,
                },
            ),
            signed(
                USER_A,
                1,
                TxPayload::UpdatePermission(UpdatePermission {
                    database: id,
                    user: addr(USER_B),
                    permission: "Read".parse::<Permission>().unwrap(),
                }),
            ),
            signed(USER_A, 0, TxPayload::CreateDatabase(create_db(1, &[]))),
        ];
        let block = produce(&s, &pool, 5_000);
        assert_eq!(block.transactions.len(), 3);
        let out = s.apply_block(&block, &bps()).unwrap();
        assert!(out.receipts.iter().all(|r| r.is_ok()), "{:?}", out.receipts);
        let b = s
            .database(&id)
            .unwrap()
            .user(&addr(USER_B))
            .unwrap()
            .clone();
        assert_eq!(b.advance_payment, 40);
    }

    #[test]
    fn a_refused_database_effect_is_recorded() {
        let mut s = db_state();
        // No provider: the create fails and its reason is recorded.
        let create = signed(USER_A, 0, TxPayload::CreateDatabase(create_db(1, &[])));
        let block = produce(&s, &[create], 5_000);
        assert_eq!(block.transactions.len(), 1);
        let out = s.apply_block(&block, &bps()).unwrap();
        assert!(matches!(
            &out.receipts[0].result,
            TxResult::Failed { code, reason }
                if *code == ErrorCode::NotEnoughMiners.as_u32() && reason.contains("no miner provides service")
        ));
        assert_eq!(s.next_nonce(&addr(USER_A)), 0);
    }

    #[test]
    fn a_second_candidate_for_a_nonce_can_win() {
        let s = state();
        // Two signings for Bob's nonce 0: the failing one must not block the good one.
        let too_much = transfer(2, 1, 500, 0);
        let fine = transfer(2, 1, 5, 0);
        let block = produce(&s, &[too_much, fine.clone()], 5_000);
        assert_eq!(block.transactions, vec![fine]);
    }

    #[test]
    fn bad_signatures_stale_nonces_and_dependent_spends() {
        let mut s = state();
        s.apply_tx(&transfer(1, 2, 1, 0)).unwrap();
        let mut forged = transfer(1, 2, 1, 1);
        forged.body.timestamp += 1;
        let mut foreign_body = transfer(1, 4, 1, 1).body;
        foreign_body.sender = addr(1);
        let foreign = Transaction::sign(foreign_body, &key(4)).unwrap();
        let stale = transfer(1, 2, 1, 0);
        // Bob (10 Particle) can pay 15 only after Alice's 10 arrives in the same block.
        let alice_pays = transfer(1, 2, 10, 1);
        let bob_pays = transfer(2, 5, 15, 0);
        let pool = [forged, foreign, stale, alice_pays.clone(), bob_pays.clone()];
        let block = produce(&s, &pool, 5_000);
        assert_eq!(block.transactions.len(), 2, "{:?}", block.transactions);
        assert!(block.transactions.contains(&alice_pays));
        assert!(block.transactions.contains(&bob_pays));
        let out = s.apply_block(&block, &bps()).unwrap();
        assert!(out.receipts.iter().all(|r| r.is_ok()));
        assert_eq!(s.balances(&addr(5)).get(Token::Particle), 15);
    }

    #[test]
    fn empty_pool_and_lagging_clock() {
        let s = state();
        let block = produce(&s, &[], 0);
        assert!(block.transactions.is_empty());
        assert_eq!(block.header.height, 1);
        assert_eq!(block.header.timestamp, s.head().unwrap().timestamp);
        assert_eq!(block.header.producer, bp_id());
        s.clone().apply_block(&block, &bps()).unwrap();
        assert!(matches!(
            produce_block(&ChainState::default(), &[], 0, &bp_key(), bp_id()),
            Err(ChainError::NoGenesis)
        ));
    }
}
