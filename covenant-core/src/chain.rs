//! The main chain's state machine and its SQLite persistence (DESIGN §4).
//!
//! - [`state`]: [`ChainState`] (rules, accounts, databases, providers and
//!   head), genesis, the block producer set, and the pure transitions
//!   `validate_tx` / `apply_tx` / `apply_block`. A block that is itself
//!   invalid (height, parent, producer, signature, merkle root) is refused
//!   with a [`ChainError`] and changes nothing; inside a valid block every
//!   transaction yields a [`TxReceipt`], and a transaction that fails changes
//!   nothing (not even the nonce) but is recorded with its reason,
//!   identically on every replica.
//! - `apply`: each payload's effect — transfers, `ProvideService`,
//!   `CreateDatabase` (miner matching), `DropDatabase`, `UpdatePermission`,
//!   `UpdateBilling` and payments into a database — planned as writes over a
//!   read-only view (`view`), so a transaction is all-or-nothing.
//! - [`params`]: [`ChainParams`] (`MinProviderDeposit`, gas price floor),
//!   given with the [`Genesis`] and committed in its hash, and the payload limits.
//! - [`produce`]: the pure block producer: picks pool transactions in sender
//!   nonce order and seals a block.
//! - [`pool`]: the leader's transaction pool (dedupe, per-sender nonce order,
//!   capacity, time to live given `now` as an input).
//! - [`store`]: blocks, accounts, databases, providers, the transaction index
//!   and the head in SQLite; one SQLite transaction per committed block.
//!
//! Everything but `store` is pure: no tokio, sockets, wall clock or
//! randomness; time comes in as arguments, and the rules come in as
//! [`ChainParams`], never read from configuration here. Transitions take
//! `&mut ChainState` but are all-or-nothing (an `Err` leaves the state
//! untouched), which is STYLE rule 2's `(state, input) -> (state', effects)`
//! without cloning every account per block; the effects are the returned
//! [`BlockOutcome`]. Nothing here imports openraft, the network or `config`;
//! `consensus` adapts this module to Raft.

mod apply;
pub mod error;
pub mod params;
pub mod pool;
pub mod produce;
pub mod state;
pub mod store;
#[cfg(test)]
mod testkit;
mod view;

pub use error::{ChainError, TxError};
pub use params::{
    ChainParams, MAX_PATTERN_BYTES_PER_USER, MAX_PATTERNS_PER_USER, MAX_TARGET_MINERS,
    MAX_TARGET_USERS, MAX_USERS_PER_DATABASE,
};
pub use pool::{PoolConfig, TxPool};
pub use produce::produce_block;
pub use state::{
    BlockOutcome, BpSet, ChainHead, ChainState, Genesis, MAX_TXS_PER_BLOCK, StateParts, TxReceipt,
    TxResult,
};
pub use store::{ChainStore, StoreError, TxLocation};
