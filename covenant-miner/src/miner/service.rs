//! The database service clients call: signed queries, blocks and heads.
//!
//! A query is checked here before it touches a database: the signature,
//! the time gap (`MaxReqTimeGap`), the user's role, status and SQL
//! whitelist from the main chain's profile. Writes go through the group's
//! leader's batcher and Raft; reads run on the leader's replica and are recorded for
//! the next block.

use std::sync::Arc;

use covenant_core::api::database::{GetBlock, GetBlockByHash, GetHead, LocateRequest, Query};
use covenant_core::consensus::GroupId;
use covenant_core::error::ErrorCode;
use covenant_core::net::{NetError, Router, RpcError};
use covenant_core::sqlchain::block::BlockEntry;
use covenant_core::sqlchain::ledger::RequestKey;
use covenant_core::sqlchain::request::{
    Outcome, QueryKind, QueryResponse, ReadLevel, SignedRequest,
};
use covenant_core::types::{DatabaseId, UserStatus};
use openraft::error::{CheckIsLeaderError, RaftError};

use super::MinerInner;
use super::batch::WriteError;
use super::host::DatabaseHost;
use super::seal::now_ms;

fn not_served(id: &DatabaseId) -> RpcError {
    RpcError::new(
        ErrorCode::NotFound,
        format!(
            "this miner does not serve database {}; it may not have learned of it yet (retry), \
             or the database was dropped",
            id.to_hex()
        ),
    )
    .with_retryable(true)
}

fn not_leader(host: &DatabaseHost) -> RpcError {
    let e = RpcError::new(
        ErrorCode::NotLeader,
        "this miner is not the database's leader; send the request to the leader",
    )
    .with_retryable(true);
    match host.leader() {
        Some(l) => e.with_leader_hint(l.to_hex()),
        None => e,
    }
}

fn host_of(inner: &MinerInner, id: &DatabaseId) -> Result<Arc<DatabaseHost>, RpcError> {
    inner.host(id).ok_or_else(|| not_served(id))
}

/// Signature, time, role, status and whitelist checks; returns the request id.
fn admit(
    inner: &MinerInner,
    host: &DatabaseHost,
    req: &SignedRequest,
) -> Result<covenant_core::hash::Hash, RpcError> {
    let id = req
        .verify()
        .map_err(|e| RpcError::new(e.code(), e.to_string()))?;
    let gap = inner.max_req_time_gap.as_millis() as u64;
    req.check_time(now_ms(), gap)
        .map_err(|e| RpcError::new(e.code(), e.to_string()))?;
    let profile = host.profile();
    let user = req.body.user;
    let denied = |why: String| RpcError::new(ErrorCode::PermissionDenied, why);
    let Some(u) = profile.user(&user) else {
        return Err(denied(format!(
            "user {user} has no permission on database {}; ask one of its Super users to run \
             `cql grant -to-user {user} -to-dsn {} -perm Read`",
            profile.id.to_hex(),
            profile.id.to_dsn()
        )));
    };
    if u.status != UserStatus::Normal {
        return Err(denied(format!(
            "user {user} is blocked on database {} for unpaid usage; top up with \
             `cql transfer -to-dsn {} -amount N -token {}`",
            profile.id.to_hex(),
            profile.id.to_dsn(),
            profile.token
        )));
    }
    let allowed = match req.body.kind {
        QueryKind::Read => u.permission.can_read(),
        QueryKind::Write => u.permission.can_write(),
    };
    if !allowed {
        let what = match req.body.kind {
            QueryKind::Read => "read",
            QueryKind::Write => "write",
        };
        return Err(denied(format!(
            "user {user} may not {what} database {}",
            profile.id.to_hex()
        )));
    }
    for q in &req.body.queries {
        if !u.permission.allows_statement(&q.sql) {
            return Err(denied(format!(
                "statement {:?} is not in user {user}'s whitelist for database {}",
                q.sql,
                profile.id.to_hex()
            )));
        }
    }
    Ok(id)
}

fn outcome_of<E: std::fmt::Display>(
    r: Result<Vec<covenant_core::sqlchain::query::QueryResult>, E>,
    code: impl Fn(&E) -> ErrorCode,
) -> Outcome {
    match r {
        Ok(results) => Outcome::Ok(results),
        Err(e) => Outcome::Failed {
            code: code(&e).as_u32(),
            message: e.to_string(),
        },
    }
}

