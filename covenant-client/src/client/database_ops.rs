//! The main-chain side of databases for a [`Client`]: create, drop, grant,
//! pay into a database, list and look up profiles, and open a
//! [`Database`] handle (resolving its miners through the block producers'
//! directory). Talking to the miners themselves is `crate::database`'s job.

use std::time::Duration;

use covenant_core::api::chain::{GetDatabase, UserDatabases};
use covenant_core::crypto::{Address, NodeId};
use covenant_core::hash::Hash;
use covenant_core::net::directory::FindNode;
use covenant_core::net::{NetConfig, Pool, TlsContext};
use covenant_core::sqlchain::request::{RequestBody, SignedRequest};
use covenant_core::types::{
    Consistency, CreateDatabase, DatabaseId, DatabaseProfile, DropDatabase, Permission,
    ResourceAsk, Token, TxPayload, UpdatePermission,
};

use super::Client;
use crate::database::Database;
use crate::error::ClientError;

/// What [`Client::create_database`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// How many miners replicate the database.
    pub node_count: u16,
    /// Miners (wallet addresses) to pick first.
    pub target_miners: Vec<Address>,
    /// Replication mode.
    pub consistency: Consistency,
    /// Paid into the database's account up front (the owner's advance payment).
    pub advance_payment: u64,
    /// Price per billed row the owner accepts.
    pub gas_price: u64,
    /// The token payments are made in.
    pub token: Token,
    /// How long to wait for the creation to be confirmed.
    pub confirm_timeout: Duration,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            node_count: 1,
            target_miners: Vec::new(),
            consistency: Consistency::Strong,
            advance_payment: 20_000_000,
            gas_price: 1,
            token: Token::Particle,
            confirm_timeout: Duration::from_secs(60),
        }
    }
}

