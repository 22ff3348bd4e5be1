//! A database's blocks: the signed, hash-chained record of every request
//! (DESIGN §5). Any client can check a block from the block alone
//! ([`SqlBlock::verify`]) and prove that a request is in it
//! ([`SqlBlock::proof`] + [`MerkleProof::verify`]).
//!
//! Header `{version, database, count (block number), height (period
//! number), parent, merkle root, timestamp, producer}`; the leaves are
//! `H(Tag::Request-entry)` of each entry, writes (in log order) then reads.

use serde::{Deserialize, Serialize};

use super::request::SignedRequest;
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{CryptoError, NodeId, PrivateKey, PublicKey, Signature};
use crate::error::ErrorCode;
use crate::hash::{self, Hash, Tag};
use crate::merkle::{MerkleProof, MerkleTree};
use crate::types::DatabaseId;

/// The block format version this build writes.
pub const SQL_BLOCK_VERSION: u16 = 1;

/// The leader's stamp on a write: the time and random seed every replica
/// uses, so replaying the write anywhere gives the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stamp {
    /// The leader's clock when it accepted the write (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// Seed for `random()` / `randomblob()`.
    pub seed: [u8; 32],
}

/// One request in a block, with the digest of what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// The client's signed request.
    pub request: SignedRequest,
    /// `H(Tag::Response, outcome)` of its answer.
    pub response_digest: Hash,
    /// The leader's stamp (writes only).
    pub stamp: Option<Stamp>,
}

impl BlockEntry {
    /// The merkle leaf of this entry: binds request, response and stamp.
    pub fn leaf(&self) -> Result<Hash, CodecError> {
        entry_leaf(&self.request.hash()?, &self.response_digest, &self.stamp)
    }
}

/// An entry's merkle leaf from its parts (the request id, the response
/// digest and the stamp), for whoever holds those without the entry.
pub fn entry_leaf(
    request: &Hash,
    response_digest: &Hash,
    stamp: &Option<Stamp>,
) -> Result<Hash, CodecError> {
    let stamp = codec::encode(stamp)?;
    Ok(hash::hash_parts(
        Tag::SqlEntry,
        &[request.as_bytes(), response_digest.as_bytes(), &stamp],
    ))
}

/// The merkle root of a block whose writes have the leaves `write_leaves`
/// and whose reads are `reads` (equal to the root [`SqlBlock::seal`] computes).
pub fn merkle_root(write_leaves: &[Hash], reads: &[BlockEntry]) -> Result<Hash, CodecError> {
    let mut leaves = Vec::with_capacity(write_leaves.len() + reads.len());
    leaves.extend_from_slice(write_leaves);
    for e in reads {
        leaves.push(e.leaf()?);
    }
    Ok(crate::merkle::merkle_root(&leaves))
}

/// The signed header of a database block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlBlockHeader {
    /// Format version.
    pub version: u16,
    /// The database.
    pub database: DatabaseId,
    /// Block number: 0 for the genesis block, then +1 per block.
    pub count: u64,
    /// Period number: `(timestamp - genesis timestamp) / SQLChainPeriod`.
    pub height: u64,
    /// Hash of the previous block's header (zero for genesis).
    pub parent: Hash,
    /// Merkle root over the entries' leaves.
    pub merkle_root: Hash,
    /// When the block was sealed (ms since the Unix epoch).
    pub timestamp: u64,
    /// The miner that sealed it.
    pub producer: NodeId,
}

