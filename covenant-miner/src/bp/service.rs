//! The chain API served by every block producer, and the internal methods
//! followers use to reach the leader's pool.
//!
//! Reads are answered from this producer's applied state. Submissions and
//! nonce or pool-state queries need the pool, which only the leader keeps:
//! a follower forwards them once to the node it believes leads, through
//! methods that are answered locally and never forwarded again, so a stale
//! view of the leader cannot make a request loop.

use std::sync::Arc;
use std::time::Duration;

use covenant_core::api::chain::{
    ChainInfo, GetAccount, GetBlock, GetDatabase, GetHead, GetProvider, GetTxState, MinerDatabases,
    NextNonce, SubmitTx, TxStatus, UserDatabases,
};
use covenant_core::chain::TxError;
use covenant_core::crypto::Address;
use covenant_core::error::ErrorCode;
use covenant_core::hash::Hash;
use covenant_core::net::{Method, NetError, Router, RpcError};
use covenant_core::types::{Account, Transaction, TxState};

use super::BpInner;
use super::producer::now_ms;

/// How long a follower waits for the leader on a forwarded call.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Leader only: admit a transaction into the pool.
struct LeaderSubmit;
impl Method for LeaderSubmit {
    const NAME: &'static str = "bp.leader_submit";
    type Request = Transaction;
    type Response = Hash;
}

/// Leader only: the pool's view of a transaction.
struct LeaderTxState;
impl Method for LeaderTxState {
    const NAME: &'static str = "bp.leader_tx_state";
    const IDEMPOTENT: bool = true;
    type Request = Hash;
    type Response = TxState;
}

/// Leader only: the next nonce counting pooled transactions.
struct LeaderNextNonce;
impl Method for LeaderNextNonce {
    const NAME: &'static str = "bp.leader_next_nonce";
    const IDEMPOTENT: bool = true;
    type Request = Address;
    type Response = u64;
}

fn tx_error(e: TxError) -> RpcError {
    RpcError::new(e.code(), e.to_string()).with_retryable(e.retryable())
}

fn not_leader(bp: &BpInner) -> RpcError {
    let e = RpcError::new(
        ErrorCode::NotLeader,
        "this block producer is not the leader and none is known yet; retry shortly",
    )
    .with_retryable(true);
    match bp.leader() {
        Some(l) => e.with_leader_hint(l.to_hex()),
        None => e,
    }
}

fn from_net(e: NetError) -> RpcError {
    match e.remote() {
        Some(remote) => remote.clone(),
        None => {
            RpcError::new(e.code(), format!("cannot reach the leader: {e}")).with_retryable(true)
        }
    }
}

/// Runs `M` on the leader: locally when this node leads, else forwarded once.
async fn on_leader<M: Method>(
    bp: &BpInner,
    req: M::Request,
    local: impl FnOnce(&BpInner, M::Request) -> Result<M::Response, RpcError>,
) -> Result<M::Response, RpcError> {
    if bp.is_leader() {
        return local(bp, req);
    }
    let Some(leader) = bp.leader() else {
        return Err(not_leader(bp));
    };
    bp.net
        .call::<M>(leader, &req, FORWARD_TIMEOUT)
        .await
        .map_err(from_net)
}

fn leader_submit(bp: &BpInner, tx: Transaction) -> Result<Hash, RpcError> {
    if !bp.is_leader() {
        return Err(not_leader(bp));
    }
    let state = bp.chain.state();
    bp.pool().insert(tx, &state, now_ms()).map_err(tx_error)
}

fn leader_tx_state(bp: &BpInner, id: Hash) -> Result<TxState, RpcError> {
    if !bp.is_leader() {
        return Err(not_leader(bp));
    }
    Ok(bp.pool().state(&id))
}

fn leader_next_nonce(bp: &BpInner, address: Address) -> Result<u64, RpcError> {
    if !bp.is_leader() {
        return Err(not_leader(bp));
    }
    let chain_next = bp.chain.state().next_nonce(&address);
    Ok(bp.pool().next_nonce(&address, chain_next))
}

