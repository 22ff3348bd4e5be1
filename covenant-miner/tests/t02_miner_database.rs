//! One block producer and one miner in process over real TLS: a user creates
//! a database on the miner, writes and reads it, the miner seals verifiable
//! blocks, and after a restart every committed row and the chain are intact.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use covenant_client::Client;
use covenant_core::api::chain::{GetDatabase, GetProvider};
use covenant_core::api::database::{GetBlock, GetHead, LocateRequest, Query as QueryMethod};
use covenant_core::config::{
    BlockProducerInfo, Config, GenesisAccount, GenesisConfig, MinerConfig,
};
use covenant_core::net::{NetConfig, NodeIdentity, Pool, TlsContext};
use covenant_core::sqlchain::query::{Args, Query, QueryResult};
use covenant_core::sqlchain::request::{Outcome, QueryKind, RequestBody, SignedRequest};
use covenant_core::sqlchain::value::Value;
use covenant_core::types::{
    Balances, Consistency, CreateDatabase, DatabaseId, ResourceAsk, Token, TxPayload,
};
use covenant_miner::bp::BlockProducer;
use covenant_miner::miner::{Miner, MinerOptions};

const DIFFICULTY: u32 = 8;
const T: Duration = Duration::from_secs(5);

fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Fixture {
    bp: NodeIdentity,
    miner: NodeIdentity,
    user: NodeIdentity,
    bp_config: Config,
    miner_config: Config,
    user_config: Config,
}

fn fixture(root: &Path) -> Fixture {
    let bp = NodeIdentity::mine_weak(DIFFICULTY).unwrap();
    let miner = NodeIdentity::mine_weak(DIFFICULTY).unwrap();
    let user = NodeIdentity::mine_weak(DIFFICULTY).unwrap();
    let bps = vec![BlockProducerInfo {
        node_id: bp.node_id(),
        addr: free_addr(),
        public_key: bp.public_key(),
        nonce: bp.nonce(),
    }];
    let funded = |a| GenesisAccount {
        address: a,
        balances: Balances::new().with(Token::Particle, 1_000_000_000_000),
    };
    let base = |id: &NodeIdentity, dir: &str| {
        let mut c = Config::default();
        c.nonce = Some(id.nonce());
        c.this_node_id = Some(id.node_id());
        c.min_node_id_difficulty = DIFFICULTY;
        c.bp_period = Duration::from_millis(100);
        c.sql_chain_period = Duration::from_millis(100);
        c.billing_block_count = 3;
        c.block_producers = bps.clone();
        c.set_config_dir(root.join(dir));
        std::fs::create_dir_all(root.join(dir)).unwrap();
        c
    };
    let mut bp_config = base(&bp, "bp");
    bp_config.listen_addr = Some(bps[0].addr.clone());
    bp_config.genesis = Some(GenesisConfig {
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        accounts: vec![funded(miner.address()), funded(user.address())],
    });
    let mut miner_config = base(&miner, "miner");
    miner_config.listen_addr = Some(free_addr());
    miner_config.miner = Some(MinerConfig {
        root_dir: root.join("miner/data"),
        provide_service_interval: Duration::from_secs(2),
        target_users: vec![user.address()],
        ..MinerConfig::default()
    });
    let user_config = base(&user, "user");
    Fixture {
        bp,
        miner,
        user,
        bp_config,
        miner_config,
        user_config,
    }
}

async fn start_miner(f: &Fixture) -> Miner {
    Miner::start(
        f.miner_config.clone(),
        f.miner.private_key().clone(),
        MinerOptions {
            metrics_addr: Some("127.0.0.1:0".into()),
            follow_interval: Some(Duration::from_millis(100)),
        },
    )
    .await
    .unwrap()
}

struct Db<'a> {
    f: &'a Fixture,
    pool: Pool,
    id: DatabaseId,
    seq: std::cell::Cell<u64>,
}

