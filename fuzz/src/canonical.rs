//! The canonical-encoding check every decode target shares.
//!
//! `codec` promises one canonical encoding per value, but bincode 2 accepts
//! non-minimal variable-length integers: `[253, 0, 0, 0, 0, 0, 0, 0, 0]`
//! decodes to `0` like `[0]` does (found by `codec_decode`; reported, not
//! fixed: hashes and signatures are computed over re-encodings, so they are
//! unaffected). By default the targets therefore check that a decoded value's
//! re-encoding is a fixed point (decodes and re-encodes to itself); set
//! `COVENANT_FUZZ_STRICT_CANONICAL=1` to demand that every accepted input is
//! already canonical, which reproduces the finding.

use std::sync::OnceLock;

use covenant_core::codec::{self, Versioned};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Whether accepted inputs must be byte-for-byte canonical.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| {
        std::env::var_os("COVENANT_FUZZ_STRICT_CANONICAL").is_some_and(|v| v == "1")
    })
}

fn check(input: &[u8], again: &[u8], reencode: impl Fn(&[u8]) -> Option<Vec<u8>>, kind: &str) {
    if again == input {
        return;
    }
    assert!(!strict(), "decode accepted a non-canonical {kind}");
    assert_eq!(
        reencode(again).as_deref(),
        Some(again),
        "the canonical encoding of a {kind} is not stable"
    );
}

/// `codec::decode_versioned`, plus the canonical check on what it accepts.
pub fn decode_versioned<T: Versioned>(bytes: &[u8]) -> Option<T> {
    let value = codec::decode_versioned::<T>(bytes).ok()?;
    let again = codec::encode_versioned(&value).expect("a decoded value re-encodes");
    let reencode = |b: &[u8]| {
        let v = codec::decode_versioned::<T>(b).ok()?;
        codec::encode_versioned(&v).ok()
    };
    check(bytes, &again, reencode, T::KIND);
    Some(value)
}

/// `codec::decode`, plus the canonical check on what it accepts.
pub fn decode<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let value = codec::decode::<T>(bytes).ok()?;
    let again = codec::encode(&value).expect("a decoded value re-encodes");
    let reencode = |b: &[u8]| {
        let v = codec::decode::<T>(b).ok()?;
        codec::encode(&v).ok()
    };
    check(bytes, &again, reencode, std::any::type_name::<T>());
    Some(value)
}
