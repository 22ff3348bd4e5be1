//! TLS identity binding over real loopback connections: genuine peers learn
//! each other's verified identity; forged or unexpected ones are refused.

#[path = "net_support/common.rs"]
mod common;

use std::sync::atomic::Ordering;

use common::*;
use covenant_core::net::{Connection, Forgery, IdentityError, NetConfig, NetError, TlsContext};

async fn dial_err(
    client: &TlsContext,
    addr: &str,
    expected: Option<covenant_core::crypto::NodeId>,
) -> NetError {
    Connection::dial(client, addr, expected, &config())
        .await
        .expect_err("the dial should have been refused")
}

fn refused_because(err: NetError) -> IdentityError {
    match err {
        NetError::PeerRefused { source, .. } => source,
        other => panic!("expected PeerRefused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_peers_learn_each_others_verified_identity() {
    let server_id = identity();
    let client_id = identity();
    let (server, _) = start(&server_id, config()).await;
    let addr = server.local_addr().to_string();
    let conn = Connection::dial(
        &tls(&client_id),
        &addr,
        Some(server_id.node_id()),
        &config(),
    )
    .await
    .unwrap();
    assert_eq!(conn.peer(), server_id.as_peer());
    assert_eq!(conn.peer().address, server_id.address());
    // The handler saw the client's verified node id.
    let seen = conn.call::<WhoAmI>(&(), CALL).await.unwrap();
    assert_eq!(seen, client_id.node_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_signing_another_tls_key_is_refused() {
    let server_id = identity();
    let forged = TlsContext::forged(&server_id, Forgery::SignatureOverOtherKey, &config()).unwrap();
    let server = covenant_core::net::RpcServer::bind(
        "127.0.0.1:0",
        &forged,
        router(Default::default()),
        config(),
    )
    .await
    .unwrap();
    let err = dial_err(&tls(&identity()), &server.local_addr().to_string(), None).await;
    assert_eq!(refused_because(err), IdentityError::BadBindingSignature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_binding_signed_by_another_node_key_is_refused() {
    let server_id = identity();
    let forged = TlsContext::forged(&server_id, Forgery::SignedByOtherKey, &config()).unwrap();
    let server = covenant_core::net::RpcServer::bind(
        "127.0.0.1:0",
        &forged,
        router(Default::default()),
        config(),
    )
    .await
    .unwrap();
    let err = dial_err(&tls(&identity()), &server.local_addr().to_string(), None).await;
    assert_eq!(refused_because(err), IdentityError::BadBindingSignature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_id_not_matching_the_nonce_is_refused() {
    let server_id = identity();
    let forged = TlsContext::forged(&server_id, Forgery::NonceMismatch, &config()).unwrap();
    let server = covenant_core::net::RpcServer::bind(
        "127.0.0.1:0",
        &forged,
        router(Default::default()),
        config(),
    )
    .await
    .unwrap();
    let err = dial_err(&tls(&identity()), &server.local_addr().to_string(), None).await;
    match refused_because(err) {
        IdentityError::NodeIdMismatch { claimed, computed } => {
            assert_eq!(claimed, server_id.node_id());
            assert_ne!(computed, claimed);
        }
        other => panic!("expected NodeIdMismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_without_identity_is_refused() {
    let server_id = identity();
    let forged = TlsContext::forged(&server_id, Forgery::NoExtension, &config()).unwrap();
    let server = covenant_core::net::RpcServer::bind(
        "127.0.0.1:0",
        &forged,
        router(Default::default()),
        config(),
    )
    .await
    .unwrap();
    let err = dial_err(&tls(&identity()), &server.local_addr().to_string(), None).await;
    assert_eq!(refused_because(err), IdentityError::MissingExtension);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn difficulty_below_the_minimum_is_refused() {
    let server_id = identity();
    let (server, _) = start(&server_id, config()).await;
    let strict = NetConfig {
        min_difficulty: server_id.node_id().difficulty() + 1,
        ..config()
    };
    let client = TlsContext::new(&identity(), &strict).unwrap();
    let err = Connection::dial(&client, &server.local_addr().to_string(), None, &strict)
        .await
        .unwrap_err();
    match refused_because(err) {
        IdentityError::DifficultyTooLow { id, minimum, .. } => {
            assert_eq!(id, server_id.node_id());
            assert_eq!(minimum, strict.min_difficulty);
        }
        other => panic!("expected DifficultyTooLow, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_node_id_when_dialling_a_known_node_is_refused() {
    let server_id = identity();
    let someone_else = identity();
    let (server, _) = start(&server_id, config()).await;
    let err = dial_err(
        &tls(&identity()),
        &server.local_addr().to_string(),
        Some(someone_else.node_id()),
    )
    .await;
    assert_eq!(
        refused_because(err),
        IdentityError::UnexpectedNode {
            expected: someone_else.node_id(),
            found: server_id.node_id(),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_forged_clients_and_keeps_serving() {
    let server_id = identity();
    let (server, counters) = start(&server_id, config()).await;
    let addr = server.local_addr().to_string();
    for forgery in [
        Forgery::SignatureOverOtherKey,
        Forgery::SignedByOtherKey,
        Forgery::NonceMismatch,
        Forgery::NoExtension,
    ] {
        let forged = TlsContext::forged(&identity(), forgery, &config()).unwrap();
        // In TLS 1.3 the client may finish its side before the server's refusal
        // arrives, so the refusal shows either at dial or at the first call.
        let outcome = match Connection::dial(&forged, &addr, None, &config()).await {
            Err(e) => Err(e),
            Ok(conn) => conn.call::<Echo>(&"hi".to_string(), CALL).await,
        };
        assert!(outcome.is_err(), "{forgery:?} was served: {outcome:?}");
    }
    assert_eq!(
        counters.calls.load(Ordering::SeqCst),
        0,
        "a forged client reached a handler"
    );
    // Too-easy client ids are refused by the server as well.
    let weak = loop {
        let id = covenant_core::net::NodeIdentity::mine_weak(0).unwrap();
        if id.node_id().difficulty() < DIFFICULTY {
            break id;
        }
    };
    let weak_tls = TlsContext::new(&weak, &NetConfig::default()).unwrap();
    let outcome = match Connection::dial(&weak_tls, &addr, None, &config()).await {
        Err(e) => Err(e),
        Ok(conn) => conn.call::<Echo>(&"hi".to_string(), CALL).await,
    };
    assert!(outcome.is_err());
    assert_eq!(counters.calls.load(Ordering::SeqCst), 0);
    // An honest client is still served.
    let conn = Connection::dial(
        &tls(&identity()),
        &addr,
        Some(server_id.node_id()),
        &config(),
    )
    .await
    .unwrap();
    assert_eq!(
        conn.call::<Echo>(&"still here".to_string(), CALL)
            .await
            .unwrap(),
        "still here"
    );
}
