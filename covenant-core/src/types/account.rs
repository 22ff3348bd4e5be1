//! A main-chain account: its address, per-token balances and next nonce.

use serde::{Deserialize, Serialize};

use super::token::Balances;
use crate::codec::Versioned;
use crate::crypto::Address;

/// An account on the main chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's address (hash of its owner's public key, or a database id).
    pub address: Address,
    /// What it holds.
    pub balances: Balances,
    /// The nonce its next transaction must carry; starts at 0.
    pub next_nonce: u64,
}

impl Account {
    /// An empty account with nonce 0.
    pub fn new(address: Address) -> Account {
        Account {
            address,
            balances: Balances::new(),
            next_nonce: 0,
        }
    }
}

impl Versioned for Account {
    const KIND: &'static str = "account";
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_versioned, encode_versioned};
    use crate::hash::{Hash, Tag, hash};
    use crate::types::Token;

    #[test]
    fn versioned_round_trip() {
        let mut a = Account::new(Address(hash(Tag::Message, b"a")));
        a.balances.set(Token::Particle, 42);
        a.next_nonce = 3;
        let bytes = encode_versioned(&a).unwrap();
        assert_eq!(decode_versioned::<Account>(&bytes).unwrap(), a);
        assert_eq!(Account::new(Address(Hash::ZERO)).next_nonce, 0);
    }
}
