//! Verifiable history (DESIGN §5, in the manner of immudb's verified reads):
//! [`Database::verify`] fetches a range of the database's blocks and checks
//! each one (for this database, the producer's signature and that it is one
//! of the database's miners, the merkle root recomputed from its entries,
//! every request's signature), the parent links between them, and proves
//! that each write this handle got an answer for is in a block (a merkle
//! path from the entry to the block's root, and the block recording the
//! same answer). Given a [`VerifiedHead`] kept from an earlier run, it also
//! checks that the chain still has that block, so the new head extends it:
//! a miner that rewrites history is caught by any client that keeps one hash.
//!
//! `check` holds the pure checks, `acks` the remembered writes, `head` the
//! head file, `report` the human-readable report. This module only fetches
//! (through the [`Database`] handle's RPC calls) and walks. Must not import
//! node-side modules.

mod acks;
mod check;
mod head;
mod report;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use covenant_core::api::database::{DbHead, GetBlock, GetHead, LocateRequest};
use covenant_core::crypto::NodeId;
use covenant_core::hash::Hash;
use covenant_core::merkle::MerkleProof;
use covenant_core::sqlchain::block::SqlBlock;
use covenant_core::types::DatabaseId;
use futures::{StreamExt as _, TryStreamExt as _};

pub use self::acks::ACK_CAPACITY;
pub(crate) use self::acks::AckLog;
use self::acks::AckedWrite;
use self::check::{Context, check_block, check_link, check_trusted, prove_write};
pub use self::head::{HEAD_FILE_VERSION, VerifiedHead};
use crate::Database;
use crate::error::ClientError;

/// How many blocks (or lookups) are in flight at once.
const IN_FLIGHT: usize = 8;

/// What [`Database::verify`] checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// First block to check (default: the trusted head's block, else block 0).
    pub from: Option<u64>,
    /// Last block to check (default: the current head).
    pub to: Option<u64>,
    /// A head verified before: the checked range is widened to include its
    /// block, which must still have its hash.
    pub trusted: Option<VerifiedHead>,
}

/// What was checked of one block (every check passed: a failure is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCheck {
    /// Block number.
    pub count: u64,
    /// Period number.
    pub height: u64,
    /// Block hash (recomputed from the header).
    pub hash: Hash,
    /// Seal time (ms since the Unix epoch).
    pub timestamp: u64,
    /// The miner that sealed and signed it.
    pub producer: NodeId,
    /// Write entries.
    pub writes: usize,
    /// Read entries.
    pub reads: usize,
    /// Entries signed by this client's account.
    pub yours: usize,
    /// Whether its parent link to the previous block was checked.
    pub parent_checked: bool,
    /// This handle's acknowledged writes proved in it.
    pub writes_proved: usize,
}

/// The proof that one acknowledged write is in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteProof {
    /// The request id.
    pub request: Hash,
    /// The block number.
    pub count: u64,
    /// The entry's position in the block (writes, then reads).
    pub index: u64,
    /// The merkle path from the entry's leaf to the block's root.
    pub proof: MerkleProof,
}

/// What [`Database::verify`] checked; its `Display` is one line per check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The database.
    pub database: DatabaseId,
    /// The miner that gave the head.
    pub miner: NodeId,
    /// The checked range of block numbers (inclusive); `None` when the chain has no block yet.
    pub range: Option<(u64, u64)>,
    /// The blocks of the range, in order, each checked with its parent link.
    pub blocks: Vec<BlockCheck>,
    /// Blocks outside the range checked on their own (the parent of the
    /// first block, and blocks holding acknowledged writes).
    pub others: Vec<BlockCheck>,
    /// The trusted head given, which the checked chain extends.
    pub trusted: Option<VerifiedHead>,
    /// The last checked block of the range: keep it as the next run's trusted head.
    pub head: Option<VerifiedHead>,
    /// Acknowledged writes this handle remembers.
    pub writes_acknowledged: usize,
    /// Proofs of the acknowledged writes found in blocks.
    pub proofs: Vec<WriteProof>,
    /// Acknowledged writes not in a block yet (awaiting the next seal).
    pub writes_unsealed: usize,
    /// Writes the miner reported applied but not yet sealed.
    pub pending_at_miner: u64,
}

impl VerifyReport {
    /// Whether a trusted head was given (and, the report existing, extended).
    pub fn extends_trusted(&self) -> bool {
        self.trusted.is_some()
    }

    /// How many acknowledged writes were proved.
    pub fn writes_proved(&self) -> usize {
        self.proofs.len()
    }
}

/// Where blocks come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The group's leader, with the handle's routing and retries.
    Leader,
    /// One miner, once per call.
    Miner(NodeId),
}

