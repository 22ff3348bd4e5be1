//! Signed main-chain transactions and their lifecycle states.
//!
//! A [`Transaction`] is an envelope: the [`TxBody`] (sender, sender nonce,
//! timestamp, payload), the signer's public key and its signature over
//! `hash(Tag::Transaction, encode(body))`. That hash is also the
//! transaction's id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TypesError;
use super::database::{
    CreateDatabase, DropDatabase, ProvideService, UpdateBilling, UpdatePermission,
};
use super::token::Token;
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{Address, PrivateKey, PublicKey, Signature};
use crate::hash::{self, Hash, Tag};

/// What a transaction does (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxPayload {
    /// Move `amount` of `token` from the sender to `to` (a wallet or a database account).
    Transfer {
        /// The receiving account.
        to: Address,
        /// Which token.
        token: Token,
        /// How many units; must be positive.
        amount: u64,
    },
    /// Create a database.
    CreateDatabase(CreateDatabase),
    /// Drop a database.
    DropDatabase(DropDatabase),
    /// Grant or revoke a user's permission on a database.
    UpdatePermission(UpdatePermission),
    /// A miner offers service.
    ProvideService(ProvideService),
    /// A database's miners bill its users.
    UpdateBilling(UpdateBilling),
}

impl TxPayload {
    /// The payload's type name, as users see it.
    pub fn kind(&self) -> &'static str {
        match self {
            TxPayload::Transfer { .. } => "Transfer",
            TxPayload::CreateDatabase(_) => "CreateDatabase",
            TxPayload::DropDatabase(_) => "DropDatabase",
            TxPayload::UpdatePermission(_) => "UpdatePermission",
            TxPayload::ProvideService(_) => "ProvideService",
            TxPayload::UpdateBilling(_) => "UpdateBilling",
        }
    }
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxBody {
    /// The account that pays and whose nonce is consumed.
    pub sender: Address,
    /// Must equal the sender's next nonce when applied.
    pub nonce: u64,
    /// When the client made it, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// What it does.
    pub payload: TxPayload,
}

impl TxBody {
    /// `hash(Tag::Transaction, encode(self))`: the transaction id and the signed digest.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        Ok(hash::hash(Tag::Transaction, &codec::encode(self)?))
    }
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// What was signed.
    pub body: TxBody,
    /// The signer's key; its address must be `body.sender`.
    pub public_key: PublicKey,
    /// Signature over [`TxBody::hash`].
    pub signature: Signature,
}

impl Transaction {
    /// Signs `body` with `key`. The key should own `body.sender`; [`verify`](Self::verify) checks it.
    pub fn sign(body: TxBody, key: &PrivateKey) -> Result<Transaction, CodecError> {
        let digest = body.hash()?;
        Ok(Transaction {
            signature: key.sign(&digest),
            public_key: key.public_key(),
            body,
        })
    }

    /// The transaction id: the hash of its body.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        self.body.hash()
    }

    /// Checks that the key owns the sender account and that the signature is valid.
    pub fn verify(&self) -> Result<(), TypesError> {
        let digest = self.hash()?;
        self.verify_with_hash(&digest)
    }

    /// [`verify`](Self::verify) with the already computed [`hash`](Self::hash).
    pub fn verify_with_hash(&self, digest: &Hash) -> Result<(), TypesError> {
        let signer = self.public_key.address();
        if signer != self.body.sender {
            return Err(TypesError::WrongSigner {
                sender: self.body.sender,
                signer,
            });
        }
        self.public_key
            .verify(digest, &self.signature)
            .map_err(|source| TypesError::BadSignature {
                what: "transaction",
                source,
            })
    }
}

impl Versioned for Transaction {
    const KIND: &'static str = "transaction";
    const VERSION: u16 = 1;
}

/// Where a transaction is in its life, as clients poll it (`-wait-tx-confirm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxState {
    /// Accepted into a producer's pool, not yet in a block.
    Pending,
    /// In a proposed block that is not yet committed.
    Packed,
    /// In a committed block (it may still have failed; see its receipt).
    Confirmed,
    /// Dropped from the pool after its time to live.
    Expired,
    /// Unknown to this node.
    NotFound,
}

