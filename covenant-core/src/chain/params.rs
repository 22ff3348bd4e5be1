//! [`ChainParams`]: the economic rules every block producer must apply
//! identically (`MinProviderDeposit`, a gas price floor), and the fixed
//! protocol limits on database payloads.
//!
//! The parameters travel inside the [`Genesis`](super::Genesis) and are
//! part of the state digest, so they are committed in the genesis block's
//! hash: producers configured with different rules refuse each other's
//! blocks (and a store written under other rules is refused as another
//! genesis) instead of silently diverging. This module reads no
//! configuration; the block producer builds the value from its config.
//! Must not import `config`.

use serde::{Deserialize, Serialize};

use crate::codec::Versioned;

/// Most target miners a `CreateDatabase` may list.
pub const MAX_TARGET_MINERS: usize = 64;
/// Most `TargetUsers` a `ProvideService` may list.
pub const MAX_TARGET_USERS: usize = 1024;
/// Most users (including revoked ones) a database may have.
pub const MAX_USERS_PER_DATABASE: usize = 1000;
/// Most SQL patterns in one user's whitelist.
pub const MAX_PATTERNS_PER_USER: usize = 64;
/// Most bytes of SQL patterns (all of them together) in one user's whitelist.
pub const MAX_PATTERN_BYTES_PER_USER: usize = 16 * 1024;

/// The chain's economic parameters (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainParams {
    /// The least deposit a `ProvideService` must lock (`MinProviderDeposit`).
    pub min_provider_deposit: u64,
    /// The least gas price a `CreateDatabase` may offer (0: no floor).
    pub min_gas_price: u64,
}

impl ChainParams {
    /// The default `MinProviderDeposit`, equal to the config's default.
    pub const DEFAULT_MIN_PROVIDER_DEPOSIT: u64 = 1_000_000;

    /// Parameters with this `MinProviderDeposit` and no gas price floor.
    pub const fn new(min_provider_deposit: u64) -> ChainParams {
        ChainParams {
            min_provider_deposit,
            min_gas_price: 0,
        }
    }

    /// The same parameters with a gas price floor.
    pub const fn with_min_gas_price(mut self, min_gas_price: u64) -> ChainParams {
        self.min_gas_price = min_gas_price;
        self
    }
}

impl Default for ChainParams {
    fn default() -> ChainParams {
        ChainParams::new(ChainParams::DEFAULT_MIN_PROVIDER_DEPOSIT)
    }
}

impl Versioned for ChainParams {
    const KIND: &'static str = "chain parameters";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_versioned, encode_versioned};

    #[test]
    fn defaults_and_round_trip() {
        let d = ChainParams::default();
        assert_eq!(d.min_provider_deposit, 1_000_000);
        assert_eq!(d.min_gas_price, 0);
        let p = ChainParams::new(5).with_min_gas_price(2);
        assert_eq!((p.min_provider_deposit, p.min_gas_price), (5, 2));
        let bytes = encode_versioned(&p).unwrap();
        assert_eq!(decode_versioned::<ChainParams>(&bytes).unwrap(), p);
    }
}