impl SqlBlockHeader {
    /// The block hash: `H(Tag::SqlBlock, encode(header))`.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        Ok(hash::hash(Tag::SqlBlock, &codec::encode(self)?))
    }

    fn invalid(&self, what: impl Into<String>) -> BlockError {
        BlockError::Invalid {
            database: self.database.to_hex(),
            count: self.count,
            height: self.height,
            what: what.into(),
        }
    }

    /// Checks the version, the producer's signature over this header and
    /// that `entries_root` (the root over the block's entries) is the
    /// header's merkle root; returns the block hash.
    pub fn verify_signed(
        &self,
        producer_key: &PublicKey,
        signature: &Signature,
        entries_root: &Hash,
    ) -> Result<Hash, BlockError> {
        if self.version != SQL_BLOCK_VERSION {
            return Err(self.invalid(format!(
                "format version {} is not {SQL_BLOCK_VERSION}",
                self.version
            )));
        }
        let hash = self.hash().map_err(|e| BlockError::Encode {
            database: self.database.to_hex(),
            count: self.count,
            reason: e.to_string(),
        })?;
        producer_key
            .verify(&hash, signature)
            .map_err(|e: CryptoError| self.invalid(format!("producer signature: {e}")))?;
        if *entries_root != self.merkle_root {
            return Err(self.invalid(format!(
                "merkle root {} does not match its entries ({entries_root})",
                self.merkle_root
            )));
        }
        Ok(hash)
    }

    /// Checks that this header follows the block numbered `count` at
    /// `height` with hash `hash` (parent hash and numbering).
    pub fn verify_follows(&self, count: u64, height: u64, hash: &Hash) -> Result<(), BlockError> {
        if self.parent != *hash {
            return Err(self.invalid(format!(
                "parent {} is not block {count}'s hash {hash}",
                self.parent
            )));
        }
        if count.checked_add(1) != Some(self.count) {
            return Err(self.invalid(format!("number {} does not follow {count}", self.count)));
        }
        if self.height < height {
            return Err(self.invalid("height goes backwards"));
        }
        Ok(())
    }
}

/// A sealed database block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlBlock {
    /// The header.
    pub header: SqlBlockHeader,
    /// The producer's public key (its node id is checked against it by whoever knows the nonce).
    pub producer_key: PublicKey,
    /// The producer's signature over the header hash.
    pub signature: Signature,
    /// Write requests, in the order they were applied.
    pub writes: Vec<BlockEntry>,
    /// Read requests answered during the block's period.
    pub reads: Vec<BlockEntry>,
}

impl Versioned for SqlBlock {
    const KIND: &'static str = "database block";
    const VERSION: u16 = SQL_BLOCK_VERSION;
}

/// What is wrong with a block; always names the block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block (or an entry) cannot be encoded.
    #[error("block {count} of database {database}: cannot encode: {reason}")]
    Encode {
        /// Database.
        database: String,
        /// Block number.
        count: u64,
        /// Why.
        reason: String,
    },
    /// A check failed.
    #[error("block {count} (height {height}) of database {database}: {what}")]
    Invalid {
        /// Database.
        database: String,
        /// Block number.
        count: u64,
        /// Period number.
        height: u64,
        /// Which check failed and how.
        what: String,
    },
}

impl BlockError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidSqlBlock
    }
}

impl SqlBlock {
    /// Every entry's leaf, writes then reads.
    pub fn leaves(&self) -> Result<Vec<Hash>, CodecError> {
        self.writes
            .iter()
            .chain(&self.reads)
            .map(BlockEntry::leaf)
            .collect()
    }

