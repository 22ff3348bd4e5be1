//! The crate's error type and the stable numeric codes every Covenant error maps to.
//!
//! Each module owns a typed error (`CodecError`, `CryptoError`, ...); [`Error`]
//! wraps them so callers that cross modules need one type. Codes come in
//! ranges so logs, the wire and the HTTP adapter can classify an error without
//! parsing its text: 1xxx common, 2xxx codec/crypto, 3xxx tx/chain,
//! 4xxx SQL/database, 5xxx consensus/storage, 6xxx network/RPC, 7xxx auth.

use crate::codec::CodecError;
use crate::crypto::CryptoError;

/// Stable numeric error codes; the numbers never change meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// A bug or an unexpected state inside Covenant.
    Internal = 1000,
    /// The caller supplied an argument that is not acceptable.
    InvalidArgument = 1001,
    /// A file or directory could not be read or written.
    Io = 1002,
    /// The configuration file is missing, malformed or inconsistent.
    Config = 1003,
    /// The operation was cancelled before it finished.
    Cancelled = 1004,
    /// The thing asked for (a block, a transaction, a group) does not exist here.
    NotFound = 1005,
    /// Bytes could not be encoded or decoded.
    Codec = 2000,
    /// A format version this build does not understand.
    UnsupportedVersion = 2001,
    /// A key, signature or digest is malformed.
    InvalidKey = 2100,
    /// A signature does not verify.
    BadSignature = 2101,
    /// A node id does not match its public key and nonce, or is too easy.
    BadNodeId = 2102,
    /// The node-id proof of work could not finish (nonce range exhausted).
    ProofOfWork = 2103,
    /// The private key file is unreadable, corrupted or of an unknown version.
    KeyFile = 2200,
    /// The master key (passphrase) does not open the private key file.
    WrongPassphrase = 2201,
    /// A transaction is malformed.
    InvalidTransaction = 3000,
    /// A token name that does not exist.
    UnknownToken = 3001,
    /// An amount that is zero, negative, not a number or too large.
    InvalidAmount = 3002,
    /// The sender's balance does not cover the transaction.
    InsufficientBalance = 3003,
    /// The transaction's nonce was already used by the sender.
    NonceReused = 3004,
    /// The transaction's nonce is ahead of the sender's next nonce.
    NonceTooHigh = 3005,
    /// The transaction is signed by a key that does not own the sender account.
    WrongSigner = 3006,
    /// Applying the transaction would overflow a balance or counter.
    BalanceOverflow = 3007,
    /// The transaction type has no effect implemented yet.
    UnsupportedTransaction = 3008,
    /// The transaction pool is full; retry later.
    TxPoolFull = 3009,
    /// The transaction is already known.
    DuplicateTransaction = 3010,
    /// A block is malformed, badly signed or does not extend the head.
    InvalidBlock = 3100,
    /// A block was produced by a node that is not a block producer.
    UnknownProducer = 3101,
    /// The genesis configuration is invalid or does not match the stored chain.
    InvalidGenesis = 3102,
    /// The database does not exist on the main chain (never created, or dropped).
    UnknownDatabase = 3200,
    /// Too few providers match a `CreateDatabase` (node count, targets, price, resources).
    NotEnoughMiners = 3201,
    /// Only a Super user of the database may do this.
    NotSuperUser = 3202,
    /// The change would leave a database without a Super user.
    LastSuperUser = 3203,
    /// A `ProvideService` deposit below `MinProviderDeposit`.
    DepositTooLow = 3204,
    /// Only a miner of the database may bill its users.
    NotDatabaseMiner = 3205,
    /// A billing period that is not after the last one billed.
    StaleBillingPeriod = 3206,
    /// The account is not a user of the database.
    NotDatabaseUser = 3207,
    /// A payment in another token than the one the database is paid in.
    TokenMismatch = 3208,
    /// A database with this id exists or existed.
    DatabaseExists = 3209,
    /// A gas price below the chain's floor.
    GasPriceTooLow = 3210,
    /// SQLite rejected or failed a statement (syntax, constraint, missing table, ...).
    SqlExecution = 4000,
    /// The database was busy; the same request may succeed later.
    SqlBusy = 4001,
    /// A read request held a statement that writes.
    SqlReadOnly = 4002,
    /// A write would give different results on different replicas.
    SqlNonDeterministic = 4003,
    /// A statement the executor never runs (transaction control, ATTACH, file PRAGMAs, ...).
    SqlNotAllowed = 4004,
    /// Arguments do not match the statements' parameters.
    SqlArguments = 4005,
    /// The request holds no SQL statement.
    SqlEmpty = 4006,
    /// The result exceeds the row or size limit.
    SqlLimit = 4007,
    /// A statement ran past its time limit (reads) or step budget (writes).
    SqlTimeout = 4008,
    /// A result row does not fit the type the caller asked for (client-side).
    RowType = 4009,
    /// A database block fails verification.
    InvalidSqlBlock = 4900,
    /// A database's chain does not extend a head the client verified before.
    HistoryRewritten = 4901,
    /// Durable storage (a log, a chain store) failed or is unreadable.
    Storage = 5000,
    /// Stored data is inconsistent or was written by an incompatible build.
    StorageCorrupt = 5001,
    /// This node is not the Raft leader; the error's leader hint says who is.
    NotLeader = 5100,
    /// Too few members of a replicated group are reachable to commit.
    NoQuorum = 5101,
    /// A socket could not be bound or connected.
    Network = 6000,
    /// A network operation did not finish within its deadline.
    Timeout = 6001,
    /// The connection closed before the answer arrived.
    ConnectionClosed = 6002,
    /// A frame exceeds the configured size limit.
    FrameTooLarge = 6003,
    /// The peer does not serve the requested RPC method.
    UnknownMethod = 6004,
    /// An RPC request's payload is not a valid request for its method.
    BadRequest = 6005,
    /// The TLS handshake failed (not because of the peer's identity).
    TlsHandshake = 6006,
    /// No address is known for the node.
    UnknownPeer = 6007,
    /// The peer answered with an error code this build does not know.
    Remote = 6008,
    /// The peer's TLS identity was refused.
    Unauthenticated = 7000,
    /// The authenticated caller may not do this.
    PermissionDenied = 7001,
    /// A signed request's timestamp is too far from the server's clock.
    StaleRequest = 7002,
    /// The signed request was already applied; a request applies at most once.
    DuplicateRequest = 7003,
}

