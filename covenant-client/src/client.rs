//! [`Client`]: one account's view of a Covenant network — its identity (key
//! and proof-of-work node id), TLS connections to the block producers, and
//! the main-chain operations: accounts and balances, nonces, signing and
//! submitting transactions, following them until they are confirmed.
//!
//! Routing lives in `router` (block producers in config order, remembering
//! the last that answered, following leader hints); waiting for a
//! transaction in `wait`. Must not import node-side modules (chain state
//! machine, consensus, storage): only the RPC contracts in
//! `covenant_core::api`, the transport and the plain types.

mod database_ops;
mod router;
#[cfg(test)]
mod tests;
mod wait;

pub use self::database_ops::CreateOptions;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use covenant_core::ErrorCode;
use covenant_core::api::chain::{
    ChainInfo, GetAccount, GetHead, GetTxState, NextNonce, SubmitTx, TxStatus,
};
use covenant_core::config::{BlockProducerInfo, CONFIG_FILE_NAME, Config};
use covenant_core::crypto::{Address, NodeId, PrivateKey, read_key_file};
use covenant_core::hash::Hash;
use covenant_core::net::{Method, NetConfig, NodeIdentity, Pool, TlsContext};
use covenant_core::types::{Account, Token, Transaction, TxBody, TxPayload, TxState};
use tokio::time::Instant;

use self::router::BpRouter;
use crate::error::ClientError;

/// Timeouts of a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Longest one operation (with its retries over every block producer) may take.
    pub op_timeout: Duration,
    /// Longest a single call to one block producer may take.
    pub call_timeout: Duration,
    /// Give up early when no block producer has been reachable for this long.
    pub unreachable_timeout: Duration,
    /// How long [`Client::wait_for_tx`] keeps polling a transaction no block
    /// producer knows before calling it lost; `None` picks ten block periods, at least 5 s.
    pub not_found_grace: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            op_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(5),
            unreachable_timeout: Duration::from_secs(5),
            not_found_grace: None,
        }
    }
}

/// A connection to a Covenant network as one account. Cheap to clone; clones
/// share connections.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    key: PrivateKey,
    identity: NodeIdentity,
    router: BpRouter,
    options: ClientOptions,
    /// Whether a leader was learned, so submissions go straight to it.
    leader_learned: AtomicBool,
}

impl Client {
    /// Loads the config at `path` and its `PrivateKeyFile` opened with `master_key`.
    pub fn from_config_file(path: &Path, master_key: &[u8]) -> Result<Client, ClientError> {
        Client::from_config_file_with(path, master_key, ClientOptions::default())
    }

    /// [`Client::from_config_file`] with explicit options.
    pub fn from_config_file_with(
        path: &Path,
        master_key: &[u8],
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let config = Config::load(path)?;
        let key = read_key_file(&config.private_key_path(), master_key)?;
        Client::build(config, key, options, path.to_path_buf())
    }

    /// A client for `config` (its `BlockProducers`, `Nonce` and
    /// `MinNodeIDDifficulty`) signing with `key`.
    pub fn new(config: Config, key: PrivateKey) -> Result<Client, ClientError> {
        Client::with_options(config, key, ClientOptions::default())
    }

    /// [`Client::new`] with explicit options.
    pub fn with_options(
        config: Config,
        key: PrivateKey,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let path = config.config_dir().join(CONFIG_FILE_NAME);
        Client::build(config, key, options, path)
    }

