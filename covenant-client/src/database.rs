//! [`Database`]: one user's handle on one database — signing query
//! requests (fresh timestamp, increasing sequence), sending them to the
//! database's leader through `route`, and turning outcomes into results or
//! typed errors. Also the raw calls (blocks, heads, hand-built requests)
//! that verification and tests need.
//!
//! Retry decisions live only in `route`. Must not import node-side modules
//! (consensus, storage, the executor): only the RPC contracts in
//! `covenant_core::api::database` and the plain request/block types.

mod route;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use covenant_core::api::database::{DbHead, GetBlock, GetHead, Query as QueryMethod};
use covenant_core::crypto::NodeId;
use covenant_core::hash::Hash;
use covenant_core::net::{Method, Pool};
use covenant_core::sqlchain::block::SqlBlock;
use covenant_core::sqlchain::query::{Args, Query, QueryResult};
use covenant_core::sqlchain::request::{
    Outcome, QueryKind, QueryResponse, ReadLevel, RequestBody, SignedRequest,
};
use covenant_core::types::{DatabaseId, DatabaseProfile};
use tokio::time::Instant;

use self::route::{MinerRoute, Resend};
use crate::Client;
use crate::error::ClientError;
use crate::verify::AckLog;

/// A connection to one database as the client's user. Cheap to share by reference.
#[derive(Debug)]
pub struct Database {
    client: Client,
    profile: DatabaseProfile,
    route: MinerRoute,
    sequence: AtomicU64,
    /// Writes answered through this handle, for `verify` to prove.
    acks: AckLog,
    /// How reads are served (the DSN's `use_follower`, or set by the app).
    read_level: ReadLevel,
}

impl Database {
    /// A handle on `profile`'s database through `miners` (addresses known to `pool`).
    pub(crate) fn new(
        client: Client,
        profile: DatabaseProfile,
        pool: Pool,
        miners: Vec<NodeId>,
    ) -> Database {
        let call_timeout = client.options().call_timeout;
        let route = MinerRoute::new(profile.id, pool, miners, call_timeout);
        Database {
            client,
            profile,
            route,
            sequence: AtomicU64::new(0),
            acks: AckLog::default(),
            read_level: ReadLevel::default(),
        }
    }

    /// This handle with reads served at `level`: the default
    /// [`ReadLevel::Linearizable`] sees every acknowledged write;
    /// [`ReadLevel::Leader`] skips the leader's check that it still leads;
    /// [`ReadLevel::Replica`] reads any replica, followers first, and may
    /// return data up to `max_lag_ms` stale.
    pub fn with_read_level(mut self, level: ReadLevel) -> Database {
        self.read_level = level;
        self
    }

    /// How reads through this handle are served.
    pub fn read_level(&self) -> ReadLevel {
        self.read_level
    }

    /// The writes answered through this handle.
    pub(crate) fn acks(&self) -> &AckLog {
        &self.acks
    }

    /// The account this handle signs as.
    pub(crate) fn client_address(&self) -> covenant_core::crypto::Address {
        self.client.address()
    }

    /// The database id.
    pub fn id(&self) -> DatabaseId {
        self.profile.id
    }

    /// `covenantsql://<id>`.
    pub fn dsn(&self) -> String {
        self.profile.id.to_dsn()
    }

    /// The main chain's profile as it was when the database was opened.
    pub fn profile(&self) -> &DatabaseProfile {
        &self.profile
    }

    /// The miners whose address was found, in profile order.
    pub fn miners(&self) -> &[NodeId] {
        self.route.miners()
    }

    /// The miner currently believed to lead the database's group.
    pub fn leader_guess(&self) -> Option<NodeId> {
        self.route.leader_guess()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.client.options().op_timeout
    }

    /// Runs `sql` (a read) with `args`; returns the last statement's result.
    pub async fn query(&self, sql: &str, args: Args) -> Result<QueryResult, ClientError> {
        self.run_one(QueryKind::Read, sql, args).await
    }

    /// Runs `sql` (a write) with `args`; returns the last statement's result
    /// (affected rows, last insert id).
    pub async fn exec(&self, sql: &str, args: Args) -> Result<QueryResult, ClientError> {
        self.run_one(QueryKind::Write, sql, args).await
    }

    async fn run_one(
        &self,
        kind: QueryKind,
        sql: &str,
        args: Args,
    ) -> Result<QueryResult, ClientError> {
        let query = Query {
            sql: sql.to_string(),
            args,
        };
        self.execute(kind, vec![query])
            .await?
            .pop()
            .ok_or_else(|| ClientError::Protocol("the miner returned no result".to_string()))
    }

    /// Runs `queries` as one atomic request; one result per statement.
    /// A statement's failure is [`ClientError::Sql`] and changed nothing.
    pub async fn execute(
        &self,
        kind: QueryKind,
        queries: Vec<Query>,
    ) -> Result<Vec<QueryResult>, ClientError> {
        self.execute_until(kind, queries, self.deadline()).await
    }

