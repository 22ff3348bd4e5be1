//! The client against fake block producers over real TLS on loopback:
//! routing (hints, dead producers, retryable and final refusals) and the
//! submission rules (duplicates, a nonce taken meanwhile).

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use covenant_core::ErrorCode;
use covenant_core::api::chain::{GetTxState, NextNonce, SubmitTx, TxStatus};
use covenant_core::config::{BlockProducerInfo, Config};
use covenant_core::net::{NetConfig, NodeIdentity, Router, RpcError, RpcServer, TlsContext};
use covenant_core::types::{Token, TxState};

use super::{Client, ClientOptions};
use crate::error::ClientError;

/// What a fake producer answers.
#[derive(Clone)]
enum Behaviour {
    /// `NextNonce` answers this; `SubmitTx` admits.
    Serve(u64),
    /// Every call fails with this error.
    Refuse(RpcError),
}

struct Fake {
    identity: NodeIdentity,
    calls: Arc<AtomicU64>,
    server: Option<RpcServer>,
    addr: String,
}

impl Fake {
    fn info(&self) -> BlockProducerInfo {
        BlockProducerInfo {
            node_id: self.identity.node_id(),
            addr: self.addr.clone(),
            public_key: self.identity.public_key(),
            nonce: self.identity.nonce(),
        }
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn answer<T>(b: &Behaviour, ok: T) -> Result<T, RpcError> {
    match b {
        Behaviour::Serve(_) => Ok(ok),
        Behaviour::Refuse(e) => Err(e.clone()),
    }
}

async fn fake(behaviour: Behaviour) -> Fake {
    let identity = NodeIdentity::mine_weak(0).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let mut router = Router::new();
    let (b, c) = (behaviour.clone(), calls.clone());
    router
        .register::<NextNonce, _, _>(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            let n = match &b {
                Behaviour::Serve(n) => *n,
                Behaviour::Refuse(_) => 0,
            };
            let r = answer(&b, n);
            async move { r }
        })
        .unwrap();
    let (b, c) = (behaviour.clone(), calls.clone());
    router
        .register::<SubmitTx, _, _>(move |_, tx| {
            c.fetch_add(1, Ordering::SeqCst);
            let r = answer(&b, ()).map(|()| tx.hash().unwrap());
            async move { r }
        })
        .unwrap();
    let (b, c) = (behaviour, calls.clone());
    router
        .register::<GetTxState, _, _>(move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            let r = answer(
                &b,
                TxStatus {
                    state: TxState::NotFound,
                    height: None,
                    result: None,
                },
            );
            async move { r }
        })
        .unwrap();
    let net = NetConfig::default();
    let tls = TlsContext::new(&identity, &net).unwrap();
    let server = RpcServer::bind("127.0.0.1:0", &tls, router, net)
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    Fake {
        identity,
        calls,
        server: Some(server),
        addr,
    }
}

/// A producer nobody listens for.
fn dead() -> Fake {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Fake {
        identity: NodeIdentity::mine_weak(0).unwrap(),
        calls: Arc::new(AtomicU64::new(0)),
        server: None,
        addr: format!("127.0.0.1:{port}"),
    }
}

fn client(bps: &[&Fake], options: ClientOptions) -> Client {
    let id = NodeIdentity::mine_weak(0).unwrap();
    let mut config = Config::default();
    config.min_node_id_difficulty = 0;
    config.block_producers = bps.iter().map(|f| f.info()).collect();
    config.set_identity(&id.public_key(), id.nonce());
    Client::with_options(config, id.private_key().clone(), options).unwrap()
}

fn quick() -> ClientOptions {
    ClientOptions {
        op_timeout: Duration::from_secs(10),
        call_timeout: Duration::from_secs(2),
        unreachable_timeout: Duration::from_millis(300),
        not_found_grace: None,
    }
}

fn not_leader(hint: Option<String>) -> RpcError {
    let e = RpcError::new(ErrorCode::NotLeader, "not the leader").with_retryable(true);
    match hint {
        Some(h) => e.with_leader_hint(h),
        None => e,
    }
}

