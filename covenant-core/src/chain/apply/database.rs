//! `CreateDatabase`, `DropDatabase` and `UpdatePermission`.
//!
//! - Create: the id is `DatabaseId::derive(owner, tx nonce)`, so it is new
//!   by construction (the nonce is consumed) and a dropped id never returns.
//!   Miners are matched in a deterministic order: the listed target miners
//!   first (in the order given, duplicates ignored), then every other
//!   provider by address. A provider matches if its `TargetUsers` accept the
//!   owner, it is paid in the database's token, its gas price is at most the
//!   one offered, and its offer covers the resources asked (memory, disk,
//!   and a load no higher than the ask's limit). Offers are per database:
//!   there is no capacity accounting across databases. Fewer matches than
//!   the node count fails the transaction, naming why. The owner's advance
//!   payment moves to the database's account; the owner becomes its first
//!   user, an Admin. Each assignment records the miner's provider deposit
//!   at the time as the stake backing the database.
//! - Drop (a Super user only): every user's remaining advance payment is
//!   refunded to it; whatever else the database's account holds (funds sent
//!   to its address before it existed, or in other tokens) goes to the
//!   owner. The profile is removed, its miners' assignments with it (miners
//!   stop serving and delete the data when they see it gone), and the id is
//!   remembered as dropped: transfers to its account are refused. Miners'
//!   provider deposits are per provider, not per database, so they stay
//!   locked in the provider profiles. Unpaid arrears are forgiven.
//! - UpdatePermission (a Super user only): grants create the user (advance
//!   payment 0) or replace its roles and SQL whitelist; `Void` revokes by
//!   marking the user Void (it keeps its advance payment, refunded at drop,
//!   and can be granted again). No change may leave the database without a
//!   Super user.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::super::error::TxError;
use super::super::params::MAX_USERS_PER_DATABASE;
use super::super::view::{Layered, StateView};
use super::live_database;
use crate::crypto::Address;
use crate::types::{
    CreateDatabase, DatabaseId, DatabaseProfile, DatabaseUser, DropDatabase, MinerAssignment,
    Permission, ProviderProfile, ResourceAsk, Roles, UpdatePermission, UserStatus,
};

/// Creates the database `owner` asks for with its transaction of nonce `nonce`.
pub(super) fn create<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    owner: &Address,
    nonce: u64,
    ask: &CreateDatabase,
) -> Result<(), TxError> {
    let id = DatabaseId::derive(owner, nonce);
    if layer.database(&id).is_some() || layer.is_dropped(&id) {
        return Err(TxError::DatabaseExists { database: id });
    }
    let min = layer.params().min_gas_price;
    if ask.gas_price < min {
        return Err(TxError::GasPriceTooLow {
            price: ask.gas_price,
            min,
        });
    }
    let miners = match_miners(layer, owner, ask)?;
    layer.pay(owner, &id.account_address(), ask.token, ask.advance_payment)?;
    layer.put_database(DatabaseProfile {
        id,
        owner: *owner,
        miners,
        users: vec![DatabaseUser {
            address: *owner,
            permission: Permission::new(Roles::ADMIN),
            status: UserStatus::Normal,
            advance_payment: ask.advance_payment,
            arrears: 0,
        }],
        consistency: ask.consistency,
        token: ask.token,
        gas_price: ask.gas_price,
        resources: ask.resources.clone(),
        last_billed_period: 0,
    });
    Ok(())
}

/// Why a provider was not matched.
enum Refusal {
    TargetUsers,
    Token,
    Price,
    Resources(String),
}

impl Refusal {
    fn label(&self) -> &'static str {
        match self {
            Refusal::TargetUsers => "TargetUsers",
            Refusal::Token => "token",
            Refusal::Price => "gas price",
            Refusal::Resources(_) => "resources",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TargetUsers => f.write_str("does not serve this user (TargetUsers)"),
            Refusal::Token => f.write_str("is paid in another token"),
            Refusal::Price => f.write_str("asks a higher gas price"),
            Refusal::Resources(why) => f.write_str(why),
        }
    }
}