/// How long drop and grant wait for confirmation.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    /// Creates a database and waits until the main chain has it; a refusal
    /// by the chain (for example not enough matching miners) is
    /// [`ClientError::TxFailed`] with the chain's reason.
    pub async fn create_database(&self, opts: CreateOptions) -> Result<DatabaseId, ClientError> {
        if opts.node_count == 0 {
            return Err(ClientError::InvalidArgument(
                "the node count must be at least 1".to_string(),
            ));
        }
        let payload = TxPayload::CreateDatabase(CreateDatabase {
            node_count: opts.node_count,
            target_miners: opts.target_miners,
            consistency: opts.consistency,
            resources: ResourceAsk::default(),
            gas_price: opts.gas_price,
            advance_payment: opts.advance_payment,
            token: opts.token,
        });
        let (hash, nonce) = self.submit_with_nonce(payload).await?;
        self.wait_for_tx(&hash, opts.confirm_timeout, |_| {})
            .await?;
        let id = DatabaseId::derive(&self.address(), nonce);
        self.database_profile(&id).await?;
        Ok(id)
    }

    /// Signs `payload` with the next nonce and submits it (retrying once with
    /// a fresh nonce if it was taken meanwhile); returns the id and the nonce used.
    async fn submit_with_nonce(&self, payload: TxPayload) -> Result<(Hash, u64), ClientError> {
        if !self.leader_known() {
            let _ = self.head().await;
        }
        let mut retried = false;
        loop {
            let nonce = self.next_nonce().await?;
            let tx = self.sign(nonce, payload.clone())?;
            match self.submit_transaction(&tx).await {
                Err(e) if !retried && e.is(covenant_core::ErrorCode::NonceReused) => retried = true,
                Ok(hash) => return Ok((hash, nonce)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops database `id` (a Super user only) and waits for confirmation.
    pub async fn drop_database(&self, id: &DatabaseId) -> Result<Hash, ClientError> {
        let hash = self
            .submit(TxPayload::DropDatabase(DropDatabase { database: *id }))
            .await?;
        self.wait_for_tx(&hash, CONFIRM_TIMEOUT, |_| {}).await?;
        Ok(hash)
    }

    /// Sets `user`'s permission on database `id` (a Super user only) and waits for confirmation.
    pub async fn grant(
        &self,
        id: &DatabaseId,
        user: Address,
        permission: Permission,
    ) -> Result<Hash, ClientError> {
        let hash = self
            .submit(TxPayload::UpdatePermission(UpdatePermission {
                database: *id,
                user,
                permission,
            }))
            .await?;
        self.wait_for_tx(&hash, CONFIRM_TIMEOUT, |_| {}).await?;
        Ok(hash)
    }

    /// Transfers `amount` of `token` into database `id`'s account (an advance
    /// payment, or settling arrears); returns the transaction id unconfirmed.
    pub async fn transfer_to_database(
        &self,
        id: &DatabaseId,
        token: Token,
        amount: u64,
    ) -> Result<Hash, ClientError> {
        self.transfer(id.account_address(), token, amount).await
    }

    /// The databases this client's account is a user of.
    pub async fn databases(&self) -> Result<Vec<DatabaseProfile>, ClientError> {
        self.call::<UserDatabases>(&self.address()).await
    }

    /// What the main chain knows of database `id`; [`ClientError::DatabaseNotFound`] if nothing.
    pub async fn database_profile(&self, id: &DatabaseId) -> Result<DatabaseProfile, ClientError> {
        self.call::<GetDatabase>(id)
            .await?
            .ok_or_else(|| ClientError::DatabaseNotFound {
                database: id.to_hex(),
            })
    }

    /// Opens database `dsn_or_id` (`covenantsql://<hex>` or bare hex, with
    /// optional settings such as `?use_follower=true`, see [`crate::Dsn`]):
    /// looks up its profile and its miners' addresses.
    pub async fn open_database(&self, dsn_or_id: &str) -> Result<Database, ClientError> {
        let dsn: crate::Dsn = dsn_or_id.parse()?;
        let id = dsn.database;
        let profile = self.database_profile(&id).await?;
        let pool = self.miner_pool()?;
        let mut reachable = Vec::new();
        let mut missing = Vec::new();
        for m in &profile.miners {
            match self.find_node(m.node_id).await? {
                Some(addr) => {
                    pool.set_address(m.node_id, addr);
                    reachable.push(m.node_id);
                }
                None => missing.push(m.node_id.to_string()),
            }
        }
        if reachable.is_empty() {
            return Err(ClientError::DatabaseUnavailable {
                database: id.to_hex(),
                code: covenant_core::ErrorCode::NotFound.as_u32(),
                message: format!(
                    "no block producer knows the address of its miners ({})",
                    missing.join(", ")
                ),
                after: Duration::ZERO,
            });
        }
        Ok(Database::new(self.clone(), profile, pool, reachable).with_read_level(dsn.read_level))
    }

    /// Where `node` listens, from the first block producer whose directory knows it.
    pub async fn find_node(&self, node: NodeId) -> Result<Option<String>, ClientError> {
        let mut answered = false;
        let mut last = None;
        for bp in self.block_producers() {
            match self.call_node::<FindNode>(bp.node_id, &node).await {
                Ok(Some(record)) => return Ok(Some(record.addr)),
                Ok(None) => answered = true,
                Err(e) => last = Some(e),
            }
        }
        match last {
            // No producer answered at all: report why rather than "unknown".
            Some(e) if !answered => Err(e),
            _ => Ok(None),
        }
    }

    /// A connection pool for miners, presenting this client's identity.
    fn miner_pool(&self) -> Result<Pool, ClientError> {
        let net = NetConfig {
            min_difficulty: self.config().min_node_id_difficulty,
            ..NetConfig::default()
        };
        let tls =
            TlsContext::new(&self.inner.identity, &net).map_err(|e| ClientError::Unusable {
                path: self.config().config_dir().to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Pool::new(tls, net))
    }

    /// Signs a query request body with this client's key.
    pub fn sign_request(&self, body: RequestBody) -> Result<SignedRequest, ClientError> {
        Ok(SignedRequest::sign(body, &self.inner.key)?)
    }

    /// [`Client::sign_request`], also returning the request id.
    pub(crate) fn sign_request_hashed(
        &self,
        body: RequestBody,
    ) -> Result<(SignedRequest, Hash), ClientError> {
        Ok(SignedRequest::sign_hashed(body, &self.inner.key)?)
    }
}
