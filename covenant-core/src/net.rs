//! `net`: the TLS transport and request/response RPC every Covenant node and
//! client speaks (DESIGN §3).
//!
//! - Identity ([`NodeIdentity`], [`PeerIdentity`]): each process presents an
//!   ephemeral TLS key in a self-signed certificate whose extension binds it to
//!   the node's secp256k1 key and proof-of-work nonce (see `cert`). Custom
//!   verifiers on both sides (TLS 1.3 only, `ring` provider, no CA) check the
//!   binding, recompute the node id, enforce [`NetConfig::min_difficulty`] and,
//!   when dialling a known node, that it is the one expected.
//! - RPC: 4-byte length-prefixed frames with a size limit, carrying versioned
//!   codec envelopes `{id, method, timeout, payload}` / `{id, result}`. A
//!   [`Router`] maps typed [`Method`]s to handlers that get the caller's
//!   verified identity; a [`Connection`] multiplexes concurrent calls with
//!   per-call deadlines; a [`Pool`] keeps one connection per node id and
//!   redials dead ones. Errors travel as typed [`RpcError`]s.
//! - Services: one file per service with its client and server halves;
//!   [`directory`] is the block producers' node directory.
//!
//! This module may import `codec`, `crypto`, `hash` and `error` only: nothing
//! from the chains, consensus or config, which build on it.

mod cert;
mod client;
pub mod directory;
mod envelope;
mod error;
mod frame;
mod identity;
mod method;
mod pool;
mod server;
#[cfg(feature = "test-utils")]
mod testing;
mod tls;
mod verifier;

use std::time::Duration;

pub use self::cert::IDENTITY_EXTENSION_OID;
pub use self::client::Connection;
pub use self::error::{IdentityError, NetError, RpcError};
pub use self::frame::DEFAULT_MAX_FRAME_LEN;
pub use self::identity::{NodeIdentity, PeerIdentity};
pub use self::method::Method;
pub use self::pool::Pool;
pub use self::server::{Router, RpcServer, serve_stream};
#[cfg(feature = "test-utils")]
pub use self::testing::Forgery;
pub use self::tls::{ALPN, TlsContext};

/// Transport settings shared by servers, connections and pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Fewest leading zero bits a peer's node id must have.
    pub min_difficulty: u32,
    /// Largest frame accepted or sent; a peer sending a larger one is disconnected.
    pub max_frame_len: usize,
    /// How long a TCP connect may take.
    pub connect_timeout: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Calls one connection may have running on a server at once; more wait.
    pub max_in_flight: usize,
    /// Connections a server holds at once; more are refused.
    pub max_connections: usize,
    /// How long a shutting-down server lets running calls finish.
    pub shutdown_grace: Duration,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            min_difficulty: 0,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            max_in_flight: 4096,
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Entry points for the fuzz targets in `fuzz/`: they run the crate-private
/// decoders of this module on arbitrary bytes without exposing their types.
/// Not an API; nothing outside `fuzz/` should call these.
#[doc(hidden)]
pub mod fuzzing {
    use std::time::Duration;

    use rcgen::{CertificateParams, CustomExtension, KeyPair};
    use rustls::pki_types::UnixTime;

    use super::cert::{self, IDENTITY_EXTENSION_OID};
    use super::envelope::{RequestEnvelope, ResponseEnvelope};
    use super::identity::NodeIdentity;
    use crate::codec::decode_versioned;
    use crate::crypto::{Nonce, PrivateKey};

    /// The fixed "now" certificates are checked against, so runs reproduce.
    const NOW_SECS: u64 = 1_700_000_000;

    /// Whether `bytes` decode as an RPC request or response envelope (as a frame's body would).
    pub fn decode_envelope(bytes: &[u8]) -> bool {
        let request = decode_versioned::<RequestEnvelope>(bytes).is_ok();
        let response = decode_versioned::<ResponseEnvelope>(bytes).is_ok();
        request || response
    }

    /// Whether `der`, as the content of the identity extension of an otherwise
    /// well-formed certificate, yields an identity (the certificate is parsed as a peer's would be).
    pub fn parse_identity_extension(der: &[u8]) -> bool {
        let Ok(key_pair) = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256) else {
            return false;
        };
        let Ok(mut params) = CertificateParams::new(Vec::<String>::new()) else {
            return false;
        };
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                IDENTITY_EXTENSION_OID,
                der.to_vec(),
            ));
        match params.self_signed(&key_pair) {
            Ok(c) => cert::read_identity(c.der()).is_ok(),
            Err(_) => false,
        }
    }

    /// Whether `der` passes the full peer-certificate check (at a fixed time, difficulty 0).
    pub fn verify_certificate(der: &[u8]) -> bool {
        let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW_SECS));
        cert::verify(der, 0, now).is_ok()
    }

    /// A genuine certificate of the identity with key scalar `n` (a seed for the targets).
    pub fn sample_certificate(n: u8) -> Option<Vec<u8>> {
        let mut secret = [0u8; 32];
        secret[31] = n.max(1);
        let key = PrivateKey::from_bytes(&secret).ok()?;
        let identity = NodeIdentity::new(key, Nonce::default());
        cert::generate(&identity).ok().map(|c| c.cert.to_vec())
    }
}
