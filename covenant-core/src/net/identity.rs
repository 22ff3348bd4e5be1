//! The node identity a process presents on every connection, and the
//! verified identity it learns about each peer.

use crate::crypto::{Address, CryptoError, NodeId, Nonce, PrivateKey, PublicKey};
use crate::hash::{PrefixHasher, Tag};

/// A process's own identity: its secp256k1 key, its proof-of-work nonce and the node id they give.
#[derive(Clone, Debug)]
pub struct NodeIdentity {
    key: PrivateKey,
    public_key: PublicKey,
    nonce: Nonce,
    node_id: NodeId,
}

impl NodeIdentity {
    /// The identity of `key` with `nonce`; its node id is computed, not trusted.
    pub fn new(key: PrivateKey, nonce: Nonce) -> NodeIdentity {
        let public_key = key.public_key();
        let node_id = NodeId::compute(&public_key, &nonce);
        NodeIdentity {
            key,
            public_key,
            nonce,
            node_id,
        }
    }

    /// Like [`NodeIdentity::new`], but refuses when the id differs from `claimed`
    /// (a config naming the node id) or is under `min_difficulty`.
    pub fn with_claimed_id(
        key: PrivateKey,
        nonce: Nonce,
        claimed: NodeId,
        min_difficulty: u32,
    ) -> Result<NodeIdentity, CryptoError> {
        let identity = NodeIdentity::new(key, nonce);
        claimed.verify(&identity.public_key, &nonce, min_difficulty)?;
        Ok(identity)
    }

    /// A fresh key with a nonce reaching `difficulty`, searched on one thread.
    ///
    /// Meant for tests, benchmarks and tools that need a low difficulty
    /// (expected `2^difficulty` hashes); real node ids come from the parallel `pow` search.
    pub fn mine_weak(difficulty: u32) -> Result<NodeIdentity, CryptoError> {
        let key = PrivateKey::generate()?;
        let public_key = key.public_key();
        let hasher = PrefixHasher::new(Tag::NodeId, public_key.as_bytes());
        let mut nonce = Nonce::default();
        loop {
            if hasher.finish_with(&nonce.to_bytes()).leading_zero_bits() >= difficulty {
                return Ok(NodeIdentity::new(key, nonce));
            }
            nonce.d = nonce.d.wrapping_add(1);
            if nonce.d == 0 {
                nonce.c = nonce.c.wrapping_add(1);
            }
        }
    }

    /// The node id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The proof-of-work nonce.
    pub fn nonce(&self) -> Nonce {
        self.nonce
    }

    /// The account address of the key.
    pub fn address(&self) -> Address {
        self.public_key.address()
    }

    /// The secret key, for signing the TLS binding and application messages.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The identity as a peer sees it.
    pub fn as_peer(&self) -> PeerIdentity {
        PeerIdentity {
            node_id: self.node_id,
            public_key: self.public_key,
            nonce: self.nonce,
            address: self.public_key.address(),
        }
    }
}

/// A peer's identity, verified during the TLS handshake; handlers receive it with every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The peer's node id (`H(public key || nonce)`, checked).
    pub node_id: NodeId,
    /// The peer's secp256k1 public key.
    pub public_key: PublicKey,
    /// The peer's proof-of-work nonce.
    pub nonce: Nonce,
    /// The peer's account (wallet) address.
    pub address: Address,
}

impl PeerIdentity {
    /// The identity of `public_key` with `nonce`; the id is computed from them.
    pub fn from_key(public_key: PublicKey, nonce: Nonce) -> PeerIdentity {
        PeerIdentity {
            node_id: NodeId::compute(&public_key, &nonce),
            public_key,
            nonce,
            address: public_key.address(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mined_identity_reaches_difficulty_and_verifies() {
        let id = NodeIdentity::mine_weak(8).unwrap();
        assert!(id.node_id().difficulty() >= 8);
        id.node_id()
            .verify(&id.public_key(), &id.nonce(), 8)
            .unwrap();
        let peer = id.as_peer();
        assert_eq!(peer, PeerIdentity::from_key(id.public_key(), id.nonce()));
        assert_eq!(peer.address, id.address());
    }

    #[test]
    fn claimed_id_is_checked() {
        let id = NodeIdentity::mine_weak(4).unwrap();
        let key = id.private_key().clone();
        assert!(NodeIdentity::with_claimed_id(key.clone(), id.nonce(), id.node_id(), 4).is_ok());
        let wrong = Nonce {
            d: id.nonce().d + 1,
            ..id.nonce()
        };
        assert!(matches!(
            NodeIdentity::with_claimed_id(key.clone(), wrong, id.node_id(), 0),
            Err(CryptoError::NodeIdMismatch { .. })
        ));
        assert!(matches!(
            NodeIdentity::with_claimed_id(key, id.nonce(), id.node_id(), 200),
            Err(CryptoError::NodeIdTooEasy { .. })
        ));
    }
}
