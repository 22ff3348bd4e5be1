//! [`ChainState`] and its pure transitions: genesis, transactions, blocks.
//!
//! Rules (DESIGN §4):
//! - A transaction applies only if it is signed by the sender's own key, its
//!   nonce equals the sender's next nonce, and its payload applies; then the
//!   nonce advances by one.
//! - A transaction that fails changes **nothing, including the nonce**: the
//!   sender may reuse that nonce for a corrected transaction. (So a failed
//!   transaction recorded in a block could apply if resubmitted later while
//!   its nonce is still unused; pools refuse ids they already indexed.)
//! - Every payload has its effect (see `apply`): transfers, miners'
//!   `ProvideService`, databases' creation, drop, permissions and billing.
//!   The state holds accounts, live database profiles, the ids of dropped
//!   databases, provider profiles and the [`ChainParams`], all in ordered
//!   maps so equal states encode (and digest) alike.
//! - All arithmetic is checked; an overflow fails the transaction.
//! - Genesis accounts exist only in the genesis block; nothing else mints.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::apply::plan_tx;
use super::error::{ChainError, TxError};
use super::params::ChainParams;
use super::view::{StateView, Writes};
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{Address, CryptoError, NodeId, Nonce, PrivateKey, PublicKey};
use crate::hash::{self, Hash, Tag};
use crate::types::{
    Account, BLOCK_VERSION, Balances, Block, BlockHeader, DatabaseId, DatabaseProfile,
    ProviderProfile, Transaction,
};

/// Most transactions one block may carry.
pub const MAX_TXS_PER_BLOCK: usize = 10_000;

/// The funded accounts and the rules the chain starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The genesis block's timestamp (ms since the Unix epoch).
    pub timestamp: u64,
    /// Funded accounts; each address at most once.
    pub accounts: Vec<(Address, Balances)>,
    /// The chain's economic rules (committed in the genesis block's hash).
    #[serde(default)]
    pub params: ChainParams,
}

impl Genesis {
    /// A genesis funding `accounts`, with the default [`ChainParams`].
    pub fn new(timestamp: u64, accounts: Vec<(Address, Balances)>) -> Genesis {
        Genesis {
            timestamp,
            accounts,
            params: ChainParams::default(),
        }
    }

    /// The same genesis with these rules (e.g. the configured `MinProviderDeposit`).
    pub fn with_params(mut self, params: ChainParams) -> Genesis {
        self.params = params;
        self
    }
}

/// The latest applied block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
    /// Its timestamp (ms).
    pub timestamp: u64,
}

impl Versioned for ChainHead {
    const KIND: &'static str = "chain head";
    const VERSION: u16 = 1;
}

/// The block producers allowed to sign blocks: node id → public key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BpSet {
    producers: BTreeMap<NodeId, PublicKey>,
}

impl BpSet {
    /// A set from already verified (node id, key) pairs, e.g. from config.
    pub fn new(producers: impl IntoIterator<Item = (NodeId, PublicKey)>) -> BpSet {
        BpSet {
            producers: producers.into_iter().collect(),
        }
    }

    /// A set from public keys and node-id nonces, checking each id's proof of work.
    pub fn from_identities(
        identities: &[(PublicKey, Nonce)],
        min_difficulty: u32,
    ) -> Result<BpSet, CryptoError> {
        let mut producers = BTreeMap::new();
        for (pk, nonce) in identities {
            let id = NodeId::compute(pk, nonce);
            id.verify(pk, nonce, min_difficulty)?;
            producers.insert(id, *pk);
        }
        Ok(BpSet { producers })
    }

    /// The key of producer `id`, if it is one.
    pub fn key(&self, id: &NodeId) -> Option<&PublicKey> {
        self.producers.get(id)
    }

    /// Whether `id` is a producer.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.producers.contains_key(id)
    }

    /// Number of producers.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The producers in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &PublicKey)> {
        self.producers.iter()
    }
}

/// How a transaction in a block ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxResult {
    /// It applied.
    Ok,
    /// It changed nothing, for this reason.
    Failed {
        /// The stable [`ErrorCode`](crate::ErrorCode) number.
        code: u32,
        /// The user-readable reason.
        reason: String,
    },
}

/// The outcome of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxReceipt {
    /// The transaction id.
    pub tx: Hash,
    /// How it ended.
    pub result: TxResult,
}

impl TxReceipt {
    /// Whether the transaction applied.
    pub fn is_ok(&self) -> bool {
        matches!(self.result, TxResult::Ok)
    }

