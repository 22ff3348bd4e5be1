//! A small funded main chain and the fix-ups that turn fuzzed transaction
//! bodies into transactions its state machine takes seriously: signed by a
//! fixture key, with "small" addresses and database ids (all bytes zero but
//! the first) mapped to the fixture's accounts and live databases.

use std::sync::OnceLock;

use covenant_core::chain::{BpSet, ChainParams, ChainState, Genesis};
use covenant_core::crypto::{Address, NodeId, PrivateKey};
use covenant_core::hash::{Hash, Tag, hash};
use covenant_core::types::{Balances, DatabaseId, Token, Transaction, TxBody, TxPayload};

/// How many funded fixture keys there are.
pub const KEYS: u8 = 6;
/// The genesis timestamp (ms).
pub const GENESIS_MS: u64 = 1_000;
/// The chain's `MinProviderDeposit`.
pub const MIN_DEPOSIT: u64 = 100;

/// Fixture key `n` (scalar `n % KEYS + 1`).
pub fn key(n: u8) -> PrivateKey {
    scalar_key(n % KEYS + 1)
}

/// The address of [`key`]`(n)`.
pub fn addr(n: u8) -> Address {
    key(n).public_key().address()
}

fn scalar_key(n: u8) -> PrivateKey {
    let mut b = [0u8; 32];
    b[31] = n;
    match PrivateKey::from_bytes(&b) {
        Ok(k) => k,
        // Small non-zero scalars are always valid keys.
        Err(e) => panic!("fixture key {n}: {e}"),
    }
}

/// The block producer's key.
pub fn bp_key() -> PrivateKey {
    scalar_key(200)
}

/// The block producer's node id (the chain only matches it to the key).
pub fn bp_id() -> NodeId {
    NodeId(hash(Tag::Message, b"fuzz block producer"))
}

/// The one block producer.
pub fn bp_set() -> BpSet {
    BpSet::new([(bp_id(), bp_key().public_key())])
}

/// Keys 0-4 hold 10,000 Particle and 1,000 Wave; key 5 holds `u64::MAX` Wave.
pub fn genesis() -> Genesis {
    let funds = Balances::new()
        .with(Token::Particle, 10_000)
        .with(Token::Wave, 1_000);
    let mut accounts: Vec<(Address, Balances)> =
        (0..KEYS - 1).map(|n| (addr(n), funds.clone())).collect();
    accounts.push((addr(KEYS - 1), Balances::new().with(Token::Wave, u64::MAX)));
    Genesis::new(GENESIS_MS, accounts).with_params(ChainParams::new(MIN_DEPOSIT))
}

/// The state after [`genesis`] (built once per process).
pub fn state() -> &'static ChainState {
    static STATE: OnceLock<ChainState> = OnceLock::new();
    STATE.get_or_init(|| match ChainState::genesis(&genesis()) {
        Ok((s, _)) => s,
        Err(e) => panic!("fixture genesis: {e}"),
    })
}

/// Whether all bytes but the first are zero: a fuzzer's way to say "fixture `h[0]`".
fn small(h: &Hash) -> Option<u8> {
    let (&first, rest) = h.0.split_first()?;
    rest.iter().all(|&b| b == 0).then_some(first)
}

/// Maps a small address to fixture account `n`, or (high bit set) to a live database's account.
fn remap_address(a: &mut Address, state: &ChainState) {
    let Some(n) = small(&a.0) else { return };
    if n & 0x80 != 0 {
        if let Some(db) = nth_database(state, n & 0x7f) {
            *a = db.account_address();
        }
    } else {
        *a = addr(n);
    }
}

/// Maps a small database id to the `n`-th live database, if any.
fn remap_database(id: &mut DatabaseId, state: &ChainState) {
    if let Some(n) = small(&id.0)
        && let Some(db) = nth_database(state, n)
    {
        *id = db;
    }
}

fn nth_database(state: &ChainState, n: u8) -> Option<DatabaseId> {
    let count = state.databases().count();
    if count == 0 {
        return None;
    }
    state.databases().nth(usize::from(n) % count).map(|d| d.id)
}

/// Rewrites the payload's small addresses and database ids (see the module doc).
pub fn remap_payload(payload: &mut TxPayload, state: &ChainState) {
    match payload {
        TxPayload::Transfer { to, .. } => remap_address(to, state),
        TxPayload::CreateDatabase(c) => {
            for m in &mut c.target_miners {
                remap_address(m, state);
            }
        }
        TxPayload::DropDatabase(d) => remap_database(&mut d.database, state),
        TxPayload::UpdatePermission(u) => {
            remap_database(&mut u.database, state);
            remap_address(&mut u.user, state);
        }
        TxPayload::ProvideService(p) => {
            for u in &mut p.target_users {
                remap_address(u, state);
            }
        }
        TxPayload::UpdateBilling(b) => {
            remap_database(&mut b.database, state);
            for e in &mut b.users {
                remap_address(&mut e.user, state);
            }
        }
    }
}

/// Signs `body` with fixture key `choice`. Unless bit 7 of `choice` is set,
/// the sender becomes that key's account; unless bit 6 is set, the nonce
/// becomes the sender's next one; the payload is remapped.
pub fn fix_up(mut body: TxBody, choice: u8, state: &ChainState) -> Option<Transaction> {
    let key = key(choice);
    if choice & 0x80 == 0 {
        body.sender = key.public_key().address();
    }
    if choice & 0x40 == 0 {
        body.nonce = state.next_nonce(&body.sender);
    }
    remap_payload(&mut body.payload, state);
    Transaction::sign(body, &key).ok()
}
