//! The block producer leader's pool of transactions waiting for a block.
//!
//! Pure and single-threaded: the caller passes the current state and `now`
//! (milliseconds) in. Admission checks what can be checked without knowing
//! future blocks: the signature and signer, that the nonce is not used yet
//! nor too far ahead, that no other pending transaction has the same sender
//! and nonce, and the payload's shape (a positive transfer amount, a
//! database of at least one node, lists within their limits). Balances and
//! database effects are checked when a block is produced, because earlier
//! pending transactions may change them.
//!
//! Lifecycle: `insert` (Pending) → `mark_packed` when proposed in a block
//! (Packed; packed transactions do not expire) → `remove_committed` once
//! the block is committed (then the chain's index answers Confirmed). `prune`
//! drops transactions whose nonce the chain has used and expires those older
//! than the time to live (Expired, remembered for a bounded while).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::apply::check_payload;
use super::error::TxError;
use super::state::ChainState;
use crate::crypto::Address;
use crate::hash::Hash;
use crate::types::{Transaction, TxState};

/// Pool limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most transactions held at once.
    pub capacity: usize,
    /// How long a transaction may wait for a block, in milliseconds.
    pub ttl_ms: u64,
    /// How far past the sender's next nonce a transaction may be.
    pub max_nonce_gap: u64,
    /// How many expired ids are remembered for [`TxPool::state`].
    pub expired_memory: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            capacity: 100_000,
            ttl_ms: 10 * 60 * 1000,
            max_nonce_gap: 64,
            expired_memory: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    tx: Transaction,
    received_at: u64,
    packed: bool,
}

/// Pending transactions, per sender in nonce order, deduplicated by id.
#[derive(Debug, Clone, Default)]
pub struct TxPool {
    config: PoolConfig,
    entries: HashMap<Hash, Entry>,
    by_sender: BTreeMap<Address, BTreeMap<u64, Hash>>,
    expired_order: VecDeque<Hash>,
    expired: HashSet<Hash>,
}

