//! SHA3-256 with domain separation: the only module that calls `sha3`.
//!
//! Every hashed object is `H(tag, bytes) = SHA3-256(tag || bytes)` with a
//! distinct ASCII [`Tag`] per kind, so a transaction hash can never collide
//! with a block hash or an address. The one exception is the node id, whose
//! formula `SHA3-256(pubkey || nonce)` is fixed by DESIGN §2 (its tag is
//! empty); see [`Tag::NodeId`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest as _, Sha3_256};

/// Length of a hash in bytes.
pub const HASH_LEN: usize = 32;

/// The domain a hash is computed in; each variant has its own byte prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Account address from a compressed public key.
    Address,
    /// Node id from public key and nonce; the tag is empty (DESIGN §2 formula).
    NodeId,
    /// A main-chain transaction.
    Transaction,
    /// A main-chain block header.
    MainBlock,
    /// A SQL-chain block header.
    SqlBlock,
    /// A signed database query request.
    Request,
    /// A query response digest.
    Response,
    /// One request entry of a SQL-chain block (request, response, stamp).
    SqlEntry,
    /// An interior node of a merkle tree.
    MerkleNode,
    /// A leaf of a merkle tree.
    MerkleLeaf,
    /// The public key binding inside a TLS certificate.
    TlsBinding,
    /// Free-form message signing (tests, tools).
    Message,
    /// A database id derived from its owner's address and creation nonce.
    DatabaseId,
    /// The digest of a main-chain state (accounts and head).
    ChainState,
    /// Values derived from a genesis configuration.
    Genesis,
    /// The seeded `random()`/`randomblob()` stream of a database write.
    SqlRandom,
    /// Ranks a Raft group's members to pick the one that founds it.
    GroupFounder,
}

impl Tag {
    /// The ASCII prefix hashed before the payload.
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Tag::Address => b"covenant/address/v1",
            Tag::NodeId => b"",
            Tag::Transaction => b"covenant/tx/v1",
            Tag::MainBlock => b"covenant/main-block/v1",
            Tag::SqlBlock => b"covenant/sql-block/v1",
            Tag::Request => b"covenant/request/v1",
            Tag::Response => b"covenant/response/v1",
            Tag::SqlEntry => b"covenant/sql-entry/v1",
            Tag::MerkleNode => b"covenant/merkle-node/v1",
            Tag::MerkleLeaf => b"covenant/merkle-leaf/v1",
            Tag::TlsBinding => b"covenant/tls-binding/v1",
            Tag::Message => b"covenant/message/v1",
            Tag::DatabaseId => b"covenant/database-id/v1",
            Tag::ChainState => b"covenant/chain-state/v1",
            Tag::Genesis => b"covenant/genesis/v1",
            Tag::SqlRandom => b"covenant/sql-random/v1",
            Tag::GroupFounder => b"covenant/group-founder/v1",
        }
    }
}

/// A 32-byte SHA3-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash (e.g. the parent of a genesis block).
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters; `None` if the text is not exactly that.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; HASH_LEN];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Hash(out))
    }

    /// Number of leading zero bits, reading the bytes big-endian.
    pub fn leading_zero_bits(&self) -> u32 {
        leading_zero_bits(&self.0)
    }
}

/// Number of leading zero bits of a big-endian byte string.
pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for Hash {
    type Err = crate::crypto::CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s).ok_or(crate::crypto::CryptoError::InvalidHex {
            what: "hash",
            expected_len: HASH_LEN,
        })
    }
}

/// `SHA3-256(tag.prefix() || data)`.
pub fn hash(tag: Tag, data: &[u8]) -> Hash {
    hash_parts(tag, &[data])
}

/// `SHA3-256(tag.prefix() || parts[0] || parts[1] || ...)`, without copying the parts.
pub fn hash_parts(tag: Tag, parts: &[&[u8]]) -> Hash {
    let mut h = Sha3_256::new();
    h.update(tag.prefix());
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// A hasher whose tag and first bytes are absorbed once and then cloned per
/// message: the proof-of-work loop hashes `pubkey || nonce` millions of times.
#[derive(Clone)]
pub struct PrefixHasher {
    state: Sha3_256,
}

impl PrefixHasher {
    /// Absorbs `tag.prefix() || prefix`.
    pub fn new(tag: Tag, prefix: &[u8]) -> PrefixHasher {
        let mut state = Sha3_256::new();
        state.update(tag.prefix());
        state.update(prefix);
        PrefixHasher { state }
    }

    /// The hash of the absorbed prefix followed by `suffix`.
    #[inline]
    pub fn finish_with(&self, suffix: &[u8]) -> Hash {
        let mut h = self.state.clone();
        h.update(suffix);
        Hash(h.finalize().into())
    }
}

/// Plain SHA3-256 with no tag, for benchmarks comparing against the raw hash.
pub fn sha3_256_untagged(data: &[u8]) -> Hash {
    Hash(Sha3_256::digest(data).into())
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            crate::codec::serde_bytes_array::serialize(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Hash::from_hex(&s)
                .ok_or_else(|| serde::de::Error::custom("expected 64 hex characters for a hash"))
        } else {
            Ok(Hash(crate::codec::serde_bytes_array::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untagged_matches_sha3_known_answer() {
        // SHA3-256("abc") from FIPS 202.
        assert_eq!(
            sha3_256_untagged(b"abc").to_hex(),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
        // The node-id tag is empty, so it equals the plain hash.
        assert_eq!(hash(Tag::NodeId, b"abc"), sha3_256_untagged(b"abc"));
    }

    #[test]
    fn tags_separate_domains() {
        let a = hash(Tag::Transaction, b"x");
        let b = hash(Tag::MainBlock, b"x");
        assert_ne!(a, b);
        assert_eq!(
            hash_parts(Tag::Request, &[b"ab", b"c"]),
            hash(Tag::Request, b"abc")
        );
    }

    #[test]
    fn tagged_known_answer() {
        // From Python: hashlib.sha3_256(b"covenant/tx/v1covenant"). A change here
        // breaks every stored hash.
        assert_eq!(
            hash(Tag::Transaction, b"covenant").to_hex(),
            "7293befd23d50bb9ee1f4aa85a90873b4a3f1ade439c2bfc597ceda0da0966c8"
        );
    }

    #[test]
    fn prefix_hasher_equals_one_shot() {
        let p = PrefixHasher::new(Tag::NodeId, b"prefix");
        assert_eq!(p.finish_with(b"suffix"), hash(Tag::NodeId, b"prefixsuffix"));
    }

    #[test]
    fn leading_zeros() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0; 4]), 32);
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = hash(Tag::Message, b"m");
        assert_eq!(Hash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(Hash::from_hex("zz"), None);
        assert_eq!(Hash::from_hex(&"0".repeat(63)), None);
    }
}
