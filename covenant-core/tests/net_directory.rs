//! The directory service over real TLS, backed by SQLite: nodes register
//! themselves only, and anyone finds them by id or role.

#[path = "net_support/common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use covenant_core::error::ErrorCode;
use covenant_core::net::directory::{
    DirectoryClient, DirectoryService, NodeRecord, NodeRole, SqliteDirectory,
};
use covenant_core::net::{Connection, NodeIdentity, Router, RpcServer};

async fn start_directory(bp: &NodeIdentity, path: &std::path::Path) -> RpcServer {
    let store = Arc::new(SqliteDirectory::open(path).unwrap());
    let service = DirectoryService::new(store, DIFFICULTY).with_block_producers([bp.node_id()]);
    let mut router = Router::new();
    Arc::new(service).mount(&mut router).unwrap();
    RpcServer::bind("127.0.0.1:0", &tls(bp), router, config())
        .await
        .unwrap()
}

async fn client_of(id: &NodeIdentity, server: &RpcServer) -> DirectoryClient {
    let conn = Connection::dial(
        &tls(id),
        &server.local_addr().to_string(),
        Some(server.node_id()),
        &config(),
    )
    .await
    .unwrap();
    DirectoryClient::new(conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_themselves_and_are_found_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.db");
    let bp = identity();
    let server = start_directory(&bp, &path).await;

    let miner = identity();
    let miners = client_of(&miner, &server).await;
    let record = NodeRecord::for_peer(&miner.as_peer(), NodeRole::Miner, "127.0.0.1:7001");
    miners.register(&record, CALL).await.unwrap();
    let bp_client = client_of(&bp, &server).await;
    let bp_record = NodeRecord::for_peer(&bp.as_peer(), NodeRole::BlockProducer, "127.0.0.1:4661");
    bp_client.register(&bp_record, CALL).await.unwrap();

    let anyone = client_of(&identity(), &server).await;
    assert_eq!(
        anyone.find_node(miner.node_id(), CALL).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        anyone.find_by_role(NodeRole::Miner, CALL).await.unwrap(),
        vec![record.clone()]
    );
    assert_eq!(
        anyone
            .find_by_role(NodeRole::BlockProducer, CALL)
            .await
            .unwrap(),
        vec![bp_record]
    );
    assert_eq!(
        anyone.find_node(identity().node_id(), CALL).await.unwrap(),
        None
    );

    // The producer restarts; the directory is still there.
    server.shutdown().await;
    let server = start_directory(&bp, &path).await;
    let anyone = client_of(&identity(), &server).await;
    assert_eq!(
        anyone.find_node(miner.node_id(), CALL).await.unwrap(),
        Some(record)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_not_matching_the_tls_identity_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bp = identity();
    let server = start_directory(&bp, &dir.path().join("d.db")).await;
    let victim = identity();
    let attacker = identity();
    let attackers = client_of(&attacker, &server).await;

    // Registering someone else's id (to redirect their traffic) is refused.
    let hijack = NodeRecord::for_peer(&victim.as_peer(), NodeRole::Miner, "6.6.6.6:1");
    let e = attackers.register(&hijack, CALL).await.unwrap_err();
    assert!(
        e.remote()
            .is_some_and(|r| r.is(ErrorCode::PermissionDenied)),
        "{e:?}"
    );
    // Its own id with a nonce that does not produce it is refused.
    let mut bad_nonce = NodeRecord::for_peer(&attacker.as_peer(), NodeRole::Miner, "6.6.6.6:1");
    bad_nonce.nonce.d ^= 1;
    let e = attackers.register(&bad_nonce, CALL).await.unwrap_err();
    assert!(
        e.remote().is_some_and(|r| r.is(ErrorCode::BadNodeId)),
        "{e:?}"
    );
    // Claiming the block-producer role without being configured as one is refused.
    let rogue_bp = NodeRecord::for_peer(&attacker.as_peer(), NodeRole::BlockProducer, "6.6.6.6:1");
    let e = attackers.register(&rogue_bp, CALL).await.unwrap_err();
    assert!(
        e.remote()
            .is_some_and(|r| r.is(ErrorCode::PermissionDenied)),
        "{e:?}"
    );

    let anyone = client_of(&identity(), &server).await;
    assert_eq!(
        anyone.find_node(victim.node_id(), CALL).await.unwrap(),
        None
    );
    assert_eq!(
        anyone.find_node(attacker.node_id(), CALL).await.unwrap(),
        None
    );
    assert!(
        anyone
            .find_by_role(NodeRole::BlockProducer, CALL)
            .await
            .unwrap()
            .is_empty()
    );
}