/// Why `p` cannot serve `owner`'s database asked as `ask`, if it cannot.
fn refusal(p: &ProviderProfile, owner: &Address, ask: &CreateDatabase) -> Option<Refusal> {
    if !p.accepts(owner) {
        return Some(Refusal::TargetUsers);
    }
    if p.token != ask.token {
        return Some(Refusal::Token);
    }
    if p.gas_price > ask.gas_price {
        return Some(Refusal::Price);
    }
    resources_short(&p.resources, &ask.resources).map(Refusal::Resources)
}

/// What `offer` lacks to satisfy `ask`, if anything.
fn resources_short(offer: &ResourceAsk, ask: &ResourceAsk) -> Option<String> {
    if offer.memory_mb < ask.memory_mb {
        return Some(format!(
            "offers {} MiB of memory, {} asked",
            offer.memory_mb, ask.memory_mb
        ));
    }
    if offer.disk_mb < ask.disk_mb {
        return Some(format!(
            "offers {} MiB of disk, {} asked",
            offer.disk_mb, ask.disk_mb
        ));
    }
    if ask.load_avg_per_cpu_milli != 0 && offer.load_avg_per_cpu_milli > ask.load_avg_per_cpu_milli
    {
        return Some(format!(
            "has load {}/1000 per CPU, at most {}/1000 asked",
            offer.load_avg_per_cpu_milli, ask.load_avg_per_cpu_milli
        ));
    }
    None
}

fn assignment(p: &ProviderProfile) -> MinerAssignment {
    MinerAssignment {
        address: p.address,
        node_id: p.node_id,
        deposit: p.deposit,
    }
}

/// The miners for a new database (see the module doc), or why too few match.
fn match_miners<V: StateView + ?Sized>(
    view: &V,
    owner: &Address,
    ask: &CreateDatabase,
) -> Result<Vec<MinerAssignment>, TxError> {
    let need = usize::from(ask.node_count);
    let mut picked = Vec::with_capacity(need);
    let mut judged = BTreeSet::new();
    let mut notes: Vec<String> = Vec::new();
    for t in &ask.target_miners {
        if picked.len() == need {
            break;
        }
        if !judged.insert(*t) {
            continue;
        }
        match view.provider(t) {
            None => notes.push(format!("target miner {t} does not provide service")),
            Some(p) => match refusal(p, owner, ask) {
                Some(r) => notes.push(format!("target miner {t} {r}")),
                None => picked.push(assignment(p)),
            },
        }
    }
    let mut others = 0usize;
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    if picked.len() < need {
        for a in view.provider_addresses() {
            if picked.len() == need {
                break;
            }
            if judged.contains(&a) {
                continue;
            }
            let Some(p) = view.provider(&a) else { continue };
            others += 1;
            match refusal(p, owner, ask) {
                Some(r) => *refused.entry(r.label()).or_default() += 1,
                None => picked.push(assignment(p)),
            }
        }
    }
    if picked.len() == need {
        return Ok(picked);
    }
    let refused_total: usize = refused.values().sum();
    if others == 0 {
        notes.push(if judged.is_empty() {
            "no miner provides service".into()
        } else {
            "no other miner provides service".into()
        });
    } else if refused_total > 0 {
        let why: Vec<String> = refused.iter().map(|(k, n)| format!("{n} {k}")).collect();
        notes.push(format!(
            "{refused_total} of {others} other providers refused: {}",
            why.join(", ")
        ));
    }
    Err(TxError::NotEnoughMiners {
        need: ask.node_count,
        found: picked.len(),
        detail: notes.join("; "),
    })
}

/// Fails unless `account` is a Super user of `profile`.
fn require_super(
    profile: &DatabaseProfile,
    account: &Address,
    action: &'static str,
) -> Result<(), TxError> {
    match profile.user(account) {
        Some(u) if u.permission.is_super() => Ok(()),
        _ => Err(TxError::NotSuperUser {
            database: profile.id,
            account: *account,
            action,
        }),
    }
}

/// Drops a database, refunding its users (see the module doc).
pub(super) fn drop<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    sender: &Address,
    d: &DropDatabase,
) -> Result<(), TxError> {
    let profile = live_database(layer, &d.database)?;
    require_super(&profile, sender, "drop it")?;
    let account = d.database.account_address();
    for u in &profile.users {
        layer.pay(&account, &u.address, profile.token, u.advance_payment)?;
    }
    let rest: Vec<_> = layer
        .account(&account)
        .map(|a| a.balances.iter().collect())
        .unwrap_or_default();
    for (token, amount) in rest {
        layer.pay(&account, &profile.owner, token, amount)?;
    }
    layer.drop_database(d.database);
    Ok(())
}

