//! One hosted database: its replica (SQLite file with data and chain), its
//! Raft group, the profile the main chain holds for it, and its seal loop.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use covenant_core::api::database::DbHead;
use covenant_core::config::MinerConfig;
use covenant_core::consensus::database::{DatabaseRaft, DatabaseShared, DatabaseStateMachine};
use covenant_core::consensus::founding;
use covenant_core::consensus::log_store::LogDurability;
use covenant_core::consensus::{GroupHandler, GroupId, LogStore, RaftNetwork, RaftPeer, raft_id};
use covenant_core::crypto::NodeId;
use covenant_core::types::{Consistency, DatabaseId, DatabaseProfile};
use openraft::{Raft, SnapshotPolicy};
use tokio::task::JoinHandle;

use super::MinerInner;
use super::batch::WriteBatcher;
use crate::error::{MinerError, Result};

/// Raft timing and snapshots for database groups: failover in a few
/// seconds, light idle traffic, a log that does not grow forever.
/// `snapshot_log_entries` is `Miner.SnapshotLogEntries` (0: never snapshot).
fn raft_config(id: &DatabaseId, snapshot_log_entries: u64) -> Result<openraft::Config> {
    // Snapshots. An entry is a batch of up to 1024 writes (or a sealed
    // block, one a second), and a snapshot is a `VACUUM INTO` of the whole
    // file that holds up applies while it runs. One client writing flat out
    // makes ~600-1000 entries/s here (README's benchmark table) and batching
    // makes fewer under concurrency, so the default 50,000 entries means a
    // snapshot every minute or two at full load, hours apart for ordinary
    // ones, and a log of at most ~60,000 entries instead of every entry
    // since creation. Keeping a fifth of that after a snapshot lets a
    // follower that was down briefly catch up from the log rather than
    // receive the whole file; one further behind gets the snapshot.
    let (snapshot_policy, keep) = match snapshot_log_entries {
        0 => (SnapshotPolicy::Never, 1_000),
        n => (SnapshotPolicy::LogsSinceLast(n), n / 5),
    };
    openraft::Config {
        cluster_name: format!("covenant-db-{}", id.to_hex()),
        // Heartbeats come from the miner-wide task in `heartbeat`, every
        // group's at once, so idle groups share network writes; here
        // `heartbeat_interval` only sets openraft's tick (1.5 × it), which
        // times elections.
        heartbeat_interval: 500,
        enable_heartbeat: false,
        // openraft 0.9 lets a follower campaign only after leader_lease
        // (= election_timeout_max) plus its own random timeout without a
        // heartbeat: 2.5-3 s here, so a dead leader is replaced in ~3-4 s.
        election_timeout_min: 1000,
        election_timeout_max: 1500,
        snapshot_policy,
        max_in_snapshot_log_to_keep: keep,
        // The last chunk's RPC returns once the follower has installed the
        // snapshot (written and fsynced the whole file twice): far longer
        // than openraft's 200 ms default for a database of any size.
        install_snapshot_timeout: 60_000,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MinerError::Raft(e.to_string()))
}

