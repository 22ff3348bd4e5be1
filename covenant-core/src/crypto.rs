//! Keys, signatures, account addresses and node ids (DESIGN §2).
//!
//! secp256k1 through libsecp256k1 (the `secp256k1` crate: about twice as
//! fast as pure-Rust k256 at signing and verifying, which every write pays
//! on the client, the leader and each follower): ECDSA with RFC 6979 nonces
//! over 32-byte digests,
//! low-S enforced on verify, 33-byte compressed public keys, 64-byte compact
//! signatures. Everything else in Covenant signs and verifies through this
//! module, so the curve implementation can be swapped in one place.
//! Must not import network, chain or config code.

pub mod keyfile;

pub use keyfile::{KeyFileError, decode_key_file, encode_key_file, read_key_file, write_key_file};

use std::fmt;

use secp256k1::ecdsa::Signature as EcdsaSignature;
use secp256k1::{Message, SECP256K1, SecretKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::codec::serde_bytes_array;
use crate::error::ErrorCode;
use crate::hash::{self, HASH_LEN, Hash, Tag};

/// Length of a compressed public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of a compact signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a secret key.
pub const SECRET_KEY_LEN: usize = 32;

/// Why a key, signature or identity was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Text that should be hex of a fixed length is not.
    #[error("invalid {what}: expected {expected_len} bytes as hex")]
    InvalidHex {
        /// What was being parsed.
        what: &'static str,
        /// Expected length in bytes.
        expected_len: usize,
    },
    /// Bytes that are not a valid secp256k1 secret key.
    #[error("invalid private key: not a secp256k1 scalar in range")]
    InvalidPrivateKey,
    /// Bytes that are not a valid compressed secp256k1 point.
    #[error("invalid public key: not a compressed secp256k1 point")]
    InvalidPublicKey,
    /// Bytes that are not a valid compact signature.
    #[error("invalid signature encoding")]
    InvalidSignature,
    /// A well-formed signature that does not verify (or has a high S).
    #[error("signature does not verify")]
    BadSignature,
    /// A node id that is not `H(pubkey || nonce)`.
    #[error("node id {claimed} does not match its public key and nonce")]
    NodeIdMismatch {
        /// The id the peer claimed.
        claimed: NodeId,
    },
    /// A node id whose difficulty is under the network minimum.
    #[error("node id {id} has difficulty {difficulty}, below the required {minimum}")]
    NodeIdTooEasy {
        /// The id.
        id: NodeId,
        /// Its leading zero bits.
        difficulty: u32,
        /// The minimum accepted.
        minimum: u32,
    },
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

impl CryptoError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CryptoError::BadSignature => ErrorCode::BadSignature,
            CryptoError::NodeIdMismatch { .. } | CryptoError::NodeIdTooEasy { .. } => {
                ErrorCode::BadNodeId
            }
            CryptoError::Random(_) => ErrorCode::Internal,
            _ => ErrorCode::InvalidKey,
        }
    }
}

/// Fills `buf` from the operating system's random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// A secp256k1 secret key. Erased on drop; never printed.
#[derive(Clone)]
pub struct PrivateKey {
    key: SecretKey,
    /// Derived once: deriving costs about as much as signing.
    public: PublicKey,
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.key.non_secure_erase();
    }
}

impl PrivateKey {
    /// A fresh key from the system random source.
    pub fn generate() -> Result<PrivateKey, CryptoError> {
        loop {
            let mut bytes = Zeroizing::new([0u8; SECRET_KEY_LEN]);
            random_bytes(bytes.as_mut())?;
            // Out-of-range scalars (probability ~2^-128) are simply redrawn.
            if let Ok(k) = PrivateKey::from_bytes(&bytes) {
                return Ok(k);
            }
        }
    }

