//! Helpers shared by the `net_*` integration tests: quick identities, a few
//! test methods and a server factory. Real TLS on 127.0.0.1, port 0.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use covenant_core::crypto::NodeId;
use covenant_core::error::ErrorCode;
use covenant_core::net::{
    Method, NetConfig, NodeIdentity, PeerIdentity, Router, RpcError, RpcServer, TlsContext,
};
use tokio::time::Instant;

/// Difficulty the tests mine and demand: cheap (about 256 hashes) but not zero.
pub const DIFFICULTY: u32 = 8;

/// Generous bound for calls that should succeed.
pub const CALL: Duration = Duration::from_secs(10);

pub fn config() -> NetConfig {
    NetConfig {
        min_difficulty: DIFFICULTY,
        shutdown_grace: Duration::from_millis(200),
        ..NetConfig::default()
    }
}

pub fn identity() -> NodeIdentity {
    NodeIdentity::mine_weak(DIFFICULTY).unwrap()
}

pub fn tls(id: &NodeIdentity) -> TlsContext {
    TlsContext::new(id, &config()).unwrap()
}

/// Echoes a string.
pub struct Echo;
impl Method for Echo {
    const NAME: &'static str = "test.echo";
    const IDEMPOTENT: bool = true;
    type Request = String;
    type Response = String;
}

/// Adds two numbers after sleeping the given milliseconds.
pub struct SlowAdd;
impl Method for SlowAdd {
    const NAME: &'static str = "test.slow_add";
    type Request = (u64, u64, u64);
    type Response = u64;
}

/// Sleeps for the given milliseconds.
pub struct Sleep;
impl Method for Sleep {
    const NAME: &'static str = "test.sleep";
    type Request = u64;
    type Response = ();
}

/// Answers with the caller's node id, as the server verified it.
pub struct WhoAmI;
impl Method for WhoAmI {
    const NAME: &'static str = "test.who_am_i";
    type Request = ();
    type Response = NodeId;
}

/// Always fails with a typed error carrying a leader hint.
pub struct NotLeader;
impl Method for NotLeader {
    const NAME: &'static str = "test.not_leader";
    type Request = ();
    type Response = ();
}

/// Never registered on the server.
pub struct Missing;
impl Method for Missing {
    const NAME: &'static str = "test.missing";
    type Request = ();
    type Response = ();
}

/// Same name as [`Echo`] with another request type: the server cannot decode it.
pub struct WrongEcho;
impl Method for WrongEcho {
    const NAME: &'static str = "test.echo";
    type Request = u64;
    type Response = String;
}

/// How many calls reached any handler.
#[derive(Default)]
pub struct Counters {
    pub calls: AtomicUsize,
}

pub fn router(counters: Arc<Counters>) -> Router {
    let mut r = Router::new();
    let c = counters.clone();
    r.register::<Echo, _, _>(move |_peer, s: String| {
        c.calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok(s) }
    })
    .unwrap();
    let c = counters.clone();
    r.register::<SlowAdd, _, _>(move |_peer, (a, b, ms)| {
        c.calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(a + b)
        }
    })
    .unwrap();
    let c = counters.clone();
    r.register::<Sleep, _, _>(move |_peer, ms| {
        c.calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
    })
    .unwrap();
    let c = counters.clone();
    r.register::<WhoAmI, _, _>(move |peer: PeerIdentity, ()| {
        c.calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok(peer.node_id) }
    })
    .unwrap();
    let c = counters;
    r.register::<NotLeader, _, _>(move |_peer, ()| {
        c.calls.fetch_add(1, Ordering::SeqCst);
        async move {
            Err(RpcError::new(ErrorCode::PermissionDenied, "not the leader")
                .with_retryable(true)
                .with_leader_hint("10.1.2.3:4661"))
        }
    })
    .unwrap();
    r
}

/// A server for `id` on a free loopback port with the test router.
pub async fn start(id: &NodeIdentity, cfg: NetConfig) -> (RpcServer, Arc<Counters>) {
    start_at("127.0.0.1:0", id, cfg).await
}

pub async fn start_at(addr: &str, id: &NodeIdentity, cfg: NetConfig) -> (RpcServer, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let tls = TlsContext::new(id, &cfg).unwrap();
    let server = RpcServer::bind(addr, &tls, router(counters.clone()), cfg)
        .await
        .unwrap();
    (server, counters)
}

/// Polls `check` until it holds or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
