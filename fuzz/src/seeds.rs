//! Seed inputs for every target, in each target's input layout (documented
//! at the top of its file): valid encodings, valid key files, full configs
//! and typical SQL, so a short run starts from deep inside each format.
//! `examples/seed_corpora.rs` writes them under `fuzz/corpus/<target>/`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use covenant_core::codec::{self, Versioned};
use covenant_core::config::{
    AdapterConfig, BlockProducerInfo, Config, GenesisAccount, GenesisConfig, MinerConfig,
    TestnetDescriptor,
};
use covenant_core::crypto::{Address, NodeId, Nonce};
use covenant_core::error::ErrorCode;
use covenant_core::hash::{Hash, Tag, hash};
use covenant_core::merkle::MerkleTree;
use covenant_core::net::RpcError;
use covenant_core::sqlchain::block::{BlockEntry, SqlBlock, Stamp};
use covenant_core::sqlchain::query::{Args, Query};
use covenant_core::sqlchain::request::{QueryKind, ReadLevel, RequestBody, SignedRequest};
use covenant_core::sqlchain::value::Value;
use covenant_core::types::{
    Balances, BillingEntry, Block, Consistency, CreateDatabase, DatabaseId, DropDatabase,
    Permission, ProvideService, ResourceAsk, Roles, Token, Transaction, TxBody, TxPayload,
    UpdateBilling, UpdatePermission,
};

use crate::chain::{self, GENESIS_MS, MIN_DEPOSIT};
use crate::keyfile;

/// Every target's seeds: `(target name, inputs)`.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("keyfile_decode", keyfile_decode()),
        ("config_parse", config_parse()),
        ("sql_request_decode", sql_request_decode()),
        ("chain_decode_verify", chain_decode_verify()),
        ("sql_executor", sql_executor()),
        ("net_decode", net_decode()),
    ]
}

fn with(selector: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(selector);
    v.extend_from_slice(bytes);
    v
}

fn versioned<T: Versioned>(value: &T) -> Vec<u8> {
    codec::encode_versioned(value).unwrap_or_default()
}

/// A small address: the fixtures map it to account `n` (or a database's, bit 7).
pub fn small_address(n: u8) -> Address {
    let mut b = [0u8; 32];
    b[0] = n;
    Address(Hash(b))
}

/// A small database id: the fixtures map it to the `n`-th live database.
pub fn small_database(n: u8) -> DatabaseId {
    let mut b = [0u8; 32];
    b[0] = n;
    DatabaseId(Hash(b))
}

/// The secret the key-file seeds hold.
pub fn keyfile_secret() -> [u8; 32] {
    *chain::key(0).to_bytes()
}

fn keyfile_decode() -> Vec<Vec<u8>> {
    let secret = keyfile_secret();
    let mut out = Vec::new();
    for (master, params) in [(&b""[..], (8, 1, 1)), (&b"pw"[..], (16, 2, 2))] {
        let Some(file) = keyfile::build(&secret, master, params, [7; 16], [9; 12]) else {
            continue;
        };
        for mode in [0u8, 1] {
            let mut v = vec![mode, u8::try_from(master.len()).unwrap_or(0)];
            v.extend_from_slice(master);
            v.extend_from_slice(file.as_bytes());
            out.push(v);
        }
    }
    // Generated files: no edit, then one edit in the salt line with the checksum fixed.
    out.push(vec![2, 0, 0, 0]);
    out.push(vec![2 | 0x08, 2, b'p', b'w', 3, 1, 0, 50, b'f']);
    out
}