    fn failed(tx: Hash, e: &TxError) -> TxReceipt {
        TxReceipt {
            tx,
            result: TxResult::Failed {
                code: e.code().as_u32(),
                reason: e.to_string(),
            },
        }
    }
}

impl Versioned for TxReceipt {
    const KIND: &'static str = "transaction receipt";
    const VERSION: u16 = 1;
}

/// What applying a block produced: the receipts and what it changed, so a
/// store writes only that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<TxReceipt>,
    /// The changed accounts' new values, in address order.
    pub changed_accounts: Vec<Account>,
    /// The new profiles of databases created or changed, in id order.
    pub changed_databases: Vec<DatabaseProfile>,
    /// The databases dropped, in id order.
    pub dropped_databases: Vec<DatabaseId>,
    /// The new profiles of providers that offered service, in address order.
    pub changed_providers: Vec<ProviderProfile>,
}

/// Everything a [`ChainState`] holds, to rebuild one from storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateParts {
    /// The rules in force.
    pub params: ChainParams,
    /// Every account.
    pub accounts: Vec<Account>,
    /// Every live database.
    pub databases: Vec<DatabaseProfile>,
    /// The ids of dropped databases.
    pub dropped: Vec<DatabaseId>,
    /// Every provider.
    pub providers: Vec<ProviderProfile>,
    /// The latest applied block, `None` before genesis.
    pub head: Option<ChainHead>,
}

/// The main chain's state: rules, accounts, databases, providers and the head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    params: ChainParams,
    accounts: BTreeMap<Address, Account>,
    databases: BTreeMap<DatabaseId, DatabaseProfile>,
    dropped: BTreeSet<DatabaseId>,
    providers: BTreeMap<Address, ProviderProfile>,
    head: Option<ChainHead>,
}

impl StateView for ChainState {
    fn params(&self) -> &ChainParams {
        &self.params
    }

    fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }

    fn database(&self, id: &DatabaseId) -> Option<&DatabaseProfile> {
        self.databases.get(id)
    }

    fn is_dropped(&self, id: &DatabaseId) -> bool {
        self.dropped.contains(id)
    }

    fn provider(&self, address: &Address) -> Option<&ProviderProfile> {
        self.providers.get(address)
    }

    fn provider_addresses(&self) -> BTreeSet<Address> {
        self.providers.keys().copied().collect()
    }
}

/// The keys a block's transactions wrote.
#[derive(Default)]
struct Touched {
    accounts: BTreeSet<Address>,
    databases: BTreeSet<DatabaseId>,
    providers: BTreeSet<Address>,
}

impl ChainState {
    /// The state after `genesis`, and the genesis block.
    ///
    /// The genesis block has height 0, no transactions, producer id zero, and
    /// as parent the digest of the initial state (accounts and parameters),
    /// so its hash commits to both. It is signed with a key derived from that
    /// digest: the block is recomputed from configuration by every node and
    /// compared by hash, never trusted for its signature.
    pub fn genesis(genesis: &Genesis) -> Result<(ChainState, Block), ChainError> {
        let mut accounts = BTreeMap::new();
        for (address, balances) in &genesis.accounts {
            let mut balances = balances.clone();
            balances.normalize();
            let account = Account {
                address: *address,
                balances,
                next_nonce: 0,
            };
            if accounts.insert(*address, account).is_some() {
                return Err(ChainError::InvalidGenesis {
                    reason: format!("account {address} is listed more than once"),
                });
            }
        }
        let mut state = ChainState {
            params: genesis.params,
            accounts,
            ..ChainState::default()
        };
        let parent = state.state_digest()?;
        let key = genesis_key(&parent)?;
        let header = BlockHeader {
            version: BLOCK_VERSION,
            height: 0,
            parent,
            merkle_root: Hash::ZERO,
            timestamp: genesis.timestamp,
            producer: NodeId(Hash::ZERO),
        };
        let block = Block::sign(header, Vec::new(), &key)?;
        state.head = Some(ChainHead {
            height: 0,
            hash: block.hash()?,
            timestamp: genesis.timestamp,
        });
        Ok((state, block))
    }

    /// Rebuilds a state from persisted parts (see `store`).
    pub fn from_parts(parts: StateParts) -> ChainState {
        ChainState {
            params: parts.params,
            accounts: parts.accounts.into_iter().map(|a| (a.address, a)).collect(),
            databases: parts.databases.into_iter().map(|d| (d.id, d)).collect(),
            dropped: parts.dropped.into_iter().collect(),
            providers: parts
                .providers
                .into_iter()
                .map(|p| (p.address, p))
                .collect(),
            head: parts.head,
        }
    }

