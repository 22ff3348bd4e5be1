//! Fixed keys, a funded genesis and builders shared by the chain's unit tests.

use super::params::ChainParams;
use super::state::{BpSet, ChainState, Genesis};
use crate::crypto::{Address, NodeId, PrivateKey};
use crate::error::ErrorCode;
use crate::hash::{Tag, hash};
use crate::types::{
    Balances, Block, Consistency, CreateDatabase, DatabaseId, ProvideService, ResourceAsk, Token,
    Transaction, TxBody, TxPayload,
};

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
    Genesis::new(
        1_000,
        vec![
            (
                addr(1),
                Balances::new()
                    .with(Token::Particle, 1000)
                    .with(Token::Wave, 50),
            ),
            (addr(2), Balances::new().with(Token::Particle, 10)),
            (addr(3), Balances::new().with(Token::Wave, u64::MAX)),
        ],
    )
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

/// Miners' keys.
pub(crate) const MINER_1: u8 = 11;
/// A second miner.
pub(crate) const MINER_2: u8 = 12;
/// A third miner.
pub(crate) const MINER_3: u8 = 13;
/// Database users' keys.
pub(crate) const USER_A: u8 = 21;
/// A second user.
pub(crate) const USER_B: u8 = 22;
/// A third user.
pub(crate) const USER_C: u8 = 23;

/// Miners 1-3 and users A-C hold 10,000 Particle and 1,000 Wave each;
/// `MinProviderDeposit` is 100.
pub(crate) fn db_genesis() -> Genesis {
    let funds = Balances::new()
        .with(Token::Particle, 10_000)
        .with(Token::Wave, 1_000);
    Genesis::new(
        1_000,
        [MINER_1, MINER_2, MINER_3, USER_A, USER_B, USER_C]
            .into_iter()
            .map(|k| (addr(k), funds.clone()))
            .collect(),
    )
    .with_params(ChainParams::new(100))
}

/// The state of [`db_genesis`].
pub(crate) fn db_state() -> ChainState {
    ChainState::genesis(&db_genesis()).unwrap().0
}

/// The node id of miner key `n` (tests do not need the proof of work).
pub(crate) fn node(n: u8) -> NodeId {
    NodeId(hash(Tag::Message, &[b'n', n]))
}

/// Miner `n`'s offer: everyone served, gas price 1, 1 GiB memory, 10 GiB
/// disk, load 500/1000, in Particle.
pub(crate) fn offer(n: u8, deposit: u64) -> ProvideService {
    ProvideService {
        resources: ResourceAsk {
            memory_mb: 1024,
            disk_mb: 10 * 1024,
            load_avg_per_cpu_milli: 500,
        },
        gas_price: 1,
        target_users: Vec::new(),
        deposit,
        token: Token::Particle,
        node_id: node(n),
    }
}

/// A strong-consistency database of `node_count` nodes on `targets` first,
/// no resource requirement, gas price 10, 1000 Particle in advance.
pub(crate) fn create_db(node_count: u16, targets: &[u8]) -> CreateDatabase {
    CreateDatabase {
        node_count,
        target_miners: targets.iter().map(|t| addr(*t)).collect(),
        consistency: Consistency::Strong,
        resources: ResourceAsk::default(),
        gas_price: 10,
        advance_payment: 1_000,
        token: Token::Particle,
    }
}

/// Applies miner `n`'s `ProvideService` at its next nonce.
pub(crate) fn provide(s: &mut ChainState, n: u8, offer: ProvideService) {
    let nonce = s.next_nonce(&addr(n));
    s.apply_tx(&signed(n, nonce, TxPayload::ProvideService(offer)))
        .unwrap();
}

/// Applies `owner`'s `CreateDatabase` at its next nonce; returns the new id.
pub(crate) fn create(s: &mut ChainState, owner: u8, ask: CreateDatabase) -> DatabaseId {
    let nonce = s.next_nonce(&addr(owner));
    s.apply_tx(&signed(owner, nonce, TxPayload::CreateDatabase(ask)))
        .unwrap();
    let id = DatabaseId::derive(&addr(owner), nonce);
    assert!(s.database(&id).is_some());
    id
}

/// `assert_refused!(&mut state, &tx, code, needle)`: [`check_refused`], with
/// `tx` built before `state` is borrowed mutably (so it may read the state).
macro_rules! assert_refused {
    ($state:expr, $tx:expr, $code:expr, $needle:expr $(,)?) => {{
        let tx: &$crate::types::Transaction = $tx;
        $crate::chain::testkit::check_refused($state, tx, $code, $needle)
    }};
}
pub(crate) use assert_refused;

/// Asserts `tx` is refused with `code` and a message containing `needle`, changing nothing.
pub(crate) fn check_refused(
    state: &mut ChainState,
    tx: &Transaction,
    code: ErrorCode,
    needle: &str,
) {
    let before = state.clone();
    let digest = state.state_digest().unwrap();
    let err = state.validate_tx(tx).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    let err = state.apply_tx(tx).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    assert_eq!(*state, before);
    assert_eq!(state.state_digest().unwrap(), digest);
}