/// A config using every section, with difficulty 0 so the made-up BP ids pass.
pub fn full_config() -> Config {
    let bp = |n: u8, addr: &str| {
        let public_key = chain::key(n).public_key();
        let nonce = Nonce {
            a: u64::from(n),
            b: 0,
            c: 0,
            d: 7,
        };
        BlockProducerInfo {
            node_id: NodeId::compute(&public_key, &nonce),
            addr: addr.to_string(),
            public_key,
            nonce,
        }
    };
    let mut c = Config::default();
    c.min_node_id_difficulty = 0;
    c.listen_addr = Some("127.0.0.1:7458".into());
    c.bp_period = Duration::from_secs(3);
    c.block_producers = vec![bp(1, "127.0.0.1:7001"), bp(2, "bp.example.com:7002")];
    c.genesis = Some(GenesisConfig {
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        accounts: vec![GenesisAccount {
            address: chain::addr(3),
            balances: Balances::new()
                .with(Token::Particle, 10_000)
                .with(Token::Wave, 5),
        }],
    });
    c.miner = Some(MinerConfig {
        target_users: vec![chain::addr(4)],
        ..MinerConfig::default()
    });
    c.adapter = Some(AdapterConfig {
        certificate_path: Some("server.pem".into()),
        private_key_path: Some(PathBuf::from("/etc/covenant/server.key")),
        admin_certs: vec!["admin.pem".into()],
        storage_root: Some("adapter-data".into()),
        ..AdapterConfig::default()
    });
    c.set_identity(&chain::key(5).public_key(), Nonce::default());
    c
}

fn config_parse() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let full = full_config();
    for c in [Config::default(), full.clone()] {
        if let Ok(y) = c.to_yaml() {
            out.push(with(0, y.as_bytes()));
        }
    }
    let mut d = TestnetDescriptor::new(full.block_producers.clone());
    d.name = Some("fuzznet".into());
    d.bp_period = Some(Duration::from_millis(500));
    d.genesis = full.genesis.clone();
    if let Ok(y) = d.to_yaml() {
        out.push(with(1, y.as_bytes()));
    }
    out
}

/// A request body from fixture user `user` with every kind of value.
pub fn request_body(user: u8, database: DatabaseId, kind: QueryKind) -> RequestBody {
    RequestBody {
        database,
        user: chain::addr(user),
        timestamp: 1_700_000_000_000,
        sequence: 3,
        kind,
        read_level: ReadLevel::Replica { max_lag_ms: 500 },
        queries: vec![
            Query::positional(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                vec![
                    Value::Null,
                    Value::Integer(-7),
                    Value::Real(1.5),
                    Value::Text("x".into()),
                    Value::Blob(vec![0, 1]),
                ],
            ),
            Query {
                sql: "SELECT * FROM t WHERE a = :a".into(),
                args: Args::Named(vec![(":a".into(), Value::Integer(1))]),
            },
        ],
    }
}

fn entry(
    user: u8,
    database: DatabaseId,
    kind: QueryKind,
    stamp: Option<Stamp>,
) -> Option<BlockEntry> {
    let request =
        SignedRequest::sign(request_body(user, database, kind), &chain::key(user)).ok()?;
    Some(BlockEntry {
        request,
        response_digest: hash(Tag::Message, b"response"),
        stamp,
    })
}

/// A sealed database block with one write and one read.
pub fn sql_block() -> Option<SqlBlock> {
    let db = DatabaseId(hash(Tag::Message, b"fuzz database"));
    let stamp = Stamp {
        timestamp_ms: 1_700_000_000_500,
        seed: [3; 32],
    };
    SqlBlock::seal(
        db,
        4,
        9,
        hash(Tag::Message, b"parent"),
        1_700_000_001_000,
        vec![entry(1, db, QueryKind::Write, Some(stamp))?],
        vec![entry(2, db, QueryKind::Read, None)?],
        chain::bp_id(),
        &chain::bp_key(),
    )
    .ok()
}

