//! Key-file text for the `keyfile_decode` target: valid files with tiny
//! argon2id parameters (cheap to open, unlike the default ones), a checksum
//! fix-up so edited files reach the parser's later checks, and a cost guard so
//! the target never asks the KDF for real work.
//!
//! The format is `covenant_core::crypto::keyfile`'s; `build` is checked
//! against the real decoder by the target (an unedited file must open).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use covenant_core::crypto::keyfile::{MAX_M_KIB, MAX_T, MAX_WORK_KIB};
use covenant_core::hash::{Tag, hash_parts};

/// Domain prefix of the file checksum (as in the key-file module).
const CHECKSUM_DOMAIN: &[u8] = b"covenant/private-key-checksum/v1";
/// KDF work (KiB passes) above which the target leaves a file's checksum
/// broken, so a fuzzed file never makes argon2 run for long.
pub const CHEAP_WORK_KIB: u64 = 1024;
/// Lines the checksum covers: the version line and five fields.
const BODY_LINES: usize = 6;

/// A valid key file holding `secret` under `master` with argon2id `m`, `t`, `p`.
pub fn build(
    secret: &[u8; 32],
    master: &[u8],
    (m, t, p): (u32, u32, u32),
    salt: [u8; 16],
    nonce: [u8; 12],
) -> Option<String> {
    let params = Params::new(m, t, p, Some(64)).ok()?;
    let mut out = [0u8; 64];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(master, &salt, &mut out)
        .ok()?;
    let (key, rest) = out.split_at(32);
    let check = rest.get(..16)?;
    let header = format!(
        "covenant-private-key v1\nkdf: argon2id m={m} t={t} p={p}\nsalt: {}\nnonce: {}\ncheck: {}\n",
        hex::encode(salt),
        hex::encode(nonce),
        hex::encode(check)
    );
    let mut buf = *secret;
    let tag = ChaCha20Poly1305::new_from_slice(key)
        .ok()?
        .encrypt_inout_detached(&nonce.into(), header.as_bytes(), buf.as_mut_slice().into())
        .ok()?;
    let mut ciphertext = buf.to_vec();
    ciphertext.extend_from_slice(tag.as_slice());
    let body = format!("{header}ciphertext: {}\n", hex::encode(ciphertext));
    Some(format!("{body}checksum: {}\n", checksum_hex(&body)))
}

fn checksum_hex(body: &str) -> String {
    let h = hash_parts(Tag::Message, &[CHECKSUM_DOMAIN, body.as_bytes()]);
    hex::encode(&h.as_bytes()[..16])
}

/// `text` with its checksum line (the seventh) replaced by the right checksum
/// of the six lines before it, unless the file asks for costly KDF work.
/// `None` when the text is not UTF-8 or has fewer than six lines.
pub fn fix_checksum(text: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let body_lines = lines.get(..BODY_LINES)?;
    if body_lines.get(1).is_some_and(|l| costly_kdf(l)) {
        return None;
    }
    let mut body = String::with_capacity(text.len() + 64);
    for line in body_lines {
        body.push_str(line);
        body.push('\n');
    }
    let mut out = format!("{body}checksum: {}\n", checksum_hex(&body));
    for line in lines.iter().skip(BODY_LINES + 1) {
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

/// Whether a `kdf:` line asks for parameters the module would accept and
/// that cost more than [`CHEAP_WORK_KIB`]. Refused parameters are cheap (the
/// module rejects them before any work), so they stay fuzzable.
pub fn costly_kdf(line: &str) -> bool {
    let value = line.split_once(':').map_or("", |(_, v)| v);
    let (mut m, mut t) = (0u64, 0u64);
    for word in value.split_ascii_whitespace().skip(1) {
        let Some((name, v)) = word.split_once('=') else {
            continue;
        };
        let Ok(v) = v.parse::<u32>() else { continue };
        match name {
            "m" => m = m.max(u64::from(v)),
            "t" => t = t.max(u64::from(v)),
            _ => {}
        }
    }
    let work = m.saturating_mul(t);
    let accepted = m <= u64::from(MAX_M_KIB) && t <= u64::from(MAX_T) && work <= MAX_WORK_KIB;
    accepted && work > CHEAP_WORK_KIB
}