impl Database {
    /// Verifies the database's history as its leader serves it (DESIGN §5,
    /// in the manner of immudb's verified reads).
    ///
    /// Fetches blocks `opts.from..=opts.to` (default: from the trusted
    /// head's block, else 0, to the current head) and checks each: that it
    /// is the block asked for and for this database, its producer's
    /// signature and that the producer is one of the database's miners, its
    /// merkle root recomputed from its entries, every request's signature,
    /// and its parent link (number, hash, height, time) to the block before.
    /// Then proves that each write this handle got an answer for
    /// ([`Database::acknowledged_writes`]) is in a block: the merkle path
    /// from its entry to the block's root, at the place the miner names,
    /// with the answer the client got. With `opts.trusted` (a
    /// [`VerifiedHead`] kept from an earlier run, see
    /// [`VerifyReport::head`]) the range includes the trusted block, which
    /// must still have its hash: the new head extends it.
    ///
    /// A failed check is [`ClientError::Verification`] (naming the block
    /// and the check) or [`ClientError::HistoryRewritten`].
    pub async fn verify(&self, opts: VerifyOptions) -> Result<VerifyReport, ClientError> {
        self.verify_from(Source::Leader, opts).await
    }

    /// [`Database::verify`] against the copy of miner `miner` (one of the
    /// database's), to cross-check a replica.
    pub async fn verify_at(
        &self,
        miner: NodeId,
        opts: VerifyOptions,
    ) -> Result<VerifyReport, ClientError> {
        self.verify_from(Source::Miner(miner), opts).await
    }

    /// The request ids of the writes this handle got answers for (the most
    /// recent [`ACK_CAPACITY`]), oldest first; [`Database::verify`] proves them.
    pub fn acknowledged_writes(&self) -> Vec<Hash> {
        self.acks().requests()
    }

    async fn fetch_head(&self, source: Source) -> Result<DbHead, ClientError> {
        match source {
            Source::Leader => self.head().await,
            Source::Miner(m) => self.call_miner::<GetHead>(m, &self.id()).await,
        }
    }

    async fn fetch_block(
        &self,
        source: Source,
        count: u64,
    ) -> Result<(u64, Option<SqlBlock>), ClientError> {
        let block = match source {
            Source::Leader => self.block(count).await?,
            Source::Miner(m) => self.call_miner::<GetBlock>(m, &(self.id(), count)).await?,
        };
        Ok((count, block))
    }

    async fn locate(
        &self,
        source: Source,
        request: Hash,
        timestamp: u64,
    ) -> Result<(Hash, Option<(u64, u64)>), ClientError> {
        let asked = (self.id(), request, timestamp);
        let at = match source {
            Source::Leader => self.call::<LocateRequest>(&asked).await?,
            Source::Miner(m) => self.call_miner::<LocateRequest>(m, &asked).await?,
        };
        Ok((request, at))
    }

    async fn verify_from(
        &self,
        source: Source,
        opts: VerifyOptions,
    ) -> Result<VerifyReport, ClientError> {
        let id = self.id();
        if let Some(t) = &opts.trusted
            && t.database != id
        {
            return Err(ClientError::InvalidArgument(format!(
                "the trusted head is for database {}, not {}",
                t.database.to_hex(),
                id.to_hex()
            )));
        }
        let ctx = Context {
            database: id,
            miners: &self.profile().miners,
            user: self.client_address(),
        };
        // Writes acknowledged before the head is read are sealed in it or pending.
        let acks = self.acks().snapshot();
        let head = self.fetch_head(source).await?;
        let mut report = VerifyReport {
            database: id,
            miner: head.miner,
            range: None,
            blocks: Vec::new(),
            others: Vec::new(),
            trusted: opts.trusted,
            head: None,
            writes_acknowledged: acks.len(),
            proofs: Vec::new(),
            writes_unsealed: 0,
            pending_at_miner: head.pending,
        };
        let Some(last) = head.head.map(|h| h.count) else {
            if let Some(t) = &opts.trusted {
                return Err(check::shorter_than_trusted(&ctx, t, None));
            }
            report.writes_unsealed = acks.len();
            return Ok(report);
        };
        let (from, to) = plan_range(&ctx, &opts, last)?;

        // Where is each acknowledged write?
        let located = self.locate_all(source, &acks).await?;
        let mut by_block: BTreeMap<u64, Vec<(&AckedWrite, u64)>> = BTreeMap::new();
        for (ack, at) in acks.iter().zip(&located) {
            match at {
                Some((count, index)) => by_block.entry(*count).or_default().push((ack, *index)),
                None => report.writes_unsealed += 1,
            }
        }
        let mut found = HashMap::new();

        // The parent of the first block, checked on its own, anchors the range.
        let mut previous = match from.checked_sub(1) {
            Some(p) => {
                let block = self.need_block(&ctx, source, p).await?;
                let mut c = check_block(&ctx, &block, p)?;
                self.prove_in(&ctx, &block, &mut c, &mut by_block, &mut report, &mut found)?;
                report.others.push(c);
                Some(block)
            }
            None => None,
        };
        let mut blocks = futures::stream::iter(from..=to)
            .map(|n| self.fetch_block(source, n))
            .buffered(IN_FLIGHT);
        while let Some((n, block)) = blocks.try_next().await? {
            let block = block.ok_or_else(|| missing(&ctx, n, last))?;
            let mut c = check_block(&ctx, &block, n)?;
            check_link(&ctx, previous.as_ref(), &block)?;
            c.parent_checked = true;
            if let Some(t) = &opts.trusted
                && t.count == n
            {
                check_trusted(&ctx, t, &c.hash)?;
            }
            self.prove_in(&ctx, &block, &mut c, &mut by_block, &mut report, &mut found)?;
            report.head = Some(VerifiedHead {
                database: id,
                count: n,
                hash: c.hash,
            });
            report.blocks.push(c);
            previous = Some(block);
        }
        drop(blocks);
        report.range = Some((from, to));

        // Writes in blocks outside the range: check those blocks on their own.
        let outside: Vec<u64> = by_block.keys().copied().collect();
        for n in outside {
            let block = self.need_block(&ctx, source, n).await?;
            let mut c = check_block(&ctx, &block, n)?;
            self.prove_in(&ctx, &block, &mut c, &mut by_block, &mut report, &mut found)?;
            report.others.push(c);
        }
        self.acks().set_located(&found);
        Ok(report)
    }

