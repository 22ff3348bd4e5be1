//! Why a transaction or a block was refused.
//!
//! [`TxError`] messages become the `reason` of failed receipts, so they must
//! be deterministic (no addresses of memory, no timings) and clear to a user.

use crate::codec::CodecError;
use crate::crypto::{Address, NodeId};
use crate::error::ErrorCode;
use crate::hash::Hash;
use crate::types::{DatabaseId, Token, TypesError};

/// Why a transaction does not apply (or is not admitted to the pool).
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The signature or signer check failed, or the transaction cannot be encoded.
    #[error(transparent)]
    Verify(#[from] TypesError),
    /// The nonce was already consumed by an earlier transaction of the sender.
    #[error("nonce {nonce} of account {sender} was already used; its next nonce is {next}")]
    NonceReused {
        /// The sending account.
        sender: Address,
        /// The transaction's nonce.
        nonce: u64,
        /// The account's next nonce.
        next: u64,
    },
    /// The nonce is ahead of the sender's next nonce: earlier ones are missing.
    #[error(
        "nonce {nonce} of account {sender} is ahead of its next nonce {next}; \
         transactions with the nonces in between must come first"
    )]
    NonceTooHigh {
        /// The sending account.
        sender: Address,
        /// The transaction's nonce.
        nonce: u64,
        /// The account's next nonce.
        next: u64,
    },
    /// Another transaction with the same sender and nonce is already pending.
    #[error("a transaction with nonce {nonce} from account {sender} is already pending")]
    NoncePending {
        /// The sending account.
        sender: Address,
        /// The contested nonce.
        nonce: u64,
    },
    /// A transfer of zero.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// The sender does not hold enough of the token.
    #[error("insufficient {token} balance: account {sender} has {balance}, needs {needed}")]
    InsufficientBalance {
        /// The sending account.
        sender: Address,
        /// Which token.
        token: Token,
        /// What it holds.
        balance: u64,
        /// What the transaction needs.
        needed: u64,
    },
    /// Crediting the receiver would overflow its balance.
    #[error("the {token} balance of account {account} would overflow")]
    BalanceOverflow {
        /// The receiving account.
        account: Address,
        /// Which token.
        token: Token,
    },
    /// The sender's nonce counter is exhausted.
    #[error("account {sender} has used every nonce")]
    NonceOverflow {
        /// The sending account.
        sender: Address,
    },
    /// A payload that is malformed whatever the state (empty, too long, duplicated).
    #[error("invalid transaction: {reason}")]
    InvalidPayload {
        /// What is wrong with it.
        reason: String,
    },
    /// The database was never created.
    #[error("database {database} does not exist")]
    UnknownDatabase {
        /// The database named.
        database: DatabaseId,
    },
    /// The database was dropped.
    #[error("database {database} was dropped")]
    DatabaseDropped {
        /// The database named.
        database: DatabaseId,
    },
    /// A database with the derived id exists or existed.
    #[error("database {database} already exists or existed; its id cannot be reused")]
    DatabaseExists {
        /// The derived id.
        database: DatabaseId,
    },
    /// Too few providers match a `CreateDatabase`.
    #[error("not enough miners: need {need}, found {found} ({detail})")]
    NotEnoughMiners {
        /// The node count asked for.
        need: u16,
        /// How many matched.
        found: usize,
        /// Why the others were not matched.
        detail: String,
    },
    /// The sender is not a Super user of the database.
    #[error("only a Super user of database {database} may {action}; account {account} is not one")]
    NotSuperUser {
        /// The database.
        database: DatabaseId,
        /// The sender.
        account: Address,
        /// What it tried ("drop it", "change permissions").
        action: &'static str,
    },
    /// The change would remove the database's last Super user.
    #[error(
        "account {account} is the last Super user of database {database}; removing its Super \
         role would leave the database without a Super user (grant Super to another user first)"
    )]
    LastSuperUser {
        /// The database.
        database: DatabaseId,
        /// The last Super user.
        account: Address,
    },
    /// A `ProvideService` deposit below `MinProviderDeposit`.
    #[error(
        "deposit {deposit} is below the minimum provider deposit (MinProviderDeposit) of {min}"
    )]
    DepositTooLow {
        /// The deposit offered.
        deposit: u64,
        /// The chain's minimum.
        min: u64,
    },
    /// The sender of an `UpdateBilling` is not one of the database's miners.
    #[error(
        "account {account} is not a miner of database {database}; only its miners may bill its users"
    )]
    NotDatabaseMiner {
        /// The database.
        database: DatabaseId,
        /// The sender.
        account: Address,
    },
    /// A billing period that is not after the last one billed.
    #[error(
        "billing period {period} of database {database} is not after the last billed period {last}"
    )]
    StaleBillingPeriod {
        /// The database.
        database: DatabaseId,
        /// The period sent.
        period: u64,
        /// The last period billed.
        last: u64,
    },
    /// The account is not a user of the database.
    #[error("account {account} is not a user of database {database}; {context}")]
    NotDatabaseUser {
        /// The database.
        database: DatabaseId,
        /// The account.
        account: Address,
        /// What that means here.
        context: &'static str,
    },
    /// A payment in another token than the database's.
    #[error("database {database} is paid in {expected}, not {got}")]
    TokenMismatch {
        /// The database.
        database: DatabaseId,
        /// Its token.
        expected: Token,
        /// The token sent.
        got: Token,
    },
    /// A gas price below the chain's floor.
    #[error("gas price {price} is below the chain's minimum gas price of {min}")]
    GasPriceTooLow {
        /// The price offered.
        price: u64,
        /// The chain's minimum.
        min: u64,
    },
    /// The same transaction is already pending.
    #[error("transaction {hash} is already pending")]
    Duplicate {
        /// The transaction id.
        hash: Hash,
    },
    /// The pool is at capacity.
    #[error("the transaction pool is full ({capacity} transactions); retry later")]
    PoolFull {
        /// The pool's capacity.
        capacity: usize,
    },
}