impl TxState {
    /// The state's name (`Pending`, `Packed`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TxState::Pending => "Pending",
            TxState::Packed => "Packed",
            TxState::Confirmed => "Confirmed",
            TxState::Expired => "Expired",
            TxState::NotFound => "NotFound",
        }
    }

    /// Whether the state can no longer change (confirmed or expired).
    pub fn is_final(self) -> bool {
        matches!(self, TxState::Confirmed | TxState::Expired)
    }
}

impl fmt::Display for TxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TxState {
    type Err = String;
    fn from_str(s: &str) -> Result<TxState, String> {
        [
            TxState::Pending,
            TxState::Packed,
            TxState::Confirmed,
            TxState::Expired,
            TxState::NotFound,
        ]
        .into_iter()
        .find(|st| st.name().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown transaction state {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn key(n: u8) -> PrivateKey {
        let mut b = [0u8; 32];
        b[31] = n;
        PrivateKey::from_bytes(&b).unwrap()
    }

    fn transfer(from: &PrivateKey, to: Address, amount: u64, nonce: u64) -> Transaction {
        let body = TxBody {
            sender: from.public_key().address(),
            nonce,
            timestamp: 1_700_000_000_000,
            payload: TxPayload::Transfer {
                to,
                token: Token::Particle,
                amount,
            },
        };
        Transaction::sign(body, from).unwrap()
    }

    #[test]
    fn transfer_golden_bytes() {
        // Pins the wire/disk encoding and the id of a Transfer. A change here
        // breaks every stored transaction and signature: bump the format version.
        let tx = transfer(&key(1), key(2).public_key().address(), 100, 7);
        let bytes = codec::encode_versioned(&tx).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0100",                                                                 // format version 1
                "20a5b2c74f07e6800dbaf88487dad7af7cfe8e8dec71cbf0f6fccc5f716cb11c01",   // sender
                "07",                                                                   // nonce 7
                "fd0068e5cf8b010000", // timestamp (varint u64)
                "00",                 // Transfer
                "20f90b9b24554c5b5da8c4b1e291cac1ede68eba59b192b322a8b799e5937143df", // to
                "00",                 // Particle
                "64",                 // amount 100
                "210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", // public key
                "40bb360016c56f977336072529311cb3b839726bdf5c9aa70a0ea954d0649e509e52",
                "a8f13fcf5d8661641143be78aaff3ba1cc96ef608c0dbf467a0b7251e4724e", // signature
            )
        );
        assert_eq!(codec::decode_versioned::<Transaction>(&bytes).unwrap(), tx);
        // sha3_256(b"covenant/tx/v1" + body bytes), computed independently in Python.
        assert_eq!(
            tx.hash().unwrap().to_hex(),
            "548a375b58914ee3fde0cc261249912d037ef50fda8e727c194c3921aa96d2b1"
        );
        tx.verify().unwrap();
    }

    #[test]
    fn sign_and_verify() {
        let tx = transfer(&key(1), key(2).public_key().address(), 5, 0);
        tx.verify().unwrap();
        assert_eq!(tx.body.payload.kind(), "Transfer");
    }

    #[test]
    fn tampered_body_fails_signature() {
        let mut tx = transfer(&key(1), key(2).public_key().address(), 5, 0);
        tx.body.nonce = 1;
        let err = tx.verify().unwrap_err();
        assert!(matches!(err, TypesError::BadSignature { .. }), "{err}");
        assert_eq!(err.code(), ErrorCode::BadSignature);
    }

    #[test]
    fn signed_by_someone_else_is_named() {
        // Mallory signs a transfer spending Alice's account.
        let alice = key(1).public_key().address();
        let body = TxBody {
            sender: alice,
            nonce: 0,
            timestamp: 1,
            payload: TxPayload::Transfer {
                to: key(3).public_key().address(),
                token: Token::Particle,
                amount: 1,
            },
        };
        let tx = Transaction::sign(body, &key(3)).unwrap();
        let err = tx.verify().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("signed by someone else"), "{msg}");
        assert!(msg.contains(&alice.to_hex()), "{msg}");
        assert_eq!(err.code(), ErrorCode::WrongSigner);
    }

    #[test]
    fn tx_state_names() {
        for s in ["Pending", "Packed", "Confirmed", "Expired", "NotFound"] {
            assert_eq!(s.parse::<TxState>().unwrap().to_string(), s);
        }
        assert!(TxState::Confirmed.is_final());
        assert!(!TxState::Pending.is_final());
        assert!("Lost".parse::<TxState>().is_err());
    }
}