    /// Where each of `acks` is (its remembered place, else asking the miner).
    async fn locate_all(
        &self,
        source: Source,
        acks: &[AckedWrite],
    ) -> Result<Vec<Option<(u64, u64)>>, ClientError> {
        let unknown: Vec<(Hash, u64)> = acks
            .iter()
            .filter(|a| a.located.is_none())
            .map(|a| (a.request, a.timestamp))
            .collect();
        let answers: HashMap<Hash, Option<(u64, u64)>> = futures::stream::iter(unknown)
            .map(|(h, t)| self.locate(source, h, t))
            .buffered(IN_FLIGHT * 2)
            .try_collect()
            .await?;
        Ok(acks
            .iter()
            .map(|a| {
                a.located
                    .or_else(|| answers.get(&a.request).copied().flatten())
            })
            .collect())
    }

    /// Block `n`, which must exist.
    async fn need_block(
        &self,
        ctx: &Context<'_>,
        source: Source,
        n: u64,
    ) -> Result<SqlBlock, ClientError> {
        let (_, block) = self.fetch_block(source, n).await?;
        block.ok_or_else(|| {
            ctx.fail_at(
                n,
                "the miner has no such block although it located a write in it or a later block",
            )
        })
    }

    /// Proves the acknowledged writes located in `block` (checked already).
    fn prove_in(
        &self,
        ctx: &Context<'_>,
        block: &SqlBlock,
        check: &mut BlockCheck,
        by_block: &mut BTreeMap<u64, Vec<(&AckedWrite, u64)>>,
        report: &mut VerifyReport,
        found: &mut HashMap<Hash, (u64, u64)>,
    ) -> Result<(), ClientError> {
        let Some(writes) = by_block.remove(&block.header.count) else {
            return Ok(());
        };
        for (ack, index) in writes {
            let proof = prove_write(ctx, block, ack, index)?;
            found.insert(proof.request, (proof.count, proof.index));
            check.writes_proved += 1;
            report.proofs.push(proof);
        }
        Ok(())
    }
}

/// The inclusive range to walk, widened to hold the trusted head's block.
fn plan_range(
    ctx: &Context<'_>,
    opts: &VerifyOptions,
    last: u64,
) -> Result<(u64, u64), ClientError> {
    let mut to = opts.to.unwrap_or(last);
    if to > last {
        return Err(ClientError::InvalidArgument(format!(
            "cannot verify up to block {to}: the chain's head is block {last}"
        )));
    }
    let mut from = opts
        .from
        .unwrap_or_else(|| opts.trusted.map_or(0, |t| t.count));
    if let Some(t) = &opts.trusted {
        if t.count > last {
            return Err(check::shorter_than_trusted(ctx, t, Some(last)));
        }
        from = from.min(t.count);
        to = to.max(t.count);
    }
    if from > to {
        return Err(ClientError::InvalidArgument(format!(
            "the first block to verify ({from}) is after the last ({to})"
        )));
    }
    Ok((from, to))
}

/// The failure when the miner has no block `n` at or before its head `last`.
fn missing(ctx: &Context<'_>, n: u64, last: u64) -> ClientError {
    ctx.fail_at(
        n,
        format!("the miner has no such block although its head is block {last}"),
    )
}
