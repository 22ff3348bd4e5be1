//! Main-chain blocks: a signed header committing to its transactions.
//!
//! The header `{version, height, parent, merkle_root, timestamp, producer}` is
//! hashed with `Tag::MainBlock`; the producer signs that hash. The merkle root
//! is over the transaction ids (see `merkle`). A [`Block`] can check its own
//! signature and merkle root; whether its producer is one of the block
//! producers, and whether it extends the head, is checked by `chain`, which
//! knows the producer set and the head.

use serde::{Deserialize, Serialize};

use super::TypesError;
use super::transaction::Transaction;
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{NodeId, PrivateKey, PublicKey, Signature};
use crate::hash::{self, Hash, Tag};
use crate::merkle;

/// The header version this build produces and accepts.
pub const BLOCK_VERSION: u16 = 1;

/// The signed part of a block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Header format version ([`BLOCK_VERSION`]).
    pub version: u16,
    /// 0 for genesis, then +1 per block.
    pub height: u64,
    /// The previous block's hash (for genesis: the digest of the genesis state).
    pub parent: Hash,
    /// Merkle root of the transaction ids.
    pub merkle_root: Hash,
    /// Production time, milliseconds since the Unix epoch; never decreases.
    pub timestamp: u64,
    /// The producing block producer's node id.
    pub producer: NodeId,
}

impl BlockHeader {
    /// `hash(Tag::MainBlock, encode(self))`: the block's hash.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        Ok(hash::hash(Tag::MainBlock, &codec::encode(self)?))
    }
}

/// A main-chain block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The signed header.
    pub header: BlockHeader,
    /// The producer's public key (the chain matches it to `header.producer`).
    pub producer_key: PublicKey,
    /// Signature over the header hash.
    pub signature: Signature,
    /// The transactions, in application order.
    pub transactions: Vec<Transaction>,
}

/// The ids of `transactions`, in order.
pub fn transaction_ids(transactions: &[Transaction]) -> Result<Vec<Hash>, CodecError> {
    transactions.iter().map(Transaction::hash).collect()
}

impl Block {
    /// Signs `header` as is. Use [`Block::seal`] to have the merkle root computed.
    pub fn sign(
        header: BlockHeader,
        transactions: Vec<Transaction>,
        key: &PrivateKey,
    ) -> Result<Block, CodecError> {
        let digest = header.hash()?;
        Ok(Block {
            signature: key.sign(&digest),
            producer_key: key.public_key(),
            header,
            transactions,
        })
    }

    /// Builds a version-[`BLOCK_VERSION`] header over `transactions` and signs it.
    pub fn seal(
        height: u64,
        parent: Hash,
        timestamp: u64,
        producer: NodeId,
        transactions: Vec<Transaction>,
        key: &PrivateKey,
    ) -> Result<Block, CodecError> {
        let merkle_root = merkle::merkle_root(&transaction_ids(&transactions)?);
        let header = BlockHeader {
            version: BLOCK_VERSION,
            height,
            parent,
            merkle_root,
            timestamp,
            producer,
        };
        Block::sign(header, transactions, key)
    }

    /// The block's hash (its header's).
    pub fn hash(&self) -> Result<Hash, CodecError> {
        self.header.hash()
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// Checks the version, the producer's signature and the merkle root.
    /// Returns the transaction ids, which callers need next.
    pub fn verify(&self) -> Result<Vec<Hash>, TypesError> {
        if self.header.version != BLOCK_VERSION {
            return Err(TypesError::UnsupportedBlockVersion {
                found: self.header.version,
                supported: BLOCK_VERSION,
            });
        }
        let digest = self.hash()?;
        self.producer_key
            .verify(&digest, &self.signature)
            .map_err(|source| TypesError::BadSignature {
                what: "block",
                source,
            })?;
        let ids = transaction_ids(&self.transactions)?;
        let computed = merkle::merkle_root(&ids);
        if computed != self.header.merkle_root {
            return Err(TypesError::MerkleRootMismatch {
                claimed: self.header.merkle_root,
                computed,
            });
        }
        Ok(ids)
    }
}

impl Versioned for Block {
    const KIND: &'static str = "main block";
    const VERSION: u16 = 1;
}

impl Versioned for BlockHeader {
    const KIND: &'static str = "main block header";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Address;
    use crate::types::{Token, TxBody, TxPayload};

