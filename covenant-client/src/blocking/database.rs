//! The blocking twin of [`crate::Database`]: each method runs the async
//! method of the same name on the runtime of the [`Client`](super::Client)
//! that opened it.

use std::sync::Arc;
use std::time::Duration;

use covenant_core::api::database::DbHead;
use covenant_core::crypto::NodeId;
use covenant_core::hash::Hash;
use covenant_core::sqlchain::block::SqlBlock;
use covenant_core::sqlchain::query::{Args, Query, QueryResult};
use covenant_core::sqlchain::request::QueryKind;
use covenant_core::types::{DatabaseId, DatabaseProfile};
use tokio::runtime::Runtime;

use crate::error::ClientError;
use crate::verify::{VerifyOptions, VerifyReport};

/// A connection to one database as the client's user, blocking.
#[derive(Debug)]
pub struct Database {
    // Declared before the runtime so its connections drop first.
    inner: crate::Database,
    rt: Arc<Runtime>,
}

impl Database {
    pub(super) fn new(inner: crate::Database, rt: Arc<Runtime>) -> Database {
        Database { inner, rt }
    }

    /// The async handle underneath.
    pub fn as_async(&self) -> &crate::Database {
        &self.inner
    }

    /// The database id.
    pub fn id(&self) -> DatabaseId {
        self.inner.id()
    }

    /// `covenantsql://<id>`.
    pub fn dsn(&self) -> String {
        self.inner.dsn()
    }

    /// The main chain's profile as it was when the database was opened.
    pub fn profile(&self) -> &DatabaseProfile {
        self.inner.profile()
    }

    /// The miners whose address was found, in profile order.
    pub fn miners(&self) -> &[NodeId] {
        self.inner.miners()
    }

    /// Runs `sql` (a read) with `args`; returns the last statement's result.
    pub fn query(&self, sql: &str, args: Args) -> Result<QueryResult, ClientError> {
        self.rt.block_on(self.inner.query(sql, args))
    }

    /// Runs `sql` (a write) with `args`; returns the last statement's result.
    pub fn exec(&self, sql: &str, args: Args) -> Result<QueryResult, ClientError> {
        self.rt.block_on(self.inner.exec(sql, args))
    }

    /// Runs `queries` as one atomic request; one result per statement.
    pub fn execute(
        &self,
        kind: QueryKind,
        queries: Vec<Query>,
    ) -> Result<Vec<QueryResult>, ClientError> {
        self.rt.block_on(self.inner.execute(kind, queries))
    }

    /// Waits until the database answers a read, for at most `timeout`.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), ClientError> {
        self.rt.block_on(self.inner.wait_ready(timeout))
    }

    /// Verifies the database's blocks and this handle's acknowledged writes
    /// (see [`crate::Database::verify`]).
    pub fn verify(&self, opts: VerifyOptions) -> Result<VerifyReport, ClientError> {
        self.rt.block_on(self.inner.verify(opts))
    }

    /// [`Database::verify`] against one miner's copy.
    pub fn verify_at(
        &self,
        miner: NodeId,
        opts: VerifyOptions,
    ) -> Result<VerifyReport, ClientError> {
        self.rt.block_on(self.inner.verify_at(miner, opts))
    }

    /// The request ids of the writes this handle got answers for, oldest first.
    pub fn acknowledged_writes(&self) -> Vec<Hash> {
        self.inner.acknowledged_writes()
    }

    /// The database chain's head as the leader sees it.
    pub fn head(&self) -> Result<DbHead, ClientError> {
        self.rt.block_on(self.inner.head())
    }

    /// Block `number` of the database's chain (`None` past the head).
    pub fn block(&self, number: u64) -> Result<Option<SqlBlock>, ClientError> {
        self.rt.block_on(self.inner.block(number))
    }
}
