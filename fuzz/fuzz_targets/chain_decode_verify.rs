//! Main-chain transactions and blocks, as block producers receive them, and
//! the state machine that applies them: a typed error or a value, never a
//! panic; what decodes has a stable canonical encoding; `validate_tx` and
//! `apply_tx` agree; a refused transaction or block changes nothing; and a
//! block applies exactly as its transactions applied one by one.
//!
//! Input: `[selector][bytes]`; `selector % 3` picks
//! - 0: `decode_versioned::<Transaction>`, `verify`, then validate/apply on
//!   the fixture chain (`covenant_fuzz::chain`);
//! - 1: `decode_versioned::<Block>`, `verify`, then `apply_block`;
//! - 2: `codec::decode::<Vec<(u8, TxBody)>>`: each body is fixed up (signed by
//!   fixture key `u8`, see `chain::fix_up`) and applied in turn; then all of
//!   them, sealed into one block, are applied to a fresh fixture state, which
//!   must end equal.
#![no_main]

use covenant_core::chain::{ChainState, TxError, TxResult};
use covenant_core::codec;
use covenant_core::types::{Block, Transaction, TxBody};
use covenant_fuzz::canonical::decode_versioned as decode;
use covenant_fuzz::chain::{self, GENESIS_MS};
use libfuzzer_sys::fuzz_target;

/// Most transactions one sequence input applies.
const MAX_SEQUENCE: usize = 16;

fn describe(e: &TxError) {
    let _ = (e.code(), e.retryable());
    assert!(!e.to_string().is_empty());
}

/// Validates then applies `tx`; checks they agree and a refusal changes nothing.
fn apply(state: &mut ChainState, tx: &Transaction) -> bool {
    let validated = state.validate_tx(tx);
    let before = state.state_digest().expect("state digest");
    let applied = state.apply_tx(tx);
    assert_eq!(
        validated.is_ok(),
        applied.is_ok(),
        "validate_tx and apply_tx disagree: {validated:?} vs {applied:?}"
    );
    if let Err(e) = &applied {
        describe(e);
        assert_eq!(
            before,
            state.state_digest().expect("state digest"),
            "a refused tx changed the state"
        );
    }
    applied.is_ok()
}

/// The parts of a state that transactions change (the head aside).
fn contents(s: &ChainState) -> impl PartialEq + std::fmt::Debug {
    (
        s.accounts().cloned().collect::<Vec<_>>(),
        s.databases().cloned().collect::<Vec<_>>(),
        s.providers().cloned().collect::<Vec<_>>(),
        s.dropped_databases().copied().collect::<Vec<_>>(),
    )
}

fn sequence(bodies: Vec<(u8, TxBody)>) {
    let mut state = chain::state().clone();
    let mut txs = Vec::new();
    let mut results = Vec::new();
    for (choice, body) in bodies.into_iter().take(MAX_SEQUENCE) {
        let Some(tx) = chain::fix_up(body, choice, &state) else {
            continue;
        };
        results.push(apply(&mut state, &tx));
        txs.push(tx);
    }
    let mut replay = chain::state().clone();
    let Some(head) = replay.head() else { return };
    let block = Block::seal(
        head.height + 1,
        head.hash,
        GENESIS_MS + 1_000,
        chain::bp_id(),
        txs,
        &chain::bp_key(),
    )
    .expect("a block seals");
    match replay.apply_block(&block, &chain::bp_set()) {
        Ok(outcome) => {
            let ok: Vec<bool> = outcome
                .receipts
                .iter()
                .map(|r| matches!(r.result, TxResult::Ok))
                .collect();
            assert_eq!(
                ok, results,
                "a block applied differently from its transactions"
            );
            assert_eq!(
                contents(&replay),
                contents(&state),
                "block and one-by-one states differ"
            );
            assert_eq!(replay.head().map(|h| h.height), Some(head.height + 1));
        }
        // Two identical transactions (the second one failed) make a bad block.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let Some(tx) = decode::<Transaction>(rest) else {
                return;
            };
            if let Err(e) = tx.verify() {
                let _ = e.code();
            }
            let mut state = chain::state().clone();
            apply(&mut state, &tx);
        }
        1 => {
            let Some(block) = decode::<Block>(rest) else {
                return;
            };
            if let Err(e) = block.verify() {
                let _ = e.code();
            }
            let mut state = chain::state().clone();
            let before = state.state_digest().expect("state digest");
            if let Err(e) = state.apply_block(&block, &chain::bp_set()) {
                let _ = e.code();
                assert_eq!(
                    before,
                    state.state_digest().expect("state digest"),
                    "a refused block changed the state"
                );
            }
        }
        _ => {
            if let Ok(bodies) = codec::decode::<Vec<(u8, TxBody)>>(rest) {
                sequence(bodies);
            }
        }
    }
});
