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
    /// The private key file is unreadable, corrupted or of an unknown version.
    KeyFile = 2200,
    /// The master key (passphrase) does not open the private key file.
    WrongPassphrase = 2201,
    /// Durable storage (a log, a chain store) failed or is unreadable.
    Storage = 5000,
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
    /// The durable Raft log failed to open.
    #[error(transparent)]
    LogStore(#[from] crate::consensus::LogStoreError),
}

impl Error {
    /// The stable code classifying this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Codec(e) => e.code(),
            Error::Crypto(e) => e.code(),
            Error::LogStore(e) => e.code(),
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn retryable(&self) -> bool {
        false
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
