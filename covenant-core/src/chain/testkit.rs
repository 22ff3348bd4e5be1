//! Fixed keys, a funded genesis and builders shared by the chain's unit tests.

use super::state::{BpSet, ChainState, Genesis};
use crate::crypto::{Address, NodeId, PrivateKey};
use crate::hash::{Tag, hash};
use crate::types::{Balances, Block, Token, Transaction, TxBody, TxPayload};

/// The key with scalar `n` (reproducible).
pub(crate) fn key(n: u8) -> PrivateKey {
    let mut b = [0u8; 32];
    b[31] = n;
    PrivateKey::from_bytes(&b).unwrap()
}

/// The address of [`key`]`(n)`.
pub(crate) fn addr(n: u8) -> Address {
    key(n).public_key().address()
}

/// Alice (key 1) holds 1000 Particle and 50 Wave; Bob (key 2) 10 Particle;
/// Carol (key 3) u64::MAX Wave.
pub(crate) fn genesis() -> Genesis {
    Genesis {
        timestamp: 1_000,
        accounts: vec![
            (
                addr(1),
                Balances::new()
                    .with(Token::Particle, 1000)
                    .with(Token::Wave, 50),
            ),
            (addr(2), Balances::new().with(Token::Particle, 10)),
            (addr(3), Balances::new().with(Token::Wave, u64::MAX)),
        ],
    }
}

/// The genesis state.
pub(crate) fn state() -> ChainState {
    ChainState::genesis(&genesis()).unwrap().0
}

/// The producer's key (key 100).
pub(crate) fn bp_key() -> PrivateKey {
    key(100)
}

/// The producer's node id (tests do not need the proof of work).
pub(crate) fn bp_id() -> NodeId {
    NodeId(hash(Tag::Message, b"bp-100"))
}

/// The producer set holding only the test producer.
pub(crate) fn bps() -> BpSet {
    BpSet::new([(bp_id(), bp_key().public_key())])
}

/// A signed transaction of `payload` from key `from`.
pub(crate) fn signed(from: u8, nonce: u64, payload: TxPayload) -> Transaction {
    let k = key(from);
    let body = TxBody {
        sender: k.public_key().address(),
        nonce,
        timestamp: 5_000 + nonce,
        payload,
    };
    Transaction::sign(body, &k).unwrap()
}

/// A signed transfer of `amount` Particle from key `from` to key `to`.
pub(crate) fn transfer(from: u8, to: u8, amount: u64, nonce: u64) -> Transaction {
    transfer_token(from, to, Token::Particle, amount, nonce)
}

/// A signed transfer of `amount` of `token` from key `from` to key `to`.
pub(crate) fn transfer_token(
    from: u8,
    to: u8,
    token: Token,
    amount: u64,
    nonce: u64,
) -> Transaction {
    signed(
        from,
        nonce,
        TxPayload::Transfer {
            to: addr(to),
            token,
            amount,
        },
    )
}

/// A block sealed by the test producer over the head of `state`.
pub(crate) fn block_on(state: &ChainState, txs: Vec<Transaction>) -> Block {
    let head = state.head().unwrap();
    Block::seal(
        head.height + 1,
        head.hash,
        head.timestamp + 1_000,
        bp_id(),
        txs,
        &bp_key(),
    )
    .unwrap()
}