    /// Builds and signs a block.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        database: DatabaseId,
        count: u64,
        height: u64,
        parent: Hash,
        timestamp: u64,
        writes: Vec<BlockEntry>,
        reads: Vec<BlockEntry>,
        producer: NodeId,
        key: &PrivateKey,
    ) -> Result<SqlBlock, CodecError> {
        let mut block = SqlBlock {
            header: SqlBlockHeader {
                version: SQL_BLOCK_VERSION,
                database,
                count,
                height,
                parent,
                merkle_root: Hash::ZERO,
                timestamp,
                producer,
            },
            producer_key: key.public_key(),
            signature: Signature([0; 64]),
            writes,
            reads,
        };
        block.header.merkle_root = MerkleTree::new(&block.leaves()?).root();
        block.signature = key.sign(&block.header.hash()?);
        Ok(block)
    }

    /// The block hash.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        self.header.hash()
    }

    fn invalid(&self, what: impl Into<String>) -> BlockError {
        self.header.invalid(what)
    }

    /// Checks everything the block alone can show: version, the producer's
    /// signature, the merkle root, and every request's client signature.
    pub fn verify(&self) -> Result<Hash, BlockError> {
        let hash = self.verify_seal()?;
        for (i, e) in self.writes.iter().chain(&self.reads).enumerate() {
            e.request
                .verify()
                .map_err(|err| self.invalid(format!("entry {i}: {err}")))?;
        }
        Ok(hash)
    }

    /// [`Self::verify`] without the client signatures: what a replica checks
    /// on the commit path, leaving those to its background audit (DESIGN §5).
    pub fn verify_seal(&self) -> Result<Hash, BlockError> {
        let enc = |e: CodecError| BlockError::Encode {
            database: self.header.database.to_hex(),
            count: self.header.count,
            reason: e.to_string(),
        };
        let root = crate::merkle::merkle_root(&self.leaves().map_err(enc)?);
        let hash = self
            .header
            .verify_signed(&self.producer_key, &self.signature, &root)?;
        for (i, e) in self.writes.iter().chain(&self.reads).enumerate() {
            if e.request.body.database != self.header.database {
                return Err(self.invalid(format!("entry {i} is for another database")));
            }
        }
        Ok(hash)
    }

    /// Checks that this block follows `previous` (parent hash and numbering).
    pub fn verify_follows(&self, previous: &SqlBlock) -> Result<(), BlockError> {
        let parent = previous.hash().map_err(|e| self.invalid(e.to_string()))?;
        self.header
            .verify_follows(previous.header.count, previous.header.height, &parent)
    }

    /// The position and merkle proof of the request `request_hash` in this block.
    pub fn proof(&self, request_hash: &Hash) -> Option<(usize, MerkleProof)> {
        let index = self
            .writes
            .iter()
            .chain(&self.reads)
            .position(|e| e.request.hash().ok().as_ref() == Some(request_hash))?;
        let leaves = self.leaves().ok()?;
        let proof = MerkleTree::new(&leaves).proof(index)?;
        Some((index, proof))
    }

    /// The entry at `index` (writes then reads).
    pub fn entry(&self, index: usize) -> Option<&BlockEntry> {
        self.writes.iter().chain(&self.reads).nth(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Nonce;
    use crate::sqlchain::query::{Args, Query};
    use crate::sqlchain::request::{QueryKind, RequestBody};

    fn entry(k: &PrivateKey, db: DatabaseId, i: u64) -> BlockEntry {
        let body = RequestBody {
            database: db,
            user: k.public_key().address(),
            timestamp: i,
            sequence: i,
            kind: QueryKind::Write,
            read_level: Default::default(),
            queries: vec![Query {
                sql: format!("INSERT INTO t VALUES ({i})"),
                args: Args::default(),
            }],
        };
        BlockEntry {
            request: SignedRequest::sign(body, k).unwrap(),
            response_digest: hash::hash(Tag::Response, &i.to_le_bytes()),
            stamp: Some(Stamp {
                timestamp_ms: i,
                seed: [i as u8; 32],
            }),
        }
    }

    #[test]
    fn seal_verify_prove_and_tamper() {
        let miner = PrivateKey::generate().unwrap();
        let user = PrivateKey::generate().unwrap();
        let db = DatabaseId(hash::hash(Tag::Message, b"db"));
        let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
        let g = SqlBlock::seal(db, 0, 0, Hash::ZERO, 10, vec![], vec![], producer, &miner).unwrap();
        g.verify().unwrap();
        let writes: Vec<_> = (0..5).map(|i| entry(&user, db, i)).collect();
        let b = SqlBlock::seal(
            db,
            1,
            3,
            g.hash().unwrap(),
            20,
            writes,
            vec![],
            producer,
            &miner,
        )
        .unwrap();
        b.verify().unwrap();
        b.verify_follows(&g).unwrap();
        let id = b.writes[3].request.hash().unwrap();
        let (i, proof) = b.proof(&id).unwrap();
        assert_eq!(i, 3);
        assert!(proof.verify(&b.writes[3].leaf().unwrap(), &b.header.merkle_root));

        let mut bad = b.clone();
        bad.writes[1].response_digest = Hash::ZERO;
        let err = bad.verify().unwrap_err().to_string();
        assert!(
            err.contains("block 1") && err.contains("merkle root"),
            "{err}"
        );
        let mut bad = b.clone();
        bad.header.timestamp += 1;
        assert!(
            bad.verify()
                .unwrap_err()
                .to_string()
                .contains("producer signature")
        );
        let mut bad = b.clone();
        bad.header.parent = Hash::ZERO;
        assert!(bad.verify_follows(&g).is_err());
    }

    #[test]
    fn block_after_the_last_number_is_refused_not_a_panic() {
        // Found by the sql_request_decode fuzz target: `count + 1` overflowed.
        let miner = PrivateKey::generate().unwrap();
        let db = DatabaseId(hash::hash(Tag::Message, b"db"));
        let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
        let seal = |count, parent| {
            SqlBlock::seal(db, count, 0, parent, 10, vec![], vec![], producer, &miner).unwrap()
        };
        let last = seal(u64::MAX, Hash::ZERO);
        let wrapped = seal(0, last.hash().unwrap());
        let err = wrapped.verify_follows(&last).unwrap_err().to_string();
        assert!(err.contains("does not follow"), "{err}");
    }
}