    /// The latest applied block, `None` before genesis.
    pub fn head(&self) -> Option<ChainHead> {
        self.head
    }

    /// The rules in force.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The account at `address`, if it has ever received anything.
    pub fn account(&self, address: &Address) -> Option<&Account> {
        self.accounts.get(address)
    }

    /// Every account in address order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// The nonce the next transaction of `address` must carry.
    pub fn next_nonce(&self, address: &Address) -> u64 {
        self.accounts.get(address).map_or(0, |a| a.next_nonce)
    }

    /// The balances of `address` (empty if unknown).
    pub fn balances(&self, address: &Address) -> Balances {
        self.accounts
            .get(address)
            .map(|a| a.balances.clone())
            .unwrap_or_default()
    }

    /// The live database `id`, `None` if it never existed or was dropped.
    pub fn database(&self, id: &DatabaseId) -> Option<&DatabaseProfile> {
        self.databases.get(id)
    }

    /// Every live database in id order.
    pub fn databases(&self) -> impl Iterator<Item = &DatabaseProfile> {
        self.databases.values()
    }

    /// Whether database `id` was dropped.
    pub fn is_dropped(&self, id: &DatabaseId) -> bool {
        self.dropped.contains(id)
    }

    /// The ids of dropped databases in id order.
    pub fn dropped_databases(&self) -> impl Iterator<Item = &DatabaseId> {
        self.dropped.iter()
    }

    /// The live databases that list `user` among their users (revoked
    /// users stay listed with role Void), in id order.
    pub fn user_databases(&self, user: &Address) -> Vec<&DatabaseProfile> {
        self.databases
            .values()
            .filter(|d| d.user(user).is_some())
            .collect()
    }

    /// The live databases assigned to `miner` (its wallet address), in id order.
    pub fn miner_databases(&self, miner: &Address) -> Vec<&DatabaseProfile> {
        self.databases
            .values()
            .filter(|d| d.miners.iter().any(|m| m.address == *miner))
            .collect()
    }

    /// The provider profile of `miner`, if it offered service.
    pub fn provider(&self, miner: &Address) -> Option<&ProviderProfile> {
        self.providers.get(miner)
    }

    /// Every provider in address order.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderProfile> {
        self.providers.values()
    }

    /// A digest of the whole state: equal states, equal digests.
    pub fn state_digest(&self) -> Result<Hash, CodecError> {
        let bytes = codec::encode(&(
            &self.head,
            &self.params,
            &self.accounts,
            &self.databases,
            &self.dropped,
            &self.providers,
        ))?;
        Ok(hash::hash(Tag::ChainState, &bytes))
    }

    /// Whether `tx` would apply to this state now.
    pub fn validate_tx(&self, tx: &Transaction) -> Result<(), TxError> {
        let id = tx.hash()?;
        plan_tx(self, tx, &id).map(|_| ())
    }

    /// Applies `tx`; on error nothing changes.
    pub fn apply_tx(&mut self, tx: &Transaction) -> Result<(), TxError> {
        let id = tx.hash()?;
        let writes = plan_tx(self, tx, &id)?;
        self.write(writes, &mut Touched::default());
        Ok(())
    }

    /// Takes planned writes, noting what they touch.
    fn write(&mut self, writes: Writes, touched: &mut Touched) {
        for (address, account) in writes.accounts {
            touched.accounts.insert(address);
            self.accounts.insert(address, account);
        }
        for (id, profile) in writes.databases {
            touched.databases.insert(id);
            match profile {
                Some(p) => {
                    self.databases.insert(id, p);
                }
                None => {
                    self.databases.remove(&id);
                    self.dropped.insert(id);
                }
            }
        }
        for (address, profile) in writes.providers {
            touched.providers.insert(address);
            self.providers.insert(address, profile);
        }
    }

    /// Checks that `block` validly extends the head and applies its
    /// transactions. A bad block is refused and nothing changes; in a good
    /// block each transaction gets a receipt, failures changing nothing.
    pub fn apply_block(
        &mut self,
        block: &Block,
        producers: &BpSet,
    ) -> Result<BlockOutcome, ChainError> {
        let ids = self.check_block(block, producers)?;
        let hash = block.hash()?;
        let mut receipts = Vec::with_capacity(ids.len());
        let mut touched = Touched::default();
        for (tx, id) in block.transactions.iter().zip(&ids) {
            match plan_tx(self, tx, id) {
                Ok(writes) => {
                    self.write(writes, &mut touched);
                    receipts.push(TxReceipt {
                        tx: *id,
                        result: TxResult::Ok,
                    });
                }
                Err(e) => receipts.push(TxReceipt::failed(*id, &e)),
            }
        }
        self.head = Some(ChainHead {
            height: block.header.height,
            hash,
            timestamp: block.header.timestamp,
        });
        let mut outcome = BlockOutcome {
            receipts,
            ..BlockOutcome::default()
        };
        outcome.changed_accounts = touched
            .accounts
            .iter()
            .filter_map(|a| self.accounts.get(a).cloned())
            .collect();
        for id in &touched.databases {
            match self.databases.get(id) {
                Some(p) => outcome.changed_databases.push(p.clone()),
                None => outcome.dropped_databases.push(*id),
            }
        }
        outcome.changed_providers = touched
            .providers
            .iter()
            .filter_map(|a| self.providers.get(a).cloned())
            .collect();
        Ok(outcome)
    }

    /// Everything about `block` except its transactions' effects; returns their ids.
    fn check_block(&self, block: &Block, producers: &BpSet) -> Result<Vec<Hash>, ChainError> {
        let head = self.head.ok_or(ChainError::NoGenesis)?;
        let h = &block.header;
        if block.transactions.len() > MAX_TXS_PER_BLOCK {
            return Err(ChainError::TooManyTransactions {
                count: block.transactions.len(),
                max: MAX_TXS_PER_BLOCK,
            });
        }
        let expected = head.height.saturating_add(1);
        if h.height != expected {
            return Err(ChainError::WrongHeight {
                expected,
                got: h.height,
            });
        }
        if h.parent != head.hash {
            return Err(ChainError::WrongParent {
                height: h.height,
                expected: head.hash,
                got: h.parent,
            });
        }
        if h.timestamp < head.timestamp {
            return Err(ChainError::TimestampRegression {
                height: h.height,
                parent: head.timestamp,
                got: h.timestamp,
            });
        }
        match producers.key(&h.producer) {
            None => {
                return Err(ChainError::UnknownProducer {
                    producer: h.producer,
                });
            }
            Some(k) if *k != block.producer_key => {
                return Err(ChainError::ProducerKeyMismatch {
                    producer: h.producer,
                });
            }
            Some(_) => {}
        }
        let ids = block.verify().map_err(|source| ChainError::InvalidBlock {
            height: h.height,
            source,
        })?;
        let mut seen = BTreeSet::new();
        for id in &ids {
            if !seen.insert(*id) {
                return Err(ChainError::DuplicateTransaction { hash: *id });
            }
        }
        Ok(ids)
    }
}

