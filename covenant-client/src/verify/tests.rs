//! The verification checks on hand-made chains, honest and tampered.

use covenant_core::crypto::{Nonce, PrivateKey};
use covenant_core::hash::{Tag, hash};
use covenant_core::sqlchain::block::{BlockEntry, Stamp};
use covenant_core::sqlchain::query::{Args, Query};
use covenant_core::sqlchain::request::{Outcome, QueryKind, ReadLevel, RequestBody, SignedRequest};
use covenant_core::types::MinerAssignment;

use super::*;

struct Chain {
    db: DatabaseId,
    miner: PrivateKey,
    producer: NodeId,
    user: PrivateKey,
    miners: Vec<MinerAssignment>,
    blocks: Vec<SqlBlock>,
    outcomes: HashMap<Hash, Outcome>,
}

impl Chain {
    fn new() -> Chain {
        let miner = PrivateKey::generate().unwrap();
        let producer = NodeId::compute(&miner.public_key(), &Nonce::default());
        let miners = vec![MinerAssignment {
            address: miner.public_key().address(),
            node_id: producer,
            deposit: 0,
        }];
        let mut c = Chain {
            db: DatabaseId(hash(Tag::Message, b"db")),
            miner,
            producer,
            user: PrivateKey::generate().unwrap(),
            miners,
            blocks: Vec::new(),
            outcomes: HashMap::new(),
        };
        c.push(0);
        c
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            database: self.db,
            miners: &self.miners,
            user: self.user.public_key().address(),
        }
    }

    /// Seals the next block with `writes` writes by the user.
    fn push(&mut self, writes: u64) {
        let count = self.blocks.len() as u64;
        let parent = self.blocks.last().map_or(Hash::ZERO, |b| b.hash().unwrap());
        let entries = (0..writes)
            .map(|i| {
                let body = RequestBody {
                    database: self.db,
                    user: self.user.public_key().address(),
                    timestamp: count * 100 + i,
                    sequence: count * 100 + i,
                    kind: QueryKind::Write,
                    read_level: ReadLevel::default(),
                    queries: vec![Query {
                        sql: format!("INSERT INTO t VALUES ({i})"),
                        args: Args::default(),
                    }],
                };
                let request = SignedRequest::sign(body, &self.user).unwrap();
                let outcome = Outcome::Ok(vec![]);
                let e = BlockEntry {
                    response_digest: outcome.digest().unwrap(),
                    request,
                    stamp: Some(Stamp::default()),
                };
                self.outcomes.insert(e.request.hash().unwrap(), outcome);
                e
            })
            .collect();
        let block = SqlBlock::seal(
            self.db,
            count,
            count * 2,
            parent,
            1_000 + count,
            entries,
            vec![],
            self.producer,
            &self.miner,
        )
        .unwrap();
        self.blocks.push(block);
    }

    fn ack(&self, count: usize, index: usize) -> AckedWrite {
        let signed = &self.blocks[count].writes[index].request;
        let request = signed.hash().unwrap();
        let log = AckLog::default();
        log.record(request, signed.body.timestamp, &self.outcomes[&request]);
        log.snapshot().remove(0)
    }

    /// Checks every block with its link, as the walk does.
    fn check_all(&self) -> Result<(), ClientError> {
        let ctx = self.ctx();
        let mut prev = None;
        for (n, b) in self.blocks.iter().enumerate() {
            check_block(&ctx, b, n as u64)?;
            check_link(&ctx, prev, b)?;
            prev = Some(b);
        }
        Ok(())
    }
}

fn verification(e: ClientError) -> (u64, String) {
    match e {
        ClientError::Verification { count, what, .. } => (count, what),
        other => panic!("not a verification failure: {other}"),
    }
}

#[test]
fn an_honest_chain_verifies_and_proves_every_write() {
    let mut c = Chain::new();
    c.push(3);
    c.push(5);
    c.check_all().unwrap();
    let ctx = c.ctx();
    let check = check_block(&ctx, &c.blocks[2], 2).unwrap();
    assert_eq!((check.writes, check.reads, check.yours), (5, 0, 5));
    for i in 0..5 {
        let p = prove_write(&ctx, &c.blocks[2], &c.ack(2, i), i as u64).unwrap();
        assert_eq!((p.count, p.index), (2, i as u64));
        let leaf = c.blocks[2].writes[i].leaf().unwrap();
        assert!(p.proof.verify(&leaf, &c.blocks[2].header.merkle_root));
    }
}

