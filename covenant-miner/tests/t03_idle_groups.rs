//! Idle database groups keep their leaders: with openraft's own heartbeats
//! off, the miner-wide heartbeat task is all that stops followers from
//! campaigning. Three in-process miners host three three-node databases;
//! over twice the time a follower waits before campaigning, no group may
//! change its leader or term. Then the leader of one stops, and another
//! miner takes the group over.

use std::time::{Duration, Instant};

use covenant_client::CreateOptions;
use covenant_core::crypto::NodeId;
use covenant_core::types::DatabaseId;
use covenant_miner::localnet::{LocalNet, LocalNetOptions};

/// A follower campaigns after the leader lease (1.5 s) plus its election
/// timeout (1.0–1.5 s) without hearing from the leader; watch twice that.
const WATCH: Duration = Duration::from_secs(6);

/// Every running miner's (leader, term) for `id`, if each hosts it and knows a leader.
fn views(net: &LocalNet, id: &DatabaseId) -> Option<Vec<(NodeId, u64)>> {
    net.miners
        .iter()
        .map(|m| m.database(id).and_then(|h| Some((h.leader()?, h.term()))))
        .collect()
}

/// Every miner's (leader, term) for `id`, if all three host it and agree.
fn agreed(net: &LocalNet, id: &DatabaseId) -> Option<(NodeId, u64)> {
    let views = views(net, id)?;
    let first = *views.first()?;
    (views.len() == 3 && views.iter().all(|v| *v == first)).then_some(first)
}

async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_groups_keep_their_leaders_and_fail_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = LocalNet::start(
        dir.path(),
        LocalNetOptions {
            miners: 3,
            ..LocalNetOptions::default()
        },
    )
    .await
    .unwrap();
    net.wait_for_providers(Duration::from_secs(20))
        .await
        .unwrap();
    let client = net.super_client().unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = client
            .create_database(CreateOptions {
                node_count: 3,
                target_miners: net.miner_addresses(),
                ..CreateOptions::default()
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let mut before = Vec::new();
    for id in &ids {
        before.push(eventually("every miner to agree on a leader", || agreed(&net, id)).await);
    }

    let end = Instant::now() + WATCH;
    while Instant::now() < end {
        for (id, was) in ids.iter().zip(&before) {
            for m in &net.miners {
                let host = m.database(id).unwrap();
                assert_eq!(
                    (host.leader(), host.term()),
                    (Some(was.0), was.1),
                    "miner {} saw database {} change leader or term while idle",
                    m.node_id(),
                    id.to_hex()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The groups still fail over: stop the leader of the first database.
    let (old, term) = before[0];
    let index = net.miners.iter().position(|m| m.node_id() == old).unwrap();
    net.stop_miner(index).await.unwrap();
    let (new, new_term) = eventually("a new leader", || {
        let views: Vec<(NodeId, u64)> = net
            .miners
            .iter()
            .map(|m| {
                m.database(&ids[0])
                    .and_then(|h| Some((h.leader()?, h.term())))
            })
            .collect::<Option<_>>()?;
        (views.len() == 2 && views[0] == views[1] && views[0].0 != old).then_some(views[0])
    })
    .await;
    assert_ne!(new, old);
    assert!(new_term > term);
    net.shutdown().await;
}
