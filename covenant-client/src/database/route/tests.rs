//! The miner routing against fake miners over real TLS on loopback:
//! following a leader hint, waiting out "not served yet", typed final
//! refusals, giving up at the deadline, and what happens to a write whose
//! answer was lost (resent as a signed write, else reported unknown).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use covenant_core::api::database::{DbHead, GetHead, Query as QueryMethod};
use covenant_core::crypto::PrivateKey;
use covenant_core::net::{NetConfig, NodeIdentity, Router, RpcServer, TlsContext};
use covenant_core::sqlchain::query::Query;
use covenant_core::sqlchain::request::{
    Outcome, QueryKind, QueryResponse, ReadLevel, RequestBody, SignedRequest,
};

use super::*;

/// A fake miner: answers `db.head` with `head(call number)` and
/// `db.query` with `query(call number)`, or never when that is `None`.
/// Calls of both methods count.
struct FakeMiner {
    identity: NodeIdentity,
    calls: Arc<AtomicU64>,
    server: RpcServer,
}

async fn fake<H, Q>(head: H, query: Q) -> FakeMiner
where
    H: Fn(u64, NodeId) -> Result<DbHead, RpcError> + Send + Sync + 'static,
    Q: Fn(u64) -> Option<Result<QueryResponse, RpcError>> + Send + Sync + 'static,
{
    let identity = NodeIdentity::mine_weak(0).unwrap();
    let me = identity.node_id();
    let calls = Arc::new(AtomicU64::new(0));
    let mut router = Router::new();
    let c = calls.clone();
    router
        .register::<GetHead, _, _>(move |_, _| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let r = head(n, me);
            async move { r }
        })
        .unwrap();
    let c = calls.clone();
    router
        .register::<QueryMethod, _, _>(move |_, _| {
            let r = query(c.fetch_add(1, Ordering::SeqCst));
            async move {
                match r {
                    Some(r) => r,
                    None => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Err(RpcError::new(ErrorCode::Internal, "too late"))
                    }
                }
            }
        })
        .unwrap();
    let net = NetConfig::default();
    let tls = TlsContext::new(&identity, &net).unwrap();
    let server = RpcServer::bind("127.0.0.1:0", &tls, router, net)
        .await
        .unwrap();
    FakeMiner {
        identity,
        calls,
        server,
    }
}

/// A fake miner whose `db.head` answers `head(call number)` and whose `db.query` never answers.
async fn fake_miner<F>(head: F) -> FakeMiner
where
    F: Fn(u64, NodeId) -> Result<DbHead, RpcError> + Send + Sync + 'static,
{
    fake(head, |_| None).await
}

/// A fake leader whose `db.query` answers `answer(call number)`, or never when that is `None`.
async fn fake_writer<F>(answer: F) -> FakeMiner
where
    F: Fn(u64) -> Option<Result<QueryResponse, RpcError>> + Send + Sync + 'static,
{
    fake(|_, me| serve(me), answer).await
}