impl Db<'_> {
    fn sign(&self, kind: QueryKind, sql: &str, args: Vec<Value>) -> SignedRequest {
        self.seq.set(self.seq.get() + 1);
        let body = RequestBody {
            database: self.id,
            user: self.f.user.address(),
            timestamp: now_ms(),
            sequence: self.seq.get(),
            kind,
            read_level: Default::default(),
            queries: vec![Query {
                sql: sql.into(),
                args: Args::Positional(args),
            }],
        };
        SignedRequest::sign(body, self.f.user.private_key()).unwrap()
    }

    async fn run(&self, kind: QueryKind, sql: &str, args: Vec<Value>) -> Vec<QueryResult> {
        let req = self.sign(kind, sql, args);
        let resp = self
            .pool
            .call::<QueryMethod>(self.f.miner.node_id(), &req, T)
            .await
            .unwrap();
        assert_eq!(resp.request_hash, req.hash().unwrap());
        match resp.outcome {
            Outcome::Ok(r) => r,
            Outcome::Failed { message, .. } => panic!("{sql}: {message}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_write_read_seal_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let bp = BlockProducer::start(f.bp_config.clone(), f.bp.private_key().clone())
        .await
        .unwrap();
    let mut miner = start_miner(&f).await;
    let client = Client::new(f.user_config.clone(), f.user.private_key().clone()).unwrap();

    // The miner's offer reaches the chain.
    eventually("the miner's ProvideService", || async {
        client
            .call::<GetProvider>(&f.miner.address())
            .await
            .ok()
            .flatten()
    })
    .await;

    // The user creates a one-node database on it.
    let nonce = client.next_nonce().await.unwrap();
    let tx = client
        .sign(
            nonce,
            TxPayload::CreateDatabase(CreateDatabase {
                node_count: 1,
                target_miners: vec![f.miner.address()],
                consistency: Consistency::Strong,
                resources: ResourceAsk::default(),
                gas_price: 1,
                advance_payment: 1_000_000,
                token: Token::Particle,
            }),
        )
        .unwrap();
    let hash = client.submit_transaction(&tx).await.unwrap();
    client.wait_for_tx(&hash, T * 4, |_| {}).await.unwrap();
    let id = DatabaseId::derive(&f.user.address(), nonce);

    let net_config = NetConfig {
        min_difficulty: DIFFICULTY,
        ..NetConfig::default()
    };
    let pool = Pool::new(TlsContext::new(&f.user, &net_config).unwrap(), net_config);
    pool.set_address(
        f.miner.node_id(),
        f.miner_config.listen_addr.clone().unwrap(),
    );
    let db = Db {
        f: &f,
        pool,
        id,
        seq: std::cell::Cell::new(0),
    };
    eventually(
        "the database to have a leader and a genesis block",
        || async {
            let h = db
                .pool
                .call::<GetHead>(f.miner.node_id(), &id, T)
                .await
                .ok()?;
            (h.leader.is_some() && h.head.is_some()).then_some(())
        },
    )
    .await;

    db.run(
        QueryKind::Write,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        vec![],
    )
    .await;
    let w = db.sign(
        QueryKind::Write,
        "INSERT INTO t (v) VALUES (?), (?)",
        vec![Value::Text("a".into()), Value::Text("b".into())],
    );
    let resp = db
        .pool
        .call::<QueryMethod>(f.miner.node_id(), &w, T)
        .await
        .unwrap();
    match &resp.outcome {
        Outcome::Ok(r) => assert_eq!(r[0].affected_rows, 2),
        other => panic!("{other:?}"),
    }
    let rows = db
        .run(QueryKind::Read, "SELECT v FROM t ORDER BY id", vec![])
        .await;
    assert_eq!(
        rows[0].rows,
        vec![vec![Value::Text("a".into())], vec![Value::Text("b".into())]]
    );

    // The write is sealed into a block that verifies and links to its parent.
    let write_hash = w.hash().unwrap();
    let (count, index) = eventually("the write to be sealed", || async {
        db.pool
            .call::<LocateRequest>(f.miner.node_id(), &(id, write_hash, w.body.timestamp), T)
            .await
            .ok()
            .flatten()
    })
    .await;
    let mut prev = None;
    for c in 0..=count {
        let b = db
            .pool
            .call::<GetBlock>(f.miner.node_id(), &(id, c), T)
            .await
            .unwrap()
            .unwrap();
        b.verify().unwrap();
        if let Some(p) = &prev {
            b.verify_follows(p).unwrap();
        }
        prev = Some(b);
    }
    let block = prev.unwrap();
    let (i, proof) = block.proof(&write_hash).unwrap();
    assert_eq!(i as u64, index);
    assert!(proof.verify(
        &block.entry(i).unwrap().leaf().unwrap(),
        &block.header.merkle_root
    ));

    // Sending the same signed request again (a resend after a lost answer,
    // or a replay copied out of a block) writes nothing and is answered
    // with the outcome it had.
    let again = db
        .pool
        .call::<QueryMethod>(f.miner.node_id(), &w, T)
        .await
        .unwrap();
    assert_eq!(again, resp);
    let rows = db
        .run(QueryKind::Read, "SELECT count(*) FROM t", vec![])
        .await;
    assert_eq!(rows[0].rows, vec![vec![Value::Integer(2)]]);

    // Metrics carry the database.
    let snapshot = {
        let host = miner.database(&id).unwrap();
        host.head()
    };
    assert!(snapshot.head.is_some());

    // Restart the miner: rows and chain survive; new blocks extend the old head.
    let before = db
        .pool
        .call::<GetHead>(f.miner.node_id(), &id, T)
        .await
        .unwrap()
        .head
        .unwrap();
    miner.shutdown().await;
    miner = start_miner(&f).await;
    eventually("the database to resume", || async {
        let h = db
            .pool
            .call::<GetHead>(f.miner.node_id(), &id, T)
            .await
            .ok()?;
        h.leader.is_some().then_some(())
    })
    .await;
    let rows = db
        .run(QueryKind::Read, "SELECT count(*) FROM t", vec![])
        .await;
    assert_eq!(rows[0].rows, vec![vec![Value::Integer(2)]]);
    db.run(QueryKind::Write, "INSERT INTO t (v) VALUES ('c')", vec![])
        .await;
    let next = eventually("a block after the restart", || async {
        let h = db
            .pool
            .call::<GetHead>(f.miner.node_id(), &id, T)
            .await
            .ok()?;
        h.head.filter(|h| h.count > before.count)
    })
    .await;
    let b = db
        .pool
        .call::<GetBlock>(f.miner.node_id(), &(id, before.count + 1), T)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.header.parent, before.hash);
    assert!(next.count > before.count);

    // Billing: every BillingBlockCount (3) blocks the leader charges the
    // user for rows read and affected; the user's advance payment shrinks.
    let advance = || async {
        client
            .call::<GetDatabase>(&id)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.user(&f.user.address()).map(|u| u.advance_payment))
    };
    assert_eq!(advance().await, Some(1_000_000));
    eventually("a bill to reach the chain", || async {
        db.run(QueryKind::Write, "INSERT INTO t (v) VALUES ('x')", vec![])
            .await;
        advance().await.filter(|a| *a < 1_000_000)
    })
    .await;

    miner.shutdown().await;
    bp.shutdown().await;
}
