//! Typed transport errors: [`NetError`] for local callers, [`RpcError`] for the wire,
//! [`IdentityError`] for a refused TLS identity.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::crypto::{CryptoError, NodeId};
use crate::error::ErrorCode;

/// Why a peer's TLS identity (its certificate and node-id binding) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The peer sent no certificate, or a chain instead of one self-signed certificate.
    #[error("peer presented {count} certificates; exactly one self-signed certificate is required")]
    CertificateCount {
        /// How many certificates the peer sent.
        count: usize,
    },
    /// The certificate is not valid DER X.509.
    #[error("peer certificate is malformed: {reason}")]
    MalformedCertificate {
        /// The parser's explanation.
        reason: String,
    },
    /// The certificate's validity period does not include the current time.
    #[error("peer certificate is outside its validity period")]
    NotValidNow,
    /// The certificate's self-signature does not verify with its own key.
    #[error("peer certificate's self-signature does not verify")]
    BadSelfSignature,
    /// The certificate carries no Covenant identity extension.
    #[error("peer certificate has no Covenant identity extension")]
    MissingExtension,
    /// The identity extension is present but cannot be parsed.
    #[error("peer certificate's identity extension is malformed: {reason}")]
    MalformedExtension {
        /// What is wrong with it.
        reason: String,
    },
    /// The identity extension is in a format version this build does not read.
    #[error(
        "peer certificate's identity extension is version {found}, this build reads version {supported}"
    )]
    UnsupportedExtensionVersion {
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// The node key's signature over the certificate's TLS key does not verify.
    #[error("peer's node key did not sign its TLS key")]
    BadBindingSignature,
    /// The claimed node id is not `H(public key || nonce)`.
    #[error("peer claims node id {claimed}, but its public key and nonce give {computed}")]
    NodeIdMismatch {
        /// The id the certificate claims.
        claimed: NodeId,
        /// The id its public key and nonce give.
        computed: NodeId,
    },
    /// The node id's proof of work is under the configured minimum.
    #[error("peer node id {id} has difficulty {difficulty}, below the required {minimum}")]
    DifficultyTooLow {
        /// The peer's id.
        id: NodeId,
        /// Its leading zero bits.
        difficulty: u32,
        /// The minimum accepted.
        minimum: u32,
    },
    /// The peer is a valid node, but not the one the caller dialled.
    #[error("expected node {expected}, but the peer is {found}")]
    UnexpectedNode {
        /// The node the caller meant to reach.
        expected: NodeId,
        /// The node that answered.
        found: NodeId,
    },
}

impl IdentityError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            IdentityError::NodeIdMismatch { .. }
            | IdentityError::DifficultyTooLow { .. }
            | IdentityError::UnexpectedNode { .. } => ErrorCode::BadNodeId,
            IdentityError::BadBindingSignature | IdentityError::BadSelfSignature => {
                ErrorCode::BadSignature
            }
            _ => ErrorCode::Unauthenticated,
        }
    }
}

/// An error as it travels on the wire: a stable code, a message safe to show,
/// whether retrying may help, and where the leader is when this node is not it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("error {code}: {message}")]
pub struct RpcError {
    /// The [`ErrorCode`] number.
    pub code: u32,
    /// Human-readable explanation.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
    /// Where to send the call instead (for example the current leader's address).
    pub leader_hint: Option<String>,
}

impl RpcError {
    /// An error with `code` and `message`, not retryable, without hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code: code.as_u32(),
            message: message.into(),
            retryable: false,
            leader_hint: None,
        }
    }

    /// The same error, marked retryable or not.
    pub fn with_retryable(mut self, retryable: bool) -> RpcError {
        self.retryable = retryable;
        self
    }

    /// The same error, pointing the caller at `hint`.
    pub fn with_leader_hint(mut self, hint: impl Into<String>) -> RpcError {
        self.leader_hint = Some(hint.into());
        self
    }

    /// Whether this error carries `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code.as_u32()
    }
}

impl From<crate::Error> for RpcError {
    fn from(e: crate::Error) -> RpcError {
        RpcError::new(e.code(), e.user_message()).with_retryable(e.retryable())
    }
}

