//! Signed query requests and their responses (DESIGN §5).
//!
//! A client signs `{database, user, timestamp, sequence, read|write,
//! queries}`; the request's hash (`H(Tag::Request, encode(body))`) is its id,
//! carried back in the response so the client can later find it in a block.

use serde::{Deserialize, Serialize};

use super::query::{Query, QueryResult};
use crate::codec::{self, CodecError, Versioned};
use crate::crypto::{Address, CryptoError, PrivateKey, PublicKey, Signature};
use crate::error::ErrorCode;
use crate::hash::{self, Hash, Tag};
use crate::types::DatabaseId;

/// Whether a request only reads or may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueryKind {
    /// Runs read-only on one replica; a write statement in it is refused.
    Read,
    /// Replicated through the database's log; may hold any statement.
    Write,
}

/// How fresh a read must be (in the spirit of rqlite's levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReadLevel {
    /// Served by the leader after confirming it still leads (read index):
    /// sees every write acknowledged before the read began.
    #[default]
    Linearizable,
    /// Served by the node that believes it leads, without confirming: may
    /// miss writes acknowledged by a newer leader during a partition.
    Leader,
    /// Served by any replica from its local state, which may lag the leader
    /// by at most `max_lag_ms` since it last heard from it; possibly stale.
    Replica {
        /// Largest acceptable time since the replica last heard from its leader.
        max_lag_ms: u64,
    },
}

/// The signed part of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestBody {
    /// The database addressed.
    pub database: DatabaseId,
    /// The user's wallet address; must be the signer's.
    pub user: Address,
    /// When the client made it (ms since the Unix epoch); must be within the miner's `MaxReqTimeGap`.
    pub timestamp: u64,
    /// The client's own counter, so two identical queries sent in the same millisecond differ.
    pub sequence: u64,
    /// Read or write.
    pub kind: QueryKind,
    /// For reads: how fresh the answer must be (ignored for writes).
    pub read_level: ReadLevel,
    /// The statements, run as one atomic transaction.
    pub queries: Vec<Query>,
}

impl RequestBody {
    /// The request id: `H(Tag::Request, encode(self))`.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        Ok(hash::hash(Tag::Request, &codec::encode(self)?))
    }
}

/// A request with the user's signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// What is asked.
    pub body: RequestBody,
    /// The signer's key; its address must equal `body.user`.
    pub public_key: PublicKey,
    /// Signature over the request id.
    pub signature: Signature,
}

impl Versioned for SignedRequest {
    const KIND: &'static str = "query request";
    const VERSION: u16 = 1;
}

/// Why a request was refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request could not be encoded or decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The signature does not verify over the request.
    #[error("the request signature does not verify")]
    BadSignature,
    /// The request was signed by a key that is not the user's.
    #[error("the request is for user {user} but was signed by {signer}'s key")]
    WrongSigner {
        /// The claimed user.
        user: Address,
        /// The signer's address.
        signer: Address,
    },
    /// The request's timestamp is too far from the miner's clock.
    #[error(
        "the request was signed at {timestamp} ms but this miner's clock says {now} ms; \
         more than {max_gap_ms} ms apart (check the client's clock)"
    )]
    StaleTimestamp {
        /// The request's timestamp.
        timestamp: u64,
        /// The miner's time.
        now: u64,
        /// The allowed gap.
        max_gap_ms: u64,
    },
    /// The request holds no statement.
    #[error("the request holds no statement")]
    Empty,
}

impl RequestError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::BadSignature | RequestError::WrongSigner { .. } => {
                ErrorCode::BadSignature
            }
            RequestError::StaleTimestamp { .. } => ErrorCode::StaleRequest,
            _ => ErrorCode::InvalidArgument,
        }
    }
}

impl SignedRequest {
    /// Roughly how many bytes the request takes encoded (SQL, arguments and
    /// a fixed allowance for the rest): for sizing batches and blocks.
    pub fn size_hint(&self) -> usize {
        self.body
            .queries
            .iter()
            .map(|q| {
                q.sql.len()
                    + match &q.args {
                        super::query::Args::Positional(vs) => {
                            vs.iter().map(|v| v.size_hint()).sum::<usize>()
                        }
                        super::query::Args::Named(vs) => {
                            vs.iter().map(|(k, v)| k.len() + v.size_hint()).sum()
                        }
                    }
            })
            .sum::<usize>()
            + 200
    }

    /// Signs `body` with `key`.
    pub fn sign(body: RequestBody, key: &PrivateKey) -> Result<SignedRequest, CodecError> {
        Ok(SignedRequest::sign_hashed(body, key)?.0)
    }