#[test]
fn an_altered_entry_fails_the_merkle_root_and_names_the_block() {
    let mut c = Chain::new();
    c.push(3);
    c.push(2);
    c.blocks[1].writes[1].request.body.queries[0].sql = "DROP TABLE t".into();
    let (count, what) = verification(c.check_all().unwrap_err());
    assert_eq!(count, 1);
    assert!(what.contains("merkle root"), "{what}");
    let text = check_block(&c.ctx(), &c.blocks[1], 1)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("block 1 (height 2)") && text.contains("altered or is corrupt"),
        "{text}"
    );
}

#[test]
fn an_altered_header_fails_the_producer_signature() {
    let mut c = Chain::new();
    c.push(1);
    c.blocks[1].header.timestamp += 1;
    let (count, what) = verification(c.check_all().unwrap_err());
    assert_eq!(count, 1);
    assert!(what.contains("producer signature"), "{what}");
}

#[test]
fn a_block_resealed_by_an_outsider_is_refused() {
    let mut c = Chain::new();
    c.push(1);
    let outsider = PrivateKey::generate().unwrap();
    let b = &c.blocks[1];
    // Signed by another key, claiming the real producer.
    let forged = SqlBlock::seal(
        c.db,
        1,
        b.header.height,
        b.header.parent,
        b.header.timestamp,
        b.writes.clone(),
        vec![],
        c.producer,
        &outsider,
    )
    .unwrap();
    let (_, what) = verification(check_block(&c.ctx(), &forged, 1).unwrap_err());
    assert!(
        what.contains("producer signature") && what.contains("not miner"),
        "{what}"
    );
    // Sealed by a node that is not a miner of the database.
    let stranger = NodeId::compute(&outsider.public_key(), &Nonce::default());
    let forged = SqlBlock::seal(
        c.db,
        1,
        2,
        b.header.parent,
        5,
        vec![],
        vec![],
        stranger,
        &outsider,
    )
    .unwrap();
    let (_, what) = verification(check_block(&c.ctx(), &forged, 1).unwrap_err());
    assert!(what.contains("not one of the database's miners"), "{what}");
}

#[test]
fn wrong_database_number_and_parent_are_refused() {
    let mut c = Chain::new();
    c.push(1);
    c.push(1);
    let ctx = c.ctx();
    let (count, what) = verification(check_block(&ctx, &c.blocks[2], 1).unwrap_err());
    assert_eq!(count, 1);
    assert!(what.contains("answered block 2"), "{what}");

    let other = DatabaseId(hash(Tag::Message, b"other"));
    let foreign = SqlBlock::seal(
        other,
        1,
        0,
        Hash::ZERO,
        1,
        vec![],
        vec![],
        c.producer,
        &c.miner,
    )
    .unwrap();
    let (_, what) = verification(check_block(&ctx, &foreign, 1).unwrap_err());
    assert!(what.contains("belongs to database"), "{what}");

    // Block 2 re-sealed (validly signed) on a different parent: the link breaks.
    let b = &c.blocks[2];
    let fork = SqlBlock::seal(
        c.db,
        2,
        b.header.height,
        hash(Tag::Message, b"elsewhere"),
        b.header.timestamp,
        b.writes.clone(),
        vec![],
        c.producer,
        &c.miner,
    )
    .unwrap();
    check_block(&ctx, &fork, 2).unwrap();
    let (count, what) = verification(check_link(&ctx, Some(&c.blocks[1]), &fork).unwrap_err());
    assert_eq!(count, 2);
    assert!(what.starts_with("parent link"), "{what}");
    // A first block naming a parent.
    let g = SqlBlock::seal(
        c.db,
        0,
        0,
        hash(Tag::Message, b"x"),
        1,
        vec![],
        vec![],
        c.producer,
        &c.miner,
    )
    .unwrap();
    let (_, what) = verification(check_link(&ctx, None, &g).unwrap_err());
    assert!(what.contains("first block"), "{what}");
}

#[test]
fn a_proof_needs_the_write_at_its_place_with_the_same_answer() {
    let mut c = Chain::new();
    c.push(3);
    c.push(1);
    let ctx = c.ctx();
    let ack = c.ack(1, 2);
    // Not in the block the miner named.
    let (count, what) = verification(prove_write(&ctx, &c.blocks[2], &ack, 0).unwrap_err());
    assert_eq!(count, 2);
    assert!(what.contains("is not in it"), "{what}");
    // At another position than located.
    let (_, what) = verification(prove_write(&ctx, &c.blocks[1], &ack, 0).unwrap_err());
    assert!(what.contains("not entry 0"), "{what}");
    // The block records another answer than the client got.
    let mut lied = ack.clone();
    lied.response_digest = Some(
        Outcome::Failed {
            code: 1,
            message: "x".into(),
        }
        .digest()
        .unwrap(),
    );
    let (_, what) = verification(prove_write(&ctx, &c.blocks[1], &lied, 2).unwrap_err());
    assert!(what.contains("another answer"), "{what}");
}

