//! The block producers' client-facing main-chain service: nonces,
//! transaction submission and state, accounts, blocks, the head, database
//! profiles (by id, by user, by miner) and provider profiles.
//!
//! Any block producer answers reads from its own applied state; submissions
//! and nonce queries are forwarded to the Raft leader, which owns the pool.

use serde::{Deserialize, Serialize};

use crate::chain::{ChainHead, TxResult};
use crate::crypto::{Address, NodeId};
use crate::hash::Hash;
use crate::net::Method;
use crate::types::{
    Account, Block, DatabaseId, DatabaseProfile, ProviderProfile, Transaction, TxState,
};

/// The next nonce `address` should sign with, counting its transactions
/// still waiting in the leader's pool.
pub struct NextNonce;
impl Method for NextNonce {
    const NAME: &'static str = "chain.next_nonce";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = u64;
}

/// Submits a signed transaction; answers its id once the leader's pool has
/// admitted it (or refuses it with the reason).
pub struct SubmitTx;
impl Method for SubmitTx {
    const NAME: &'static str = "chain.submit_tx";
    type Request = Transaction;
    type Response = Hash;
}

/// Where a transaction is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatus {
    /// Pending, Packed, Confirmed, Expired or NotFound.
    pub state: TxState,
    /// The block height, once confirmed.
    pub height: Option<u64>,
    /// How it ended, once confirmed: a confirmed transaction may still have failed.
    pub result: Option<TxResult>,
}

/// The state of a transaction by id.
pub struct GetTxState;
impl Method for GetTxState {
    const NAME: &'static str = "chain.tx_state";
    const IDEMPOTENT: bool = true;
    type Request = Hash;
    type Response = TxStatus;
}

/// An account's balances and next nonce (an empty account if it never received anything).
pub struct GetAccount;
impl Method for GetAccount {
    const NAME: &'static str = "chain.account";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = Account;
}

/// A block by height, `None` past the head.
pub struct GetBlock;
impl Method for GetBlock {
    const NAME: &'static str = "chain.block";
    const IDEMPOTENT: bool = true;
    type Request = u64;
    type Response = Option<Block>;
}

/// What a block producer knows of the chain and its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// The last applied block.
    pub head: ChainHead,
    /// The current Raft leader, if one is known.
    pub leader: Option<NodeId>,
    /// The answering producer.
    pub producer: NodeId,
    /// Transactions in the leader's pool (this node's view when it leads).
    pub pool_len: u64,
}

/// The head of the chain and the group's leader.
pub struct GetHead;
impl Method for GetHead {
    const NAME: &'static str = "chain.head";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = ChainInfo;
}

/// A live database's profile by id, `None` if it never existed or was dropped.
pub struct GetDatabase;
impl Method for GetDatabase {
    const NAME: &'static str = "chain.database";
    const IDEMPOTENT: bool = true;
    type Request = DatabaseId;
    type Response = Option<DatabaseProfile>;
}

/// The live databases that list a user (wallet address) among their users,
/// in id order (a revoked user stays listed with role Void).
pub struct UserDatabases;
impl Method for UserDatabases {
    const NAME: &'static str = "chain.user_databases";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = Vec<DatabaseProfile>;
}

/// The live databases assigned to a miner (its wallet address), in id order:
/// what the miner must serve. A database missing from the answer was
/// dropped (or never assigned): its miners stop serving it and delete it.
pub struct MinerDatabases;
impl Method for MinerDatabases {
    const NAME: &'static str = "chain.miner_databases";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = Vec<DatabaseProfile>;
}

/// A miner's standing offer (from its latest `ProvideService`), by wallet address.
pub struct GetProvider;
impl Method for GetProvider {
    const NAME: &'static str = "chain.provider";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = Option<ProviderProfile>;
}
