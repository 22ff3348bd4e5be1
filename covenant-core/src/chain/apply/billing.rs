//! `UpdateBilling` and payments into a database's account.
//!
//! - Billing: only one of the database's miners may send it, for a period
//!   after the last one billed (periods are numbered from 1). Each listed
//!   user (who must be a user of the database) is charged
//!   `(rows_read + rows_affected) * gas_price` from its advance payment.
//!   What its advance cannot cover is recorded as arrears and the user goes
//!   to `Arrears`: miners refuse its requests until it tops up. What was
//!   paid moves from the database's account to its miners, split equally,
//!   the remainder of the division to the first miner.
//! - Top-up: a transfer to a database's account from one of its users (in
//!   the database's token) credits the sender's advance payment. Arrears are
//!   settled from it first (paid to the miners as billing would have), and
//!   once none remain the user is back to `Normal`.

use super::super::error::TxError;
use super::super::view::{Layered, StateView};
use super::live_database;
use crate::crypto::Address;
use crate::types::{DatabaseId, DatabaseProfile, Token, UpdateBilling, UserStatus};

/// Applies one billing period (see the module doc).
pub(super) fn bill<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    sender: &Address,
    b: &UpdateBilling,
) -> Result<(), TxError> {
    let mut profile = live_database(layer, &b.database)?;
    if !profile.miners.iter().any(|m| m.address == *sender) {
        return Err(TxError::NotDatabaseMiner {
            database: b.database,
            account: *sender,
        });
    }
    if b.period <= profile.last_billed_period {
        return Err(TxError::StaleBillingPeriod {
            database: b.database,
            period: b.period,
            last: profile.last_billed_period,
        });
    }
    let overflow = |user: &Address| TxError::InvalidPayload {
        reason: format!("the charge for user {user} does not fit in 64 bits"),
    };
    let mut collected: u64 = 0;
    for e in &b.users {
        let user = profile
            .users
            .iter_mut()
            .find(|u| u.address == e.user)
            .ok_or(TxError::NotDatabaseUser {
                database: b.database,
                account: e.user,
                context: "its miners cannot bill it",
            })?;
        let charge = e
            .rows_read
            .checked_add(e.rows_affected)
            .and_then(|rows| rows.checked_mul(profile.gas_price))
            .ok_or_else(|| overflow(&e.user))?;
        let paid = charge.min(user.advance_payment);
        user.advance_payment -= paid;
        user.arrears = user
            .arrears
            .checked_add(charge - paid)
            .ok_or_else(|| overflow(&e.user))?;
        if user.arrears > 0 {
            user.status = UserStatus::Arrears;
        }
        collected = collected
            .checked_add(paid)
            .ok_or_else(|| overflow(&e.user))?;
    }
    profile.last_billed_period = b.period;
    pay_miners(layer, &profile, collected)?;
    layer.put_database(profile);
    Ok(())
}

/// A user's payment of `amount` into database `id`'s account (see the module doc).
pub(super) fn top_up<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    sender: &Address,
    id: &DatabaseId,
    token: Token,
    amount: u64,
) -> Result<(), TxError> {
    let mut profile = live_database(layer, id)?;
    if token != profile.token {
        return Err(TxError::TokenMismatch {
            database: *id,
            expected: profile.token,
            got: token,
        });
    }
    let account = id.account_address();
    let settled = {
        let user = profile
            .users
            .iter_mut()
            .find(|u| u.address == *sender)
            .ok_or(TxError::NotDatabaseUser {
                database: *id,
                account: *sender,
                context: "only its users may pay into it (a Super user must grant access first)",
            })?;
        user.advance_payment = user
            .advance_payment
            .checked_add(amount)
            .ok_or(TxError::BalanceOverflow { account, token })?;
        let settled = user.arrears.min(user.advance_payment);
        user.advance_payment -= settled;
        user.arrears -= settled;
        if user.arrears == 0 {
            user.status = UserStatus::Normal;
        }
        settled
    };
    layer.pay(sender, &account, token, amount)?;
    pay_miners(layer, &profile, settled)?;
    layer.put_database(profile);
    Ok(())
}