/// The key that signs a genesis block: derived from its parent digest, so
/// every node computes the same block.
fn genesis_key(digest: &Hash) -> Result<PrivateKey, ChainError> {
    // A digest outside the curve order (probability ~2^-128) is rehashed.
    let mut seed = hash::hash_parts(Tag::Genesis, &[b"producer-key", digest.as_bytes()]);
    for _ in 0..16 {
        if let Ok(k) = PrivateKey::from_bytes(seed.as_bytes()) {
            return Ok(k);
        }
        seed = hash::hash(Tag::Genesis, seed.as_bytes());
    }
    Err(ChainError::InvalidGenesis {
        reason: "cannot derive the genesis signing key".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;
    use crate::types::{DatabaseId, DropDatabase, Token, TxPayload, parse_amount};

    #[test]
    fn genesis_funds_accounts() {
        let (s, block) = ChainState::genesis(&genesis()).unwrap();
        assert_eq!(s.balances(&addr(1)).get(Token::Particle), 1000);
        assert_eq!(s.balances(&addr(1)).get(Token::Wave), 50);
        assert_eq!(s.balances(&addr(2)).get(Token::Particle), 10);
        assert_eq!(s.balances(&addr(9)), Balances::new());
        assert_eq!(s.next_nonce(&addr(1)), 0);
        assert_eq!(s.accounts().count(), 3);
        let head = s.head().unwrap();
        assert_eq!((head.height, head.timestamp), (0, 1_000));
        assert_eq!(head.hash, block.hash().unwrap());
        assert!(block.transactions.is_empty());
        // Every node computes the same genesis block, and it is self-consistent.
        let (s2, block2) = ChainState::genesis(&genesis()).unwrap();
        assert_eq!(block, block2);
        assert_eq!(s, s2);
        block.verify().unwrap();
        // The genesis hash commits to the allocation.
        let mut g = genesis();
        g.accounts[1].1.set(Token::Particle, 11);
        assert_ne!(
            ChainState::genesis(&g).unwrap().1.hash().unwrap(),
            head.hash
        );
    }

    #[test]
    fn genesis_refuses_duplicate_accounts() {
        let mut g = genesis();
        g.accounts.push((addr(1), Balances::new()));
        let err = ChainState::genesis(&g).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        assert_eq!(err.code(), ErrorCode::InvalidGenesis);
    }

    #[test]
    fn transfer_moves_balances() {
        let mut s = state();
        s.apply_tx(&transfer(1, 2, 300, 0)).unwrap();
        assert_eq!(s.balances(&addr(1)).get(Token::Particle), 700);
        assert_eq!(s.balances(&addr(2)).get(Token::Particle), 310);
        assert_eq!(s.next_nonce(&addr(1)), 1);
        assert_eq!(s.next_nonce(&addr(2)), 0);
        // A new account is created by receiving.
        s.apply_tx(&transfer_token(1, 7, Token::Wave, 50, 1))
            .unwrap();
        assert_eq!(s.balances(&addr(7)).get(Token::Wave), 50);
        assert_eq!(s.balances(&addr(1)).get(Token::Wave), 0);
        assert_eq!(s.account(&addr(7)).unwrap().next_nonce, 0);
        // Spending the whole balance is fine.
        s.apply_tx(&transfer(1, 2, 700, 2)).unwrap();
        assert_eq!(s.balances(&addr(1)), Balances::new());
    }

    #[test]
    fn transfer_to_self_only_uses_the_nonce() {
        let mut s = state();
        s.apply_tx(&transfer(1, 1, 400, 0)).unwrap();
        assert_eq!(s.balances(&addr(1)).get(Token::Particle), 1000);
        assert_eq!(s.next_nonce(&addr(1)), 1);
        // Still refused beyond the balance.
        assert_refused!(
            &mut s,
            &transfer(1, 1, 1001, 1),
            ErrorCode::InsufficientBalance,
            "has 1000, needs 1001",
        );
    }

    #[test]
    fn insufficient_balance_is_refused() {
        let mut s = state();
        let tx = transfer(2, 1, 11, 0);
        assert_refused!(
            &mut s,
            &tx,
            ErrorCode::InsufficientBalance,
            "insufficient Particle balance",
        );
        // An account that never received anything has nothing.
        assert_refused!(
            &mut s,
            &transfer(9, 1, 1, 0),
            ErrorCode::InsufficientBalance,
            "has 0, needs 1",
        );
        // A token the sender does not hold.
        assert_refused!(
            &mut s,
            &transfer_token(2, 1, Token::Bitcoin, 1, 0),
            ErrorCode::InsufficientBalance,
            "Bitcoin",
        );
    }

    #[test]
    fn reused_and_future_nonces_are_refused() {
        let mut s = state();
        s.apply_tx(&transfer(1, 2, 1, 0)).unwrap();
        assert_refused!(
            &mut s,
            &transfer(1, 2, 1, 0),
            ErrorCode::NonceReused,
            "already used",
        );
        // Replaying the very same transaction is a reused nonce too.
        let tx = transfer(1, 2, 2, 1);
        s.apply_tx(&tx).unwrap();
        assert_refused!(&mut s, &tx, ErrorCode::NonceReused, "its next nonce is 2");
        assert_refused!(
            &mut s,
            &transfer(1, 2, 1, 5),
            ErrorCode::NonceTooHigh,
            "ahead of its next nonce 2",
        );
    }

    #[test]
    fn forged_and_foreign_signatures_are_refused() {
        let mut s = state();
        // Signed by Alice, then the amount changed.
        let mut forged = transfer(1, 2, 1, 0);
        forged.body.payload = TxPayload::Transfer {
            to: addr(2),
            token: Token::Particle,
            amount: 999,
        };
        assert_refused!(&mut s, &forged, ErrorCode::BadSignature, "signature");
        // Mallory (key 4) signs a transfer out of Alice's account.
        let mut body = transfer(1, 4, 500, 0).body;
        body.sender = addr(1);
        let foreign = Transaction::sign(body, &key(4)).unwrap();
        assert_refused!(
            &mut s,
            &foreign,
            ErrorCode::WrongSigner,
            "signed by someone else",
        );
        // Mallory's signature with Alice's key attached does not verify.
        let mut swapped = foreign.clone();
        swapped.public_key = key(1).public_key();
        assert_refused!(&mut s, &swapped, ErrorCode::BadSignature, "signature");
    }

    #[test]
    fn zero_overflow_and_unknown_database_are_refused() {
        let mut s = state();
        assert_refused!(
            &mut s,
            &transfer(1, 2, 0, 0),
            ErrorCode::InvalidAmount,
            "greater than zero",
        );
        // Carol holds u64::MAX Wave; one more overflows.
        assert_refused!(
            &mut s,
            &transfer_token(1, 3, Token::Wave, 1, 0),
            ErrorCode::BalanceOverflow,
            "would overflow",
        );
        let drop = signed(
            1,
            0,
            TxPayload::DropDatabase(DropDatabase {
                database: DatabaseId::derive(&addr(1), 0),
            }),
        );
        assert_refused!(&mut s, &drop, ErrorCode::UnknownDatabase, "does not exist");
        // A failed transaction does not use the nonce: 0 is still next.
        s.apply_tx(&transfer(1, 2, 1, 0)).unwrap();
    }

    #[test]
    fn user_input_is_refused_before_a_transaction_exists() {
        // The CLI parses token and amount first; these never reach a transaction.
        assert_eq!(
            "Dogecoin".parse::<Token>().unwrap_err().code(),
            ErrorCode::UnknownToken
        );
        for bad in ["-5", "abc", "0", "1.5"] {
            assert_eq!(
                parse_amount(bad).unwrap_err().code(),
                ErrorCode::InvalidAmount,
                "{bad}"
            );
        }
    }

    #[test]
    fn block_applies_with_receipts_and_failures_recorded() {
        let mut s = state();
        let txs = vec![
            transfer(1, 2, 100, 0),
            transfer(2, 1, 1_000_000, 0), // insufficient: recorded as failed
            transfer(2, 1, 5, 0),         // same nonce, now applies
        ];
        let block = block_on(&s, txs.clone());
        let out = s.apply_block(&block, &bps()).unwrap();
        assert_eq!(out.receipts.len(), 3);
        assert!(out.receipts[0].is_ok());
        match &out.receipts[1].result {
            TxResult::Failed { code, reason } => {
                assert_eq!(*code, ErrorCode::InsufficientBalance.as_u32());
                assert!(reason.contains("has 110, needs 1000000"), "{reason}");
            }
            TxResult::Ok => panic!("should fail"),
        }
        assert!(out.receipts[2].is_ok());
        assert_eq!(out.receipts[1].tx, txs[1].hash().unwrap());
        assert_eq!(s.balances(&addr(1)).get(Token::Particle), 905);
        assert_eq!(s.balances(&addr(2)).get(Token::Particle), 105);
        assert_eq!(
            out.changed_accounts
                .iter()
                .map(|a| a.address)
                .collect::<BTreeSet<_>>(),
            [addr(1), addr(2)].into_iter().collect()
        );
        let head = s.head().unwrap();
        assert_eq!(head.height, 1);
        assert_eq!(head.hash, block.hash().unwrap());
    }

    #[test]
    fn apply_block_is_deterministic() {
        let mut a = state();
        let mut b = state();
        let mut blocks = Vec::new();
        let mut builder = state();
        for round in 0..4u64 {
            let txs = vec![
                transfer(1, 2, 10 + round, round),
                transfer(2, 5, 3, round),
                transfer_token(1, 6, Token::Wave, 1, round + 100), // future nonce: fails
            ];
            let block = block_on(&builder, txs);
            builder.apply_block(&block, &bps()).unwrap();
            blocks.push(block);
        }
        let mut receipts_a = Vec::new();
        for block in &blocks {
            receipts_a.push(a.apply_block(block, &bps()).unwrap());
        }
        for (block, expected) in blocks.iter().zip(&receipts_a) {
            assert_eq!(&b.apply_block(block, &bps()).unwrap(), expected);
        }
        assert_eq!(a.state_digest().unwrap(), b.state_digest().unwrap());
        assert_eq!(a.state_digest().unwrap(), builder.state_digest().unwrap());
        assert_ne!(a.state_digest().unwrap(), state().state_digest().unwrap());
        assert_eq!(a, b);
    }

    /// A busy history: providers, creations, grants, payments, billing, a drop.
    fn database_blocks() -> Vec<Block> {
        use crate::types::{
            BillingEntry, DatabaseId, DropDatabase, Permission, UpdateBilling, UpdatePermission,
        };
        let a_db = DatabaseId::derive(&addr(USER_A), 0);
        let b_db = DatabaseId::derive(&addr(USER_B), 0);
        let rounds = vec![
            vec![
                signed(MINER_1, 0, TxPayload::ProvideService(offer(MINER_1, 100))),
                signed(MINER_2, 0, TxPayload::ProvideService(offer(MINER_2, 150))),
                signed(MINER_3, 0, TxPayload::ProvideService(offer(MINER_3, 200))),
            ],
            vec![
                signed(
                    USER_A,
                    0,
                    TxPayload::CreateDatabase(create_db(2, &[MINER_3])),
                ),
                signed(USER_B, 0, TxPayload::CreateDatabase(create_db(1, &[]))),
                // Too many nodes: recorded as failed.
                signed(USER_C, 0, TxPayload::CreateDatabase(create_db(4, &[]))),
                signed(
                    USER_A,
                    1,
                    TxPayload::UpdatePermission(UpdatePermission {
                        database: a_db,
                        user: addr(USER_C),
                        permission: "Read,Write".parse::<Permission>().unwrap(),
                    }),
                ),
            ],
            vec![
                signed(
                    MINER_3,
                    1,
                    TxPayload::UpdateBilling(UpdateBilling {
                        database: a_db,
                        period: 1,
                        users: vec![
                            BillingEntry {
                                user: addr(USER_A),
                                rows_read: 7,
                                rows_affected: 2,
                            },
                            BillingEntry {
                                user: addr(USER_C),
                                rows_read: 1,
                                rows_affected: 0,
                            },
                        ],
                    }),
                ),
                signed(
                    USER_C,
                    0,
                    TxPayload::Transfer {
                        to: a_db.account_address(),
                        token: Token::Particle,
                        amount: 25,
                    },
                ),
                signed(MINER_1, 1, TxPayload::ProvideService(offer(MINER_1, 400))),
                signed(
                    USER_B,
                    1,
                    TxPayload::DropDatabase(DropDatabase { database: b_db }),
                ),
            ],
        ];
        let mut builder = db_state();
        rounds
            .into_iter()
            .map(|txs| {
                let block = block_on(&builder, txs);
                builder.apply_block(&block, &bps()).unwrap();
                block
            })
            .collect()
    }

    #[test]
    fn replicas_applying_the_same_database_blocks_agree() {
        let blocks = database_blocks();
        let mut a = db_state();
        let mut b = db_state();
        let mut outcomes = Vec::new();
        for block in &blocks {
            outcomes.push(a.apply_block(block, &bps()).unwrap());
        }
        for (block, expected) in blocks.iter().zip(&outcomes) {
            assert_eq!(&b.apply_block(block, &bps()).unwrap(), expected);
        }
        assert_eq!(a, b);
        assert_eq!(a.state_digest().unwrap(), b.state_digest().unwrap());
        // The history did what it says.
        let failed: Vec<_> = outcomes
            .iter()
            .flat_map(|o| &o.receipts)
            .filter(|r| !r.is_ok())
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            matches!(&failed[0].result, TxResult::Failed { reason, .. } if reason.contains("need 4, found 3"))
        );
        assert_eq!(a.databases().count(), 1);
        assert_eq!(a.dropped_databases().count(), 1);
        assert_eq!(a.providers().count(), 3);
        assert_eq!(outcomes[2].dropped_databases.len(), 1);
        assert_eq!(outcomes[0].changed_providers.len(), 3);
        // Each part of the state moves the digest.
        let digest = a.state_digest().unwrap();
        let mut c = a.clone();
        c.providers.clear();
        assert_ne!(c.state_digest().unwrap(), digest);
        let mut c = a.clone();
        c.dropped.clear();
        assert_ne!(c.state_digest().unwrap(), digest);
        let mut c = a.clone();
        c.databases
            .values_mut()
            .for_each(|d| d.last_billed_period += 1);
        assert_ne!(c.state_digest().unwrap(), digest);
        let mut c = a.clone();
        c.params.min_gas_price += 1;
        assert_ne!(c.state_digest().unwrap(), digest);
    }

    #[test]
    fn the_genesis_commits_to_the_parameters() {
        let g = db_genesis();
        let (s, block) = ChainState::genesis(&g).unwrap();
        assert_eq!(s.params().min_provider_deposit, 100);
        let other = g.clone().with_params(ChainParams::new(101));
        assert_ne!(
            ChainState::genesis(&other).unwrap().1.hash().unwrap(),
            block.hash().unwrap()
        );
        // The default genesis has the default parameters.
        assert_eq!(*state().params(), ChainParams::default());
    }

    #[test]
    fn a_database_created_and_dropped_in_one_block_is_only_dropped() {
        use crate::types::{DatabaseId, DropDatabase};
        let mut s = db_state();
        provide(&mut s, MINER_1, offer(MINER_1, 100));
        let id = DatabaseId::derive(&addr(USER_A), 0);
        let block = block_on(
            &s,
            vec![
                signed(USER_A, 0, TxPayload::CreateDatabase(create_db(1, &[]))),
                signed(
                    USER_A,
                    1,
                    TxPayload::DropDatabase(DropDatabase { database: id }),
                ),
            ],
        );
        let out = s.apply_block(&block, &bps()).unwrap();
        assert!(out.receipts.iter().all(|r| r.is_ok()));
        assert!(out.changed_databases.is_empty());
        assert_eq!(out.dropped_databases, vec![id]);
        assert_eq!(s.balances(&addr(USER_A)).get(Token::Particle), 10_000);
    }

    fn assert_block_refused(
        s: &mut ChainState,
        block: &Block,
        bps: &BpSet,
        code: ErrorCode,
        needle: &str,
    ) {
        let before = s.clone();
        let err = s.apply_block(block, bps).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(
            err.to_string().contains(needle),
            "expected {needle:?} in {err}"
        );
        assert_eq!(*s, before);
    }

    #[test]
    fn tampered_blocks_are_refused_and_change_nothing() {
        let mut s = state();
        let good = block_on(&s, vec![transfer(1, 2, 1, 0), transfer(1, 2, 2, 1)]);

        let mut changed_tx = good.clone();
        changed_tx.transactions[1] = transfer(1, 2, 900, 1);
        assert_block_refused(
            &mut s,
            &changed_tx,
            &bps(),
            ErrorCode::InvalidBlock,
            "merkle root",
        );

        let mut wrong_parent = good.clone();
        wrong_parent.header.parent = Hash::ZERO;
        let wrong_parent =
            Block::sign(wrong_parent.header, wrong_parent.transactions, &bp_key()).unwrap();
        assert_block_refused(
            &mut s,
            &wrong_parent,
            &bps(),
            ErrorCode::InvalidBlock,
            "names parent",
        );

        let mut wrong_height = good.clone();
        wrong_height.header.height = 2;
        let wrong_height =
            Block::sign(wrong_height.header, wrong_height.transactions, &bp_key()).unwrap();
        assert_block_refused(
            &mut s,
            &wrong_height,
            &bps(),
            ErrorCode::InvalidBlock,
            "expected height 1",
        );

        let mut bad_sig = good.clone();
        bad_sig.header.timestamp += 1;
        assert_block_refused(
            &mut s,
            &bad_sig,
            &bps(),
            ErrorCode::BadSignature,
            "block signature is invalid",
        );

        let mut older = good.clone();
        older.header.timestamp = 0;
        let older = Block::sign(older.header, older.transactions, &bp_key()).unwrap();
        assert_block_refused(
            &mut s,
            &older,
            &bps(),
            ErrorCode::InvalidBlock,
            "before its parent",
        );

        // Signed by someone who is not a producer, claiming a producer's id.
        let impostor =
            Block::sign(good.header.clone(), good.transactions.clone(), &key(66)).unwrap();
        assert_block_refused(
            &mut s,
            &impostor,
            &bps(),
            ErrorCode::UnknownProducer,
            "not its configured key",
        );

        // A producer outside the set.
        let outsider = BpSet::new([(
            NodeId(hash::hash(Tag::Message, b"other")),
            key(66).public_key(),
        )]);
        assert_block_refused(
            &mut s,
            &good,
            &outsider,
            ErrorCode::UnknownProducer,
            "not one of the configured",
        );

        let twice = block_on(&s, vec![transfer(1, 2, 1, 0), transfer(1, 2, 1, 0)]);
        assert_block_refused(
            &mut s,
            &twice,
            &bps(),
            ErrorCode::InvalidBlock,
            "more than once",
        );

        let many = block_on(&s, vec![transfer(1, 2, 1, 0); MAX_TXS_PER_BLOCK + 1]);
        assert_block_refused(
            &mut s,
            &many,
            &bps(),
            ErrorCode::InvalidBlock,
            "more than the limit",
        );

        // Before genesis nothing applies.
        let mut empty = ChainState::default();
        assert_block_refused(
            &mut empty,
            &good,
            &bps(),
            ErrorCode::InvalidGenesis,
            "no genesis",
        );

        // The untampered block still applies.
        s.apply_block(&good, &bps()).unwrap();
        // And cannot be applied twice.
        assert_block_refused(
            &mut s,
            &good,
            &bps(),
            ErrorCode::InvalidBlock,
            "expected height 2",
        );
    }

    #[test]
    fn producer_set_checks_node_ids() {
        let pk = key(100).public_key();
        let nonce = Nonce::default();
        let set = BpSet::from_identities(&[(pk, nonce)], 0).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains(&NodeId::compute(&pk, &nonce)));
        // Difficulty 0 ids almost never reach 40 bits.
        assert!(BpSet::from_identities(&[(pk, nonce)], 40).is_err());
    }
}