fn store_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(ErrorCode::Storage, format!("chain store: {e}")).with_retryable(true)
}

/// Registers the chain API and the leader-only methods on `router`.
pub(crate) fn mount(router: &mut Router, bp: Arc<BpInner>) -> Result<(), NetError> {
    let b = bp.clone();
    router.register::<LeaderSubmit, _, _>(move |_, tx| {
        let b = b.clone();
        async move { leader_submit(&b, tx) }
    })?;
    let b = bp.clone();
    router.register::<LeaderTxState, _, _>(move |_, id| {
        let b = b.clone();
        async move { leader_tx_state(&b, id) }
    })?;
    let b = bp.clone();
    router.register::<LeaderNextNonce, _, _>(move |_, a| {
        let b = b.clone();
        async move { leader_next_nonce(&b, a) }
    })?;

    let b = bp.clone();
    router.register::<SubmitTx, _, _>(move |_, tx| {
        let b = b.clone();
        async move {
            // Refuse forgeries here, before spending the leader's time on them.
            tx.verify().map_err(|e| tx_error(TxError::from(e)))?;
            on_leader::<LeaderSubmit>(&b, tx, leader_submit).await
        }
    })?;
    let b = bp.clone();
    router.register::<NextNonce, _, _>(move |_, address| {
        let b = b.clone();
        async move { on_leader::<LeaderNextNonce>(&b, address, leader_next_nonce).await }
    })?;
    let b = bp.clone();
    router.register::<GetTxState, _, _>(move |_, id| {
        let b = b.clone();
        async move {
            let location = b.chain.store().tx_location(&id).map_err(store_error)?;
            if let Some(loc) = location {
                return Ok(TxStatus {
                    state: TxState::Confirmed,
                    height: Some(loc.height),
                    result: Some(loc.receipt.result),
                });
            }
            let state = on_leader::<LeaderTxState>(&b, id, leader_tx_state).await?;
            Ok(TxStatus {
                state,
                height: None,
                result: None,
            })
        }
    })?;
    let b = bp.clone();
    router.register::<GetAccount, _, _>(move |_, address| {
        let b = b.clone();
        async move {
            Ok(b.chain
                .state()
                .account(&address)
                .cloned()
                .unwrap_or_else(|| Account::new(address)))
        }
    })?;
    let b = bp.clone();
    router.register::<GetBlock, _, _>(move |_, height| {
        let b = b.clone();
        async move { b.chain.store().block_by_height(height).map_err(store_error) }
    })?;
    let b = bp.clone();
    router.register::<GetDatabase, _, _>(move |_, id| {
        let b = b.clone();
        async move { Ok(b.chain.state().database(&id).cloned()) }
    })?;
    let b = bp.clone();
    router.register::<UserDatabases, _, _>(move |_, user| {
        let b = b.clone();
        async move {
            Ok(b.chain
                .state()
                .user_databases(&user)
                .into_iter()
                .cloned()
                .collect())
        }
    })?;
    let b = bp.clone();
    router.register::<MinerDatabases, _, _>(move |_, miner| {
        let b = b.clone();
        async move {
            Ok(b.chain
                .state()
                .miner_databases(&miner)
                .into_iter()
                .cloned()
                .collect())
        }
    })?;
    let b = bp.clone();
    router.register::<GetProvider, _, _>(move |_, miner| {
        let b = b.clone();
        async move { Ok(b.chain.state().provider(&miner).cloned()) }
    })?;
    let b = bp;
    router.register::<GetHead, _, _>(move |_, ()| {
        let b = b.clone();
        async move {
            let head = b.chain.state().head().ok_or_else(|| {
                RpcError::new(ErrorCode::Internal, "the chain has no genesis block")
            })?;
            Ok(ChainInfo {
                head,
                leader: b.leader(),
                producer: b.node_id,
                pool_len: b.pool().len() as u64,
            })
        }
    })?;
    Ok(())
}
