//! Three block producers in one process over real TLS on loopback: the
//! producer `founding::founder` picks founds the group and leads it first,
//! transfers confirm, the group survives the leader's death, and a restarted
//! producer catches up to the same head.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use covenant_core::api::chain::{GetAccount, GetHead, GetTxState, NextNonce, SubmitTx};
use covenant_core::config::{BlockProducerInfo, Config, GenesisAccount, GenesisConfig};
use covenant_core::crypto::{Address, NodeId};
use covenant_core::hash::Hash;
use covenant_core::net::{NetConfig, NodeIdentity, Pool, TlsContext};
use covenant_core::types::{Balances, Token, Transaction, TxBody, TxPayload, TxState};
use covenant_miner::bp::BlockProducer;

const DIFFICULTY: u32 = 8;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Net {
    identities: Vec<NodeIdentity>,
    configs: Vec<Config>,
    client: NodeIdentity,
    pool: Pool,
}

fn build(root: &Path) -> Net {
    let identities: Vec<NodeIdentity> = (0..3)
        .map(|_| NodeIdentity::mine_weak(DIFFICULTY).unwrap())
        .collect();
    let client = NodeIdentity::mine_weak(DIFFICULTY).unwrap();
    let bps: Vec<BlockProducerInfo> = identities
        .iter()
        .map(|id| BlockProducerInfo {
            node_id: id.node_id(),
            addr: format!("127.0.0.1:{}", free_port()),
            public_key: id.public_key(),
            nonce: id.nonce(),
        })
        .collect();
    let genesis = GenesisConfig {
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        accounts: vec![GenesisAccount {
            address: client.address(),
            balances: Balances::new().with(Token::Particle, 1_000_000),
        }],
    };
    let configs = identities
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut c = Config::default();
            c.nonce = Some(id.nonce());
            c.this_node_id = Some(id.node_id());
            c.listen_addr = Some(bps[i].addr.clone());
            c.min_node_id_difficulty = DIFFICULTY;
            c.bp_period = Duration::from_millis(100);
            c.block_producers = bps.clone();
            c.genesis = Some(genesis.clone());
            c.set_config_dir(root.join(format!("bp_{i}")));
            c
        })
        .collect();
    let net_config = NetConfig {
        min_difficulty: DIFFICULTY,
        ..NetConfig::default()
    };
    let pool = Pool::new(TlsContext::new(&client, &net_config).unwrap(), net_config);
    for bp in &bps {
        pool.set_address(bp.node_id, bp.addr.clone());
    }
    Net {
        identities,
        configs,
        client,
        pool,
    }
}

async fn start(net: &Net, i: usize) -> BlockProducer {
    std::fs::create_dir_all(net.configs[i].config_dir()).unwrap();
    BlockProducer::start(
        net.configs[i].clone(),
        net.identities[i].private_key().clone(),
    )
    .await
    .unwrap()
}

const T: Duration = Duration::from_secs(2);

/// Polls `f` every 50 ms until it returns `Some`, or panics after `deadline`.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn leader(net: &Net, among: &[NodeId]) -> NodeId {
    eventually("a leader", Duration::from_secs(20), || async {
        for bp in among {
            if let Ok(info) = net.pool.call::<GetHead>(*bp, &(), T).await
                && let Some(l) = info.leader.filter(|l| among.contains(l))
            {
                return Some(l);
            }
        }
        None
    })
    .await
}

async fn transfer(net: &Net, via: NodeId, to: Address, amount: u64) -> Hash {
    let nonce = net
        .pool
        .call::<NextNonce>(via, &net.client.address(), T)
        .await
        .unwrap();
    let body = TxBody {
        sender: net.client.address(),
        nonce,
        timestamp: 1,
        payload: TxPayload::Transfer {
            to,
            token: Token::Particle,
            amount,
        },
    };
    let tx = Transaction::sign(body, net.client.private_key()).unwrap();
    net.pool.call::<SubmitTx>(via, &tx, T).await.unwrap()
}

async fn confirmed(net: &Net, via: NodeId, id: Hash) {
    eventually("confirmation", Duration::from_secs(20), || async {
        match net.pool.call::<GetTxState>(via, &id, T).await {
            Ok(s) if s.state == TxState::Confirmed => Some(()),
            _ => None,
        }
    })
    .await
}

async fn balance(net: &Net, via: NodeId, who: Address) -> u64 {
    net.pool
        .call::<GetAccount>(via, &who, T)
        .await
        .unwrap()
        .balances
        .get(Token::Particle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_leader_failover_and_restart_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let net = build(dir.path());
    let ids: Vec<NodeId> = net.identities.iter().map(|i| i.node_id()).collect();
    let mut bps: Vec<Option<BlockProducer>> = Vec::new();
    for i in 0..3 {
        bps.push(Some(start(&net, i).await));
    }
    let receiver = NodeIdentity::mine_weak(0).unwrap().address();

    // One producer founds the group (the others join its leader rather
    // than campaigning at once), so it is the first leader.
    let first = leader(&net, &ids).await;
    let founder = covenant_core::consensus::founding::founder(
        ids.iter().map(covenant_core::consensus::raft_id),
        covenant_core::consensus::founding::MAIN_CHAIN_KEY,
    )
    .unwrap();
    assert_eq!(covenant_core::consensus::raft_id(&first), founder);

    // A transfer submitted to a follower is forwarded and confirms everywhere.
    let follower = *ids.iter().find(|i| **i != first).unwrap();
    let tx = transfer(&net, follower, receiver, 100).await;
    confirmed(&net, follower, tx).await;
    for id in &ids {
        let b = eventually("replicated balance", Duration::from_secs(10), || async {
            Some(balance(&net, *id, receiver).await).filter(|b| *b == 100)
        })
        .await;
        assert_eq!(b, 100);
    }

    // Kill the leader: the other two elect a new one and keep confirming.
    let li = ids.iter().position(|i| *i == first).unwrap();
    bps[li].take().unwrap().shutdown().await;
    let rest: Vec<NodeId> = ids.iter().copied().filter(|i| *i != first).collect();
    let second = leader(&net, &rest).await;
    assert_ne!(second, first);
    let tx = transfer(&net, second, receiver, 50).await;
    confirmed(&net, second, tx).await;
    assert_eq!(balance(&net, second, receiver).await, 150);

    // Restart the old leader from its data directory: it catches up.
    bps[li] = Some(start(&net, li).await);
    let head = net.pool.call::<GetHead>(second, &(), T).await.unwrap().head;
    eventually(
        "restarted producer to catch up",
        Duration::from_secs(20),
        || async {
            let h = net.pool.call::<GetHead>(first, &(), T).await.ok()?;
            (h.head.height >= head.height).then_some(())
        },
    )
    .await;
    let a = net.pool.call::<GetHead>(first, &(), T).await.unwrap().head;
    let b = net.pool.call::<GetHead>(second, &(), T).await.unwrap().head;
    assert_eq!(a.hash, b.hash, "restarted producer has another head");
    assert_eq!(balance(&net, first, receiver).await, 150);

    for bp in bps.into_iter().flatten() {
        bp.shutdown().await;
    }
}
