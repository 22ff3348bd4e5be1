//! Signed query requests, database blocks and merkle proofs, as miners and
//! clients receive them from each other: decoding and every check must
//! return a typed error or a value, never panic; whatever decodes has a
//! stable canonical encoding; a block sealed from fuzzed contents verifies, and every
//! proof it gives verifies.
//!
//! Input: `[selector][bytes]`; `selector % 6` picks
//! - 0: `decode_versioned::<SignedRequest>`, then `verify`, `check_time`;
//! - 1: `decode_versioned::<SqlBlock>`, then `verify`, `leaves`, `proof`;
//! - 2: `codec::decode::<RequestBody>`, signed by a fixture key: must verify;
//! - 3: a decoded block with every request re-signed and the block resealed:
//!   must verify, and each entry's proof must check against the root;
//! - 4: `[leaf 32][root 32][versioned MerkleProof]`: `MerkleProof::verify`;
//! - 5: `[n: u16 LE][block A: n bytes][block B]`, B's parent set to A's hash:
//!   `B.verify_follows(&A)`.
#![no_main]

use covenant_core::codec;
use covenant_core::hash::Hash;
use covenant_core::merkle::{MerkleProof, MerkleTree};
use covenant_core::sqlchain::block::SqlBlock;
use covenant_core::sqlchain::query::Query;
use covenant_core::sqlchain::request::{RequestBody, RequestError, SignedRequest};
use covenant_fuzz::canonical::decode_versioned as decode;
use covenant_fuzz::chain;
use libfuzzer_sys::fuzz_target;

fn check_request(r: &SignedRequest) {
    let describe = |e: &RequestError| {
        let _ = e.code();
        assert!(!e.to_string().is_empty());
    };
    if let Err(e) = r.verify() {
        describe(&e);
    }
    let t = r.body.timestamp;
    for (now, gap) in [
        (0, 0),
        (u64::MAX, u64::MAX),
        (t, 0),
        (1_700_000_000_000, 5_000),
    ] {
        match r.check_time(now, gap) {
            Ok(()) => assert!(t.abs_diff(now) <= gap),
            Err(e) => describe(&e),
        }
    }
}

/// Every proof the block gives must verify against the root of its leaves.
fn check_proofs(block: &SqlBlock) {
    let Ok(leaves) = block.leaves() else { return };
    let root = MerkleTree::new(&leaves).root();
    for e in block.writes.iter().chain(&block.reads) {
        let Ok(id) = e.request.hash() else { continue };
        let (index, proof) = block.proof(&id).expect("an entry's request has a proof");
        let leaf = leaves.get(index).expect("the proof's index is a leaf");
        assert!(
            proof.verify(leaf, &root),
            "a block's own proof does not verify"
        );
    }
    let _ = block.proof(&Hash::ZERO);
}

fn check_block(block: &SqlBlock) {
    if let Err(e) = block.verify() {
        let _ = e.code();
        assert!(!e.to_string().is_empty());
    }
    for i in 0..block.writes.len() + block.reads.len() + 1 {
        let _ = block.entry(i);
    }
    check_proofs(block);
}

/// Re-signs every request (user, database) and reseals: the result must verify.
fn reseal(block: SqlBlock) {
    let h = &block.header;
    let database = h.database;
    let resign = |entries: Vec<_>| -> Vec<_> {
        entries
            .into_iter()
            .enumerate()
            .filter_map(
                |(i, mut e): (usize, covenant_core::sqlchain::block::BlockEntry)| {
                    let key = chain::key(u8::try_from(i % 256).unwrap_or(0));
                    let mut body = e.request.body;
                    body.database = database;
                    body.user = key.public_key().address();
                    if body.queries.is_empty() {
                        body.queries.push(Query::new("SELECT 1"));
                    }
                    e.request = SignedRequest::sign(body, &key).ok()?;
                    Some(e)
                },
            )
            .collect()
    };
    let (writes, reads) = (resign(block.writes), resign(block.reads));
    let Ok(sealed) = SqlBlock::seal(
        database,
        h.count,
        h.height,
        h.parent,
        h.timestamp,
        writes,
        reads,
        h.producer,
        &chain::bp_key(),
    ) else {
        return;
    };
    if let Err(e) = sealed.verify() {
        panic!("a freshly sealed block does not verify: {e}");
    }
    let bytes = codec::encode_versioned(&sealed).expect("a sealed block encodes");
    let _ = decode::<SqlBlock>(&bytes).expect("a sealed block decodes");
    check_proofs(&sealed);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => {
            if let Some(r) = decode::<SignedRequest>(rest) {
                check_request(&r);
            }
        }
        1 => {
            if let Some(b) = decode::<SqlBlock>(rest) {
                check_block(&b);
            }
        }
        2 => {
            let Ok(mut body) = codec::decode::<RequestBody>(rest) else {
                return;
            };
            let key = chain::key(rest.first().copied().unwrap_or(0));
            body.user = key.public_key().address();
            let empty = body.queries.is_empty();
            let signed = SignedRequest::sign(body, &key).expect("a decoded body signs");
            match signed.verify() {
                Ok(id) => {
                    assert!(!empty);
                    assert_eq!(Some(id), signed.hash().ok());
                }
                Err(e) => assert!(empty && e == RequestError::Empty, "{e}"),
            }
            let bytes = codec::encode_versioned(&signed).expect("a signed request encodes");
            let back = decode::<SignedRequest>(&bytes).expect("a signed request decodes");
            assert_eq!(
                back.verify().is_ok(),
                !empty,
                "a decoded signed request verifies"
            );
            check_request(&back);
        }
        3 => {
            if let Some(b) = decode::<SqlBlock>(rest) {
                reseal(b);
            }
        }
        4 => {
            let (Some(leaf), Some(root), Some(proof)) = (
                rest.get(..32).and_then(|b| <[u8; 32]>::try_from(b).ok()),
                rest.get(32..64).and_then(|b| <[u8; 32]>::try_from(b).ok()),
                rest.get(64..),
            ) else {
                return;
            };
            if let Some(p) = decode::<MerkleProof>(proof) {
                let _ = p.verify(&Hash(leaf), &Hash(root));
            }
        }
        _ => {
            let Some((len, blocks)) = rest.split_first_chunk::<2>() else {
                return;
            };
            let (a, b) = blocks.split_at(usize::from(u16::from_le_bytes(*len)).min(blocks.len()));
            let (Some(prev), Some(mut next)) = (decode::<SqlBlock>(a), decode::<SqlBlock>(b))
            else {
                return;
            };
            if let Ok(parent) = prev.hash() {
                next.header.parent = parent;
            }
            match next.verify_follows(&prev) {
                Ok(()) => {
                    assert_eq!(prev.header.count.checked_add(1), Some(next.header.count));
                    assert!(next.header.height >= prev.header.height);
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
});