impl TxError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TxError::Verify(e) => e.code(),
            TxError::NonceReused { .. } | TxError::NoncePending { .. } => ErrorCode::NonceReused,
            TxError::NonceTooHigh { .. } => ErrorCode::NonceTooHigh,
            TxError::ZeroAmount => ErrorCode::InvalidAmount,
            TxError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            TxError::BalanceOverflow { .. } | TxError::NonceOverflow { .. } => {
                ErrorCode::BalanceOverflow
            }
            TxError::Duplicate { .. } => ErrorCode::DuplicateTransaction,
            TxError::InvalidPayload { .. } => ErrorCode::InvalidTransaction,
            TxError::UnknownDatabase { .. } | TxError::DatabaseDropped { .. } => {
                ErrorCode::UnknownDatabase
            }
            TxError::DatabaseExists { .. } => ErrorCode::DatabaseExists,
            TxError::NotEnoughMiners { .. } => ErrorCode::NotEnoughMiners,
            TxError::NotSuperUser { .. } => ErrorCode::NotSuperUser,
            TxError::LastSuperUser { .. } => ErrorCode::LastSuperUser,
            TxError::DepositTooLow { .. } => ErrorCode::DepositTooLow,
            TxError::NotDatabaseMiner { .. } => ErrorCode::NotDatabaseMiner,
            TxError::StaleBillingPeriod { .. } => ErrorCode::StaleBillingPeriod,
            TxError::NotDatabaseUser { .. } => ErrorCode::NotDatabaseUser,
            TxError::TokenMismatch { .. } => ErrorCode::TokenMismatch,
            TxError::GasPriceTooLow { .. } => ErrorCode::GasPriceTooLow,
            TxError::PoolFull { .. } => ErrorCode::TxPoolFull,
        }
    }

    /// Whether sending the same transaction later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            TxError::PoolFull { .. }
                | TxError::NonceTooHigh { .. }
                | TxError::InsufficientBalance { .. }
                | TxError::NotEnoughMiners { .. }
        )
    }

    /// Whether this is a failure of the transaction's effect on the current
    /// state (worth recording in a block so the sender learns why), rather
    /// than of its signature, its nonce or the pool.
    pub fn is_effect_failure(&self) -> bool {
        !matches!(
            self,
            TxError::Verify(_)
                | TxError::NonceReused { .. }
                | TxError::NonceTooHigh { .. }
                | TxError::NoncePending { .. }
                | TxError::Duplicate { .. }
                | TxError::PoolFull { .. }
        )
    }
}

impl From<CodecError> for TxError {
    fn from(e: CodecError) -> TxError {
        TxError::Verify(TypesError::Codec(e))
    }
}

/// Why a block (or a genesis) was refused; the state is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// No genesis has been applied to this state.
    #[error("the chain has no genesis block yet")]
    NoGenesis,
    /// The genesis configuration is unusable.
    #[error("invalid genesis: {reason}")]
    InvalidGenesis {
        /// What is wrong with it.
        reason: String,
    },
    /// The block is not at the next height.
    #[error("block height {got} does not follow the head; expected height {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The block's height.
        got: u64,
    },
    /// The block's parent is not the head.
    #[error("block {height} names parent {got}, but the head is {expected}")]
    WrongParent {
        /// The block's height.
        height: u64,
        /// The head's hash.
        expected: Hash,
        /// The block's parent.
        got: Hash,
    },
    /// The block is older than its parent.
    #[error("block {height} has timestamp {got}, before its parent's {parent}")]
    TimestampRegression {
        /// The block's height.
        height: u64,
        /// The parent's timestamp.
        parent: u64,
        /// The block's timestamp.
        got: u64,
    },
    /// The producer is not in the block producer set.
    #[error("block producer {producer} is not one of the configured block producers")]
    UnknownProducer {
        /// The claimed producer.
        producer: NodeId,
    },
    /// The block's key is not the one configured for its producer.
    #[error("block producer {producer} signed with a key that is not its configured key")]
    ProducerKeyMismatch {
        /// The claimed producer.
        producer: NodeId,
    },
    /// Too many transactions in one block.
    #[error("block carries {count} transactions, more than the limit of {max}")]
    TooManyTransactions {
        /// How many it carries.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same transaction twice in one block.
    #[error("block carries transaction {hash} more than once")]
    DuplicateTransaction {
        /// The repeated id.
        hash: Hash,
    },
    /// The block's own checks (signature, merkle root, version) failed.
    #[error("block {height} is invalid: {source}")]
    InvalidBlock {
        /// The block's height.
        height: u64,
        /// What failed.
        source: TypesError,
    },
    /// Encoding for hashing failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl ChainError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChainError::NoGenesis | ChainError::InvalidGenesis { .. } => ErrorCode::InvalidGenesis,
            ChainError::UnknownProducer { .. } | ChainError::ProducerKeyMismatch { .. } => {
                ErrorCode::UnknownProducer
            }
            ChainError::InvalidBlock { source, .. } => match source.code() {
                ErrorCode::BadSignature => ErrorCode::BadSignature,
                _ => ErrorCode::InvalidBlock,
            },
            ChainError::Codec(e) => e.code(),
            _ => ErrorCode::InvalidBlock,
        }
    }
}