impl From<NetError> for RpcError {
    fn from(e: NetError) -> RpcError {
        match e {
            NetError::Remote(r) => r,
            other => {
                RpcError::new(other.code(), other.to_string()).with_retryable(other.retryable())
            }
        }
    }
}

/// Any failure of the transport, the RPC layer or the directory.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The address could not be bound for listening.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A TCP connection could not be established.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The TLS handshake failed for a reason other than the peer's identity.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Handshake {
        /// The peer's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The peer's TLS identity was refused.
    #[error("peer at {addr} refused: {source}")]
    PeerRefused {
        /// The peer's address.
        addr: String,
        /// Why its identity is not acceptable.
        source: IdentityError,
    },
    /// The operation did not finish within its deadline.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// The time allowed.
        after: Duration,
    },
    /// The connection ended before the answer arrived.
    #[error("connection closed: {reason}")]
    ConnectionClosed {
        /// Why, as far as this side knows.
        reason: String,
    },
    /// A frame is larger than the configured maximum.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A key or identity could not be built.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The TLS key or certificate could not be created.
    #[error("cannot create TLS credentials: {reason}")]
    Credentials {
        /// What failed.
        reason: String,
    },
    /// The remote handler answered with an error.
    #[error("remote error: {0}")]
    Remote(RpcError),
    /// The pool knows no address for this node.
    #[error("no address known for node {0}")]
    UnknownPeer(NodeId),
    /// Two handlers were registered under one method name.
    #[error("method {0} is registered twice")]
    DuplicateMethod(&'static str),
    /// The directory's storage failed.
    #[error("directory storage failed during {op}: {reason}")]
    Storage {
        /// The operation.
        op: &'static str,
        /// The storage engine's explanation.
        reason: String,
    },
}

impl NetError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            NetError::Bind { .. } | NetError::Connect { .. } => ErrorCode::Network,
            NetError::Handshake { .. } => ErrorCode::TlsHandshake,
            NetError::PeerRefused { source, .. } => source.code(),
            NetError::Timeout { .. } => ErrorCode::Timeout,
            NetError::ConnectionClosed { .. } => ErrorCode::ConnectionClosed,
            NetError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            NetError::Codec(e) => e.code(),
            NetError::Crypto(e) => e.code(),
            NetError::Credentials { .. } => ErrorCode::Internal,
            // A remote code this build does not know is still reported as a remote failure.
            NetError::Remote(_) => ErrorCode::Remote,
            NetError::UnknownPeer(_) => ErrorCode::UnknownPeer,
            NetError::DuplicateMethod(_) => ErrorCode::InvalidArgument,
            NetError::Storage { .. } => ErrorCode::Storage,
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            NetError::Connect { .. }
            | NetError::Handshake { .. }
            | NetError::Timeout { .. }
            | NetError::ConnectionClosed { .. } => true,
            NetError::Remote(e) => e.retryable,
            _ => false,
        }
    }

    /// The remote error, when the peer answered with one.
    pub fn remote(&self) -> Option<&RpcError> {
        match self {
            NetError::Remote(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_error_round_trips_and_keeps_hints() {
        let e = RpcError::new(ErrorCode::UnknownMethod, "no such method")
            .with_retryable(true)
            .with_leader_hint("10.0.0.1:4661");
        let bytes = crate::codec::encode(&e).unwrap();
        let back: RpcError = crate::codec::decode(&bytes).unwrap();
        assert_eq!(back, e);
        assert!(back.is(ErrorCode::UnknownMethod));
        assert!(!back.is(ErrorCode::Timeout));
    }

    #[test]
    fn net_error_maps_to_rpc_error() {
        let e = NetError::Timeout {
            what: "call",
            after: Duration::from_millis(5),
        };
        assert!(e.retryable());
        let r = RpcError::from(e);
        assert!(r.is(ErrorCode::Timeout) && r.retryable);
        let remote = RpcError::new(ErrorCode::BadRequest, "x");
        assert_eq!(RpcError::from(NetError::Remote(remote.clone())), remote);
    }
}
