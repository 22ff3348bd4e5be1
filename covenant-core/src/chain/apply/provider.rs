//! `ProvideService`: a miner's standing offer and its locked deposit.
//!
//! The sender is the miner's wallet. The deposit (at least the chain's
//! `MinProviderDeposit`) is locked: taken from the miner's balance and held
//! in its [`ProviderProfile`], not in any account. A later `ProvideService`
//! from the same miner replaces the offer and moves only the difference
//! (more locked, or the excess released; a change of token releases the old
//! deposit and locks the new one), so a miner repeating it every
//! `ProvideServiceInterval` is not drained. There is no withdrawal below
//! `MinProviderDeposit` while the miner stays a provider.
//!
//! Databases already assigned keep the node id they were assigned with.

use super::super::error::TxError;
use super::super::view::{Layered, StateView};
use crate::crypto::Address;
use crate::types::{ProvideService, ProviderProfile};

/// Records `offer` as `miner`'s profile, adjusting its locked deposit.
pub(super) fn provide<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    miner: &Address,
    offer: &ProvideService,
) -> Result<(), TxError> {
    let min = layer.params().min_provider_deposit;
    if offer.deposit < min {
        return Err(TxError::DepositTooLow {
            deposit: offer.deposit,
            min,
        });
    }
    match layer.provider(miner).map(|p| (p.token, p.deposit)) {
        Some((token, old)) if token == offer.token => {
            if offer.deposit > old {
                layer.debit(miner, token, offer.deposit - old)?;
            } else {
                layer.credit(miner, token, old - offer.deposit)?;
            }
        }
        Some((token, old)) => {
            layer.credit(miner, token, old)?;
            layer.debit(miner, offer.token, offer.deposit)?;
        }
        None => layer.debit(miner, offer.token, offer.deposit)?,
    }
    let mut target_users = Vec::with_capacity(offer.target_users.len());
    for u in &offer.target_users {
        if !target_users.contains(u) {
            target_users.push(*u);
        }
    }
    layer.put_provider(ProviderProfile {
        address: *miner,
        node_id: offer.node_id,
        resources: offer.resources.clone(),
        gas_price: offer.gas_price,
        target_users,
        deposit: offer.deposit,
        token: offer.token,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;
    use crate::types::{ProvideService, Token, TxPayload};

    #[test]
    fn provide_service_locks_the_deposit_and_records_the_offer() {
        let mut s = db_state();
        let mut o = offer(MINER_1, 300);
        o.target_users = vec![addr(USER_A), addr(USER_A)];
        s.apply_tx(&signed(MINER_1, 0, TxPayload::ProvideService(o.clone())))
            .unwrap();
        assert_eq!(s.balances(&addr(MINER_1)).get(Token::Particle), 9_700);
        let p = s.provider(&addr(MINER_1)).unwrap();
        assert_eq!(p.deposit, 300);
        assert_eq!(p.node_id, node(MINER_1));
        assert_eq!(p.gas_price, o.gas_price);
        assert_eq!(p.resources, o.resources);
        assert_eq!(p.target_users, vec![addr(USER_A)], "deduplicated");
        assert!(p.accepts(&addr(USER_A)) && !p.accepts(&addr(USER_B)));
        assert_eq!(s.providers().count(), 1);
    }

    #[test]
    fn repeated_provide_service_does_not_drain_the_miner() {
        let mut s = db_state();
        for nonce in 0..5 {
            s.apply_tx(&signed(
                MINER_1,
                nonce,
                TxPayload::ProvideService(offer(MINER_1, 300)),
            ))
            .unwrap();
            assert_eq!(s.balances(&addr(MINER_1)).get(Token::Particle), 9_700);
        }
        // Raising locks the difference, lowering releases it.
        s.apply_tx(&signed(
            MINER_1,
            5,
            TxPayload::ProvideService(offer(MINER_1, 1_000)),
        ))
        .unwrap();
        assert_eq!(s.balances(&addr(MINER_1)).get(Token::Particle), 9_000);
        s.apply_tx(&signed(
            MINER_1,
            6,
            TxPayload::ProvideService(offer(MINER_1, 100)),
        ))
        .unwrap();
        assert_eq!(s.balances(&addr(MINER_1)).get(Token::Particle), 9_900);
        assert_eq!(s.provider(&addr(MINER_1)).unwrap().deposit, 100);
        // Changing the token releases the old deposit and locks the new one.
        let wave = ProvideService {
            token: Token::Wave,
            ..offer(MINER_1, 150)
        };
        s.apply_tx(&signed(MINER_1, 7, TxPayload::ProvideService(wave)))
            .unwrap();
        assert_eq!(s.balances(&addr(MINER_1)).get(Token::Particle), 10_000);
        assert_eq!(s.balances(&addr(MINER_1)).get(Token::Wave), 850);
    }

    #[test]
    fn provide_service_refusals() {
        let mut s = db_state();
        assert_refused!(
            &mut s,
            &signed(MINER_1, 0, TxPayload::ProvideService(offer(MINER_1, 99))),
            ErrorCode::DepositTooLow,
            "deposit 99 is below the minimum provider deposit (MinProviderDeposit) of 100",
        );
        assert_refused!(
            &mut s,
            &signed(
                MINER_1,
                0,
                TxPayload::ProvideService(offer(MINER_1, 10_001)),
            ),
            ErrorCode::InsufficientBalance,
            "has 10000, needs 10001",
        );
        s.apply_tx(&signed(
            MINER_1,
            0,
            TxPayload::ProvideService(offer(MINER_1, 9_000)),
        ))
        .unwrap();
        // Raising by more than the balance left fails and keeps the old offer.
        assert_refused!(
            &mut s,
            &signed(
                MINER_1,
                1,
                TxPayload::ProvideService(offer(MINER_1, 11_001)),
            ),
            ErrorCode::InsufficientBalance,
            "has 1000, needs 2001",
        );
        assert_eq!(s.provider(&addr(MINER_1)).unwrap().deposit, 9_000);
    }
}