/// Pays `amount` from the database's account to its miners: equal shares,
/// the remainder to the first miner.
fn pay_miners<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    profile: &DatabaseProfile,
    amount: u64,
) -> Result<(), TxError> {
    let n = profile.miners.len() as u64;
    if n == 0 || amount == 0 {
        return Ok(());
    }
    let (share, rest) = (amount / n, amount % n);
    let account = profile.id.account_address();
    for (i, m) in profile.miners.iter().enumerate() {
        let pay = if i == 0 { share + rest } else { share };
        layer.pay(&account, &m.address, profile.token, pay)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::chain::ChainState;
    use crate::chain::testkit::*;
    use crate::crypto::Address;
    use crate::error::ErrorCode;
    use crate::types::{
        BillingEntry, DatabaseId, Permission, Token, Transaction, TxPayload, UpdateBilling,
        UpdatePermission, UserStatus,
    };

    /// Miners 1, 2, 3 provide; user A owns a 3-node database at gas price 10
    /// with 1000 paid in advance; user B is granted Read,Write with nothing paid.
    fn setup() -> (ChainState, DatabaseId) {
        let mut s = db_state();
        for m in [MINER_1, MINER_2, MINER_3] {
            provide(&mut s, m, offer(m, 100));
        }
        let id = create(&mut s, USER_A, create_db(3, &[MINER_1, MINER_2, MINER_3]));
        s.apply_tx(&signed(
            USER_A,
            1,
            TxPayload::UpdatePermission(UpdatePermission {
                database: id,
                user: addr(USER_B),
                permission: "Read,Write".parse::<Permission>().unwrap(),
            }),
        ))
        .unwrap();
        (s, id)
    }

    fn bill(
        s: &ChainState,
        miner: u8,
        id: DatabaseId,
        period: u64,
        usage: &[(u8, u64, u64)],
    ) -> Transaction {
        signed(
            miner,
            s.next_nonce(&addr(miner)),
            TxPayload::UpdateBilling(UpdateBilling {
                database: id,
                period,
                users: usage
                    .iter()
                    .map(|&(u, rows_read, rows_affected)| BillingEntry {
                        user: addr(u),
                        rows_read,
                        rows_affected,
                    })
                    .collect(),
            }),
        )
    }

    fn pay_in(s: &ChainState, user: u8, id: DatabaseId, token: Token, amount: u64) -> Transaction {
        signed(
            user,
            s.next_nonce(&addr(user)),
            TxPayload::Transfer {
                to: id.account_address(),
                token,
                amount,
            },
        )
    }

    fn particle(s: &ChainState, a: &Address) -> u64 {
        s.balances(a).get(Token::Particle)
    }

    fn user(s: &ChainState, id: &DatabaseId, u: u8) -> crate::types::DatabaseUser {
        s.database(id).unwrap().user(&addr(u)).unwrap().clone()
    }

    #[test]
    fn billing_charges_users_and_pays_the_miners() {
        let (mut s, id) = setup();
        let miners: Vec<u64> = [MINER_1, MINER_2, MINER_3]
            .iter()
            .map(|m| particle(&s, &addr(*m)))
            .collect();
        // A: (3 + 4) rows * 10 = 70 from its 1000.
        s.apply_tx(&bill(&s, MINER_2, id, 1, &[(USER_A, 3, 4)]))
            .unwrap();
        let a = user(&s, &id, USER_A);
        assert_eq!(
            (a.advance_payment, a.arrears, a.status),
            (930, 0, UserStatus::Normal)
        );
        assert_eq!(particle(&s, &id.account_address()), 930);
        // 70 split three ways: 24 to the first miner, 23 to the others.
        let paid: Vec<u64> = [MINER_1, MINER_2, MINER_3]
            .iter()
            .zip(&miners)
            .map(|(m, before)| particle(&s, &addr(*m)) - before)
            .collect();
        assert_eq!(paid, vec![24, 23, 23]);
        assert_eq!(s.database(&id).unwrap().last_billed_period, 1);
    }

    #[test]
    fn a_user_who_runs_out_is_blocked_until_topped_up() {
        let (mut s, id) = setup();
        // B has paid nothing: 5 rows * 10 = 50 all in arrears; A pays 20.
        s.apply_tx(&bill(&s, MINER_1, id, 1, &[(USER_A, 2, 0), (USER_B, 5, 0)]))
            .unwrap();
        let b = user(&s, &id, USER_B);
        assert_eq!(
            (b.advance_payment, b.arrears, b.status),
            (0, 50, UserStatus::Arrears)
        );
        assert_eq!(user(&s, &id, USER_A).advance_payment, 980);
        // A partial top-up settles part of the arrears; B stays blocked.
        let m1 = particle(&s, &addr(MINER_1));
        s.apply_tx(&pay_in(&s, USER_B, id, Token::Particle, 30))
            .unwrap();
        let b = user(&s, &id, USER_B);
        assert_eq!(
            (b.advance_payment, b.arrears, b.status),
            (0, 20, UserStatus::Arrears)
        );
        assert_eq!(particle(&s, &addr(USER_B)), 9_970);
        // The settled 30 went to the miners (10 each).
        assert_eq!(particle(&s, &addr(MINER_1)), m1 + 10);
        // Enough to cover the rest unblocks B, the excess becoming its advance.
        s.apply_tx(&pay_in(&s, USER_B, id, Token::Particle, 100))
            .unwrap();
        let b = user(&s, &id, USER_B);
        assert_eq!(
            (b.advance_payment, b.arrears, b.status),
            (80, 0, UserStatus::Normal)
        );
        // The database account holds exactly the users' advances.
        assert_eq!(particle(&s, &id.account_address()), 980 + 80);
        // A charge larger than the advance takes all of it and records the rest.
        s.apply_tx(&bill(&s, MINER_3, id, 2, &[(USER_B, 10, 0)]))
            .unwrap();
        let b = user(&s, &id, USER_B);
        assert_eq!(
            (b.advance_payment, b.arrears, b.status),
            (0, 20, UserStatus::Arrears)
        );
    }

    #[test]
    fn billing_refusals() {
        let (mut s, id) = setup();
        assert_refused!(
            &mut s,
            &bill(&s, USER_A, id, 1, &[(USER_A, 1, 0)]),
            ErrorCode::NotDatabaseMiner,
            "only its miners may bill its users",
        );
        assert_refused!(
            &mut s,
            &bill(&s, MINER_1, id, 1, &[(USER_C, 1, 0)]),
            ErrorCode::NotDatabaseUser,
            "cannot bill it",
        );
        assert_refused!(
            &mut s,
            &bill(&s, MINER_1, id, 0, &[]),
            ErrorCode::StaleBillingPeriod,
            "billing period 0",
        );
        s.apply_tx(&bill(&s, MINER_1, id, 5, &[])).unwrap();
        assert_refused!(
            &mut s,
            &bill(&s, MINER_2, id, 5, &[(USER_A, 1, 0)]),
            ErrorCode::StaleBillingPeriod,
            "not after the last billed period 5",
        );
        assert_refused!(
            &mut s,
            &bill(&s, MINER_2, id, 6, &[(USER_A, u64::MAX, 1)]),
            ErrorCode::InvalidTransaction,
            "does not fit in 64 bits",
        );
        let unknown = DatabaseId::derive(&addr(USER_C), 0);
        assert_refused!(
            &mut s,
            &bill(&s, MINER_1, unknown, 1, &[]),
            ErrorCode::UnknownDatabase,
            "does not exist",
        );
    }

    #[test]
    fn payments_into_a_database_need_a_user_and_its_token() {
        let (mut s, id) = setup();
        assert_refused!(
            &mut s,
            &pay_in(&s, USER_C, id, Token::Particle, 10),
            ErrorCode::NotDatabaseUser,
            "only its users may pay into it",
        );
        assert_refused!(
            &mut s,
            &pay_in(&s, USER_B, id, Token::Wave, 10),
            ErrorCode::TokenMismatch,
            "is paid in Particle, not Wave",
        );
        assert_refused!(
            &mut s,
            &pay_in(&s, USER_B, id, Token::Particle, 10_001),
            ErrorCode::InsufficientBalance,
            "has 10000, needs 10001",
        );
        s.apply_tx(&pay_in(&s, USER_B, id, Token::Particle, 10))
            .unwrap();
        assert_eq!(user(&s, &id, USER_B).advance_payment, 10);
    }
}
