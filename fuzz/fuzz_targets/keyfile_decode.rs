//! `private.key` text against `decode_key_file`: it must return the key or a
//! typed error, never panic, and never hand back a key other than the one
//! the file was written with.
//!
//! Input: `[flags][n][master key: n % 33 bytes][rest]`; `flags % 4` picks
//! - 0: `rest` is the file, decoded as is;
//! - 1: the same with its checksum line recomputed (so edits reach the
//!   parser's later checks), unless it asks for costly KDF work;
//! - 2, 3: a valid file with tiny argon2id parameters chosen by `rest[0..2]`,
//!   then `rest[2..]` as 3-byte edits `(position hi, lo, byte)`; flag 0x08
//!   recomputes the checksum after the edits, 0x10 truncates at the first
//!   edit's position, 0x40 opens with a different master key.
#![no_main]

use covenant_core::crypto::keyfile::{KeyFileError, decode_key_file};
use covenant_fuzz::{keyfile, seeds};
use libfuzzer_sys::fuzz_target;

/// Exercises the error's code and message.
fn describe(e: &KeyFileError) {
    let _ = e.code();
    assert!(!e.to_string().is_empty());
}

fn decode(file: &[u8], master: &[u8]) -> Result<[u8; 32], KeyFileError> {
    decode_key_file(file, master).map(|k| *k.to_bytes())
}

fuzz_target!(|data: &[u8]| {
    let [flags, n, rest @ ..] = data else {
        return;
    };
    let len = usize::from(*n % 33).min(rest.len());
    let (master, rest) = rest.split_at(len);
    match flags % 4 {
        0 => {
            if let Err(e) = decode(rest, master) {
                describe(&e);
            }
        }
        1 => {
            let Some(text) = keyfile::fix_checksum(rest) else {
                return;
            };
            if let Err(e) = decode(text.as_bytes(), master) {
                describe(&e);
            }
        }
        _ => generated(*flags, master, rest),
    }
});

fn generated(flags: u8, master: &[u8], rest: &[u8]) {
    let (a, b) = (
        rest.first().copied().unwrap_or(0),
        rest.get(1).copied().unwrap_or(0),
    );
    let p = 1 + u32::from(b & 1);
    let t = 1 + u32::from((b >> 1) & 1);
    let m = 8 * p + u32::from(a % 57);
    let secret = seeds::keyfile_secret();
    let Some(file) = keyfile::build(&secret, master, (m, t, p), [a; 16], [b; 12]) else {
        panic!("the generator failed for m={m} t={t} p={p}");
    };
    let mut text = file.clone().into_bytes();
    let edits = rest.get(2..).unwrap_or(&[]);
    let mut first_pos = None;
    for e in edits.chunks_exact(3) {
        let pos = usize::from(u16::from_be_bytes([e[0], e[1]])) % text.len().max(1);
        first_pos.get_or_insert(pos);
        if let Some(byte) = text.get_mut(pos) {
            *byte = e[2];
        }
    }
    if flags & 0x10 != 0
        && let Some(pos) = first_pos
    {
        text.truncate(pos);
    }
    if flags & 0x08 != 0
        && let Some(fixed) = keyfile::fix_checksum(&text)
    {
        text = fixed.into_bytes();
    }
    let other;
    let opener = if flags & 0x40 != 0 {
        other = [master, b"!"].concat();
        &other[..]
    } else {
        master
    };
    match decode(&text, opener) {
        // The AEAD and the check value make any other key impossible.
        Ok(key) => assert_eq!(key, secret, "decoded a different key"),
        Err(e) => {
            describe(&e);
            let untouched = text == file.as_bytes() && opener == master;
            assert!(!untouched, "a valid file failed to open: {e}");
        }
    }
}
