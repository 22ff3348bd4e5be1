//! Test helpers (feature `test-utils`): TLS identities that are deliberately
//! wrong, so tests can check that peers refuse them.

use super::NetConfig;
use super::cert::{self, Binding, binding_digest};
use super::error::NetError;
use super::identity::NodeIdentity;
use super::tls::TlsContext;
use crate::crypto::{Nonce, PrivateKey};

/// How a forged certificate lies about its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// The node key signed some other TLS key, not this certificate's.
    SignatureOverOtherKey,
    /// The binding names the node's public key but another key signed it.
    SignedByOtherKey,
    /// The certificate claims the node's id with a nonce that gives a different id.
    NonceMismatch,
    /// The certificate carries no identity extension.
    NoExtension,
}

impl TlsContext {
    /// TLS credentials for `identity` whose certificate lies as `forgery` says.
    pub fn forged(
        identity: &NodeIdentity,
        forgery: Forgery,
        config: &NetConfig,
    ) -> Result<TlsContext, NetError> {
        let other = PrivateKey::generate()?;
        let certificate = cert::generate_with(identity, |spki| {
            let honest = Binding {
                node_id: identity.node_id(),
                public_key: identity.public_key(),
                nonce: identity.nonce(),
                signature: identity.private_key().sign(&binding_digest(spki)),
            };
            match forgery {
                Forgery::SignatureOverOtherKey => Some(Binding {
                    signature: identity
                        .private_key()
                        .sign(&binding_digest(b"some other TLS key")),
                    ..honest
                }),
                Forgery::SignedByOtherKey => Some(Binding {
                    signature: other.sign(&binding_digest(spki)),
                    ..honest
                }),
                Forgery::NonceMismatch => Some(Binding {
                    nonce: Nonce {
                        d: identity.nonce().d.wrapping_add(1),
                        ..identity.nonce()
                    },
                    ..honest
                }),
                Forgery::NoExtension => None,
            }
        })?;
        TlsContext::with_certificate(identity, certificate, config.min_difficulty)
    }
}