/// Grants or revokes a user's permission (see the module doc).
pub(super) fn update_permission<V: StateView + ?Sized>(
    layer: &mut Layered<'_, V>,
    sender: &Address,
    u: &UpdatePermission,
) -> Result<(), TxError> {
    let mut profile = live_database(layer, &u.database)?;
    require_super(&profile, sender, "change permissions")?;
    match profile.users.iter_mut().find(|x| x.address == u.user) {
        Some(user) => user.permission = u.permission.clone(),
        None if u.permission.roles.is_void() => {
            return Err(TxError::NotDatabaseUser {
                database: u.database,
                account: u.user,
                context: "there is nothing to revoke",
            });
        }
        None => {
            if profile.users.len() >= MAX_USERS_PER_DATABASE {
                return Err(TxError::InvalidPayload {
                    reason: format!(
                        "database {} already has the maximum of {MAX_USERS_PER_DATABASE} users",
                        u.database
                    ),
                });
            }
            profile.users.push(DatabaseUser {
                address: u.user,
                permission: u.permission.clone(),
                status: UserStatus::Normal,
                advance_payment: 0,
                arrears: 0,
            });
        }
    }
    if !profile.users.iter().any(|x| x.permission.is_super()) {
        return Err(TxError::LastSuperUser {
            database: u.database,
            account: *sender,
        });
    }
    layer.put_database(profile);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::chain::ChainState;
    use crate::chain::testkit::*;
    use crate::error::ErrorCode;
    use crate::types::{
        Consistency, CreateDatabase, DatabaseId, DropDatabase, Permission, ProvideService,
        ResourceAsk, Roles, Token, TxPayload, UpdatePermission, UserStatus,
    };

    /// Three miners provide: 1 and 2 for everyone, 3 only for user A.
    fn providers() -> ChainState {
        let mut s = db_state();
        provide(&mut s, MINER_1, offer(MINER_1, 100));
        provide(&mut s, MINER_2, offer(MINER_2, 200));
        let only_a = ProvideService {
            target_users: vec![addr(USER_A)],
            ..offer(MINER_3, 300)
        };
        provide(&mut s, MINER_3, only_a);
        s
    }

    fn miners_of(s: &ChainState, id: &DatabaseId) -> Vec<crate::crypto::Address> {
        s.database(id)
            .unwrap()
            .miners
            .iter()
            .map(|m| m.address)
            .collect()
    }

    fn grant(
        s: &ChainState,
        from: u8,
        id: DatabaseId,
        to: u8,
        perm: &str,
    ) -> crate::types::Transaction {
        signed(
            from,
            s.next_nonce(&addr(from)),
            TxPayload::UpdatePermission(UpdatePermission {
                database: id,
                user: addr(to),
                permission: perm.parse::<Permission>().unwrap(),
            }),
        )
    }

    #[test]
    fn create_records_the_profile_and_moves_the_advance_payment() {
        let mut s = providers();
        let mut ask = create_db(2, &[MINER_3]);
        ask.consistency = Consistency::Eventual;
        let id = create(&mut s, USER_A, ask.clone());
        assert_eq!(id, DatabaseId::derive(&addr(USER_A), 0));
        let p = s.database(&id).unwrap();
        assert_eq!(p.owner, addr(USER_A));
        // The target miner first, then the others by address.
        let mut rest = [addr(MINER_1), addr(MINER_2)];
        rest.sort();
        assert_eq!(miners_of(&s, &id), vec![addr(MINER_3), rest[0]]);
        assert_eq!(p.miners[0].node_id, node(MINER_3));
        assert_eq!(p.miners[0].deposit, 300);
        assert_eq!(p.consistency, Consistency::Eventual);
        assert_eq!((p.token, p.gas_price), (Token::Particle, ask.gas_price));
        assert_eq!(p.users.len(), 1);
        let owner = &p.users[0];
        assert_eq!(owner.address, addr(USER_A));
        assert_eq!(owner.permission, Permission::new(Roles::ADMIN));
        assert_eq!(owner.status, UserStatus::Normal);
        assert_eq!(owner.advance_payment, 1_000);
        assert_eq!(s.balances(&addr(USER_A)).get(Token::Particle), 9_000);
        assert_eq!(
            s.balances(&id.account_address()).get(Token::Particle),
            1_000
        );
        // Queries.
        assert_eq!(s.user_databases(&addr(USER_A)).len(), 1);
        assert!(s.user_databases(&addr(USER_B)).is_empty());
        assert_eq!(s.miner_databases(&addr(MINER_3)).len(), 1);
        assert!(s.miner_databases(&addr(USER_A)).is_empty());
        // A second database of the same owner gets another id.
        let id2 = create(&mut s, USER_A, create_db(1, &[]));
        assert_ne!(id, id2);
        assert_eq!(id2, DatabaseId::derive(&addr(USER_A), 1));
    }

    #[test]
    fn target_miners_come_first_in_the_order_given() {
        let mut s = providers();
        let id = create(&mut s, USER_A, create_db(2, &[MINER_2, MINER_2, MINER_1]));
        assert_eq!(miners_of(&s, &id), vec![addr(MINER_2), addr(MINER_1)]);
        // Only as many as asked, even if more are listed.
        let id = create(&mut s, USER_A, create_db(1, &[MINER_3, MINER_1]));
        assert_eq!(miners_of(&s, &id), vec![addr(MINER_3)]);
    }

    #[test]
    fn target_users_exclude_other_owners() {
        let mut s = providers();
        // User B names miner 3, which serves only user A: never matched.
        let tx = signed(
            USER_B,
            0,
            TxPayload::CreateDatabase(create_db(1, &[MINER_3])),
        );
        // Miners 1 and 2 serve everyone: B gets one of them instead.
        s.apply_tx(&tx).unwrap();
        let id = DatabaseId::derive(&addr(USER_B), 0);
        assert!(!miners_of(&s, &id).contains(&addr(MINER_3)));
        // With all three asked, B cannot be served.
        assert_refused!(
            &mut s,
            &signed(
                USER_B,
                1,
                TxPayload::CreateDatabase(create_db(3, &[MINER_3])),
            ),
            ErrorCode::NotEnoughMiners,
            "does not serve this user (TargetUsers)",
        );
        // The seed's case: a single TargetUsers-restricted miner.
        let mut only = db_state();
        provide(
            &mut only,
            MINER_3,
            ProvideService {
                target_users: vec![addr(USER_A)],
                ..offer(MINER_3, 300)
            },
        );
        assert_refused!(
            &mut only,
            &signed(
                USER_B,
                0,
                TxPayload::CreateDatabase(create_db(1, &[MINER_3])),
            ),
            ErrorCode::NotEnoughMiners,
            "not enough miners: need 1, found 0 (target miner",
        );
        create(&mut only, USER_A, create_db(1, &[MINER_3]));
    }

    #[test]
    fn not_enough_miners_names_the_reasons() {
        let mut s = db_state();
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(create_db(1, &[]))),
            ErrorCode::NotEnoughMiners,
            "need 1, found 0 (no miner provides service)",
        );
        assert_refused!(
            &mut s,
            &signed(
                USER_A,
                0,
                TxPayload::CreateDatabase(create_db(1, &[MINER_1])),
            ),
            ErrorCode::NotEnoughMiners,
            "does not provide service",
        );
        provide(&mut s, MINER_1, offer(MINER_1, 100));
        let pricey = ProvideService {
            gas_price: 1_000,
            ..offer(MINER_2, 100)
        };
        provide(&mut s, MINER_2, pricey);
        let small = ProvideService {
            resources: ResourceAsk {
                memory_mb: 10,
                ..offer(MINER_3, 100).resources
            },
            ..offer(MINER_3, 100)
        };
        provide(&mut s, MINER_3, small);
        let mut ask = create_db(3, &[]);
        ask.resources.memory_mb = 512;
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(ask.clone())),
            ErrorCode::NotEnoughMiners,
            "need 3, found 1 (2 of 3 other providers refused: 1 gas price, 1 resources)",
        );
        // A named target gets the precise reason.
        ask.target_miners = vec![addr(MINER_3)];
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(ask.clone())),
            ErrorCode::NotEnoughMiners,
            "offers 10 MiB of memory, 512 asked",
        );
        let wave = CreateDatabase {
            token: Token::Wave,
            ..create_db(1, &[MINER_1])
        };
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(wave)),
            ErrorCode::NotEnoughMiners,
            "paid in another token",
        );
        let mut loaded = create_db(1, &[MINER_1]);
        loaded.resources.load_avg_per_cpu_milli = 100;
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(loaded)),
            ErrorCode::NotEnoughMiners,
            "load 500/1000 per CPU",
        );
    }

    #[test]
    fn create_refusals_change_nothing() {
        let mut s = providers();
        let mut ask = create_db(1, &[]);
        ask.advance_payment = 10_001;
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(ask)),
            ErrorCode::InsufficientBalance,
            "has 10000, needs 10001",
        );
        let mut floor = db_genesis();
        floor.params = floor.params.with_min_gas_price(11);
        let mut s = ChainState::genesis(&floor).unwrap().0;
        assert_refused!(
            &mut s,
            &signed(USER_A, 0, TxPayload::CreateDatabase(create_db(1, &[]))),
            ErrorCode::GasPriceTooLow,
            "gas price 10 is below the chain's minimum gas price of 11",
        );
    }

    #[test]
    fn only_a_super_user_grants_and_revokes() {
        let mut s = providers();
        let id = create(&mut s, USER_A, create_db(1, &[]));
        // B is not a user: cannot grant itself anything.
        assert_refused!(
            &mut s,
            &grant(&s, USER_B, id, USER_B, "Admin"),
            ErrorCode::NotSuperUser,
            "only a Super user of database",
        );
        // A grants B read with a whitelist.
        s.apply_tx(&grant(
            &s,
            USER_A,
            id,
            USER_B,
            r#"{"role":"Read","patterns":["SELECT 1"]}"#,
        ))
        .unwrap();
        let b = s
            .database(&id)
            .unwrap()
            .user(&addr(USER_B))
            .unwrap()
            .clone();
        assert!(b.permission.can_read() && !b.permission.can_write());
        assert!(b.permission.allows_statement("SELECT 1"));
        assert!(!b.permission.allows_statement("SELECT 2"));
        assert_eq!((b.advance_payment, b.status), (0, UserStatus::Normal));
        assert_eq!(s.user_databases(&addr(USER_B)).len(), 1);
        // A Read user still cannot grant.
        assert_refused!(
            &mut s,
            &grant(&s, USER_B, id, USER_C, "Read"),
            ErrorCode::NotSuperUser,
            "may change permissions",
        );
        // Changing roles replaces them (and the whitelist).
        s.apply_tx(&grant(&s, USER_A, id, USER_B, "Read,Write"))
            .unwrap();
        let b = s
            .database(&id)
            .unwrap()
            .user(&addr(USER_B))
            .unwrap()
            .clone();
        assert!(b.permission.can_write() && b.permission.patterns.is_empty());
        // Void revokes: B stays listed as Void.
        s.apply_tx(&grant(&s, USER_A, id, USER_B, "Void")).unwrap();
        let b = s
            .database(&id)
            .unwrap()
            .user(&addr(USER_B))
            .unwrap()
            .clone();
        assert!(b.permission.roles.is_void());
        // Revoking a stranger is refused.
        assert_refused!(
            &mut s,
            &grant(&s, USER_A, id, USER_C, "Void"),
            ErrorCode::NotDatabaseUser,
            "nothing to revoke",
        );
        // Unknown database.
        let unknown = DatabaseId::derive(&addr(USER_C), 9);
        assert_refused!(
            &mut s,
            &grant(&s, USER_A, unknown, USER_B, "Read"),
            ErrorCode::UnknownDatabase,
            "does not exist",
        );
    }

    #[test]
    fn the_last_super_user_cannot_drop_its_super_role() {
        let mut s = providers();
        let id = create(&mut s, USER_A, create_db(1, &[]));
        for perm in ["Read,Write", "Void", "Read"] {
            assert_refused!(
                &mut s,
                &grant(&s, USER_A, id, USER_A, perm),
                ErrorCode::LastSuperUser,
                "would leave the database without a Super user",
            );
        }
        // With a second Super user, A may step down; B may then remove A entirely.
        s.apply_tx(&grant(&s, USER_A, id, USER_B, "Super")).unwrap();
        s.apply_tx(&grant(&s, USER_A, id, USER_A, "Read,Write"))
            .unwrap();
        assert_refused!(
            &mut s,
            &grant(&s, USER_A, id, USER_A, "Admin"),
            ErrorCode::NotSuperUser,
            "is not one",
        );
        assert_refused!(
            &mut s,
            &grant(&s, USER_B, id, USER_B, "Read"),
            ErrorCode::LastSuperUser,
            "last Super user",
        );
        s.apply_tx(&grant(&s, USER_B, id, USER_A, "Void")).unwrap();
    }

    #[test]
    fn drop_refunds_users_and_frees_the_miners() {
        let mut s = providers();
        let id = create(&mut s, USER_A, create_db(2, &[MINER_1, MINER_2]));
        let account = id.account_address();
        // B becomes a user and pays 300 in.
        s.apply_tx(&grant(&s, USER_A, id, USER_B, "Read")).unwrap();
        s.apply_tx(&signed(
            USER_B,
            0,
            TxPayload::Transfer {
                to: account,
                token: Token::Particle,
                amount: 300,
            },
        ))
        .unwrap();
        let miner_balance = s.balances(&addr(MINER_1));
        // B (Read) cannot drop.
        let drop_tx = |from: u8, s: &ChainState| {
            signed(
                from,
                s.next_nonce(&addr(from)),
                TxPayload::DropDatabase(DropDatabase { database: id }),
            )
        };
        assert_refused!(
            &mut s,
            &drop_tx(USER_B, &s),
            ErrorCode::NotSuperUser,
            "may drop it",
        );
        s.apply_tx(&drop_tx(USER_A, &s)).unwrap();
        assert!(s.database(&id).is_none());
        assert!(s.is_dropped(&id));
        assert_eq!(s.balances(&addr(USER_A)).get(Token::Particle), 10_000);
        assert_eq!(s.balances(&addr(USER_B)).get(Token::Particle), 10_000);
        assert!(s.balances(&account).is_empty());
        assert!(s.miner_databases(&addr(MINER_1)).is_empty());
        assert!(s.user_databases(&addr(USER_A)).is_empty());
        // Provider deposits stay with the providers.
        assert_eq!(s.balances(&addr(MINER_1)), miner_balance);
        assert_eq!(s.provider(&addr(MINER_1)).unwrap().deposit, 100);
        // Gone for good: no second drop, no grants, no payments.
        assert_refused!(
            &mut s,
            &drop_tx(USER_A, &s),
            ErrorCode::UnknownDatabase,
            "was dropped",
        );
        assert_refused!(
            &mut s,
            &grant(&s, USER_A, id, USER_B, "Read"),
            ErrorCode::UnknownDatabase,
            "was dropped",
        );
        assert_refused!(
            &mut s,
            &signed(
                USER_A,
                s.next_nonce(&addr(USER_A)),
                TxPayload::Transfer {
                    to: account,
                    token: Token::Particle,
                    amount: 1,
                },
            ),
            ErrorCode::UnknownDatabase,
            "was dropped",
        );
    }

    #[test]
    fn funds_sent_before_creation_go_to_the_owner_at_drop() {
        let mut s = providers();
        let id = DatabaseId::derive(&addr(USER_A), 0);
        // Someone predicts the id and sends funds to it before it exists.
        s.apply_tx(&signed(
            USER_B,
            0,
            TxPayload::Transfer {
                to: id.account_address(),
                token: Token::Particle,
                amount: 50,
            },
        ))
        .unwrap();
        assert_eq!(create(&mut s, USER_A, create_db(1, &[])), id);
        s.apply_tx(&signed(
            USER_A,
            1,
            TxPayload::DropDatabase(DropDatabase { database: id }),
        ))
        .unwrap();
        assert_eq!(s.balances(&addr(USER_A)).get(Token::Particle), 10_050);
        assert!(s.balances(&id.account_address()).is_empty());
    }
}