impl TxPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> TxPool {
        TxPool {
            config,
            ..TxPool::default()
        }
    }

    /// The next nonce `sender` should use: the chain's next nonce advanced
    /// past the sender's consecutive transactions already waiting here.
    pub fn next_nonce(&self, sender: &Address, chain_next: u64) -> u64 {
        let mut next = chain_next;
        if let Some(waiting) = self.by_sender.get(sender) {
            while waiting.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transaction is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Admits `tx` received at `now`; returns its id.
    pub fn insert(
        &mut self,
        tx: Transaction,
        state: &ChainState,
        now: u64,
    ) -> Result<Hash, TxError> {
        let id = tx.hash()?;
        if self.entries.contains_key(&id) {
            return Err(TxError::Duplicate { hash: id });
        }
        tx.verify_with_hash(&id)?;
        let sender = tx.body.sender;
        let nonce = tx.body.nonce;
        let next = state.next_nonce(&sender);
        if nonce < next {
            return Err(TxError::NonceReused {
                sender,
                nonce,
                next,
            });
        }
        if nonce - next > self.config.max_nonce_gap {
            return Err(TxError::NonceTooHigh {
                sender,
                nonce,
                next,
            });
        }
        check_payload(&tx.body.payload)?;
        if self
            .by_sender
            .get(&sender)
            .is_some_and(|n| n.contains_key(&nonce))
        {
            return Err(TxError::NoncePending { sender, nonce });
        }
        if self.entries.len() >= self.config.capacity {
            return Err(TxError::PoolFull {
                capacity: self.config.capacity,
            });
        }
        self.by_sender.entry(sender).or_default().insert(nonce, id);
        self.entries.insert(
            id,
            Entry {
                tx,
                received_at: now,
                packed: false,
            },
        );
        if self.expired.remove(&id) {
            self.expired_order.retain(|h| *h != id);
        }
        Ok(id)
    }

    /// The transaction with id `id`, if held.
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        self.entries.get(id).map(|e| &e.tx)
    }

    /// Transactions not yet packed, by sender then nonce: the input of `produce_block`.
    pub fn candidates(&self) -> Vec<Transaction> {
        self.by_sender
            .values()
            .flat_map(|n| n.values())
            .filter_map(|id| self.entries.get(id))
            .filter(|e| !e.packed)
            .map(|e| e.tx.clone())
            .collect()
    }

    /// Marks transactions as proposed in a block.
    pub fn mark_packed(&mut self, ids: &[Hash]) {
        for id in ids {
            if let Some(e) = self.entries.get_mut(id) {
                e.packed = true;
            }
        }
    }

    /// Returns packed transactions to pending (their block was not committed).
    pub fn unmark_packed(&mut self, ids: &[Hash]) {
        for id in ids {
            if let Some(e) = self.entries.get_mut(id) {
                e.packed = false;
            }
        }
    }

    /// Forgets transactions that a committed block carried.
    pub fn remove_committed(&mut self, ids: &[Hash]) {
        for id in ids {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: &Hash) -> Option<Entry> {
        let e = self.entries.remove(id)?;
        let sender = e.tx.body.sender;
        if let Some(n) = self.by_sender.get_mut(&sender) {
            if n.get(&e.tx.body.nonce) == Some(id) {
                n.remove(&e.tx.body.nonce);
            }
            if n.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
        Some(e)
    }

    /// Drops transactions whose nonce `state` has used, and expires unpacked
    /// ones older than the time to live. Returns the ids that expired.
    pub fn prune(&mut self, state: &ChainState, now: u64) -> Vec<Hash> {
        let mut stale = Vec::new();
        let mut expired = Vec::new();
        for (sender, nonces) in &self.by_sender {
            let next = state.next_nonce(sender);
            for (nonce, id) in nonces {
                let Some(e) = self.entries.get(id) else {
                    continue;
                };
                if *nonce < next {
                    stale.push(*id);
                } else if !e.packed && now.saturating_sub(e.received_at) > self.config.ttl_ms {
                    expired.push(*id);
                }
            }
        }
        for id in &stale {
            self.remove(id);
        }
        for id in &expired {
            self.remove(id);
            self.remember_expired(*id);
        }
        expired
    }

    fn remember_expired(&mut self, id: Hash) {
        if self.config.expired_memory == 0 {
            return;
        }
        if self.expired.insert(id) {
            self.expired_order.push_back(id);
        }
        while self.expired_order.len() > self.config.expired_memory {
            if let Some(old) = self.expired_order.pop_front() {
                self.expired.remove(&old);
            }
        }
    }

    /// What the pool knows of `id`: Pending, Packed, Expired or NotFound
    /// (the chain's index answers Confirmed).
    pub fn state(&self, id: &Hash) -> TxState {
        match self.entries.get(id) {
            Some(e) if e.packed => TxState::Packed,
            Some(_) => TxState::Pending,
            None if self.expired.contains(id) => TxState::Expired,
            None => TxState::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::produce_block;
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;

    fn pool(capacity: usize, ttl_ms: u64) -> TxPool {
        TxPool::new(PoolConfig {
            capacity,
            ttl_ms,
            max_nonce_gap: 4,
            expired_memory: 2,
        })
    }

    #[test]
    fn admission_checks() {
        let s = state();
        let mut p = pool(10, 1_000);
        let tx = transfer(1, 2, 1, 0);
        let id = p.insert(tx.clone(), &s, 0).unwrap();
        assert_eq!(id, tx.hash().unwrap());
        assert_eq!(p.state(&id), TxState::Pending);
        assert_eq!(p.get(&id), Some(&tx));

        let dup = p.insert(tx.clone(), &s, 0).unwrap_err();
        assert_eq!(dup.code(), ErrorCode::DuplicateTransaction);
        let same_nonce = p.insert(transfer(1, 2, 2, 0), &s, 0).unwrap_err();
        assert_eq!(same_nonce.code(), ErrorCode::NonceReused);
        assert!(
            same_nonce.to_string().contains("already pending"),
            "{same_nonce}"
        );
        let far = p.insert(transfer(1, 2, 1, 5), &s, 0).unwrap_err();
        assert_eq!(far.code(), ErrorCode::NonceTooHigh);
        p.insert(transfer(1, 2, 1, 4), &s, 0).unwrap();
        let zero = p.insert(transfer(1, 2, 0, 1), &s, 0).unwrap_err();
        assert_eq!(zero.code(), ErrorCode::InvalidAmount);

        let mut forged = transfer(2, 1, 1, 0);
        forged.body.timestamp += 1;
        assert_eq!(
            p.insert(forged, &s, 0).unwrap_err().code(),
            ErrorCode::BadSignature
        );
        let mut body = transfer(1, 4, 1, 1).body;
        body.sender = addr(1);
        let foreign = Transaction::sign(body, &key(4)).unwrap();
        assert_eq!(
            p.insert(foreign, &s, 0).unwrap_err().code(),
            ErrorCode::WrongSigner
        );

        let mut used = state();
        used.apply_tx(&transfer(2, 1, 1, 0)).unwrap();
        let stale = p.insert(transfer(2, 1, 1, 0), &used, 0).unwrap_err();
        assert_eq!(stale.code(), ErrorCode::NonceReused);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn capacity_is_enforced() {
        let s = state();
        let mut p = pool(2, 1_000);
        p.insert(transfer(1, 2, 1, 0), &s, 0).unwrap();
        p.insert(transfer(1, 2, 1, 1), &s, 0).unwrap();
        let err = p.insert(transfer(1, 2, 1, 2), &s, 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TxPoolFull);
        assert!(err.retryable());
    }

    #[test]
    fn lifecycle_pending_packed_committed() {
        let mut s = state();
        let mut p = pool(10, 1_000);
        let a = p.insert(transfer(1, 2, 1, 0), &s, 0).unwrap();
        let b = p.insert(transfer(1, 2, 1, 1), &s, 0).unwrap();
        let gap = p.insert(transfer(2, 1, 1, 3), &s, 0).unwrap();
        let block = produce_block(&s, &p.candidates(), 2_000, &bp_key(), bp_id()).unwrap();
        let ids: Vec<Hash> = block
            .transactions
            .iter()
            .map(|t| t.hash().unwrap())
            .collect();
        assert_eq!(ids, vec![a, b]);
        p.mark_packed(&ids);
        assert_eq!(p.state(&a), TxState::Packed);
        assert_eq!(p.candidates().len(), 1);
        // Packed transactions do not expire; unpacked ones do.
        assert_eq!(p.prune(&s, 10_000), vec![gap]);
        assert_eq!(p.state(&gap), TxState::Expired);
        assert_eq!(p.state(&a), TxState::Packed);
        p.unmark_packed(&ids);
        assert_eq!(p.state(&a), TxState::Pending);
        s.apply_block(&block, &bps()).unwrap();
        p.remove_committed(&ids);
        assert_eq!(p.state(&a), TxState::NotFound);
        assert!(p.is_empty());
    }

    #[test]
    fn prune_drops_used_nonces_and_expires_old() {
        let mut s = state();
        let mut p = pool(10, 1_000);
        let used = p.insert(transfer(1, 2, 1, 0), &s, 0).unwrap();
        let young = p.insert(transfer(2, 1, 1, 0), &s, 900).unwrap();
        let old = p.insert(transfer(1, 2, 1, 1), &s, 0).unwrap();
        // Another node's block used Alice's nonce 0.
        s.apply_tx(&transfer(1, 2, 7, 0)).unwrap();
        let expired = p.prune(&s, 1_500);
        assert_eq!(expired, vec![old]);
        assert_eq!(p.state(&used), TxState::NotFound);
        assert_eq!(p.state(&young), TxState::Pending);
        assert_eq!(p.state(&old), TxState::Expired);
        // Re-submitting an expired transaction makes it pending again.
        p.insert(transfer(1, 2, 1, 1), &s, 2_000).unwrap();
        assert_eq!(p.state(&old), TxState::Pending);
        // The memory of expired ids is bounded (2 here).
        let mut p = pool(10, 0);
        let ids: Vec<Hash> = (0..3)
            .map(|n| p.insert(transfer(1, 2, 1, n + 1), &s, 0).unwrap())
            .collect();
        assert_eq!(p.prune(&s, 1).len(), 3);
        let remembered = ids
            .iter()
            .filter(|id| p.state(id) == TxState::Expired)
            .count();
        assert_eq!(remembered, 2);
    }
}
