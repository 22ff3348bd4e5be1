//! The typed error of the client library: what went wrong and, where the
//! user can do something about it, what to do.

use std::path::PathBuf;
use std::time::Duration;

use covenant_core::ErrorCode;
use covenant_core::codec::CodecError;
use covenant_core::config::ConfigError;
use covenant_core::crypto::{CryptoError, KeyFileError};
use covenant_core::hash::Hash;
use covenant_core::net::NetError;

/// Why a [`Client`](crate::Client) operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The config file could not be read, parsed or validated.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The private key file could not be opened.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The config does not describe a usable client identity or network.
    #[error("config {}: {reason}", .path.display())]
    Unusable {
        /// The config file (or its folder, for a config built in code).
        path: PathBuf,
        /// What is missing or wrong, and how to fix it.
        reason: String,
    },
    /// The node identity or TLS credentials could not be built.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// No block producer could be reached.
    #[error(
        "cannot reach any block producer (tried: {tried}): {source}; \
         is the testnet running? (start it with `cql testnet up DIR`)"
    )]
    Network {
        /// The addresses tried, comma separated.
        tried: String,
        /// The last transport error.
        source: NetError,
    },
    /// The block producers refused a transaction.
    #[error("the block producers refused the transaction: {message}")]
    Rejected {
        /// The [`ErrorCode`] number the block producer gave.
        code: u32,
        /// The block producer's explanation.
        message: String,
    },
    /// A block producer answered a request with an error.
    #[error("block producer refused {method}: {message}")]
    Remote {
        /// The RPC method.
        method: &'static str,
        /// The [`ErrorCode`] number the block producer gave.
        code: u32,
        /// The block producer's explanation.
        message: String,
    },
    /// The transaction is in a block, but it failed and changed nothing.
    #[error("transaction {hash} failed: {reason}")]
    TxFailed {
        /// The transaction id.
        hash: Hash,
        /// The [`ErrorCode`] number of the failure.
        code: u32,
        /// Why it failed.
        reason: String,
    },
    /// The transaction waited too long in the pool and was dropped.
    #[error("transaction {hash} expired before it was put in a block; send it again")]
    TxExpired {
        /// The transaction id.
        hash: Hash,
    },
    /// No block producer knows the transaction.
    #[error(
        "transaction {hash} is unknown to the block producers after {after:?} \
         (it may have been lost when a block producer failed); send it again"
    )]
    TxNotFound {
        /// The transaction id.
        hash: Hash,
        /// How long it was looked for.
        after: Duration,
    },
    /// The operation did not finish in time.
    #[error("{what} did not finish within {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The time allowed.
        after: Duration,
    },
    /// An argument is not acceptable; nothing was sent.
    #[error("{0}")]
    InvalidArgument(String),
    /// A block producer's answer makes no sense.
    #[error("unexpected answer from the block producers: {0}")]
    Protocol(String),
    /// A transaction could not be encoded for signing.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The main chain knows no database with this id (never created, or dropped).
    #[error("database {database} does not exist on the main chain (never created, or dropped)")]
    DatabaseNotFound {
        /// The database id (hex).
        database: String,
    },
    /// A statement failed in the database; nothing of the request changed.
    #[error("SQL error: {message}")]
    Sql {
        /// The [`ErrorCode`] number (4xxx).
        code: u32,
        /// SQLite's (or the miner's) message, intact.
        message: String,
    },
    /// The user may not run this request on the database.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// The miner's explanation (role, status or whitelist).
        message: String,
    },
    /// The miner refused the request's timestamp (the clocks disagree).
    #[error("request refused as stale: {message}")]
    StaleRequest {
        /// The miner's explanation, with both clocks.
        message: String,
    },
    /// The miners already applied this very signed request (a replay or a
    /// resend) and kept no outcome to answer with (a write stored by an
    /// earlier version); it was not applied again.
    #[error("request already applied: {message}")]
    AlreadyApplied {
        /// The miner's explanation: the request hash and where it was applied.
        message: String,
    },
    /// A miner could not be reached (a single call to it failed at the transport level).
    #[error("cannot reach miner {miner}: {source}")]
    MinerUnreachable {
        /// The miner's address (or node id when its address is unknown).
        miner: String,
        /// The transport error.
        source: Box<NetError>,
    },
    /// A write was sent but never answered (a signed write is first resent
    /// until the deadline): it may or may not have been applied.
    #[error(
        "the write to database {database} may or may not have been applied (it was not \
         answered: {source}); check the data before sending it again"
    )]
    WriteOutcomeUnknown {
        /// The database id (hex).
        database: String,
        /// The transport error that lost the answer.
        source: Box<NetError>,
    },
    /// No miner of the database could run the request before the deadline.
    #[error(
        "database {database} is not available after {after:?}: {message}; \
         are its miners running and is one of them the leader?"
    )]
    DatabaseUnavailable {
        /// The database id (hex).
        database: String,
        /// The [`ErrorCode`] number of the last failure (`NotLeader`, `NoQuorum`, `NotFound`, network).
        code: u32,
        /// The last failure.
        message: String,
        /// How long it was tried.
        after: Duration,
    },
    /// A database block failed verification (see [`Database::verify`](crate::Database::verify)).
    #[error(
        "database {database}: block {count}{} failed verification: {what}. The miner's copy of \
         the chain was altered or is corrupt: do not trust its data; report it to the database's \
         owner and verify against another miner",
        .height.map(|h| format!(" (height {h})")).unwrap_or_default()
    )]
    Verification {
        /// The database id (hex).
        database: String,
        /// The block number.
        count: u64,
        /// The block's period number, when the block could be read.
        height: Option<u64>,
        /// Which check failed and how.
        what: String,
    },
    /// The database's chain does not extend a head this client verified before.
    #[error(
        "database {database}: the chain does not extend the trusted head (block {count}, hash \
         {hash}): {what}. The miner rewrote or rolled back history: do not trust its data; report \
         it to the database's owner"
    )]
    HistoryRewritten {
        /// The database id (hex).
        database: String,
        /// The trusted head's block number.
        count: u64,
        /// The trusted head's hash.
        hash: Hash,
        /// What the chain has instead.
        what: String,
    },
    /// A result row does not fit the type asked for.
    #[error(transparent)]
    Row(#[from] crate::rows::RowError),
    /// The blocking facade could not start its async runtime.
    #[error("cannot start the client's async runtime: {0}")]
    Runtime(std::io::Error),
    /// A verified-head file could not be read or written, or is not one.
    #[error("verified-head file {}: {reason}", .path.display())]
    HeadFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Codes a block producer may send that this client tells apart.
const KNOWN_REMOTE_CODES: &[ErrorCode] = &[
    ErrorCode::Internal,
    ErrorCode::InvalidArgument,
    ErrorCode::NotFound,
    ErrorCode::Codec,
    ErrorCode::UnsupportedVersion,
    ErrorCode::InvalidKey,
    ErrorCode::BadSignature,
    ErrorCode::InvalidTransaction,
    ErrorCode::UnknownToken,
    ErrorCode::InvalidAmount,
    ErrorCode::InsufficientBalance,
    ErrorCode::NonceReused,
    ErrorCode::NonceTooHigh,
    ErrorCode::WrongSigner,
    ErrorCode::BalanceOverflow,
    ErrorCode::UnsupportedTransaction,
    ErrorCode::TxPoolFull,
    ErrorCode::DuplicateTransaction,
    ErrorCode::UnknownDatabase,
    ErrorCode::NotEnoughMiners,
    ErrorCode::NotSuperUser,
    ErrorCode::LastSuperUser,
    ErrorCode::DepositTooLow,
    ErrorCode::NotDatabaseMiner,
    ErrorCode::StaleBillingPeriod,
    ErrorCode::NotDatabaseUser,
    ErrorCode::TokenMismatch,
    ErrorCode::DatabaseExists,
    ErrorCode::GasPriceTooLow,
    ErrorCode::SqlExecution,
    ErrorCode::SqlBusy,
    ErrorCode::SqlReadOnly,
    ErrorCode::SqlNonDeterministic,
    ErrorCode::SqlNotAllowed,
    ErrorCode::SqlArguments,
    ErrorCode::SqlEmpty,
    ErrorCode::SqlLimit,
    ErrorCode::SqlTimeout,
    ErrorCode::Storage,
    ErrorCode::NotLeader,
    ErrorCode::NoQuorum,
    ErrorCode::Timeout,
    ErrorCode::UnknownMethod,
    ErrorCode::BadRequest,
    ErrorCode::Unauthenticated,
    ErrorCode::PermissionDenied,
    ErrorCode::StaleRequest,
    ErrorCode::DuplicateRequest,
];

/// The [`ErrorCode`] with number `code`, or [`ErrorCode::Remote`] for one this build does not know.
pub(crate) fn remote_code(code: u32) -> ErrorCode {
    KNOWN_REMOTE_CODES
        .iter()
        .copied()
        .find(|c| c.as_u32() == code)
        .unwrap_or(ErrorCode::Remote)
}

impl ClientError {
    /// The stable code of this error (a remote code this build does not know is [`ErrorCode::Remote`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Config(e) => e.code(),
            ClientError::KeyFile(e) => e.code(),
            ClientError::Unusable { .. } => ErrorCode::Config,
            ClientError::Crypto(e) => e.code(),
            ClientError::Network { source, .. } => source.code(),
            ClientError::Rejected { code, .. }
            | ClientError::Remote { code, .. }
            | ClientError::TxFailed { code, .. } => remote_code(*code),
            ClientError::TxExpired { .. } | ClientError::TxNotFound { .. } => ErrorCode::NotFound,
            ClientError::Timeout { .. } => ErrorCode::Timeout,
            ClientError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            ClientError::Protocol(_) => ErrorCode::Internal,
            ClientError::Codec(e) => e.code(),
            ClientError::DatabaseNotFound { .. } => ErrorCode::UnknownDatabase,
            ClientError::Sql { code, .. } | ClientError::DatabaseUnavailable { code, .. } => {
                remote_code(*code)
            }
            ClientError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            ClientError::MinerUnreachable { source, .. }
            | ClientError::WriteOutcomeUnknown { source, .. } => source.code(),
            ClientError::StaleRequest { .. } => ErrorCode::StaleRequest,
            ClientError::AlreadyApplied { .. } => ErrorCode::DuplicateRequest,
            ClientError::Verification { .. } => ErrorCode::InvalidSqlBlock,
            ClientError::HistoryRewritten { .. } => ErrorCode::HistoryRewritten,
            ClientError::Row(e) => e.code(),
            ClientError::HeadFile { .. } | ClientError::Runtime(_) => ErrorCode::Io,
        }
    }

    /// Whether the same operation may succeed if tried again later.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Network { .. }
            | ClientError::Timeout { .. }
            | ClientError::TxExpired { .. }
            | ClientError::TxNotFound { .. }
            | ClientError::DatabaseUnavailable { .. }
            | ClientError::MinerUnreachable { .. } => true,
            ClientError::Rejected { code, .. } | ClientError::Remote { code, .. } => matches!(
                remote_code(*code),
                ErrorCode::TxPoolFull | ErrorCode::NotLeader | ErrorCode::NoQuorum
            ),
            _ => false,
        }
    }

    /// Whether this is a refusal (or failure) with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_codes_map_back() {
        assert_eq!(
            remote_code(ErrorCode::NonceReused.as_u32()),
            ErrorCode::NonceReused
        );
        assert_eq!(remote_code(999_999), ErrorCode::Remote);
        let e = ClientError::Rejected {
            code: ErrorCode::WrongSigner.as_u32(),
            message: "signed by someone else".into(),
        };
        assert!(e.is(ErrorCode::WrongSigner));
        assert!(!e.retryable());
        assert!(e.to_string().contains("signed by someone else"));
    }

    #[test]
    fn network_error_tells_what_to_do() {
        let e = ClientError::Network {
            tried: "127.0.0.1:1, 127.0.0.1:2".into(),
            source: NetError::Timeout {
                what: "connect",
                after: Duration::from_secs(1),
            },
        };
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:1, 127.0.0.1:2"), "{text}");
        assert!(text.contains("is the testnet running?"), "{text}");
        assert!(e.retryable());
    }
}