    /// The key with the given 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8; SECRET_KEY_LEN]) -> Result<PrivateKey, CryptoError> {
        let key = SecretKey::from_byte_array(*bytes).map_err(|_| CryptoError::InvalidPrivateKey)?;
        let public = PublicKey::from_point(key.public_key(SECP256K1));
        Ok(PrivateKey { key, public })
    }

    /// The 32-byte scalar; keep it in the returned zeroizing box.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; SECRET_KEY_LEN]);
        *out = self.key.secret_bytes();
        out
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs a 32-byte digest (deterministic RFC 6979, low-S).
    pub fn sign(&self, digest: &Hash) -> Signature {
        // libsecp256k1 always produces low-S signatures.
        let sig = SECP256K1.sign_ecdsa(Message::from_digest(*digest.as_bytes()), &self.key);
        Signature(sig.serialize_compact())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key())
    }
}

/// A compressed secp256k1 public key (33 bytes), validated on construction.
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; PUBLIC_KEY_LEN],
    key: secp256k1::PublicKey,
}

impl PublicKey {
    fn from_point(key: secp256k1::PublicKey) -> PublicKey {
        PublicKey {
            bytes: key.serialize(),
            key,
        }
    }

    /// Parses a 33-byte compressed point.
    ///
    /// Decompressing a point costs about as much as a signature check, and
    /// every decoded request carries its key, so keys already seen are
    /// remembered (see [`key_cache`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        let bytes: [u8; PUBLIC_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        if let Some(key) = key_cache::get(&bytes) {
            return Ok(key);
        }
        let key = secp256k1::PublicKey::from_byte_array_compressed(bytes)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        let key = PublicKey::from_point(key);
        key_cache::insert(key);
        Ok(key)
    }

    /// Parses 66 hex characters.
    pub fn from_hex(s: &str) -> Result<PublicKey, CryptoError> {
        let mut b = [0u8; PUBLIC_KEY_LEN];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| CryptoError::InvalidHex {
            what: "public key",
            expected_len: PUBLIC_KEY_LEN,
        })?;
        PublicKey::from_bytes(&b)
    }

    /// The compressed encoding.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Lowercase hex of the compressed encoding (66 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Checks `signature` over `digest`; high-S signatures are refused.
    ///
    /// Successful checks are remembered (see [`verified_cache`]), so the
    /// same transaction or request checked again on its way through a node
    /// (admission, pool, block production, apply) costs a hash, not an
    /// elliptic-curve verification.
    pub fn verify(&self, digest: &Hash, signature: &Signature) -> Result<(), CryptoError> {
        let key = verified_cache::key(self, digest, signature);
        if verified_cache::contains(&key) {
            return Ok(());
        }
        self.verify_uncached(digest, signature)?;
        verified_cache::insert(key);
        Ok(())
    }

    fn verify_uncached(&self, digest: &Hash, signature: &Signature) -> Result<(), CryptoError> {
        let (r, s) = signature.0.split_at(SIGNATURE_LEN / 2);
        // r or s zero, or either not below the group order: not a signature.
        if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
            return Err(CryptoError::InvalidSignature);
        }
        let sig = EcdsaSignature::from_compact(&signature.0)
            .map_err(|_| CryptoError::InvalidSignature)?;
        let mut low = sig;
        low.normalize_s();
        if low != sig {
            return Err(CryptoError::BadSignature);
        }
        SECP256K1
            .verify_ecdsa(Message::from_digest(*digest.as_bytes()), &sig, &self.key)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// The account address owned by this key.
    pub fn address(&self) -> Address {
        Address(hash::hash(Tag::Address, &self.bytes))
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl std::str::FromStr for PublicKey {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::from_hex(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            serde_bytes_array::serialize(&self.bytes, s)
        }
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; PUBLIC_KEY_LEN] = if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let mut b = [0u8; PUBLIC_KEY_LEN];
            hex::decode_to_slice(s.trim(), &mut b).map_err(|_| {
                serde::de::Error::custom("expected 66 hex characters for a public key")
            })?;
            b
        } else {
            serde_bytes_array::deserialize(d)?
        };
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A bounded, process-wide map from compressed encodings to public keys that
/// decompressed (so were valid points); only valid keys are ever stored.
pub mod key_cache {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use super::{PUBLIC_KEY_LEN, PublicKey};