impl FakeMiner {
    fn id(&self) -> NodeId {
        self.identity.node_id()
    }
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn serve(me: NodeId) -> Result<DbHead, RpcError> {
    Ok(DbHead {
        head: None,
        leader: Some(me),
        miner: me,
        pending: 0,
    })
}

fn pool() -> Pool {
    let identity = NodeIdentity::mine_weak(0).unwrap();
    let net = NetConfig::default();
    Pool::new(TlsContext::new(&identity, &net).unwrap(), net)
}

fn route_over(miners: &[&FakeMiner]) -> MinerRoute {
    let pool = pool();
    for m in miners {
        pool.set_address(m.id(), m.server.local_addr().to_string());
    }
    MinerRoute::new(
        DatabaseId::default(),
        pool,
        miners.iter().map(|m| m.id()).collect(),
        Duration::from_millis(300),
    )
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

#[tokio::test]
async fn follows_the_leader_hint_and_remembers_it() {
    let leader = fake_miner(|_, me| serve(me)).await;
    let hint = leader.id().to_string();
    let follower = fake_miner(move |_, _| {
        Err(RpcError::new(ErrorCode::NotLeader, "not me")
            .with_retryable(true)
            .with_leader_hint(hint.clone()))
    })
    .await;
    let route = route_over(&[&follower, &leader]);
    assert_eq!(route.leader_guess(), Some(follower.id()));
    let head = route
        .call::<GetHead>(&DatabaseId::default(), soon(5_000), Resend::Always)
        .await
        .unwrap();
    assert_eq!(head.miner, leader.id());
    assert_eq!(route.leader_guess(), Some(leader.id()));
    assert_eq!(follower.calls(), 1);
    // The next call goes straight to the leader.
    route
        .call::<GetHead>(&DatabaseId::default(), soon(5_000), Resend::Always)
        .await
        .unwrap();
    assert_eq!((follower.calls(), leader.calls()), (1, 2));
}

#[tokio::test]
async fn waits_until_the_miner_serves_the_database() {
    let miner = fake_miner(|n, me| {
        if n < 3 {
            Err(RpcError::new(ErrorCode::NotFound, "not yet").with_retryable(true))
        } else {
            serve(me)
        }
    })
    .await;
    let route = route_over(&[&miner]);
    route
        .call::<GetHead>(&DatabaseId::default(), soon(10_000), Resend::Always)
        .await
        .unwrap();
    assert_eq!(miner.calls(), 4);
}

#[tokio::test]
async fn final_refusals_are_typed_and_not_retried() {
    let miner = fake_miner(|_, _| Err(RpcError::new(ErrorCode::PermissionDenied, "no"))).await;
    let route = route_over(&[&miner]);
    let e = route
        .call::<GetHead>(&DatabaseId::default(), soon(5_000), Resend::Always)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e}");
    assert_eq!(miner.calls(), 1);
}

fn answered() -> QueryResponse {
    QueryResponse {
        request_hash: covenant_core::hash::Hash::ZERO,
        outcome: Outcome::Ok(vec![]),
    }
}

#[tokio::test]
async fn a_signed_write_whose_answer_was_lost_is_resent() {
    // The first attempt times out, the second is answered.
    let miner = fake_writer(|n| (n > 0).then(|| Ok(answered()))).await;
    let route = route_over(&[&miner]);
    let r = route
        .call::<QueryMethod>(&write_request(), soon(5_000), Resend::SignedWrite)
        .await
        .unwrap();
    assert_eq!(r, answered());
    assert_eq!(miner.calls(), 2);
}

#[tokio::test]
async fn a_signed_write_never_answered_is_unknown_at_the_deadline() {
    let miner = fake_writer(|_| None).await;
    let route = route_over(&[&miner]);
    let e = route
        .call::<QueryMethod>(&write_request(), soon(1_000), Resend::SignedWrite)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::WriteOutcomeUnknown { .. }), "{e}");
    assert!(miner.calls() >= 2, "{}", miner.calls());
}

#[tokio::test]
async fn a_resent_write_refused_before_it_ran_leaves_the_first_unknown() {
    // Not committed in time (it may still be), then refused as stale: the
    // refusal says nothing about the first attempt.
    let miner = fake_writer(|n| {
        Some(Err(if n == 0 {
            RpcError::new(ErrorCode::NoQuorum, "no quorum: not committed within 3 s")
        } else {
            RpcError::new(ErrorCode::StaleRequest, "too old")
        }))
    })
    .await;
    let route = route_over(&[&miner]);
    let e = route
        .call::<QueryMethod>(&write_request(), soon(5_000), Resend::SignedWrite)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::WriteOutcomeUnknown { .. }), "{e}");
    assert!(e.to_string().contains("not committed"), "{e}");
    assert_eq!(miner.calls(), 2);
}

fn write_request() -> SignedRequest {
    let key = PrivateKey::generate().unwrap();
    SignedRequest::sign(
        RequestBody {
            database: DatabaseId::default(),
            user: key.public_key().address(),
            timestamp: 1,
            sequence: 1,
            kind: QueryKind::Write,
            read_level: ReadLevel::default(),
            queries: vec![Query::new("INSERT INTO t VALUES (1)")],
        },
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn a_lost_write_answer_is_not_resent_unless_signed() {
    let miner = fake_miner(|_, me| serve(me)).await;
    let route = route_over(&[&miner]);
    let e = route
        .call::<QueryMethod>(&write_request(), soon(5_000), Resend::Never)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::WriteOutcomeUnknown { .. }), "{e}");
    assert!(
        e.to_string().contains("may or may not have been applied"),
        "{e}"
    );
    assert_eq!(miner.calls(), 1);
}