    fn build(
        config: Config,
        key: PrivateKey,
        options: ClientOptions,
        path: PathBuf,
    ) -> Result<Client, ClientError> {
        let unusable = |reason: String| ClientError::Unusable {
            path: path.clone(),
            reason,
        };
        if config.block_producers.is_empty() {
            return Err(unusable(
                "lists no BlockProducers; create it with `cql generate -testnet DIR/testnet.yaml` \
                 or copy the network's BlockProducers into it"
                    .to_string(),
            ));
        }
        let Some(nonce) = config.nonce else {
            return Err(unusable(
                "has no Nonce (the node id's proof of work); create it with `cql generate`"
                    .to_string(),
            ));
        };
        config.verify_identity(&key.public_key())?;
        let identity = NodeIdentity::new(key.clone(), nonce);
        let difficulty = identity.node_id().difficulty();
        let minimum = config.min_node_id_difficulty;
        if difficulty < minimum {
            return Err(unusable(format!(
                "node id {} has difficulty {difficulty}, below the network's \
                 MinNodeIDDifficulty {minimum}; mine a harder one with `cql idminer -difficulty {minimum}`",
                identity.node_id()
            )));
        }
        let net = NetConfig {
            min_difficulty: minimum,
            ..NetConfig::default()
        };
        let tls = TlsContext::new(&identity, &net).map_err(|e| unusable(e.to_string()))?;
        let pool = Pool::new(tls, net);
        for bp in &config.block_producers {
            pool.set_address(bp.node_id, bp.addr.clone());
        }
        let router = BpRouter::new(
            pool,
            config.block_producers.clone(),
            options.call_timeout,
            options.unreachable_timeout,
        );
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                key,
                identity,
                router,
                options,
                leader_learned: AtomicBool::new(false),
            }),
        })
    }

    /// This client's account (wallet) address.
    pub fn address(&self) -> Address {
        self.inner.identity.address()
    }

    /// This client's node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.identity.node_id()
    }

    /// The config the client was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The network's block producers, in config order.
    pub fn block_producers(&self) -> &[BlockProducerInfo] {
        self.inner.router.block_producers()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.inner.options.op_timeout
    }

    /// Calls `M` on whichever block producer answers (the lower-level API the
    /// typed operations use).
    pub async fn call<M: Method>(&self, request: &M::Request) -> Result<M::Response, ClientError> {
        self.inner.router.call::<M>(request, self.deadline()).await
    }

    /// Calls `M` on block producer `node` only, once (to compare producers).
    pub async fn call_node<M: Method>(
        &self,
        node: NodeId,
        request: &M::Request,
    ) -> Result<M::Response, ClientError> {
        self.inner.router.call_node::<M>(node, request).await
    }

    /// An account's balances and next nonce (empty if it never received anything).
    pub async fn account(&self, address: &Address) -> Result<Account, ClientError> {
        self.call::<GetAccount>(address).await
    }

    /// This client's balance of `token`.
    pub async fn balance(&self, token: Token) -> Result<u64, ClientError> {
        Ok(self.account(&self.address()).await?.balances.get(token))
    }

    /// The nonce this client's next transaction must carry, counting its
    /// transactions still pending at the leader.
    pub async fn next_nonce(&self) -> Result<u64, ClientError> {
        self.next_nonce_of(&self.address()).await
    }

    /// The nonce `address`'s next transaction must carry, counting its
    /// transactions still pending at the leader (for callers signing with other keys).
    pub async fn next_nonce_of(&self, address: &Address) -> Result<u64, ClientError> {
        self.call::<NextNonce>(address).await
    }

    /// The chain's head and the group's leader, from whichever producer
    /// answers; the leader becomes the producer tried first.
    pub async fn head(&self) -> Result<ChainInfo, ClientError> {
        let info = self.call::<GetHead>(&()).await?;
        if let Some(leader) = &info.leader {
            self.inner.router.prefer(leader);
            self.inner.leader_learned.store(true, Ordering::Relaxed);
        }
        Ok(info)
    }

    /// What block producer `node` itself knows of the chain.
    pub async fn head_of(&self, node: NodeId) -> Result<ChainInfo, ClientError> {
        self.call_node::<GetHead>(node, &()).await
    }

    /// Signs `payload` as this client's transaction with `nonce`, timestamped now.
    pub fn sign(&self, nonce: u64, payload: TxPayload) -> Result<Transaction, ClientError> {
        let body = TxBody {
            sender: self.address(),
            nonce,
            timestamp: now_ms(),
            payload,
        };
        Ok(Transaction::sign(body, &self.inner.key)?)
    }

    /// Submits an already signed transaction (anyone's) and returns its id once
    /// the leader's pool admitted it; a refusal is [`ClientError::Rejected`].
    pub async fn submit_transaction(&self, tx: &Transaction) -> Result<Hash, ClientError> {
        let hash = tx.hash()?;
        match self.call::<SubmitTx>(tx).await {
            Ok(id) if id == hash => Ok(id),
            Ok(id) => Err(ClientError::Protocol(format!(
                "submitted transaction {hash} but the block producer answered id {id}"
            ))),
            Err(ClientError::Remote { code, message, .. }) => {
                let refusal = ClientError::Rejected { code, message };
                // A retry after a lost answer finds its own first attempt.
                if refusal.is(ErrorCode::DuplicateTransaction) {
                    return Ok(hash);
                }
                if refusal.is(ErrorCode::NonceReused) && self.is_known(&hash).await {
                    return Ok(hash);
                }
                Err(refusal)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether some producer knows transaction `hash` (pending, packed or confirmed).
    async fn is_known(&self, hash: &Hash) -> bool {
        matches!(
            self.tx_state(hash).await,
            Ok(TxStatus {
                state: TxState::Pending | TxState::Packed | TxState::Confirmed,
                ..
            })
        )
    }

    /// Signs `payload` with the next nonce and submits it; if the nonce was
    /// taken meanwhile (another process using the same account), retries once
    /// with a fresh one. Returns the transaction id.
    pub async fn submit(&self, payload: TxPayload) -> Result<Hash, ClientError> {
        if !self.leader_known() {
            // Learn the leader first so the submission takes no detour; best effort.
            let _ = self.head().await;
        }
        let mut retried = false;
        loop {
            let nonce = self.next_nonce().await?;
            let tx = self.sign(nonce, payload.clone())?;
            match self.submit_transaction(&tx).await {
                Err(e) if !retried && e.is(ErrorCode::NonceReused) => {
                    tracing::debug!(nonce, "nonce taken meanwhile; signing again");
                    retried = true;
                }
                other => return other,
            }
        }
    }

    fn leader_known(&self) -> bool {
        self.inner.leader_learned.load(Ordering::Relaxed)
    }

    /// Transfers `amount` of `token` to `to`; returns the transaction id.
    pub async fn transfer(
        &self,
        to: Address,
        token: Token,
        amount: u64,
    ) -> Result<Hash, ClientError> {
        if amount == 0 {
            return Err(ClientError::InvalidArgument(
                "the amount must be greater than zero".to_string(),
            ));
        }
        self.submit(TxPayload::Transfer { to, token, amount }).await
    }

    /// Where transaction `hash` is in its life.
    pub async fn tx_state(&self, hash: &Hash) -> Result<TxStatus, ClientError> {
        self.call::<GetTxState>(hash).await
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
