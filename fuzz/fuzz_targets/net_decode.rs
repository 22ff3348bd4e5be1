//! What a peer sends before and after the TLS handshake: RPC envelopes (the
//! body of every frame), the identity extension of its certificate, and the
//! whole certificate through the peer verifier. Each must be accepted or
//! refused, never panic. The decoders are crate-private; they are reached
//! through `covenant_core::net::fuzzing`.
//!
//! Input: `[selector][bytes]`; `selector % 3` picks
//! - 0: `decode_envelope` (request and response envelopes);
//! - 1: `parse_identity_extension` (the bytes as the extension's content,
//!   inside an otherwise well-formed certificate);
//! - 2: `verify_certificate` (the bytes as a peer's certificate DER).
#![no_main]

use covenant_core::net::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            fuzzing::decode_envelope(rest);
        }
        1 => {
            fuzzing::parse_identity_extension(rest);
        }
        _ => {
            fuzzing::verify_certificate(rest);
        }
    }
});