async fn query(inner: Arc<MinerInner>, req: SignedRequest) -> Result<QueryResponse, RpcError> {
    let host = host_of(&inner, &req.body.database)?;
    let request_hash = admit(&inner, &host, &req)?;
    inner.metrics.record_request(&host.id());
    match req.body.kind {
        QueryKind::Read => {
            let leader = host.is_leader();
            match req.body.read_level {
                ReadLevel::Linearizable => {
                    if !leader {
                        return Err(not_leader(&host));
                    }
                    host.raft.ensure_linearizable().await.map_err(|e| match e {
                        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)) => {
                            not_leader(&host)
                        }
                        e => RpcError::new(
                            ErrorCode::NoQuorum,
                            format!("cannot confirm leadership for a linearizable read: {e}"),
                        )
                        .with_retryable(true),
                    })?;
                }
                ReadLevel::Leader => {
                    if !leader {
                        return Err(not_leader(&host));
                    }
                }
                ReadLevel::Replica { max_lag_ms } => {
                    if !leader {
                        let group = GroupId::Database(host.id().0);
                        let lag = inner
                            .registry
                            .last_leader_contact(&group)
                            .map(|t| t.elapsed().as_millis() as u64);
                        match lag {
                            Some(lag) if lag <= max_lag_ms => {}
                            _ => {
                                return Err(RpcError::new(
                                    ErrorCode::NotLeader,
                                    format!(
                                        "this replica has not heard from its leader within                                          {max_lag_ms} ms (last: {}); read from the leader",
                                        lag.map(|l| format!("{l} ms ago"))
                                            .unwrap_or_else(|| "never".into())
                                    ),
                                )
                                .with_retryable(true)
                                .with_leader_hint(
                                    host.leader().map(|l| l.to_hex()).unwrap_or_default(),
                                ));
                            }
                        }
                    }
                }
            }
            let shared = host.shared().clone();
            let queries = req.body.queries.clone();
            let result = tokio::task::spawn_blocking(move || shared.read(&queries))
                .await
                .map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))?;
            let outcome = outcome_of(result, |e| e.code());
            let rows = match &outcome {
                Outcome::Ok(r) => r.iter().map(|q| q.rows.len() as u64).sum(),
                Outcome::Failed { .. } => 0,
            };
            let digest = outcome
                .digest()
                .map_err(|e| RpcError::new(ErrorCode::Internal, e.to_string()))?;
            // The leader records its reads in the next block; a follower's
            // replica reads are answered but not recorded (it seals nothing).
            if leader {
                host.shared().record_read(
                    BlockEntry {
                        request: req,
                        response_digest: digest,
                        stamp: None,
                    },
                    rows,
                );
            }
            Ok(QueryResponse {
                request_hash,
                outcome,
            })
        }
        QueryKind::Write => {
            if !host.is_leader() {
                return Err(not_leader(&host));
            }
            if let Some(silent_ms) = host.quorum_silence() {
                // Nothing is proposed, so the client may safely send it again.
                return Err(RpcError::new(
                    ErrorCode::NoQuorum,
                    format!(
                        "no quorum: this leader has not heard from a majority of the \
                         database's {} miners for {}; the write was not proposed — restart \
                         the stopped miners or check the network between them",
                        host.profile().miners.len(),
                        silent_ms
                            .map(|ms| format!("{ms} ms"))
                            .unwrap_or_else(|| "as long as it has led".into())
                    ),
                )
                .with_retryable(true));
            }
            match host.batcher.write(req).await {
                Ok(outcome) => Ok(QueryResponse {
                    request_hash,
                    outcome,
                }),
                Err(WriteError::NotLeader) => Err(not_leader(&host)),
                Err(WriteError::NotCommitted(after)) => Err(RpcError::new(
                    ErrorCode::NoQuorum,
                    format!(
                        "no quorum: the write was not committed within {} s because a majority \
                         of the database's {} miners did not confirm it (are they down?); it may \
                         still commit once they are back, so read before writing it again",
                        after.as_secs(),
                        host.profile().miners.len()
                    ),
                )),
                // Proposed, so it may still commit: not retryable, or it could apply twice.
                Err(WriteError::Raft(e)) => Err(RpcError::new(
                    ErrorCode::NoQuorum,
                    format!(
                        "the write's outcome is unknown: the database group failed while \
                         committing it ({e}); read before writing it again"
                    ),
                )),
                Err(WriteError::Closed) => Err(not_served(&host.id())),
            }
        }
    }
}

fn storage(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(ErrorCode::Storage, e.to_string()).with_retryable(true)
}

/// Registers the database service on `router`.
pub(crate) fn mount(router: &mut Router, inner: Arc<MinerInner>) -> Result<(), NetError> {
    let i = inner.clone();
    router.register::<Query, _, _>(move |_, req| query(i.clone(), req))?;
    let i = inner.clone();
    router.register::<GetBlock, _, _>(move |_, (db, count)| {
        let i = i.clone();
        async move { host_of(&i, &db)?.shared().block(count).map_err(storage) }
    })?;
    let i = inner.clone();
    router.register::<GetBlockByHash, _, _>(move |_, (db, hash)| {
        let i = i.clone();
        async move {
            host_of(&i, &db)?
                .shared()
                .block_by_hash(&hash)
                .map_err(storage)
        }
    })?;
    let i = inner.clone();
    router.register::<GetHead, _, _>(move |_, db| {
        let i = i.clone();
        async move { Ok(host_of(&i, &db)?.head()) }
    })?;
    let i = inner;
    router.register::<LocateRequest, _, _>(move |_, (db, id, timestamp)| {
        let i = i.clone();
        let key = RequestKey { id, timestamp };
        async move { host_of(&i, &db)?.shared().locate(&key).map_err(storage) }
    })?;
    Ok(())
}
