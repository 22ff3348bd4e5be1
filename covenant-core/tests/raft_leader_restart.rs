//! A leader that restarts must not resume its term. It sends entries while
//! its own append is in flight, so followers may hold log ids of that term
//! it never stored; resuming the term would give those ids to other entries,
//! and replicas would diverge (vendor/README.md, patch 3). The workspace
//! patches openraft so a restarted leader campaigns in a new term; this test
//! fails if a new openraft version or a lost patch resumes the old one.

mod raft_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use covenant_core::consensus::LogStore;
use openraft::{Config, Raft, ServerState};
use raft_support::{Cfg, NoNetwork, NoState};

#[test]
fn a_restarted_leader_campaigns_in_a_new_term() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft.db");
    rt.block_on(async {
        let raft = start(&path).await;
        raft.initialize(BTreeSet::from([1])).await.unwrap();
        let first = leader_term(&raft).await;
        raft.client_write(7).await.unwrap();
        raft.shutdown().await.unwrap();
        drop(raft);

        let raft = start(&path).await;
        let second = leader_term(&raft).await;
        assert!(
            second > first,
            "the restarted leader resumed term {first} (now {second}) instead of campaigning \
             in a new one; is openraft's startup patched (vendor/README.md)?"
        );
        // Its log survived: the write is still there, below the new term's first entry.
        let metrics = raft.metrics().borrow().clone();
        let last = metrics.last_log_index.unwrap_or_default();
        assert!(
            last >= 3,
            "the log lost entries across the restart: last index {last}"
        );
        raft.shutdown().await.unwrap();
    });
}

/// A single-node group over the log at `path`.
async fn start(path: &Path) -> Raft<Cfg> {
    let config = Arc::new(Config::default().validate().unwrap());
    let log = LogStore::<Cfg>::open(path).unwrap();
    Raft::new(1, config, NoNetwork, log, NoState).await.unwrap()
}

/// Waits until node 1 leads; its term.
async fn leader_term(raft: &Raft<Cfg>) -> u64 {
    raft.wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| m.state == ServerState::Leader && m.current_leader == Some(1),
            "node 1 leads",
        )
        .await
        .unwrap()
        .current_term
}