    async fn execute_until(
        &self,
        kind: QueryKind,
        queries: Vec<Query>,
        deadline: Instant,
    ) -> Result<Vec<QueryResult>, ClientError> {
        let (request, id) = self.sign_hashed(kind, queries)?;
        let from_follower =
            kind == QueryKind::Read && matches!(request.body.read_level, ReadLevel::Replica { .. });
        let response = if from_follower {
            self.route
                .call_follower_first::<QueryMethod>(&request, deadline)
                .await?
        } else {
            self.route
                .call::<QueryMethod>(&request, deadline, resend_of(kind))
                .await?
        };
        if kind == QueryKind::Write {
            self.acks
                .record(id, request.body.timestamp, &response.outcome);
        }
        outcome_results(response.outcome)
    }

    /// Polls with `SELECT 1` until the database answers a read (its miner
    /// has opened it and its group has a leader), for at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        self.execute_until(QueryKind::Read, vec![Query::new("SELECT 1")], deadline)
            .await
            .map(|_| ())
    }

    /// A request for `queries` signed by this user, timestamped now, with the next sequence number.
    pub fn sign(&self, kind: QueryKind, queries: Vec<Query>) -> Result<SignedRequest, ClientError> {
        Ok(self.sign_hashed(kind, queries)?.0)
    }

    /// [`Database::sign`], also returning the request id.
    fn sign_hashed(
        &self,
        kind: QueryKind,
        queries: Vec<Query>,
    ) -> Result<(SignedRequest, Hash), ClientError> {
        let body = RequestBody {
            database: self.profile.id,
            user: self.client.address(),
            timestamp: now_ms(),
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            kind,
            read_level: match kind {
                QueryKind::Read => self.read_level,
                QueryKind::Write => ReadLevel::default(),
            },
            queries,
        };
        self.client.sign_request_hashed(body)
    }

    /// Sends an already signed request (anyone's) to the leader and returns
    /// the raw response, the outcome unjudged.
    pub async fn send(&self, request: &SignedRequest) -> Result<QueryResponse, ClientError> {
        self.route
            .call::<QueryMethod>(request, self.deadline(), resend_of(request.body.kind))
            .await
    }

    /// Calls any database method on the leader, with the routing's retries
    /// (after a lost answer only if `M` is idempotent).
    pub async fn call<M: Method>(&self, request: &M::Request) -> Result<M::Response, ClientError> {
        self.route
            .call::<M>(request, self.deadline(), Resend::idempotent(M::IDEMPOTENT))
            .await
    }

    /// Calls a database method on miner `node` only, once.
    pub async fn call_miner<M: Method>(
        &self,
        node: NodeId,
        request: &M::Request,
    ) -> Result<M::Response, ClientError> {
        self.route.call_node::<M>(node, request).await
    }

    /// The database chain's head as the leader sees it.
    pub async fn head(&self) -> Result<DbHead, ClientError> {
        self.call::<GetHead>(&self.profile.id).await
    }

    /// Block `number` of the database's chain (`None` past the head).
    pub async fn block(&self, number: u64) -> Result<Option<SqlBlock>, ClientError> {
        self.call::<GetBlock>(&(self.profile.id, number)).await
    }
}

/// How a signed request of `kind` may be sent again: a read freely; a
/// write until the deadline, since the miners apply it at most once and
/// answer a resend with the outcome it had.
fn resend_of(kind: QueryKind) -> Resend {
    match kind {
        QueryKind::Read => Resend::Always,
        QueryKind::Write => Resend::SignedWrite,
    }
}

/// The results of an outcome, or its failure as [`ClientError::Sql`]
/// (a permission refusal as [`ClientError::PermissionDenied`], a replay as
/// [`ClientError::AlreadyApplied`]).
fn outcome_results(outcome: Outcome) -> Result<Vec<QueryResult>, ClientError> {
    match outcome {
        Outcome::Ok(results) => Ok(results),
        Outcome::Failed { code, message }
            if code == covenant_core::ErrorCode::PermissionDenied.as_u32() =>
        {
            Err(ClientError::PermissionDenied { message })
        }
        Outcome::Failed { code, message }
            if code == covenant_core::ErrorCode::DuplicateRequest.as_u32() =>
        {
            Err(ClientError::AlreadyApplied { message })
        }
        Outcome::Failed { code, message } => Err(ClientError::Sql { code, message }),
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::ErrorCode;

    #[test]
    fn outcomes_become_results_or_typed_errors() {
        let r = QueryResult {
            affected_rows: 2,
            ..QueryResult::default()
        };
        assert_eq!(outcome_results(Outcome::Ok(vec![r.clone()])).unwrap(), [r]);
        let e = outcome_results(Outcome::Failed {
            code: ErrorCode::SqlExecution.as_u32(),
            message: "no such table: t".into(),
        })
        .unwrap_err();
        assert!(matches!(&e, ClientError::Sql { message, .. } if message == "no such table: t"));
        assert!(e.is(ErrorCode::SqlExecution));
        assert!(!e.retryable());
        assert!(e.to_string().contains("no such table: t"), "{e}");
        let e = outcome_results(Outcome::Failed {
            code: ErrorCode::PermissionDenied.as_u32(),
            message: "whitelist".into(),
        })
        .unwrap_err();
        assert!(matches!(e, ClientError::PermissionDenied { .. }));
        let e = outcome_results(Outcome::Failed {
            code: ErrorCode::DuplicateRequest.as_u32(),
            message: "request ab was already applied".into(),
        })
        .unwrap_err();
        assert!(matches!(e, ClientError::AlreadyApplied { .. }));
        assert!(e.is(ErrorCode::DuplicateRequest) && !e.retryable());
    }
}
