//! The effect of one transaction on the state: checks the envelope
//! (signature, signer, nonce), the payload's shape, then plans the payload's
//! effect as [`Writes`] over a [`StateView`]. Nothing is written here; a
//! failure at any step means the transaction changes nothing.
//!
//! - Transfer: sender → receiver. A transfer to a database's account is a
//!   top-up of the sender's advance payment in that database ([`billing`]).
//! - ProvideService ([`provider`]), CreateDatabase / DropDatabase /
//!   UpdatePermission ([`database`]), UpdateBilling ([`billing`]).
//!
//! Pure; must not import the store, tokio or anything that does I/O.

mod billing;
mod database;
mod provider;

use std::collections::BTreeSet;

use super::error::TxError;
use super::params::{
    MAX_PATTERN_BYTES_PER_USER, MAX_PATTERNS_PER_USER, MAX_TARGET_MINERS, MAX_TARGET_USERS,
    MAX_USERS_PER_DATABASE,
};
use super::view::{Layered, StateView, Writes};
use crate::crypto::Address;
use crate::hash::Hash;
use crate::types::{DatabaseId, DatabaseProfile, Token, Transaction, TxPayload};

/// The writes `tx` would make if it applied to `view`, or why it does not
/// apply. `id` must be `tx.hash()`.
pub(crate) fn plan_tx<V: StateView + ?Sized>(
    view: &V,
    tx: &Transaction,
    id: &Hash,
) -> Result<Writes, TxError> {
    tx.verify_with_hash(id)?;
    let body = &tx.body;
    let sender = body.sender;
    let next = view.account(&sender).map_or(0, |a| a.next_nonce);
    if body.nonce < next {
        return Err(TxError::NonceReused {
            sender,
            nonce: body.nonce,
            next,
        });
    }
    if body.nonce > next {
        return Err(TxError::NonceTooHigh {
            sender,
            nonce: body.nonce,
            next,
        });
    }
    let bumped = next
        .checked_add(1)
        .ok_or(TxError::NonceOverflow { sender })?;
    check_payload(&body.payload)?;
    let mut layer = Layered::new(view);
    match &body.payload {
        TxPayload::Transfer { to, token, amount } => {
            transfer(&mut layer, &sender, to, *token, *amount)?
        }
        TxPayload::ProvideService(p) => provider::provide(&mut layer, &sender, p)?,
        TxPayload::CreateDatabase(c) => database::create(&mut layer, &sender, body.nonce, c)?,
        TxPayload::DropDatabase(d) => database::drop(&mut layer, &sender, d)?,
        TxPayload::UpdatePermission(u) => database::update_permission(&mut layer, &sender, u)?,
        TxPayload::UpdateBilling(b) => billing::bill(&mut layer, &sender, b)?,
    }
    let mut account = layer.account_or_new(&sender);
    account.next_nonce = bumped;
    layer.put_account(account);
    Ok(layer.into_writes())
}

/// What can be refused about a payload without looking at the state: zero
/// amounts, empty or oversized lists, duplicates. The pool uses it too.
pub(crate) fn check_payload(payload: &TxPayload) -> Result<(), TxError> {
    let invalid = |reason: String| Err(TxError::InvalidPayload { reason });
    match payload {
        TxPayload::Transfer { amount: 0, .. } => Err(TxError::ZeroAmount),
        TxPayload::Transfer { .. } | TxPayload::DropDatabase(_) => Ok(()),
        TxPayload::CreateDatabase(c) => {
            if c.node_count == 0 {
                return invalid("a database needs at least one node (node count 0)".into());
            }
            if c.target_miners.len() > MAX_TARGET_MINERS {
                return invalid(format!(
                    "{} target miners listed, more than the limit of {MAX_TARGET_MINERS}",
                    c.target_miners.len()
                ));
            }
            Ok(())
        }
        TxPayload::ProvideService(p) => {
            if p.target_users.len() > MAX_TARGET_USERS {
                return invalid(format!(
                    "{} target users listed, more than the limit of {MAX_TARGET_USERS}",
                    p.target_users.len()
                ));
            }
            Ok(())
        }
        TxPayload::UpdatePermission(u) => {
            let patterns = &u.permission.patterns;
            if patterns.len() > MAX_PATTERNS_PER_USER {
                return invalid(format!(
                    "{} SQL patterns given, more than the limit of {MAX_PATTERNS_PER_USER}",
                    patterns.len()
                ));
            }
            let bytes: usize = patterns.iter().map(String::len).sum();
            if bytes > MAX_PATTERN_BYTES_PER_USER {
                return invalid(format!(
                    "the SQL patterns take {bytes} bytes, more than the limit of \
                     {MAX_PATTERN_BYTES_PER_USER}"
                ));
            }
            if u.permission.roles.is_void() && !patterns.is_empty() {
                return invalid("a revocation (Void) cannot carry SQL patterns".into());
            }
            Ok(())
        }
        TxPayload::UpdateBilling(b) => {
            if b.users.len() > MAX_USERS_PER_DATABASE {
                return invalid(format!(
                    "{} billing entries, more than the limit of {MAX_USERS_PER_DATABASE}",
                    b.users.len()
                ));
            }
            let mut seen = BTreeSet::new();
            for e in &b.users {
                if !seen.insert(e.user) {
                    return invalid(format!("user {} is billed twice in one period", e.user));
                }
            }
            Ok(())
        }
    }
}

