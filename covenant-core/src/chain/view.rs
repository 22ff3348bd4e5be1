//! Read access to the chain state ([`StateView`]) and writes staged on top
//! of it ([`Writes`], [`Layered`]).
//!
//! A transaction's effect is planned against a view and returns the writes
//! it would make; the state takes them only when the whole transaction
//! succeeded, which is what makes every transaction all-or-nothing. The
//! block producer stacks the transactions it picks on the applied state with
//! a [`Layered`] view, and an effect uses one to read its own earlier writes
//! (a miner paid twice in one billing). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use super::error::TxError;
use super::params::ChainParams;
use crate::crypto::Address;
use crate::types::{Account, DatabaseId, DatabaseProfile, ProviderProfile, Token};

/// Read access to accounts, databases and providers.
pub(crate) trait StateView {
    /// The rules in force.
    fn params(&self) -> &ChainParams;
    /// The account at `address`, if it exists.
    fn account(&self, address: &Address) -> Option<&Account>;
    /// The live database `id`, if it exists.
    fn database(&self, id: &DatabaseId) -> Option<&DatabaseProfile>;
    /// Whether database `id` was dropped.
    fn is_dropped(&self, id: &DatabaseId) -> bool;
    /// The provider `address`, if it offered service.
    fn provider(&self, address: &Address) -> Option<&ProviderProfile>;
    /// Every provider's address, in address order.
    fn provider_addresses(&self) -> BTreeSet<Address>;
}

/// What a transaction (or several) would change: the new values, keyed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Writes {
    /// Accounts' new values.
    pub(crate) accounts: BTreeMap<Address, Account>,
    /// Databases' new profiles; `None` = dropped.
    pub(crate) databases: BTreeMap<DatabaseId, Option<DatabaseProfile>>,
    /// Providers' new profiles.
    pub(crate) providers: BTreeMap<Address, ProviderProfile>,
}

impl Writes {
    /// Lays `later` over these writes.
    pub(crate) fn merge(&mut self, later: Writes) {
        self.accounts.extend(later.accounts);
        self.databases.extend(later.databases);
        self.providers.extend(later.providers);
    }
}

/// A view with writes on top of a base view.
pub(crate) struct Layered<'a, V: StateView + ?Sized> {
    base: &'a V,
    writes: Writes,
}

impl<'a, V: StateView + ?Sized> Layered<'a, V> {
    /// No writes yet over `base`.
    pub(crate) fn new(base: &'a V) -> Layered<'a, V> {
        Layered {
            base,
            writes: Writes::default(),
        }
    }

    /// Lays `later` over the current writes.
    pub(crate) fn merge(&mut self, later: Writes) {
        self.writes.merge(later);
    }

    /// The staged writes.
    pub(crate) fn into_writes(self) -> Writes {
        self.writes
    }

    /// The account at `address`, or a new empty one.
    pub(crate) fn account_or_new(&self, address: &Address) -> Account {
        self.account(address)
            .cloned()
            .unwrap_or_else(|| Account::new(*address))
    }

    /// Stages an account's new value.
    pub(crate) fn put_account(&mut self, account: Account) {
        self.writes.accounts.insert(account.address, account);
    }

    /// Stages a database's new profile.
    pub(crate) fn put_database(&mut self, profile: DatabaseProfile) {
        self.writes.databases.insert(profile.id, Some(profile));
    }

    /// Stages dropping database `id`.
    pub(crate) fn drop_database(&mut self, id: DatabaseId) {
        self.writes.databases.insert(id, None);
    }

    /// Stages a provider's new profile.
    pub(crate) fn put_provider(&mut self, profile: ProviderProfile) {
        self.writes.providers.insert(profile.address, profile);
    }

    /// Takes `amount` of `token` from `from`, or fails with its balance.
    pub(crate) fn debit(
        &mut self,
        from: &Address,
        token: Token,
        amount: u64,
    ) -> Result<(), TxError> {
        let mut account = self.account_or_new(from);
        let left =
            account
                .balances
                .checked_debit(token, amount)
                .ok_or(TxError::InsufficientBalance {
                    sender: *from,
                    token,
                    balance: account.balances.get(token),
                    needed: amount,
                })?;
        account.balances.set(token, left);
        self.put_account(account);
        Ok(())
    }

    /// Gives `amount` of `token` to `to`, or fails if its balance would overflow.
    pub(crate) fn credit(
        &mut self,
        to: &Address,
        token: Token,
        amount: u64,
    ) -> Result<(), TxError> {
        let mut account = self.account_or_new(to);
        let credited =
            account
                .balances
                .checked_credit(token, amount)
                .ok_or(TxError::BalanceOverflow {
                    account: *to,
                    token,
                })?;
        account.balances.set(token, credited);
        self.put_account(account);
        Ok(())
    }

    /// Moves `amount` of `token` from `from` to `to` (nothing if zero).
    pub(crate) fn pay(
        &mut self,
        from: &Address,
        to: &Address,
        token: Token,
        amount: u64,
    ) -> Result<(), TxError> {
        if amount == 0 {
            return Ok(());
        }
        self.debit(from, token, amount)?;
        self.credit(to, token, amount)
    }
}

impl<V: StateView + ?Sized> StateView for Layered<'_, V> {
    fn params(&self) -> &ChainParams {
        self.base.params()
    }

    fn account(&self, address: &Address) -> Option<&Account> {
        self.writes
            .accounts
            .get(address)
            .or_else(|| self.base.account(address))
    }

    fn database(&self, id: &DatabaseId) -> Option<&DatabaseProfile> {
        match self.writes.databases.get(id) {
            Some(staged) => staged.as_ref(),
            None => self.base.database(id),
        }
    }

    fn is_dropped(&self, id: &DatabaseId) -> bool {
        matches!(self.writes.databases.get(id), Some(None)) || self.base.is_dropped(id)
    }

    fn provider(&self, address: &Address) -> Option<&ProviderProfile> {
        self.writes
            .providers
            .get(address)
            .or_else(|| self.base.provider(address))
    }

    fn provider_addresses(&self) -> BTreeSet<Address> {
        let mut all = self.base.provider_addresses();
        all.extend(self.writes.providers.keys().copied());
        all
    }
}