    fn key(n: u8) -> PrivateKey {
        let mut b = [0u8; 32];
        b[31] = n;
        PrivateKey::from_bytes(&b).unwrap()
    }

    fn tx(nonce: u64) -> Transaction {
        let k = key(1);
        Transaction::sign(
            TxBody {
                sender: k.public_key().address(),
                nonce,
                timestamp: 5,
                payload: TxPayload::Transfer {
                    to: Address(Hash::ZERO),
                    token: Token::Wave,
                    amount: 1,
                },
            },
            &k,
        )
        .unwrap()
    }

    fn producer() -> NodeId {
        NodeId(hash::hash(Tag::Message, b"bp"))
    }

    #[test]
    fn header_golden_bytes() {
        // Pins the header encoding and the block hash. A change here breaks
        // every stored block: bump the format version instead.
        let header = BlockHeader {
            version: BLOCK_VERSION,
            height: 300,
            parent: hash::hash(Tag::Message, b"parent"),
            merkle_root: Hash::ZERO,
            timestamp: 1_700_000_000_000,
            producer: producer(),
        };
        let bytes = codec::encode_versioned(&header).unwrap();
        assert_eq!(
            hex::encode(&bytes),
            concat!(
                "0100",                                                               // format version 1
                "01",     // header version
                "fb2c01", // height 300 (varint)
                "20bcc0d6feda9bac6e6a754ba9e2e1b9761904b48c205a20a0f376e2739f92fbc2", // parent
                "200000000000000000000000000000000000000000000000000000000000000000", // merkle root
                "fd0068e5cf8b010000", // timestamp
                "208ccc8a42d52b3fd859102ec57573ae7332dbc83b2db1a349f73fe28f0f4bb24a", // producer
            )
        );
        assert_eq!(
            codec::decode_versioned::<BlockHeader>(&bytes).unwrap(),
            header
        );
        // sha3_256(b"covenant/main-block/v1" + header bytes), computed in Python.
        assert_eq!(
            header.hash().unwrap().to_hex(),
            "f73f2d8bb52c094200648b4b9db44ecd2e375d864643fc0c9de11717938fe99d"
        );
    }

    #[test]
    fn sealed_block_verifies_and_round_trips() {
        let b = Block::seal(1, Hash::ZERO, 10, producer(), vec![tx(0), tx(1)], &key(9)).unwrap();
        let ids = b.verify().unwrap();
        assert_eq!(ids, vec![tx(0).hash().unwrap(), tx(1).hash().unwrap()]);
        let bytes = codec::encode_versioned(&b).unwrap();
        assert_eq!(codec::decode_versioned::<Block>(&bytes).unwrap(), b);
        let empty = Block::seal(1, Hash::ZERO, 10, producer(), vec![], &key(9)).unwrap();
        assert_eq!(empty.header.merkle_root, Hash::ZERO);
        empty.verify().unwrap();
    }

    #[test]
    fn tampering_is_detected() {
        let b = Block::seal(1, Hash::ZERO, 10, producer(), vec![tx(0), tx(1)], &key(9)).unwrap();

        let mut changed_tx = b.clone();
        changed_tx.transactions[1] = tx(2);
        assert!(matches!(
            changed_tx.verify(),
            Err(TypesError::MerkleRootMismatch { .. })
        ));

        let mut dropped_tx = b.clone();
        dropped_tx.transactions.pop();
        assert!(dropped_tx.verify().is_err());

        let mut changed_header = b.clone();
        changed_header.header.timestamp += 1;
        assert!(matches!(
            changed_header.verify(),
            Err(TypesError::BadSignature { what: "block", .. })
        ));

        let mut other_key = b.clone();
        other_key.producer_key = key(8).public_key();
        assert!(other_key.verify().is_err());

        let mut future = b.clone();
        future.header.version = 2;
        let err = future.verify().unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }
}
