//! The error type of the node processes.

use covenant_core::ErrorCode;

/// Why a block producer (or, later, a miner) could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    /// The configuration is unusable for this role.
    #[error("config {path}: {reason}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A core operation failed (key file, store, codec, ...).
    #[error(transparent)]
    Core(#[from] covenant_core::Error),
    /// The transport failed (binding the listener, TLS set-up).
    #[error(transparent)]
    Net(#[from] covenant_core::net::NetError),
    /// The chain store failed.
    #[error(transparent)]
    Store(#[from] covenant_core::chain::StoreError),
    /// The Raft engine could not start.
    #[error("raft: {0}")]
    Raft(String),
    /// A database replica could not be opened.
    #[error("database: {0}")]
    Database(String),
}

impl MinerError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MinerError::Config { .. } => ErrorCode::Config,
            MinerError::Core(e) => e.code(),
            MinerError::Net(e) => e.code(),
            MinerError::Store(e) => e.code(),
            MinerError::Raft(_) => ErrorCode::Internal,
            MinerError::Database(_) => ErrorCode::Storage,
        }
    }
}

/// Result with [`MinerError`].
pub type Result<T, E = MinerError> = std::result::Result<T, E>;
