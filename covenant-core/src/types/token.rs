//! Token names, per-token balances and the amount parser.
//!
//! The token names are the original CovenantSQL ones; `Particle` is the one
//! the seed guide transfers and the wallet shows first. Balances are kept in a
//! `BTreeMap` without zero entries, so equal balances encode (and hash) alike.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::TypesError;

/// A token kind. The encoded form is the variant index, so new tokens go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Token {
    /// The main token: gas, deposits and the seed's transfers.
    Particle,
    /// The second native token.
    Wave,
    /// Bridged Ether.
    Ether,
    /// Bridged EOS.
    #[serde(rename = "EOS")]
    Eos,
    /// Bridged Bitcoin.
    Bitcoin,
}

impl Token {
    /// Every token, in display order.
    pub const ALL: [Token; 5] = [
        Token::Particle,
        Token::Wave,
        Token::Ether,
        Token::Eos,
        Token::Bitcoin,
    ];

    /// The canonical name (`Particle`, `Wave`, `Ether`, `EOS`, `Bitcoin`).
    pub const fn name(self) -> &'static str {
        match self {
            Token::Particle => "Particle",
            Token::Wave => "Wave",
            Token::Ether => "Ether",
            Token::Eos => "EOS",
            Token::Bitcoin => "Bitcoin",
        }
    }

    fn valid_names() -> String {
        Token::ALL.map(Token::name).join(", ")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Token {
    type Err = TypesError;

    /// Case-insensitive; surrounding spaces are ignored.
    fn from_str(s: &str) -> Result<Token, TypesError> {
        let t = s.trim();
        Token::ALL
            .into_iter()
            .find(|tok| tok.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| TypesError::UnknownToken {
                given: s.to_string(),
                valid: Token::valid_names(),
            })
    }
}

/// Parses a user-typed amount: a positive whole number of token units that fits in a u64.
pub fn parse_amount(s: &str) -> Result<u64, TypesError> {
    let t = s.trim();
    let bad = |reason| TypesError::InvalidAmount {
        given: s.to_string(),
        reason,
    };
    if t.is_empty() {
        return Err(bad("it is empty"));
    }
    if t.starts_with('-') {
        return Err(bad("amounts cannot be negative"));
    }
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("it is not a whole number"));
    }
    let v: u64 = digits
        .parse()
        .map_err(|_| bad("it is larger than 18446744073709551615"))?;
    if v == 0 {
        return Err(bad("the amount must be greater than zero"));
    }
    Ok(v)
}

/// Per-token balances; absent means zero, and zero is never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Balances(BTreeMap<Token, u64>);

impl Balances {
    /// All zero.
    pub fn new() -> Balances {
        Balances::default()
    }

    /// Builder: these balances with `token` set to `amount`.
    pub fn with(mut self, token: Token, amount: u64) -> Balances {
        self.set(token, amount);
        self
    }

    /// The balance of `token` (zero if none).
    pub fn get(&self, token: Token) -> u64 {
        self.0.get(&token).copied().unwrap_or(0)
    }

    /// Sets the balance of `token`; zero removes the entry.
    pub fn set(&mut self, token: Token, amount: u64) {
        if amount == 0 {
            self.0.remove(&token);
        } else {
            self.0.insert(token, amount);
        }
    }

    /// `get(token) + amount`, or `None` on overflow.
    pub fn checked_credit(&self, token: Token, amount: u64) -> Option<u64> {
        self.get(token).checked_add(amount)
    }

    /// `get(token) - amount`, or `None` if the balance is too small.
    pub fn checked_debit(&self, token: Token, amount: u64) -> Option<u64> {
        self.get(token).checked_sub(amount)
    }

    /// Non-zero balances in token order.
    pub fn iter(&self) -> impl Iterator<Item = (Token, u64)> + '_ {
        self.0.iter().map(|(t, v)| (*t, *v))
    }

    /// Whether every balance is zero.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(|v| *v == 0)
    }

    /// Drops zero entries a decoder may have let in, restoring the canonical form.
    pub fn normalize(&mut self) {
        self.0.retain(|_, v| *v != 0);
    }
}

impl FromIterator<(Token, u64)> for Balances {
    /// Later entries for the same token replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (Token, u64)>>(iter: I) -> Balances {
        let mut b = Balances::new();
        for (t, v) in iter {
            b.set(t, v);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn token_names_round_trip_case_insensitively() {
        for t in Token::ALL {
            assert_eq!(t.to_string().parse::<Token>().unwrap(), t);
            assert_eq!(t.name().to_lowercase().parse::<Token>().unwrap(), t);
            assert_eq!(t.name().to_uppercase().parse::<Token>().unwrap(), t);
        }
        assert_eq!(" particle ".parse::<Token>().unwrap(), Token::Particle);
        assert_eq!("eos".parse::<Token>().unwrap(), Token::Eos);
        assert_eq!(Token::Eos.to_string(), "EOS");
    }

    #[test]
    fn unknown_token_lists_valid_names() {
        let err = "Dogecoin".parse::<Token>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"Dogecoin\""), "{msg}");
        assert!(msg.contains("Particle, Wave, Ether, EOS, Bitcoin"), "{msg}");
        assert_eq!(err.code(), ErrorCode::UnknownToken);
        assert!("".parse::<Token>().is_err());
    }

    #[test]
    fn token_serde_human_names() {
        let json = serde_json::to_string(&Token::ALL).unwrap();
        assert_eq!(json, r#"["Particle","Wave","Ether","EOS","Bitcoin"]"#);
        let back: Vec<Token> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Token::ALL);
    }

    #[test]
    fn amounts_parse_and_refuse_clearly() {
        assert_eq!(parse_amount("10000000000").unwrap(), 10_000_000_000);
        assert_eq!(parse_amount(" 7 ").unwrap(), 7);
        assert_eq!(parse_amount("+7").unwrap(), 7);
        assert_eq!(parse_amount("18446744073709551615").unwrap(), u64::MAX);
        let cases = [
            ("-5", "negative"),
            ("0", "greater than zero"),
            ("000", "greater than zero"),
            ("abc", "not a whole number"),
            ("1.5", "not a whole number"),
            ("1e3", "not a whole number"),
            ("", "empty"),
            ("+", "not a whole number"),
            ("18446744073709551616", "larger than"),
        ];
        for (input, why) in cases {
            let err = parse_amount(input).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(why), "{input:?}: {msg}");
            assert_eq!(err.code(), ErrorCode::InvalidAmount);
        }
    }

    #[test]
    fn balances_never_store_zero() {
        let mut b = Balances::new().with(Token::Particle, 5);
        assert_eq!(b.get(Token::Particle), 5);
        assert_eq!(b.get(Token::Wave), 0);
        b.set(Token::Particle, 0);
        assert_eq!(b, Balances::new());
        assert!(b.is_empty());
        assert_eq!(b.checked_debit(Token::Wave, 1), None);
        let full = Balances::new().with(Token::Wave, u64::MAX);
        assert_eq!(full.checked_credit(Token::Wave, 1), None);
        let c: Balances = [(Token::Wave, 1), (Token::Ether, 0)].into_iter().collect();
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![(Token::Wave, 1)]);
    }
}