/// A database this miner serves.
pub struct DatabaseHost {
    id: DatabaseId,
    me: NodeId,
    pub(crate) shared: Arc<DatabaseShared>,
    pub(crate) raft: Raft<DatabaseRaft>,
    profile: RwLock<DatabaseProfile>,
    pub(crate) batcher: WriteBatcher,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// How long a leader waits for a majority to commit a write before telling
/// the client it was not committed (yet).
pub(crate) const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A leader that has not heard from a majority for this long refuses new
/// writes at once instead of letting them wait for [`COMMIT_TIMEOUT`].
const QUORUM_SILENCE_MS: u64 = 2_500;

impl DatabaseHost {
    /// Opens the replica under `RootDir/<id>/`, joins its Raft group and starts sealing.
    pub(crate) async fn open(
        inner: &Arc<MinerInner>,
        profile: DatabaseProfile,
        members: BTreeMap<u64, RaftPeer>,
        sql_period: Duration,
    ) -> Result<Arc<DatabaseHost>> {
        let id = profile.id;
        let dir = inner.root.join(id.to_hex());
        std::fs::create_dir_all(&dir).map_err(|e| MinerError::Config {
            path: dir.display().to_string(),
            reason: format!("cannot create the database directory: {e}"),
        })?;
        let shared = DatabaseShared::open(id, &dir.join("data.db"))
            .map_err(|e| MinerError::Database(e.to_string()))?;
        // Strong: an append is acknowledged once fsynced. Eventual: once
        // written, flushed in the background (see LogDurability::Deferred).
        let durability = match profile.consistency {
            Consistency::Strong => LogDurability::Fsync,
            Consistency::Eventual => LogDurability::Deferred,
        };
        let log = LogStore::<DatabaseRaft>::open_with(&dir.join("raft.db"), durability)
            .map_err(covenant_core::Error::from)?;
        let progress = log.progress();
        let me = inner.node_id();
        let raft = Raft::new(
            raft_id(&me),
            Arc::new(raft_config(
                &id,
                inner
                    .config
                    .miner
                    .as_ref()
                    .map_or(MinerConfig::DEFAULT_SNAPSHOT_LOG_ENTRIES, |m| {
                        m.snapshot_log_entries
                    }),
            )?),
            RaftNetwork::<DatabaseRaft>::new(
                GroupId::Database(id.0),
                inner.net.clone(),
                progress.clone(),
            ),
            log,
            DatabaseStateMachine::new(shared.clone(), progress.clone()),
        )
        .await
        .map_err(|e| MinerError::Raft(e.to_string()))?;
        inner.registry.insert(
            GroupId::Database(id.0),
            Arc::new(
                GroupHandler::new(raft.clone(), progress)
                    .with_founders(members.values().map(|p| p.node_id).collect()),
            ),
        );
        // One member founds the group, the others only if it did not reach them.
        let founding = founding::found_group(
            &raft,
            members,
            raft_id(&me),
            id.0.as_bytes(),
            format!("database {}", id.to_hex()),
        )
        .await;
        shared.set_audit(inner.audit.clone());
        let (batcher, batching) = WriteBatcher::start(raft.clone(), COMMIT_TIMEOUT);
        let host = Arc::new(DatabaseHost {
            id,
            me,
            shared,
            raft,
            profile: RwLock::new(profile),
            batcher,
            tasks: std::sync::Mutex::new(vec![batching].into_iter().chain(founding).collect()),
        });
        let sealing = tokio::spawn(super::seal::run(inner.clone(), host.clone(), sql_period));
        host.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sealing);
        Ok(host)
    }

    /// The database id.
    pub fn id(&self) -> DatabaseId {
        self.id
    }

    /// The replica.
    pub fn shared(&self) -> &Arc<DatabaseShared> {
        &self.shared
    }

    /// The profile as last read from the main chain.
    pub fn profile(&self) -> DatabaseProfile {
        self.profile
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_profile(&self, profile: DatabaseProfile) {
        *self.profile.write().unwrap_or_else(|p| p.into_inner()) = profile;
    }

    /// The group's leader, if known.
    pub fn leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|p| p.node_id)
    }

    /// On a leader that has not heard from a majority for a while: how long
    /// (`None` if never). `None` on a leader in touch, or on a follower.
    pub fn quorum_silence(&self) -> Option<Option<u64>> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.current_leader != Some(m.id) || m.state != openraft::ServerState::Leader {
            return None;
        }
        match m.millis_since_quorum_ack {
            Some(ms) if ms <= QUORUM_SILENCE_MS => None,
            other => Some(other),
        }
    }

    /// The group's Raft term as this replica knows it; every election raises it.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Whether this miner leads the group.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.me)
    }

    /// The head as this replica sees it.
    pub fn head(&self) -> DbHead {
        DbHead {
            head: self.shared.head(),
            leader: self.leader(),
            miner: self.me,
            pending: self.shared.pending_len().unwrap_or(0),
        }
    }

    /// Stops sealing and the Raft group, and closes the replica's file (the
    /// data stays on disk).
    pub(crate) async fn stop(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(database = %self.id.to_hex(), error = %e, "raft did not stop cleanly");
        }
        // Checkpoints and fsyncs the file, so the next start trusts it.
        let shared = self.shared.clone();
        let closed = match tokio::task::spawn_blocking(move || shared.close()).await {
            Ok(done) => done.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = closed {
            tracing::warn!(database = %self.id.to_hex(), error = %e, "the replica did not close cleanly");
        }
    }
}
