//! The main chain's data types: tokens and balances, accounts, signed
//! transactions with every payload of DESIGN §4, blocks, and the database
//! payloads, profiles and permissions the miners act on.
//!
//! These are plain values: they know how to encode, hash, sign and verify
//! themselves (through `codec`, `hash` and `crypto`) and how to parse the
//! text a user types (token names, amounts, permissions, DSNs). Whether a
//! transaction *applies* is the business of `chain`, which depends on this
//! module, never the other way round. Must not import `chain`, `net`,
//! `consensus`, `config`, tokio or rusqlite.

pub mod account;
pub mod block;
pub mod database;
pub mod token;
pub mod transaction;

pub use account::Account;
pub use block::{BLOCK_VERSION, Block, BlockHeader};
pub use database::{
    BillingEntry, Consistency, CreateDatabase, DatabaseId, DatabaseProfile, DatabaseUser,
    DropDatabase, MinerAssignment, Permission, ProvideService, ProviderProfile, ResourceAsk, Roles,
    UpdateBilling, UpdatePermission, UserStatus,
};
pub use token::{Balances, Token, parse_amount};
pub use transaction::{Transaction, TxBody, TxPayload, TxState};

use crate::codec::CodecError;
use crate::crypto::{Address, CryptoError};
use crate::error::ErrorCode;
use crate::hash::Hash;

/// Why a value of this module could not be parsed, built or verified.
#[derive(Debug, thiserror::Error)]
pub enum TypesError {
    /// A token name that is not one of [`Token::ALL`].
    #[error("unknown token {given:?}; valid tokens are: {valid}")]
    UnknownToken {
        /// What the user typed.
        given: String,
        /// The accepted names, comma separated.
        valid: String,
    },
    /// An amount that is not a positive whole number that fits in 64 bits.
    #[error("invalid amount {given:?}: {reason}")]
    InvalidAmount {
        /// What the user typed.
        given: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A permission that is neither a role name nor the JSON form.
    #[error(
        "invalid permission {given:?}: {reason}; use Read, Write, Super, Admin, Void, \
         a comma-separated set like \"Read,Write\", or JSON like \
         {{\"role\":\"Read\",\"patterns\":[\"SELECT 1\"]}}"
    )]
    InvalidPermission {
        /// What the user typed.
        given: String,
        /// Why it was refused.
        reason: String,
    },
    /// A DSN that is not `covenantsql://<64 hex>`.
    #[error("invalid database DSN {given:?}: expected covenantsql://<64 hex characters>")]
    InvalidDsn {
        /// What the user typed.
        given: String,
    },
    /// A transaction whose public key does not own the sending account.
    #[error(
        "transaction from {sender} is signed by someone else (the key belongs to {signer}); \
         only the sender's own key may sign its transactions"
    )]
    WrongSigner {
        /// The account the transaction spends from.
        sender: Address,
        /// The account of the key that signed.
        signer: Address,
    },
    /// A signature that does not verify over the object's hash.
    #[error("{what} signature is invalid: {source}")]
    BadSignature {
        /// What was signed ("transaction", "block").
        what: &'static str,
        /// The crypto layer's reason.
        source: CryptoError,
    },
    /// A block whose header does not commit to its transactions.
    #[error("block merkle root is {claimed} but its transactions hash to {computed}")]
    MerkleRootMismatch {
        /// The root in the header.
        claimed: Hash,
        /// The root of the carried transactions.
        computed: Hash,
    },
    /// A block header version this build does not understand.
    #[error("block header version {found} is not supported (this build produces {supported})")]
    UnsupportedBlockVersion {
        /// The version in the header.
        found: u16,
        /// The version this build writes.
        supported: u16,
    },
    /// Encoding for hashing or signing failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl TypesError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TypesError::UnknownToken { .. } => ErrorCode::UnknownToken,
            TypesError::InvalidAmount { .. } => ErrorCode::InvalidAmount,
            TypesError::InvalidPermission { .. } | TypesError::InvalidDsn { .. } => {
                ErrorCode::InvalidArgument
            }
            TypesError::WrongSigner { .. } => ErrorCode::WrongSigner,
            TypesError::BadSignature { .. } => ErrorCode::BadSignature,
            TypesError::MerkleRootMismatch { .. } | TypesError::UnsupportedBlockVersion { .. } => {
                ErrorCode::InvalidBlock
            }
            TypesError::Codec(e) => e.code(),
        }
    }
}