    /// Most keys remembered; the map is emptied when it fills.
    pub const CAPACITY: usize = 1 << 14;

    fn map() -> &'static Mutex<HashMap<[u8; PUBLIC_KEY_LEN], PublicKey>> {
        static MAP: OnceLock<Mutex<HashMap<[u8; PUBLIC_KEY_LEN], PublicKey>>> = OnceLock::new();
        MAP.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub(super) fn get(bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<PublicKey> {
        map().lock().ok().and_then(|m| m.get(bytes).copied())
    }

    pub(super) fn insert(key: PublicKey) {
        if let Ok(mut m) = map().lock() {
            if m.len() >= CAPACITY {
                m.clear();
            }
            m.insert(key.bytes, key);
        }
    }
}

/// A bounded, process-wide set of (public key, digest, signature) triples
/// that verified. Only successes are stored, keyed by a hash of all three,
/// so a forged signature can never hit: it would need a SHA3 collision.
pub mod verified_cache {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};

    use super::{PublicKey, Signature};
    use crate::hash::{self, Hash, Tag};

    /// Most triples remembered; the set is emptied when it fills.
    pub const CAPACITY: usize = 1 << 17;

    fn set() -> &'static Mutex<HashSet<Hash>> {
        static SET: OnceLock<Mutex<HashSet<Hash>>> = OnceLock::new();
        SET.get_or_init(|| Mutex::new(HashSet::new()))
    }

    pub(super) fn key(pk: &PublicKey, digest: &Hash, sig: &Signature) -> Hash {
        hash::hash_parts(
            Tag::Message,
            &[b"verified", pk.as_bytes(), digest.as_bytes(), &sig.0],
        )
    }

    // Neither waits for the lock: the cache only saves work, and a verifier
    // must never stall behind another thread holding it (the background
    // audit runs at the lowest CPU priority and may be descheduled there).
    pub(super) fn contains(key: &Hash) -> bool {
        set().try_lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub(super) fn insert(key: Hash) {
        if let Ok(mut s) = set().try_lock() {
            if s.len() >= CAPACITY {
                s.clear();
            }
            s.insert(key);
        }
    }
}

/// A 64-byte compact ECDSA signature `r || s`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl Signature {
    /// Lowercase hex (128 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses 128 hex characters.
    pub fn from_hex(s: &str) -> Result<Signature, CryptoError> {
        let mut b = [0u8; SIGNATURE_LEN];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| CryptoError::InvalidHex {
            what: "signature",
            expected_len: SIGNATURE_LEN,
        })?;
        Ok(Signature(b))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            serde_bytes_array::serialize(&self.0, s)
        }
    }
}
impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Signature::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            Ok(Signature(serde_bytes_array::deserialize(d)?))
        }
    }
}

macro_rules! hash_newtype {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Hash);

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
                self.0.as_bytes()
            }
            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
            /// Parses 64 hex characters.
            pub fn from_hex(s: &str) -> Result<$name, CryptoError> {
                Hash::from_hex(s).map($name).ok_or(CryptoError::InvalidHex {
                    what: $what,
                    expected_len: HASH_LEN,
                })
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl std::str::FromStr for $name {
            type Err = CryptoError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::from_hex(s)
            }
        }
    };
}

hash_newtype!(
    /// An account (wallet) address: `H(Address, compressed public key)`.
    Address,
    "wallet address"
);
hash_newtype!(
    /// A node id: `SHA3-256(compressed public key || nonce)`; valid only with both.
    NodeId,
    "node id"
);

/// The 256-bit proof-of-work nonce `{a, b, c, d}`, encoded as four big-endian u64, `a` first.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Nonce {
    /// Most significant word.
    pub a: u64,
    /// Second word.
    pub b: u64,
    /// Third word.
    pub c: u64,
    /// Least significant word.
    pub d: u64,
}

impl Nonce {
    /// The 32 bytes hashed into a node id.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[0..8].copy_from_slice(&self.a.to_be_bytes());
        out[8..16].copy_from_slice(&self.b.to_be_bytes());
        out[16..24].copy_from_slice(&self.c.to_be_bytes());
        out[24..32].copy_from_slice(&self.d.to_be_bytes());
        out
    }
}

