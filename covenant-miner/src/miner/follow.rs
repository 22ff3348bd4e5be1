//! Following the main chain: offering service, registering in the
//! directory, and opening or dropping databases as the chain assigns them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use covenant_core::api::chain::MinerDatabases;
use covenant_core::consensus::{GroupId, RaftPeer, raft_id};
use covenant_core::crypto::NodeId;
use covenant_core::net::directory::{FindNode, NodeRecord, NodeRole, Register};
use covenant_core::types::{
    DatabaseId, DatabaseProfile, ProvideService, ResourceAsk, Token, TxPayload,
};

use super::MinerInner;
use super::host::DatabaseHost;

/// Registers this miner's address with every block producer's directory.
async fn register(inner: &MinerInner) {
    let record = NodeRecord::for_peer(
        &inner.identity.as_peer(),
        NodeRole::Miner,
        inner.listen.clone(),
    );
    for bp in inner.client.block_producers() {
        if let Err(e) = inner
            .client
            .call_node::<Register>(bp.node_id, &record)
            .await
        {
            tracing::debug!(bp = %bp.node_id, error = %e, "directory registration failed");
        }
    }
}

/// The offer this miner makes on the main chain.
fn offer(inner: &MinerInner) -> TxPayload {
    TxPayload::ProvideService(ProvideService {
        resources: ResourceAsk::default(),
        gas_price: 1,
        target_users: inner.target_users.clone(),
        deposit: inner.config.min_provider_deposit,
        token: Token::Particle,
        node_id: inner.node_id(),
    })
}

/// Registers and sends `ProvideService` now and every `ProvideServiceInterval`.
pub(crate) async fn provide_service_loop(inner: Arc<MinerInner>) {
    loop {
        register(&inner).await;
        match inner.client.submit(offer(&inner)).await {
            Ok(tx) => tracing::info!(%tx, "sent ProvideService"),
            Err(e) => tracing::warn!(error = %e, "cannot send ProvideService; retrying"),
        }
        tokio::time::sleep(inner.provide_interval).await;
    }
}

/// Where miner `node` listens: this miner's own address, else the directory.
async fn address_of(inner: &MinerInner, node: NodeId) -> Option<String> {
    if node == inner.node_id() {
        return Some(inner.listen.clone());
    }
    if let Some(a) = inner.net.address(&node) {
        return Some(a);
    }
    for bp in inner.client.block_producers() {
        if let Ok(Some(r)) = inner.client.call_node::<FindNode>(bp.node_id, &node).await {
            inner.net.set_address(node, r.addr.clone());
            return Some(r.addr);
        }
    }
    None
}

async fn members(inner: &MinerInner, profile: &DatabaseProfile) -> Option<BTreeMap<u64, RaftPeer>> {
    let mut out = BTreeMap::new();
    for m in &profile.miners {
        let addr = address_of(inner, m.node_id).await?;
        out.insert(
            raft_id(&m.node_id),
            RaftPeer {
                node_id: m.node_id,
                addr,
            },
        );
    }
    Some(out)
}

async fn open(inner: &Arc<MinerInner>, profile: DatabaseProfile) {
    let id = profile.id;
    let Some(members) = members(inner, &profile).await else {
        tracing::info!(database = %id.to_hex(), "waiting for every miner of the database to register");
        return;
    };
    let period = inner.config.sql_chain_period;
    match DatabaseHost::open(inner, profile, members, period).await {
        Ok(host) => {
            inner
                .hosts
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, host);
            inner.metrics.add_database(&id);
            tracing::info!(database = %id.to_hex(), "serving database");
        }
        Err(e) => tracing::error!(database = %id.to_hex(), error = %e, "cannot open database"),
    }
}

async fn drop_database(inner: &MinerInner, id: DatabaseId) {
    let host = inner
        .hosts
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    if let Some(host) = host {
        // Unlisted first, so no late request can re-list it.
        inner.registry.remove(&GroupId::Database(id.0));
        host.stop().await;
        inner.metrics.remove_database(&id);
        let dir = inner.root.join(id.to_hex());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(database = %id.to_hex(), "database dropped; data deleted"),
            Err(e) => {
                tracing::warn!(database = %id.to_hex(), error = %e, "cannot delete dropped database")
            }
        }
    }
}

/// One pass: open newly assigned databases, refresh profiles, drop the rest.
pub(crate) async fn sync_once(inner: &Arc<MinerInner>) -> bool {
    let profiles = match inner
        .client
        .call::<MinerDatabases>(&inner.identity.address())
        .await
    {
        Ok(p) => p,
        Err(e) => {
            inner
                .metrics
                .set_ready(false, format!("cannot reach the block producers: {e}"));
            tracing::debug!(error = %e, "cannot list assigned databases");
            return false;
        }
    };
    let wanted: HashSet<DatabaseId> = profiles.iter().map(|p| p.id).collect();
    for profile in profiles {
        match inner.host(&profile.id) {
            Some(host) => host.set_profile(profile),
            None => open(inner, profile).await,
        }
    }
    let gone: Vec<DatabaseId> = inner
        .hosts
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .filter(|id| !wanted.contains(id))
        .copied()
        .collect();
    for id in gone {
        drop_database(inner, id).await;
    }
    let missing = wanted.iter().filter(|id| inner.host(id).is_none()).count();
    if missing == 0 {
        match disagreeing(inner) {
            None => inner
                .metrics
                .set_ready(true, "serving every assigned database"),
            Some(reason) => inner.metrics.set_ready(false, reason),
        }
    } else {
        inner
            .metrics
            .set_ready(false, format!("{missing} assigned databases not open yet"));
    }
    true
}

/// Sealed blocks a replica must refuse in a row before the miner reports
/// that it and its leader hold different chains: one refusal can happen to
/// every replica alike (a seal that lost a race with a leader change), and
/// the next block, sealed from the same state, is then accepted.
const DIVERGED_AFTER: u64 = 3;

/// Why the miner is not ready when a database it serves keeps refusing the
/// blocks its leader seals, naming the database and the way out.
fn disagreeing(inner: &MinerInner) -> Option<String> {
    let hosts = inner.hosts.read().unwrap_or_else(|p| p.into_inner());
    hosts.iter().find_map(|(id, host)| {
        let r = host.shared().seal_refusals()?;
        (r.in_a_row >= DIVERGED_AFTER).then(|| {
            format!(
                "database {} refused the last {} blocks its leader sealed (the last: {}): \
                 this replica's chain and the leader's differ; see \
                 \"A replica that diverged\" in docs/deploy-miner.md",
                id.to_hex(),
                r.in_a_row,
                r.reason
            )
        })
    })
}

/// Resumes the databases served before a restart (the chain still assigns them).
pub(crate) async fn resume(inner: &Arc<MinerInner>) {
    sync_once(inner).await;
}

/// Polls the main chain for assignments until aborted.
pub(crate) async fn follow_loop(inner: Arc<MinerInner>) {
    loop {
        tokio::time::sleep(inner.follow_interval).await;
        sync_once(&inner).await;
    }
}
