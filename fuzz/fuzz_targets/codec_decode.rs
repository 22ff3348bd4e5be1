//! Feeds arbitrary bytes to the canonical decoder for the types that arrive
//! from peers: it must return an error, never panic or allocate unboundedly,
//! and whatever it accepts must have a stable canonical form (byte-for-byte
//! canonical input too with `COVENANT_FUZZ_STRICT_CANONICAL=1`: see
//! `covenant_fuzz::canonical` for why that is not the default).
#![no_main]

use covenant_core::codec;
use covenant_core::crypto::{Address, NodeId, Nonce, PublicKey, Signature};
use covenant_core::hash::Hash;
use libfuzzer_sys::fuzz_target;

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(data: &[u8]) {
    let _ = covenant_fuzz::canonical::decode::<T>(data);
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => round_trip::<Hash>(rest),
        1 => round_trip::<PublicKey>(rest),
        2 => round_trip::<Signature>(rest),
        3 => round_trip::<(Address, NodeId, Nonce)>(rest),
        4 => round_trip::<Vec<(String, u64, Option<i64>)>>(rest),
        5 => {
            // Maps decode from any key order, so only value-level stability holds.
            type M = std::collections::BTreeMap<String, Vec<u8>>;
            if let Ok(m) = codec::decode::<M>(rest) {
                let again = codec::encode(&m).expect("a decoded map re-encodes");
                assert_eq!(codec::decode::<M>(&again).expect("re-decodes"), m);
            }
        }
        6 => round_trip::<(u8, bool, f64)>(rest),
        _ => round_trip::<Vec<Vec<Hash>>>(rest),
    }
});