#[tokio::test]
async fn unreachable_miners_give_up_at_the_deadline() {
    let pool = pool();
    let nobody = NodeIdentity::mine_weak(0).unwrap().node_id();
    pool.set_address(nobody, "127.0.0.1:1");
    let route = MinerRoute::new(
        DatabaseId::default(),
        pool,
        vec![nobody],
        Duration::from_millis(200),
    );
    let e = route
        .call::<GetHead>(&DatabaseId::default(), soon(300), Resend::Always)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DatabaseUnavailable { .. }), "{e}");
    assert!(e.retryable());
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn a_majority_unreachable_is_no_quorum() {
    let follower = fake_miner(|_, _| {
        Err(RpcError::new(ErrorCode::NotLeader, "no leader known").with_retryable(true))
    })
    .await;
    let pool = pool();
    pool.set_address(follower.id(), follower.server.local_addr().to_string());
    let mut miners = vec![follower.id()];
    for port in [1, 2] {
        let nobody = NodeIdentity::mine_weak(0).unwrap().node_id();
        pool.set_address(nobody, format!("127.0.0.1:{port}"));
        miners.push(nobody);
    }
    let route = MinerRoute::new(
        DatabaseId::default(),
        pool,
        miners,
        Duration::from_millis(200),
    );
    let e = route
        .call::<GetHead>(&DatabaseId::default(), soon(500), Resend::Always)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::DatabaseUnavailable { .. }), "{e}");
    assert!(e.is(ErrorCode::NoQuorum), "{e}");
    assert!(e.retryable());
    let text = e.to_string();
    for part in [
        "no quorum",
        "2 of the database's 3 miners",
        "127.0.0.1:2",
        "restart",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

#[tokio::test]
async fn a_stale_hint_to_a_dead_miner_does_not_hide_the_others() {
    let pool = pool();
    let dead = NodeIdentity::mine_weak(0).unwrap().node_id();
    pool.set_address(dead, "127.0.0.1:1");
    let hint = dead.to_string();
    let follower = fake_miner(move |_, _| {
        Err(RpcError::new(ErrorCode::NotLeader, "not me")
            .with_retryable(true)
            .with_leader_hint(hint.clone()))
    })
    .await;
    let leader = fake_miner(|_, me| serve(me)).await;
    for m in [&follower, &leader] {
        pool.set_address(m.id(), m.server.local_addr().to_string());
    }
    let route = MinerRoute::new(
        DatabaseId::default(),
        pool,
        vec![dead, follower.id(), leader.id()],
        Duration::from_millis(200),
    );
    let head = route
        .call::<GetHead>(&DatabaseId::default(), soon(3_000), Resend::Always)
        .await
        .unwrap();
    assert_eq!(head.miner, leader.id());
}

#[tokio::test]
async fn every_miner_answering_without_a_leader_is_no_leader() {
    let refuse = |_, _| Err(RpcError::new(ErrorCode::NotLeader, "electing").with_retryable(true));
    let a = fake_miner(refuse).await;
    let b = fake_miner(refuse).await;
    let route = route_over(&[&a, &b]);
    let e = route
        .call::<GetHead>(&DatabaseId::default(), soon(300), Resend::Always)
        .await
        .unwrap_err();
    assert!(e.is(ErrorCode::NotLeader), "{e}");
    assert!(e.to_string().contains("no leader"), "{e}");
}

#[test]
fn judging_refusals() {
    let a = NodeIdentity::mine_weak(0).unwrap().node_id();
    let b = NodeIdentity::mine_weak(0).unwrap().node_id();
    let r = MinerRoute::new(
        DatabaseId::default(),
        pool(),
        vec![a, b],
        Duration::from_millis(200),
    );
    let hint = RpcError::new(ErrorCode::NotLeader, "no").with_leader_hint(b.to_string());
    assert_eq!(r.judge(&hint, 0), Some(Next::Hinted(1)));
    // A hint naming the miner itself or an unknown node: move on.
    assert_eq!(r.judge(&hint, 1), Some(Next::Move));
    let stranger = RpcError::new(ErrorCode::NotLeader, "no").with_leader_hint("00ff");
    assert_eq!(r.judge(&stranger, 0), Some(Next::Move));
    for code in [ErrorCode::NotFound, ErrorCode::NoQuorum] {
        assert_eq!(r.judge(&RpcError::new(code, "later"), 0), Some(Next::Move));
    }
    assert_eq!(
        r.judge(&RpcError::new(ErrorCode::PermissionDenied, "no"), 0),
        None
    );
}

#[test]
fn final_refusals_map_to_typed_errors() {
    let e = refusal::<QueryMethod>(RpcError::new(ErrorCode::PermissionDenied, "may not write"));
    assert!(
        matches!(e, ClientError::PermissionDenied { ref message } if message == "may not write")
    );
    let e = refusal::<QueryMethod>(RpcError::new(ErrorCode::StaleRequest, "clock"));
    assert!(matches!(e, ClientError::StaleRequest { .. }));
    let e = refusal::<QueryMethod>(RpcError::new(ErrorCode::BadSignature, "forged"));
    assert!(e.is(ErrorCode::BadSignature) && e.to_string().contains("forged"));
}

#[tokio::test]
async fn follower_reads_start_away_from_the_leader_and_spread() {
    let a = fake_miner(|_, me| serve(me)).await;
    let b = fake_miner(|_, me| serve(me)).await;
    let c = fake_miner(|_, me| serve(me)).await;
    let route = route_over(&[&a, &b, &c]);
    assert_eq!(route.leader_guess(), Some(a.id()));
    for _ in 0..4 {
        let head = route
            .call_follower_first::<GetHead>(&DatabaseId::default(), soon(5_000))
            .await
            .unwrap();
        assert_ne!(
            head.miner,
            a.id(),
            "a follower read went to the leader guess"
        );
    }
    assert_eq!((a.calls(), b.calls(), c.calls()), (0, 2, 2));
    // A follower's answer does not move the leader guess.
    assert_eq!(route.leader_guess(), Some(a.id()));
}