#[test]
fn ranges_and_trusted_heads() {
    let mut c = Chain::new();
    for _ in 0..5 {
        c.push(1);
    }
    let ctx = c.ctx();
    let opts = |from, to, trusted| VerifyOptions { from, to, trusted };
    assert_eq!(
        plan_range(&ctx, &opts(None, None, None), 5).unwrap(),
        (0, 5)
    );
    assert_eq!(
        plan_range(&ctx, &opts(Some(2), Some(3), None), 5).unwrap(),
        (2, 3)
    );
    let trusted = VerifiedHead {
        database: c.db,
        count: 4,
        hash: c.blocks[4].hash().unwrap(),
    };
    // A trusted head starts the walk, and widens a range that misses it.
    assert_eq!(
        plan_range(&ctx, &opts(None, None, Some(trusted)), 5).unwrap(),
        (4, 5)
    );
    assert_eq!(
        plan_range(&ctx, &opts(Some(1), Some(2), Some(trusted)), 5).unwrap(),
        (1, 4)
    );
    assert!(matches!(
        plan_range(&ctx, &opts(None, Some(9), None), 5),
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        plan_range(&ctx, &opts(Some(4), Some(3), None), 5),
        Err(ClientError::InvalidArgument(_))
    ));
    // A chain shorter than the trusted head was rolled back.
    let e = plan_range(&ctx, &opts(None, None, Some(trusted)), 3).unwrap_err();
    assert!(e.is(covenant_core::ErrorCode::HistoryRewritten), "{e}");
    assert!(e.to_string().contains("head is block 3"), "{e}");
    // The trusted block must keep its hash.
    check_trusted(&ctx, &trusted, &c.blocks[4].hash().unwrap()).unwrap();
    let e = check_trusted(&ctx, &trusted, &c.blocks[3].hash().unwrap()).unwrap_err();
    assert!(
        matches!(e, ClientError::HistoryRewritten { count: 4, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("rewrote or rolled back history"),
        "{e}"
    );
}

#[test]
fn the_report_reads_one_line_per_check() {
    let mut c = Chain::new();
    for _ in 0..30 {
        c.push(1);
    }
    let ctx = c.ctx();
    let blocks: Vec<BlockCheck> = c
        .blocks
        .iter()
        .enumerate()
        .map(|(n, b)| {
            let mut k = check_block(&ctx, b, n as u64).unwrap();
            k.parent_checked = true;
            k
        })
        .collect();
    let report = VerifyReport {
        database: c.db,
        miner: c.producer,
        range: Some((0, 30)),
        blocks,
        others: vec![],
        trusted: None,
        head: Some(VerifiedHead {
            database: c.db,
            count: 30,
            hash: c.blocks[30].hash().unwrap(),
        }),
        writes_acknowledged: 3,
        proofs: vec![prove_write(&ctx, &c.blocks[1], &c.ack(1, 0), 0).unwrap()],
        writes_unsealed: 2,
        pending_at_miner: 2,
    };
    let short = report.to_string();
    assert!(short.contains("blocks 0..=30: 31 checked"), "{short}");
    assert!(
        short.contains("block 0 (height 0)") && short.contains("first block"),
        "{short}"
    );
    assert!(short.contains("block 30 (height 60)"), "{short}");
    assert!(short.contains("11 more blocks ok"), "{short}");
    assert!(
        short.contains("1 proved in blocks") && short.contains("2 not in a block yet"),
        "{short}"
    );
    assert!(short.contains(&format!(
        "verified head: block 30 {}",
        c.blocks[30].hash().unwrap()
    )));
    let full = format!("{report:#}");
    assert!(
        full.contains("block 15 (height 30)") && !full.contains("more blocks"),
        "{full}"
    );
}

/// Compiles only if `verify` can run in a spawned task (its future is `Send`).
#[allow(dead_code)]
fn verify_can_be_spawned(db: &'static Database) {
    fn spawnable<T: Send + 'static>(_: T) {}
    spawnable(db.verify(VerifyOptions::default()));
    spawnable(db.verify_at(db.miners()[0], VerifyOptions::default()));
}
