//! Who gives a new Raft group its first membership.
//!
//! Only an empty log takes the initial membership (asking again would make
//! openraft log an error on every restart). One member founds the group:
//! the one with the lowest Raft id. The others wait for its leader to reach
//! them ([`GroupHandler::with_founders`](super::GroupHandler::with_founders)
//! admits the founding members while the membership is empty) and found it
//! themselves only if none did within [`FOUNDER_GRACE`] (the founder may be
//! down). When every member initialised at once, all campaigned at once and
//! openraft 0.9 could depose the first leader (it ranks a same-term
//! uncommitted vote higher), so the group took an election timeout more to
//! settle and its first writes stalled.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::{Raft, RaftTypeConfig};
use tokio::task::JoinHandle;

/// How long a member other than the founder waits for the founder's leader
/// before founding the group itself: two election timeouts and more.
pub const FOUNDER_GRACE: Duration = Duration::from_secs(4);

/// Founds the group `raft` serves (named `group` in logs) with `members` if
/// its log is empty: at once if `me` has the lowest id, else after
/// [`FOUNDER_GRACE`] if no leader has reached it by then, on the returned
/// task (abort it when the group stops first).
pub async fn found_group<C>(
    raft: &Raft<C>,
    members: BTreeMap<C::NodeId, C::Node>,
    me: C::NodeId,
    group: String,
) -> Option<JoinHandle<()>>
where
    C: RaftTypeConfig,
{
    if raft.is_initialized().await.unwrap_or(true) {
        return None;
    }
    if members.keys().next() == Some(&me) {
        found(raft, members, &group).await;
        return None;
    }
    let raft = raft.clone();
    Some(tokio::spawn(async move {
        tokio::time::sleep(FOUNDER_GRACE).await;
        if !raft.is_initialized().await.unwrap_or(true) {
            tracing::warn!(%group, "no leader reached this member; founding the group");
            found(&raft, members, &group).await;
        }
    }))
}

/// Gives an empty group its initial membership; it then elects a leader.
async fn found<C: RaftTypeConfig>(
    raft: &Raft<C>,
    members: BTreeMap<C::NodeId, C::Node>,
    group: &str,
) {
    match raft.initialize(members).await {
        Ok(()) => tracing::info!(%group, "initialised the raft group"),
        Err(e) => tracing::debug!(%group, error = %e, "raft group already initialised"),
    }
}
