//! The connection pool: reconnecting after a peer restarts, failing fast and
//! typed on dead or wrong peers.

#[path = "net_support/common.rs"]
mod common;

use std::time::Duration;

use common::*;
use covenant_core::error::ErrorCode;
use covenant_core::net::{IdentityError, NetError, Pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts_on_the_same_port() {
    let server_id = identity();
    let (server, _) = start(&server_id, config()).await;
    let addr = server.local_addr().to_string();
    let pool = Pool::new(tls(&identity()), config());
    pool.set_address(server_id.node_id(), addr.clone());
    assert_eq!(
        pool.call::<Echo>(server_id.node_id(), &"one".into(), CALL)
            .await
            .unwrap(),
        "one"
    );
    let first = pool.connection(server_id.node_id(), CALL).await.unwrap();

    server.shutdown().await;
    assert!(
        eventually(CALL, || first.is_closed()).await,
        "the client never saw the close"
    );
    // The node comes back on the same port with the same node id (and a new TLS key).
    let (_server, counters) = start_at(&addr, &server_id, config()).await;

    assert_eq!(
        pool.call::<Echo>(server_id.node_id(), &"two".into(), CALL)
            .await
            .unwrap(),
        "two"
    );
    assert_eq!(counters.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let second = pool.connection(server_id.node_id(), CALL).await.unwrap();
    assert!(!second.is_closed());
    // Non-idempotent calls use the new connection too.
    assert_eq!(
        pool.call::<SlowAdd>(server_id.node_id(), &(1, 2, 0), CALL)
            .await
            .unwrap(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_closed_port_fails_with_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let dead = identity();
    let pool = Pool::new(tls(&identity()), config());
    pool.set_address(dead.node_id(), addr);
    let e = pool
        .call::<Echo>(dead.node_id(), &"hello?".into(), Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::Connect { .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Network);
    assert!(e.retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_silent_peer_fails_at_its_deadline() {
    // Accepts TCP (the kernel's backlog) but never speaks TLS.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = identity();
    let pool = Pool::new(tls(&identity()), config());
    pool.set_address(dead.node_id(), silent.local_addr().unwrap().to_string());
    let e = pool
        .call::<Echo>(dead.node_id(), &"hello?".into(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_call_on_a_live_connection_fails_at_its_deadline() {
    let server_id = identity();
    let (server, _) = start(&server_id, config()).await;
    let pool = Pool::new(tls(&identity()), config());
    pool.set_address(server_id.node_id(), server.local_addr().to_string());
    let e = pool
        .call::<Sleep>(server_id.node_id(), &60_000, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_checks_it_reached_the_node_it_meant() {
    let server_id = identity();
    let impostor_for = identity();
    let (server, counters) = start(&server_id, config()).await;
    let pool = Pool::new(tls(&identity()), config());
    // The address is right, but the node listening there is not `impostor_for`.
    pool.set_address(impostor_for.node_id(), server.local_addr().to_string());
    let e = pool
        .call::<Echo>(impostor_for.node_id(), &"x".into(), CALL)
        .await
        .unwrap_err();
    match e {
        NetError::PeerRefused {
            source: IdentityError::UnexpectedNode { expected, found },
            ..
        } => {
            assert_eq!(expected, impostor_for.node_id());
            assert_eq!(found, server_id.node_id());
        }
        other => panic!("expected UnexpectedNode, got {other:?}"),
    }
    assert_eq!(counters.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nodes_and_forgotten_nodes_are_typed_errors() {
    let pool = Pool::new(tls(&identity()), config());
    let stranger = identity().node_id();
    let e = pool
        .call::<Echo>(stranger, &"x".into(), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(e, NetError::UnknownPeer(id) if id == stranger),
        "{e:?}"
    );
    pool.set_address(stranger, "127.0.0.1:9");
    assert_eq!(pool.address(&stranger).as_deref(), Some("127.0.0.1:9"));
    pool.remove(&stranger);
    assert_eq!(pool.address(&stranger), None);
}