fn sql_request_decode() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let db = small_database(0);
    let body = request_body(1, db, QueryKind::Write);
    if let Ok(r) = SignedRequest::sign(body.clone(), &chain::key(1)) {
        out.push(with(0, &versioned(&r)));
    }
    if let Ok(b) = codec::encode(&body) {
        out.push(with(2, &b));
    }
    if let Some(block) = sql_block() {
        let bytes = versioned(&block);
        out.push(with(1, &bytes));
        out.push(with(3, &bytes));
        // Two blocks, the second following the first: [len u16 LE][first][second].
        let mut next = block.clone();
        next.header.count += 1;
        next.header.height += 1;
        let second = versioned(&next);
        let mut pair = vec![5];
        pair.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(0).to_le_bytes());
        pair.extend_from_slice(&bytes);
        pair.extend_from_slice(&second);
        out.push(pair);
        // A proof with its leaf and root: [leaf][root][proof].
        if let Ok(leaves) = block.leaves() {
            let tree = MerkleTree::new(&leaves);
            if let (Some(leaf), Some(proof)) = (leaves.get(1), tree.proof(1)) {
                let mut v = vec![4];
                v.extend_from_slice(leaf.as_bytes());
                v.extend_from_slice(tree.root().as_bytes());
                v.extend_from_slice(&versioned(&proof));
                out.push(v);
            }
        }
    }
    out
}

fn body(sender: u8, payload: TxPayload) -> TxBody {
    TxBody {
        sender: chain::addr(sender),
        nonce: 0,
        timestamp: 5_000,
        payload,
    }
}

fn offer(target_users: Vec<Address>) -> TxPayload {
    TxPayload::ProvideService(ProvideService {
        resources: ResourceAsk {
            memory_mb: 1024,
            disk_mb: 10 * 1024,
            load_avg_per_cpu_milli: 500,
        },
        gas_price: 1,
        target_users,
        deposit: MIN_DEPOSIT * 2,
        token: Token::Particle,
        node_id: NodeId(hash(Tag::Message, b"miner")),
    })
}

/// A life cycle: three miners offer service, a database is created on them,
/// a user is granted, pays in and is billed, and the database is dropped.
pub fn life_cycle() -> Vec<(u8, TxBody)> {
    let db = small_database(0);
    vec![
        (1, body(1, offer(Vec::new()))),
        (2, body(2, offer(vec![small_address(0)]))),
        (3, body(3, offer(Vec::new()))),
        (
            0,
            body(
                0,
                TxPayload::CreateDatabase(CreateDatabase {
                    node_count: 2,
                    target_miners: vec![small_address(1)],
                    consistency: Consistency::Strong,
                    resources: ResourceAsk::default(),
                    gas_price: 10,
                    advance_payment: 1_000,
                    token: Token::Particle,
                }),
            ),
        ),
        (
            0,
            body(
                0,
                TxPayload::UpdatePermission(UpdatePermission {
                    database: db,
                    user: small_address(4),
                    permission: Permission {
                        roles: Roles::READ,
                        patterns: vec!["SELECT 1".into()],
                    },
                }),
            ),
        ),
        (
            4,
            body(
                4,
                TxPayload::Transfer {
                    to: small_address(0x80),
                    token: Token::Particle,
                    amount: 500,
                },
            ),
        ),
        (
            1,
            body(
                1,
                TxPayload::UpdateBilling(UpdateBilling {
                    database: db,
                    period: 1,
                    users: vec![BillingEntry {
                        user: small_address(4),
                        rows_read: 10,
                        rows_affected: 2,
                    }],
                }),
            ),
        ),
        (
            0,
            body(0, TxPayload::DropDatabase(DropDatabase { database: db })),
        ),
        (
            5,
            body(
                5,
                TxPayload::Transfer {
                    to: small_address(2),
                    token: Token::Wave,
                    amount: u64::MAX,
                },
            ),
        ),
    ]
}

fn chain_decode_verify() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let state = chain::state();
    let transfer = body(
        0,
        TxPayload::Transfer {
            to: chain::addr(1),
            token: Token::Particle,
            amount: 10,
        },
    );
    if let Ok(tx) = Transaction::sign(transfer, &chain::key(0)) {
        out.push(with(0, &versioned(&tx)));
        if let Some(head) = state.head()
            && let Ok(block) = Block::seal(
                head.height + 1,
                head.hash,
                GENESIS_MS + 1_000,
                chain::bp_id(),
                vec![tx],
                &chain::bp_key(),
            )
        {
            out.push(with(1, &versioned(&block)));
        }
    }
    if let Ok(b) = codec::encode(&life_cycle()) {
        out.push(with(2, &b));
    }
    out
}

