//! Who gives a new Raft group its first membership.
//!
//! Only an empty log takes the initial membership (asking again would make
//! openraft log an error on every restart). One member founds the group
//! and so leads it first: the one [`founder`] picks, which depends on the
//! group, so the many databases a few miners share start out led by each
//! of them in turn rather than all by one. The others wait for its leader to reach
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

use crate::hash::{Tag, hash_parts};

/// How long a member other than the founder waits for the founder's leader
/// before founding the group itself: two election timeouts and more.
pub const FOUNDER_GRACE: Duration = Duration::from_secs(4);

/// What the main chain's group is named by for [`founder`].
pub const MAIN_CHAIN_KEY: &[u8] = b"main chain";

/// The member (by Raft id) that founds the group named by `key`: the one
/// whose id hashes highest with `key` (rendezvous hashing), so every member
/// picks the same one and different groups pick different ones evenly.
pub fn founder(members: impl IntoIterator<Item = u64>, key: &[u8]) -> Option<u64> {
    members.into_iter().max_by_key(|id| {
        (
            hash_parts(Tag::GroupFounder, &[key, &id.to_be_bytes()]),
            *id,
        )
    })
}

/// Founds the group `raft` serves (named `group` in logs, `key` for
/// [`founder`]) with `members` if its log is empty: at once if `me` is the
/// founder, else after [`FOUNDER_GRACE`] if no leader has reached it by
/// then, on the returned task (abort it when the group stops first).
pub async fn found_group<C>(
    raft: &Raft<C>,
    members: BTreeMap<u64, C::Node>,
    me: u64,
    key: &[u8],
    group: String,
) -> Option<JoinHandle<()>>
where
    C: RaftTypeConfig<NodeId = u64>,
{
    if raft.is_initialized().await.unwrap_or(true) {
        return None;
    }
    if founder(members.keys().copied(), key) == Some(me) {
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

#[cfg(test)]
mod tests {
    use super::founder;

    #[test]
    fn every_member_picks_the_same_founder_and_groups_spread_over_members() {
        let members = [11u64, 22, 33];
        let mut led = [0usize; 3];
        for g in 0u32..300 {
            let key = g.to_be_bytes();
            let f = founder(members, &key).unwrap();
            // The order members are listed in does not matter.
            assert_eq!(founder(members.iter().rev().copied(), &key), Some(f));
            led[members.iter().position(|m| *m == f).unwrap()] += 1;
        }
        // Each of three members founds about a third of 300 groups.
        assert!(led.iter().all(|n| (70..=130).contains(n)), "{led:?}");
        assert_eq!(founder([], b"x"), None);
    }
}