    /// Signs `body` with `key`; also returns the request id, which signing computed.
    pub fn sign_hashed(
        body: RequestBody,
        key: &PrivateKey,
    ) -> Result<(SignedRequest, Hash), CodecError> {
        let id = body.hash()?;
        let request = SignedRequest {
            signature: key.sign(&id),
            public_key: key.public_key(),
            body,
        };
        Ok((request, id))
    }

    /// The request id.
    pub fn hash(&self) -> Result<Hash, CodecError> {
        self.body.hash()
    }

    /// Checks the signature and that the signer is the user; returns the id.
    pub fn verify(&self) -> Result<Hash, RequestError> {
        let id = self
            .hash()
            .map_err(|e| RequestError::Malformed(e.to_string()))?;
        self.verify_as(id)
    }

    /// [`SignedRequest::verify`] given the request id, which the caller
    /// computed from this very body (hashing a large body costs more than
    /// the rest of the check).
    pub fn verify_as(&self, id: Hash) -> Result<Hash, RequestError> {
        let signer = self.public_key.address();
        if signer != self.body.user {
            return Err(RequestError::WrongSigner {
                user: self.body.user,
                signer,
            });
        }
        self.public_key
            .verify(&id, &self.signature)
            .map_err(|e: CryptoError| match e {
                CryptoError::BadSignature => RequestError::BadSignature,
                _ => RequestError::BadSignature,
            })?;
        if self.body.queries.is_empty() {
            return Err(RequestError::Empty);
        }
        Ok(id)
    }

    /// Checks the timestamp against `now_ms` within `max_gap_ms` either way.
    pub fn check_time(&self, now_ms: u64, max_gap_ms: u64) -> Result<(), RequestError> {
        if self.body.timestamp.abs_diff(now_ms) > max_gap_ms {
            return Err(RequestError::StaleTimestamp {
                timestamp: self.body.timestamp,
                now: now_ms,
                max_gap_ms,
            });
        }
        Ok(())
    }
}

/// How a request ended: one result per statement, or the error that undid it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Every statement ran; results in statement order.
    Ok(Vec<QueryResult>),
    /// Nothing changed, for this reason.
    Failed {
        /// The stable [`ErrorCode`] number.
        code: u32,
        /// SQLite's or the miner's message.
        message: String,
    },
}

impl Outcome {
    /// `H(Tag::Response, encode(self))`: what the block records.
    pub fn digest(&self) -> Result<Hash, CodecError> {
        Ok(Outcome::digest_of(&codec::encode(self)?))
    }

    /// The digest of the outcome whose encoding is `encoded`.
    pub fn digest_of(encoded: &[u8]) -> Hash {
        hash::hash(Tag::Response, encoded)
    }
}

/// What a miner answers to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    /// The request id, to find it in a block later.
    pub request_hash: Hash,
    /// Results or the error.
    pub outcome: Outcome,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlchain::query::Args;

    fn body(user: Address) -> RequestBody {
        RequestBody {
            database: DatabaseId(hash::hash(Tag::Message, b"db")),
            user,
            timestamp: 1_000,
            sequence: 1,
            kind: QueryKind::Write,
            read_level: ReadLevel::default(),
            queries: vec![Query {
                sql: "INSERT INTO t VALUES (?)".into(),
                args: Args::Positional(vec![crate::sqlchain::value::Value::Integer(1)]),
            }],
        }
    }

    #[test]
    fn sign_verify_and_refusals() {
        let k = PrivateKey::generate().unwrap();
        let req = SignedRequest::sign(body(k.public_key().address()), &k).unwrap();
        assert_eq!(req.verify().unwrap(), req.hash().unwrap());
        // Tampered SQL.
        let mut bad = req.clone();
        bad.body.queries[0].sql.push(' ');
        assert_eq!(bad.verify(), Err(RequestError::BadSignature));
        // Signing returns the id; checking with it or with a wrong one.
        let (again, id) = SignedRequest::sign_hashed(body(k.public_key().address()), &k).unwrap();
        assert_eq!((again.clone(), id), (req.clone(), req.hash().unwrap()));
        assert_eq!(req.verify_as(id), Ok(id));
        assert_eq!(
            req.verify_as(bad.hash().unwrap()),
            Err(RequestError::BadSignature)
        );
        // Signed by someone else for this user.
        let other = PrivateKey::generate().unwrap();
        let forged = SignedRequest::sign(body(k.public_key().address()), &other).unwrap();
        assert!(matches!(
            forged.verify(),
            Err(RequestError::WrongSigner { .. })
        ));
        // Time gap.
        req.check_time(1_500, 1_000).unwrap();
        assert!(matches!(
            req.check_time(5_000, 1_000),
            Err(RequestError::StaleTimestamp { .. })
        ));
        // Round trip through the versioned codec.
        let bytes = codec::encode_versioned(&req).unwrap();
        assert_eq!(
            codec::decode_versioned::<SignedRequest>(&bytes).unwrap(),
            req
        );
    }
}
