//! The checks `verify` runs, as pure functions over blocks: one block on
//! its own ([`check_block`]), the link between two ([`check_link`]), a
//! trusted head ([`check_trusted`]) and an acknowledged write's merkle path
//! ([`prove_write`]). Every failure is a [`ClientError::Verification`] or
//! [`ClientError::HistoryRewritten`] that names the block and the check.
//! No network here: the walk that fetches blocks is in `verify`.

use covenant_core::crypto::Address;
use covenant_core::hash::Hash;
use covenant_core::sqlchain::block::{BlockError, SqlBlock};
use covenant_core::types::{DatabaseId, MinerAssignment};

use super::acks::AckedWrite;
use super::{BlockCheck, VerifiedHead, WriteProof};
use crate::error::ClientError;

/// What every block is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The database the blocks must be for.
    pub(crate) database: DatabaseId,
    /// The database's miners, from the main chain.
    pub(crate) miners: &'a [MinerAssignment],
    /// This client's account, to count its requests.
    pub(crate) user: Address,
}

impl Context<'_> {
    fn fail(&self, block: &SqlBlock, what: impl Into<String>) -> ClientError {
        ClientError::Verification {
            database: self.database.to_hex(),
            count: block.header.count,
            height: Some(block.header.height),
            what: what.into(),
        }
    }

    /// A failure about block `count`, which could not be read.
    pub(crate) fn fail_at(&self, count: u64, what: impl Into<String>) -> ClientError {
        ClientError::Verification {
            database: self.database.to_hex(),
            count,
            height: None,
            what: what.into(),
        }
    }

    fn rewritten(&self, trusted: &VerifiedHead, what: impl Into<String>) -> ClientError {
        ClientError::HistoryRewritten {
            database: self.database.to_hex(),
            count: trusted.count,
            hash: trusted.hash,
            what: what.into(),
        }
    }
}

/// The `what` of a core block error.
fn what_of(e: BlockError) -> String {
    match e {
        BlockError::Invalid { what, .. } => what,
        BlockError::Encode { reason, .. } => format!("cannot be encoded: {reason}"),
    }
}

/// Checks `block`, which the miner gave as block `expected`, on its own: its
/// number, that it is for this database, its format version, the producer's
/// signature and that the producer is one of the database's miners, the
/// merkle root recomputed from its entries, and every request's signature.
pub(crate) fn check_block(
    ctx: &Context<'_>,
    block: &SqlBlock,
    expected: u64,
) -> Result<BlockCheck, ClientError> {
    let h = &block.header;
    if h.count != expected {
        return Err(ctx.fail_at(
            expected,
            format!("the miner answered block {} when asked for it", h.count),
        ));
    }
    if h.database != ctx.database {
        return Err(ctx.fail(
            block,
            format!(
                "it belongs to database {}, not this one",
                h.database.to_hex()
            ),
        ));
    }
    let hash = block.verify().map_err(|e| ctx.fail(block, what_of(e)))?;
    let Some(miner) = ctx.miners.iter().find(|m| m.node_id == h.producer) else {
        return Err(ctx.fail(
            block,
            format!(
                "producer: it was sealed by node {}, which is not one of the database's miners",
                h.producer
            ),
        ));
    };
    let signer = block.producer_key.address();
    if signer != miner.address {
        return Err(ctx.fail(
            block,
            format!(
                "producer signature: made with the key of account {signer}, \
                 not miner {}'s (account {})",
                h.producer, miner.address
            ),
        ));
    }
    let yours = block
        .writes
        .iter()
        .chain(&block.reads)
        .filter(|e| e.request.body.user == ctx.user)
        .count();
    Ok(BlockCheck {
        count: h.count,
        height: h.height,
        hash,
        timestamp: h.timestamp,
        producer: h.producer,
        writes: block.writes.len(),
        reads: block.reads.len(),
        yours,
        parent_checked: false,
        writes_proved: 0,
    })
}

/// Checks that `block` follows `previous` (parent hash, number, height,
/// time), or, without a previous block, that block 0 has no parent.
pub(crate) fn check_link(
    ctx: &Context<'_>,
    previous: Option<&SqlBlock>,
    block: &SqlBlock,
) -> Result<(), ClientError> {
    let Some(previous) = previous else {
        if block.header.count == 0 && block.header.parent != Hash::ZERO {
            return Err(ctx.fail(
                block,
                format!(
                    "parent link: the first block names parent {} instead of none",
                    block.header.parent
                ),
            ));
        }
        return Ok(());
    };
    block.verify_follows(previous).map_err(|e| {
        let what = what_of(e);
        ctx.fail(block, format!("parent link: {what}"))
    })?;
    if block.header.timestamp < previous.header.timestamp {
        return Err(ctx.fail(
            block,
            format!(
                "parent link: sealed at {} ms, before block {} ({} ms)",
                block.header.timestamp, previous.header.count, previous.header.timestamp
            ),
        ));
    }
    Ok(())
}

/// Checks that the chain's block `trusted.count` (given with its hash) is the trusted head.
pub(crate) fn check_trusted(
    ctx: &Context<'_>,
    trusted: &VerifiedHead,
    hash: &Hash,
) -> Result<(), ClientError> {
    if *hash != trusted.hash {
        return Err(ctx.rewritten(
            trusted,
            format!(
                "its block {} now has hash {hash}, a different block",
                trusted.count
            ),
        ));
    }
    Ok(())
}

/// The failure when the chain's head is older than the trusted head.
pub(crate) fn shorter_than_trusted(
    ctx: &Context<'_>,
    trusted: &VerifiedHead,
    head: Option<u64>,
) -> ClientError {
    let what = match head {
        Some(c) => format!("its head is block {c}, before the trusted block"),
        None => "it has no block at all".to_string(),
    };
    ctx.rewritten(trusted, what)
}

/// Proves that the acknowledged write `ack` is in `block` (already checked):
/// its merkle path from the entry to the block's root, at the position the
/// miner located it, recording the answer the client got.
pub(crate) fn prove_write(
    ctx: &Context<'_>,
    block: &SqlBlock,
    ack: &AckedWrite,
    located_index: u64,
) -> Result<WriteProof, ClientError> {
    let Some((index, proof)) = block.proof(&ack.request) else {
        return Err(ctx.fail(
            block,
            format!(
                "acknowledged write {} is not in it, although the miner says it is",
                ack.request
            ),
        ));
    };
    if index as u64 != located_index {
        return Err(ctx.fail(
            block,
            format!(
                "acknowledged write {} is entry {index}, not entry {located_index} where the miner \
                 located it",
                ack.request
            ),
        ));
    }
    let Some(entry) = block.entry(index) else {
        return Err(ctx.fail(block, format!("entry {index} is missing")));
    };
    let leaf = entry
        .leaf()
        .map_err(|e| ctx.fail(block, format!("entry {index} cannot be encoded: {e}")))?;
    if !proof.verify(&leaf, &block.header.merkle_root) {
        return Err(ctx.fail(
            block,
            format!(
                "merkle path of acknowledged write {} does not lead to the block's root",
                ack.request
            ),
        ));
    }
    if let Some(digest) = ack.response_digest
        && entry.response_digest != digest
    {
        return Err(ctx.fail(
            block,
            format!(
                "acknowledged write {}: the block records another answer than the one this client \
                 got",
                ack.request
            ),
        ));
    }
    Ok(WriteProof {
        request: ack.request,
        count: block.header.count,
        index: index as u64,
        proof,
    })
}