fn sql_executor() -> Vec<Vec<u8>> {
    [
        "SELECT * FROM t",
        "INSERT INTO t(b, c, d) VALUES ('x', 1.5, x'00ff'); SELECT last_insert_rowid()",
        "UPDATE t SET b = upper(b) WHERE a > 1",
        "DELETE FROM u WHERE x IS NULL",
        "CREATE TABLE IF NOT EXISTS w(k TEXT PRIMARY KEY, v DEFAULT CURRENT_TIMESTAMP) WITHOUT ROWID",
        "INSERT INTO w(k) VALUES ('a')",
        "CREATE TRIGGER IF NOT EXISTS tr AFTER INSERT ON t BEGIN INSERT INTO u(x) VALUES (new.a); END",
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100) SELECT sum(n) FROM c",
        "SELECT date('now'), random(), strftime('%s', 'now', 'localtime')",
        "INSERT INTO u(x) VALUES (random())",
        "SHOW TABLES",
        "SHOW CREATE TABLE t",
        "DESC t",
        "SHOW INDEX FROM t",
        "SHOW COLUMNS FROM u",
        "BEGIN; INSERT INTO u VALUES (1, 2); COMMIT",
        "PRAGMA table_info(t)",
        "ATTACH 'x.db' AS x",
        "SELECT * FROM _covenant_requests",
        "SELECT ?, :a, @b, $c",
        "CREATE VIEW IF NOT EXISTS v2 AS SELECT a, b FROM t; SELECT * FROM v2",
        "SELECT 'a;b', \"c\"\"d\", [e], `f` -- ;\n /* ; */",
    ]
    .iter()
    .enumerate()
    .map(|(i, sql)| with(u8::try_from(i).unwrap_or(0), sql.as_bytes()))
    .collect()
}

/// The identity-extension content for fixture key `n`, DER as `cert.rs` writes it.
pub fn identity_extension(n: u8) -> Vec<u8> {
    let public_key = chain::key(n).public_key();
    let nonce = Nonce::default();
    let node_id = NodeId::compute(&public_key, &nonce);
    let octets = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.push(0x04);
        out.push(u8::try_from(bytes.len()).unwrap_or(0));
        out.extend_from_slice(bytes);
    };
    let mut content = vec![0x02, 0x01, 0x01];
    octets(&mut content, node_id.as_bytes());
    octets(&mut content, public_key.as_bytes());
    octets(&mut content, &nonce.to_bytes());
    octets(&mut content, &[0x11; 64]);
    let mut der = vec![0x30, 0x81, u8::try_from(content.len()).unwrap_or(0)];
    der.extend_from_slice(&content);
    der
}

fn net_decode() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // The golden request envelope of net/envelope.rs.
    if let Ok(b) = hex::decode("01000103612e62fb2c01020908") {
        out.push(with(0, &b));
    }
    // Response envelopes `{id, Ok(bytes) | Err(RpcError)}`, same layout as the private type.
    let ok: (u64, Result<Vec<u8>, RpcError>) = (7, Ok(vec![1, 2, 3]));
    let err: (u64, Result<Vec<u8>, RpcError>) = (
        u64::MAX,
        Err(RpcError::new(ErrorCode::UnknownMethod, "nope").with_leader_hint("127.0.0.1:1")),
    );
    for r in [ok, err] {
        if let Ok(b) = codec::encode(&r) {
            let mut v = vec![0, 1, 0];
            v.extend_from_slice(&b);
            out.push(v);
        }
    }
    out.push(with(1, &identity_extension(1)));
    if let Some(cert) = covenant_core::net::fuzzing::sample_certificate(1) {
        out.push(with(2, &cert));
    }
    out
}