impl ErrorCode {
    /// The stable number of this code.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_u32())
    }
}

/// Any error `covenant-core` returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A key, signature or identity check failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A main-chain value could not be parsed or verified.
    #[error(transparent)]
    Types(#[from] crate::types::TypesError),
    /// A transaction was refused.
    #[error(transparent)]
    Tx(#[from] crate::chain::TxError),
    /// A block or genesis was refused.
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// The main-chain store failed.
    #[error(transparent)]
    ChainStore(#[from] crate::chain::StoreError),
    /// The private key file could not be written or opened.
    #[error(transparent)]
    KeyFile(#[from] crate::crypto::KeyFileError),
    /// The node-id proof of work failed or was cancelled.
    #[error(transparent)]
    Pow(#[from] crate::pow::PowError),
    /// The durable Raft log failed to open.
    #[error(transparent)]
    LogStore(#[from] crate::consensus::LogStoreError),
    /// A group's on-disk Raft snapshot could not be read or written.
    #[error(transparent)]
    SnapshotStore(#[from] crate::consensus::state_machine::SnapshotStoreError),
    /// A config file could not be read, parsed, validated or written.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A transport, RPC or directory operation failed.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// The metrics listener could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// A database query was refused or failed.
    #[error(transparent)]
    Sql(#[from] crate::sqlchain::executor::SqlError),
}

impl Error {
    /// The stable code classifying this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Codec(e) => e.code(),
            Error::Crypto(e) => e.code(),
            Error::Types(e) => e.code(),
            Error::Tx(e) => e.code(),
            Error::Chain(e) => e.code(),
            Error::ChainStore(e) => e.code(),
            Error::KeyFile(e) => e.code(),
            Error::Pow(e) => e.code(),
            Error::LogStore(e) => e.code(),
            Error::SnapshotStore(e) => e.code(),
            Error::Config(e) => e.code(),
            Error::Net(e) => e.code(),
            Error::Metrics(e) => e.code(),
            Error::Sql(e) => e.code(),
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Net(e) => e.retryable(),
            Error::Sql(e) => e.retryable(),
            _ => false,
        }
    }

    /// A message safe to show a user: internal errors are masked by their code.
    pub fn user_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => format!("internal error {}", self.code()),
            _ => self.to_string(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