#[tokio::test]
async fn follows_the_leader_hint_and_remembers_who_answered() {
    let leader = fake(Behaviour::Serve(7)).await;
    let hinting = fake(Behaviour::Refuse(not_leader(Some(
        leader.identity.node_id().to_hex(),
    ))))
    .await;
    let clueless = fake(Behaviour::Refuse(not_leader(None))).await;
    let c = client(&[&hinting, &clueless, &leader], quick());
    assert_eq!(c.next_nonce().await.unwrap(), 7);
    assert_eq!(hinting.calls(), 1);
    assert_eq!(
        clueless.calls(),
        0,
        "the hint skips the producer in between"
    );
    assert_eq!(c.next_nonce().await.unwrap(), 7);
    assert_eq!(
        hinting.calls(),
        1,
        "the producer that answered is asked first"
    );
    assert_eq!(leader.calls(), 2);
    drop(leader.server);
}

#[tokio::test]
async fn a_dead_producer_is_skipped() {
    let down = dead();
    let up = fake(Behaviour::Serve(3)).await;
    let c = client(&[&down, &up], quick());
    assert_eq!(c.next_nonce().await.unwrap(), 3);
}

#[tokio::test]
async fn a_final_refusal_is_returned_at_once() {
    let refusing = fake(Behaviour::Refuse(RpcError::new(
        ErrorCode::WrongSigner,
        "transaction is signed by someone else",
    )))
    .await;
    let other = fake(Behaviour::Serve(0)).await;
    let c = client(&[&refusing, &other], quick());
    let tx = c
        .sign(
            0,
            covenant_core::types::TxPayload::Transfer {
                to: c.address(),
                token: Token::Particle,
                amount: 1,
            },
        )
        .unwrap();
    let e = c.submit_transaction(&tx).await.unwrap_err();
    assert!(matches!(e, ClientError::Rejected { .. }), "{e:?}");
    assert!(e.is(ErrorCode::WrongSigner));
    assert!(e.to_string().contains("signed by someone else"), "{e}");
    assert_eq!(other.calls(), 0, "a final refusal is not retried elsewhere");
}

#[tokio::test]
async fn a_duplicate_submission_is_success() {
    let bp = fake(Behaviour::Refuse(RpcError::new(
        ErrorCode::DuplicateTransaction,
        "already pending",
    )))
    .await;
    let c = client(&[&bp], quick());
    let tx = c
        .sign(
            4,
            covenant_core::types::TxPayload::Transfer {
                to: c.address(),
                token: Token::Wave,
                amount: 1,
            },
        )
        .unwrap();
    assert_eq!(c.submit_transaction(&tx).await.unwrap(), tx.hash().unwrap());
}

#[tokio::test]
async fn no_reachable_producer_is_a_network_error_naming_them() {
    let (a, b) = (dead(), dead());
    let c = client(&[&a, &b], quick());
    let started = std::time::Instant::now();
    let e = c.next_nonce().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ClientError::Network { .. }), "{e:?}");
    assert!(text.contains(&a.addr) && text.contains(&b.addr), "{text}");
    assert!(text.contains("is the testnet running?"), "{text}");
    // Gave up on unreachability, not on the 10 s operation deadline.
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn submit_signs_again_when_its_nonce_was_taken() {
    // NextNonce answers 0 then 1; SubmitTx refuses nonce 0 as reused.
    let identity = NodeIdentity::mine_weak(0).unwrap();
    let nonces = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    let n = nonces.clone();
    router
        .register::<NextNonce, _, _>(move |_, _| {
            let v = n.fetch_add(1, Ordering::SeqCst);
            async move { Ok(v) }
        })
        .unwrap();
    let s = seen.clone();
    router
        .register::<SubmitTx, _, _>(move |_, tx| {
            s.lock().unwrap().push(tx.body.nonce);
            let r = if tx.body.nonce == 0 {
                Err(RpcError::new(
                    ErrorCode::NonceReused,
                    "nonce 0 was already used",
                ))
            } else {
                Ok(tx.hash().unwrap())
            };
            async move { r }
        })
        .unwrap();
    router
        .register::<GetTxState, _, _>(|_, _| async {
            Ok(TxStatus {
                state: TxState::NotFound,
                height: None,
                result: None,
            })
        })
        .unwrap();
    let net = NetConfig::default();
    let tls = TlsContext::new(&identity, &net).unwrap();
    let server = RpcServer::bind("127.0.0.1:0", &tls, router, net)
        .await
        .unwrap();
    let bp = Fake {
        addr: server.local_addr().to_string(),
        identity,
        calls: Arc::new(AtomicU64::new(0)),
        server: Some(server),
    };
    let c = client(&[&bp], quick());
    let to = c.address();
    c.transfer(to, Token::Particle, 5).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [0, 1]);
    let e = c.transfer(to, Token::Particle, 0).await.unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument(_)), "{e:?}");
}