impl fmt::Display for Nonce {
    /// The seed's form: `{a b c d}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{} {} {} {}}}", self.a, self.b, self.c, self.d)
    }
}

impl NodeId {
    /// `SHA3-256(public_key || nonce)`.
    pub fn compute(public_key: &PublicKey, nonce: &Nonce) -> NodeId {
        NodeId(hash::hash_parts(
            Tag::NodeId,
            &[public_key.as_bytes(), &nonce.to_bytes()],
        ))
    }

    /// The id's difficulty: its number of leading zero bits.
    pub fn difficulty(&self) -> u32 {
        self.0.leading_zero_bits()
    }

    /// Checks that this id belongs to `public_key` with `nonce` and reaches `min_difficulty`.
    pub fn verify(
        &self,
        public_key: &PublicKey,
        nonce: &Nonce,
        min_difficulty: u32,
    ) -> Result<(), CryptoError> {
        if NodeId::compute(public_key, nonce) != *self {
            return Err(CryptoError::NodeIdMismatch { claimed: *self });
        }
        let difficulty = self.difficulty();
        if difficulty < min_difficulty {
            return Err(CryptoError::NodeIdTooEasy {
                id: *self,
                difficulty,
                minimum: min_difficulty,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed key so the known-answer vectors below are reproducible.
    fn fixed_key() -> PrivateKey {
        let mut b = [0u8; 32];
        b[31] = 1; // scalar 1: the public key is the generator G.
        PrivateKey::from_bytes(&b).unwrap()
    }

    #[test]
    fn generator_public_key_known_answer() {
        assert_eq!(
            fixed_key().public_key().to_hex(),
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
    }

    #[test]
    fn address_and_node_id_known_answers() {
        let pk = fixed_key().public_key();
        // Vectors computed independently with Python's hashlib.sha3_256 over
        // `b"covenant/address/v1" + G` and `G + nonce` (four big-endian u64).
        let addr = pk.address();
        assert_eq!(
            addr.0,
            hash::sha3_256_untagged(&[b"covenant/address/v1".as_slice(), pk.as_bytes()].concat())
        );
        let nonce = Nonce {
            a: 1,
            b: 2,
            c: 3,
            d: 4,
        };
        let id = NodeId::compute(&pk, &nonce);
        let mut input = pk.as_bytes().to_vec();
        input.extend_from_slice(
            &hex::decode("0000000000000001000000000000000200000000000000030000000000000004")
                .unwrap(),
        );
        assert_eq!(input.len(), 65);
        assert_eq!(id.0, hash::sha3_256_untagged(&input));
        assert_eq!(addr.to_hex(), KAT_ADDRESS);
        assert_eq!(id.to_hex(), KAT_NODE_ID);
    }

    const KAT_ADDRESS: &str = "a5b2c74f07e6800dbaf88487dad7af7cfe8e8dec71cbf0f6fccc5f716cb11c01";
    const KAT_NODE_ID: &str = "450f8650d67a873baed2b1cda40199bbb9da2590395dedc41c226d0f55a7de0a";

    #[test]
    fn sign_verify_and_tamper() {
        let k = PrivateKey::generate().unwrap();
        let pk = k.public_key();
        let d = hash::hash(Tag::Message, b"hello");
        let sig = k.sign(&d);
        pk.verify(&d, &sig).unwrap();
        // Deterministic (RFC 6979).
        assert_eq!(sig, k.sign(&d));
        // Another digest, another key, a flipped bit: all refused.
        assert_eq!(
            pk.verify(&hash::hash(Tag::Message, b"hellO"), &sig),
            Err(CryptoError::BadSignature)
        );
        let other = PrivateKey::generate().unwrap().public_key();
        assert_eq!(other.verify(&d, &sig), Err(CryptoError::BadSignature));
        let mut bad = sig;
        bad.0[10] ^= 1;
        assert!(pk.verify(&d, &bad).is_err());
        // Zero signature is malformed, not a panic.
        assert_eq!(
            pk.verify(&d, &Signature([0; 64])),
            Err(CryptoError::InvalidSignature)
        );
    }

    /// Signatures must stay byte-identical across curve libraries: RFC 6979
    /// makes them deterministic, and signed requests and blocks on disk
    /// carry them (this vector was made with k256 0.14).
    #[test]
    fn signatures_match_the_recorded_vector() {
        let k = PrivateKey::from_bytes(&[7; 32]).unwrap();
        assert_eq!(
            k.public_key().to_hex(),
            "02989c0b76cb563971fdc9bef31ec06c3560f3249d6ee9e5d83c57625596e05f6f"
        );
        let sig = k.sign(&Hash([9; 32]));
        assert_eq!(
            hex::encode(sig.0),
            "7157050929571a762ab6e06207f74db146f165fead17acc7afe23000a091dc37\
             7b5faa50c021f3f9613f20531b8fc1a38744203a2f391c15e7b1455c3a296e4e"
        );
        assert!(k.public_key().verify(&Hash([9; 32]), &sig).is_ok());
    }

    #[test]
    fn high_s_is_refused() {
        let k = fixed_key();
        let d = hash::hash(Tag::Message, b"m");
        let sig = k.sign(&d);
        // s' = n - s: the same signature with the high S.
        let n = secp256k1::constants::CURVE_ORDER;
        let mut hi = sig.0;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let v = i16::from(n[i]) - i16::from(sig.0[32 + i]) - borrow;
            borrow = i16::from(v < 0);
            hi[32 + i] = (v + 256 * borrow) as u8;
        }
        assert_ne!(hi, sig.0);
        assert_eq!(
            k.public_key().verify(&d, &Signature(hi)),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn key_round_trips_and_rejects() {
        let k = PrivateKey::generate().unwrap();
        let k2 = PrivateKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(k.public_key(), k2.public_key());
        assert_eq!(
            PrivateKey::from_bytes(&[0; 32]).err(),
            Some(CryptoError::InvalidPrivateKey)
        );
        assert_eq!(
            PrivateKey::from_bytes(&[0xff; 32]).err(),
            Some(CryptoError::InvalidPrivateKey)
        );
        let pk = k.public_key();
        assert_eq!(PublicKey::from_hex(&pk.to_hex()).unwrap(), pk);
        assert!(PublicKey::from_hex("02").is_err());
        assert!(PublicKey::from_bytes(&[9; 33]).is_err());
        assert!(!format!("{k:?}").contains(&hex::encode(k.to_bytes().as_slice())));
    }

    #[test]
    fn node_id_verification() {
        let pk = fixed_key().public_key();
        let nonce = Nonce::default();
        let id = NodeId::compute(&pk, &nonce);
        id.verify(&pk, &nonce, 0).unwrap();
        let other = Nonce { d: 1, ..nonce };
        assert!(matches!(
            id.verify(&pk, &other, 0),
            Err(CryptoError::NodeIdMismatch { .. })
        ));
        let too_hard = id.difficulty() + 1;
        assert!(matches!(
            id.verify(&pk, &nonce, too_hard),
            Err(CryptoError::NodeIdTooEasy { .. })
        ));
        assert_eq!(
            format!(
                "{}",
                Nonce {
                    a: 1,
                    b: 0,
                    c: 3,
                    d: 0
                }
            ),
            "{1 0 3 0}"
        );
    }

    #[test]
    fn serde_forms() {
        let k = fixed_key();
        let pk = k.public_key();
        let json = serde_json::to_string(&pk).unwrap();
        assert_eq!(json, format!("\"{}\"", pk.to_hex()));
        let back: PublicKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pk);
        let bin = crate::codec::encode(&pk).unwrap();
        assert_eq!(bin.len(), 34);
        assert_eq!(crate::codec::decode::<PublicKey>(&bin).unwrap(), pk);
        // An invalid point is refused by the decoder, not accepted for later panics.
        let mut bad = bin.clone();
        bad[1] = 9;
        assert!(crate::codec::decode::<PublicKey>(&bad).is_err());
    }
}