/// A transfer; to a database's account it tops up the sender's advance payment.
fn transfer<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    sender: &Address,
    to: &Address,
    token: Token,
    amount: u64,
) -> Result<(), TxError> {
    let balance = layer.account(sender).map_or(0, |a| a.balances.get(token));
    if balance < amount {
        return Err(TxError::InsufficientBalance {
            sender: *sender,
            token,
            balance,
            needed: amount,
        });
    }
    if to == sender {
        // A transfer to oneself moves nothing but still uses the nonce.
        return Ok(());
    }
    let database = DatabaseId(to.0);
    if layer.database(&database).is_some() {
        return billing::top_up(layer, sender, &database, token, amount);
    }
    if layer.is_dropped(&database) {
        return Err(TxError::DatabaseDropped { database });
    }
    layer.pay(sender, to, token, amount)
}

/// The live profile of `id`, or why there is none.
fn live_database<V: StateView + ?Sized>(
    view: &V,
    id: &DatabaseId,
) -> Result<DatabaseProfile, TxError> {
    match view.database(id) {
        Some(p) => Ok(p.clone()),
        None if view.is_dropped(id) => Err(TxError::DatabaseDropped { database: *id }),
        None => Err(TxError::UnknownDatabase { database: *id }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;
    use crate::types::{
        BillingEntry, CreateDatabase, Permission, ProvideService, Roles, UpdateBilling,
        UpdatePermission,
    };

    fn refused(payload: TxPayload, code: ErrorCode, needle: &str) {
        let err = check_payload(&payload).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(needle), "{needle:?} not in {err}");
        // The chain refuses it the same way, changing nothing.
        let mut s = db_state();
        let before = s.clone();
        let err = s.apply_tx(&signed(USER_A, 0, payload)).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(s, before);
    }

    #[test]
    fn malformed_payloads_are_refused_whatever_the_state() {
        let mut create = create_db(1, &[]);
        create.node_count = 0;
        refused(
            TxPayload::CreateDatabase(create),
            ErrorCode::InvalidTransaction,
            "at least one node",
        );
        let create = CreateDatabase {
            target_miners: vec![addr(MINER_1); MAX_TARGET_MINERS + 1],
            ..create_db(1, &[])
        };
        refused(
            TxPayload::CreateDatabase(create),
            ErrorCode::InvalidTransaction,
            "target miners listed",
        );
        let provide = ProvideService {
            target_users: vec![addr(USER_A); MAX_TARGET_USERS + 1],
            ..offer(MINER_1, 100)
        };
        refused(
            TxPayload::ProvideService(provide),
            ErrorCode::InvalidTransaction,
            "target users listed",
        );
        let db = DatabaseId::derive(&addr(USER_A), 0);
        let grant = |permission: Permission| {
            TxPayload::UpdatePermission(UpdatePermission {
                database: db,
                user: addr(USER_B),
                permission,
            })
        };
        let many = Permission {
            roles: Roles::READ,
            patterns: vec!["SELECT 1".into(); MAX_PATTERNS_PER_USER + 1],
        };
        refused(
            grant(many),
            ErrorCode::InvalidTransaction,
            "SQL patterns given",
        );
        let long = Permission {
            roles: Roles::READ,
            patterns: vec!["x".repeat(MAX_PATTERN_BYTES_PER_USER + 1)],
        };
        refused(grant(long), ErrorCode::InvalidTransaction, "bytes");
        let void = Permission {
            roles: Roles::VOID,
            patterns: vec!["SELECT 1".into()],
        };
        refused(grant(void), ErrorCode::InvalidTransaction, "cannot carry");
        let entry = BillingEntry {
            user: addr(USER_A),
            rows_read: 1,
            rows_affected: 0,
        };
        let bill = UpdateBilling {
            database: db,
            period: 1,
            users: vec![entry.clone(), entry],
        };
        refused(
            TxPayload::UpdateBilling(bill),
            ErrorCode::InvalidTransaction,
            "billed twice",
        );
    }
}
