//! Heartbeats of every database group this miner leads, sent together.
//!
//! Left to openraft, each group sends its heartbeats on its own timer, at
//! its own moment: with hundreds of groups a miner makes hundreds of small
//! network writes (and wakes its peers as often) every second while idle.
//! Database groups therefore run with openraft's heartbeats off, and this
//! one task per miner triggers the heartbeat of every group it leads at the
//! same instant, every [`HEARTBEAT_PERIOD`]. The AppendEntries bound for one
//! peer then sit in its connection's queue together and leave in a few
//! writes (the writer flushes what is queued at once), and the answers come
//! back the same way.

use std::sync::Arc;
use std::time::Duration;

use super::MinerInner;

/// How often a leader tells its followers it is alive. openraft sent
/// heartbeats on its tick (1.5 × its 500 ms `heartbeat_interval`), so this
/// keeps the rate groups had, well inside the followers' 1.5 s lease.
pub(crate) const HEARTBEAT_PERIOD: Duration = Duration::from_millis(750);

/// Triggers every led database group's heartbeat each [`HEARTBEAT_PERIOD`], until aborted.
pub(crate) async fn run(inner: Arc<MinerInner>) {
    let mut every = tokio::time::interval(HEARTBEAT_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let leading: Vec<_> = inner
            .hosts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|h| h.is_leader())
            .cloned()
            .collect();
        for host in leading {
            // Fails only when the group is shutting down; nothing to tell then.
            let _ = host.raft.trigger().heartbeat().await;
        }
    }
}
