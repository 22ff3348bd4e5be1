//! The encrypted `private.key` file (DESIGN §2).
//!
//! Owns the on-disk form of a node's or user's secp256k1 secret: 32 bytes
//! encrypted with ChaCha20-Poly1305 under a key derived from the master key
//! (passphrase, empty by default) with argon2id. The file is versioned text:
//!
//! ```text
//! covenant-private-key v1
//! kdf: argon2id m=19456 t=2 p=1
//! salt: <16 bytes hex>
//! nonce: <12 bytes hex>
//! check: <16 bytes hex>
//! ciphertext: <48 bytes hex: 32 encrypted + 16 tag>
//! checksum: <16 bytes hex>
//! ```
//!
//! The KDF parameters are stored so they can change without a new version;
//! the header (version, KDF, salt, nonce, check) is the AEAD's associated
//! data, so tampering with it is caught. `check` is a slice of the KDF output
//! that is not the cipher key: it tells a wrong passphrase apart from a
//! damaged ciphertext. `checksum` (an unkeyed hash of the lines above it)
//! tells bit rot apart from a wrong passphrase. Hostile KDF parameters are
//! refused before any work, so a crafted file cannot hang or exhaust memory.
//!
//! Must not import network, chain, config or CLI code.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read as _, Write as _};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use zeroize::Zeroizing;

use super::{CryptoError, PrivateKey, SECRET_KEY_LEN, random_bytes};
use crate::error::ErrorCode;
use crate::hash::{self, Tag};

/// The format version this build writes and reads.
pub const KEY_FILE_VERSION: u32 = 1;
/// The first line's text before the version number.
const MAGIC: &str = "covenant-private-key v";
/// Refuse files larger than this before parsing (a real one is ~350 bytes).
const MAX_FILE_LEN: usize = 16 * 1024;

/// Default argon2id memory cost in KiB (the OWASP minimum recommendation).
pub const DEFAULT_M_KIB: u32 = 19_456;
/// Default argon2id iterations.
pub const DEFAULT_T: u32 = 2;
/// Default argon2id parallelism.
pub const DEFAULT_P: u32 = 1;
/// Largest memory cost a file may ask for (1 GiB), so a file cannot exhaust memory.
pub const MAX_M_KIB: u32 = 1024 * 1024;
/// Largest iteration count a file may ask for.
pub const MAX_T: u32 = 100;
/// Largest parallelism a file may ask for.
pub const MAX_P: u32 = 16;
/// Largest total work `m * t` (KiB passes) a file may ask for, so it cannot hang the process.
pub const MAX_WORK_KIB: u64 = 4 * 1024 * 1024;

const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const CHECK_LEN: usize = 16;
const TAG_LEN: usize = 16;
const CIPHERTEXT_LEN: usize = SECRET_KEY_LEN + TAG_LEN;
const CHECKSUM_LEN: usize = 16;
/// KDF output: the cipher key, then the passphrase check value.
const KDF_OUT_LEN: usize = 64;
/// Domain prefix of the file checksum (inside the free-form message tag).
const CHECKSUM_DOMAIN: &[u8] = b"covenant/private-key-checksum/v1";

/// Why a private key file could not be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file or its directory could not be read or written.
    #[error("cannot access private key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// There is no file at the path.
    #[error(
        "private key file {} not found; run `cql generate` to create one",
        path.display()
    )]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// Writing would replace an existing key (and lose an identity).
    #[error(
        "private key file {} already exists; refusing to overwrite it \
         (move it away first if you really mean to replace this identity)",
        path.display()
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The master key is not the one the file was written with.
    #[error(
        "the master key does not open this private key file; give the right one with \
         `-password <key>` or `-with-password` to be prompted (the default is empty)"
    )]
    WrongPassphrase,
    /// The file ends early: a line or field is missing.
    #[error("private key file is truncated: it ends before all its fields")]
    Truncated,
    /// The file is damaged or is not a private key file at all.
    #[error("private key file is corrupted: {reason}")]
    Corrupted {
        /// What is wrong.
        reason: String,
    },
    /// The file was written in a format version this build does not read.
    #[error(
        "private key file is in format version {found}, but this build reads version \
         {supported}; upgrade Covenant to open it"
    )]
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file asks for KDF parameters that are unknown, invalid or too costly.
    #[error("private key file has unacceptable key-derivation parameters: {reason}")]
    BadKdfParams {
        /// What is wrong with them.
        reason: String,
    },
    /// Randomness for a new file could not be drawn.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl KeyFileError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            KeyFileError::Io { .. } | KeyFileError::NotFound { .. } => ErrorCode::Io,
            KeyFileError::WrongPassphrase => ErrorCode::WrongPassphrase,
            KeyFileError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            KeyFileError::AlreadyExists { .. }
            | KeyFileError::Truncated
            | KeyFileError::Corrupted { .. }
            | KeyFileError::BadKdfParams { .. } => ErrorCode::KeyFile,
            KeyFileError::Crypto(e) => e.code(),
        }
    }

    fn corrupted(reason: impl Into<String>) -> KeyFileError {
        KeyFileError::Corrupted {
            reason: reason.into(),
        }
    }

    fn bad_kdf(reason: impl Into<String>) -> KeyFileError {
        KeyFileError::BadKdfParams {
            reason: reason.into(),
        }
    }
}

/// argon2id cost parameters as stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KdfParams {
    m_kib: u32,
    t: u32,
    p: u32,
}

impl KdfParams {
    const DEFAULT: KdfParams = KdfParams {
        m_kib: DEFAULT_M_KIB,
        t: DEFAULT_T,
        p: DEFAULT_P,
    };

    /// Parses `argon2id m=<KiB> t=<n> p=<n>` and refuses hostile values.
    fn parse(text: &str) -> Result<KdfParams, KeyFileError> {
        let mut words = text.split_ascii_whitespace();
        match words.next() {
            Some("argon2id") => {}
            Some(other) => {
                return Err(KeyFileError::bad_kdf(format!(
                    "unknown algorithm `{other}` (expected argon2id)"
                )));
            }
            None => return Err(KeyFileError::bad_kdf("no algorithm given")),
        }
        let (mut m, mut t, mut p) = (None, None, None);
        for word in words {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| KeyFileError::bad_kdf(format!("`{word}` is not name=value")))?;
            let value: u32 = value
                .parse()
                .map_err(|_| KeyFileError::bad_kdf(format!("`{word}` is not a number")))?;
            let slot = match name {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                _ => return Err(KeyFileError::bad_kdf(format!("unknown parameter `{name}`"))),
            };
            if slot.replace(value).is_some() {
                return Err(KeyFileError::bad_kdf(format!("`{name}` given twice")));
            }
        }
        let params = KdfParams {
            m_kib: m.ok_or_else(|| KeyFileError::bad_kdf("memory cost m missing"))?,
            t: t.ok_or_else(|| KeyFileError::bad_kdf("iterations t missing"))?,
            p: p.ok_or_else(|| KeyFileError::bad_kdf("parallelism p missing"))?,
        };
        params.check()?;
        Ok(params)
    }

    /// Refuses parameters that are invalid for argon2 or costly enough to hang or OOM.
    fn check(&self) -> Result<(), KeyFileError> {
        let KdfParams { m_kib, t, p } = *self;
        if !(1..=MAX_P).contains(&p) {
            return Err(KeyFileError::bad_kdf(format!(
                "parallelism p={p} is outside 1..={MAX_P}"
            )));
        }
        if !(1..=MAX_T).contains(&t) {
            return Err(KeyFileError::bad_kdf(format!(
                "iterations t={t} is outside 1..={MAX_T}"
            )));
        }
        let min_m = 8 * p;
        if !(min_m..=MAX_M_KIB).contains(&m_kib) {
            return Err(KeyFileError::bad_kdf(format!(
                "memory m={m_kib} KiB is outside {min_m}..={MAX_M_KIB} KiB"
            )));
        }
        let work = u64::from(m_kib) * u64::from(t);
        if work > MAX_WORK_KIB {
            return Err(KeyFileError::bad_kdf(format!(
                "m*t = {work} KiB passes exceeds the limit of {MAX_WORK_KIB}"
            )));
        }
        Ok(())
    }

    fn to_line(self) -> String {
        format!("argon2id m={} t={} p={}", self.m_kib, self.t, self.p)
    }

    /// The 64-byte argon2id output: cipher key, then check value.
    fn derive(
        &self,
        master_key: &[u8],
        salt: &[u8; SALT_LEN],
    ) -> Result<Zeroizing<[u8; KDF_OUT_LEN]>, KeyFileError> {
        let params = Params::new(self.m_kib, self.t, self.p, Some(KDF_OUT_LEN))
            .map_err(|e| KeyFileError::bad_kdf(e.to_string()))?;
        let mut out = Zeroizing::new([0u8; KDF_OUT_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(master_key, salt, out.as_mut())
            .map_err(|e| KeyFileError::bad_kdf(e.to_string()))?;
        Ok(out)
    }
}

/// The parsed fields of a key file.
struct Parsed {
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    check: [u8; CHECK_LEN],
    ciphertext: [u8; CIPHERTEXT_LEN],
}

/// The header lines (everything the AEAD authenticates), newline-terminated.
fn header(kdf: KdfParams, salt: &[u8], nonce: &[u8], check: &[u8]) -> String {
    format!(
        "{MAGIC}{KEY_FILE_VERSION}\nkdf: {}\nsalt: {}\nnonce: {}\ncheck: {}\n",
        kdf.to_line(),
        hex::encode(salt),
        hex::encode(nonce),
        hex::encode(check)
    )
}

fn checksum(body: &str) -> [u8; CHECKSUM_LEN] {
    let h = hash::hash_parts(Tag::Message, &[CHECKSUM_DOMAIN, body.as_bytes()]);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&h.as_bytes()[..CHECKSUM_LEN]);
    out
}

fn split_key(kdf_out: &[u8; KDF_OUT_LEN]) -> (&[u8], &[u8]) {
    let (key, rest) = kdf_out.split_at(32);
    (key, &rest[..CHECK_LEN])
}

fn cipher(key: &[u8]) -> Result<ChaCha20Poly1305, KeyFileError> {
    ChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| KeyFileError::corrupted("derived key has the wrong length"))
}

/// Constant-time equality for the check value (avoids a timing oracle on guesses).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The text of a new key file holding `key`, encrypted under `master_key`.
pub fn encode_key_file(key: &PrivateKey, master_key: &[u8]) -> Result<String, KeyFileError> {
    encode_with(key, master_key, KdfParams::DEFAULT)
}

fn encode_with(
    key: &PrivateKey,
    master_key: &[u8],
    kdf: KdfParams,
) -> Result<String, KeyFileError> {
    kdf.check()?;
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut salt)?;
    random_bytes(&mut nonce)?;
    let kdf_out = kdf.derive(master_key, &salt)?;
    let (cipher_key, check) = split_key(&kdf_out);
    let head = header(kdf, &salt, &nonce, check);

    let mut buf = key.to_bytes();
    let tag = cipher(cipher_key)?
        .encrypt_inout_detached(&nonce.into(), head.as_bytes(), buf.as_mut_slice().into())
        .map_err(|_| KeyFileError::corrupted("encryption failed"))?;
    let mut ciphertext = Zeroizing::new([0u8; CIPHERTEXT_LEN]);
    let (ct, tg) = ciphertext.split_at_mut(SECRET_KEY_LEN);
    ct.copy_from_slice(buf.as_slice());
    tg.copy_from_slice(tag.as_slice());

    let mut text = head;
    // Writing to a String cannot fail.
    let _ = writeln!(text, "ciphertext: {}", hex::encode(ciphertext.as_slice()));
    let sum = checksum(&text);
    let _ = writeln!(text, "checksum: {}", hex::encode(sum));
    Ok(text)
}

/// Opens key file text with `master_key`; never panics, whatever the input.
pub fn decode_key_file(text: &[u8], master_key: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let parsed = parse(text)?;
    let kdf_out = parsed.kdf.derive(master_key, &parsed.salt)?;
    let (cipher_key, check) = split_key(&kdf_out);
    if !ct_eq(check, &parsed.check) {
        return Err(KeyFileError::WrongPassphrase);
    }
    let head = header(parsed.kdf, &parsed.salt, &parsed.nonce, &parsed.check);
    let (ct, tag) = parsed.ciphertext.split_at(SECRET_KEY_LEN);
    let mut buf = Zeroizing::new([0u8; SECRET_KEY_LEN]);
    buf.copy_from_slice(ct);
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(tag);
    cipher(cipher_key)?
        .decrypt_inout_detached(
            &parsed.nonce.into(),
            head.as_bytes(),
            buf.as_mut_slice().into(),
            &tag_bytes.into(),
        )
        .map_err(|_| {
            KeyFileError::corrupted(
                "authentication failed although the master key is right: \
                 the ciphertext or header was altered",
            )
        })?;
    PrivateKey::from_bytes(&buf)
        .map_err(|_| KeyFileError::corrupted("decrypted bytes are not a valid secret key"))
}

/// Splits the text into its fields, checking structure, version and checksum.
fn parse(text: &[u8]) -> Result<Parsed, KeyFileError> {
    if text.len() > MAX_FILE_LEN {
        return Err(KeyFileError::corrupted(format!(
            "{} bytes is far larger than a key file",
            text.len()
        )));
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| KeyFileError::corrupted("not text (invalid UTF-8)"))?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect::<Vec<_>>();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let mut it = lines.iter().copied();

    let first = it.next().ok_or(KeyFileError::Truncated)?;
    let version = first.strip_prefix(MAGIC).ok_or_else(|| {
        KeyFileError::corrupted("not a Covenant private key file (bad first line)")
    })?;
    let version: u32 = version
        .trim()
        .parse()
        .map_err(|_| KeyFileError::corrupted(format!("bad version `{version}`")))?;
    if version != KEY_FILE_VERSION {
        return Err(KeyFileError::UnsupportedVersion {
            found: version,
            supported: KEY_FILE_VERSION,
        });
    }

    let mut body = String::with_capacity(text.len());
    body.push_str(first);
    body.push('\n');
    let mut field = |name: &str| -> Result<&str, KeyFileError> {
        let line = it.next().ok_or(KeyFileError::Truncated)?;
        match line.split_once(':') {
            Some((k, v)) if k.trim() == name => {
                if name != "checksum" {
                    body.push_str(line);
                    body.push('\n');
                }
                Ok(v.trim())
            }
            _ => Err(KeyFileError::corrupted(format!(
                "expected the `{name}:` line, found `{}`",
                line.chars().take(40).collect::<String>()
            ))),
        }
    };
    let kdf = field("kdf")?;
    let salt = field("salt")?;
    let nonce = field("nonce")?;
    let check = field("check")?;
    let ciphertext = field("ciphertext")?;
    let sum = field("checksum")?;
    if it.next().is_some() {
        return Err(KeyFileError::corrupted(
            "unexpected lines after `checksum:`",
        ));
    }

    // A checksum line cut short is where a truncated write ends.
    if sum.len() < 2 * CHECKSUM_LEN && sum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyFileError::Truncated);
    }
    let sum: [u8; CHECKSUM_LEN] = hex_field("checksum", sum)?;
    if !ct_eq(&checksum(&body), &sum) {
        return Err(KeyFileError::corrupted(
            "checksum mismatch: the file was damaged or edited",
        ));
    }
    Ok(Parsed {
        kdf: KdfParams::parse(kdf)?,
        salt: hex_field("salt", salt)?,
        nonce: hex_field("nonce", nonce)?,
        check: hex_field("check", check)?,
        ciphertext: hex_field("ciphertext", ciphertext)?,
    })
}

fn hex_field<const N: usize>(name: &str, value: &str) -> Result<[u8; N], KeyFileError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(value, &mut out)
        .map_err(|_| KeyFileError::corrupted(format!("`{name}` is not {N} bytes of hex")))?;
    Ok(out)
}

/// Creates `path` (mode 0600, never replacing a file) holding `key` under `master_key`, and fsyncs it.
pub fn write_key_file(
    path: &Path,
    key: &PrivateKey,
    master_key: &[u8],
) -> Result<(), KeyFileError> {
    let text = Zeroizing::new(encode_key_file(key, master_key)?);
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(KeyFileError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let written = (|| {
        #[cfg(unix)]
        {
            // The umask may have cleared bits; make the mode exactly 0600.
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        drop(file);
        // Do not leave a partial key behind that would block the next attempt.
        let _ = std::fs::remove_file(path);
        return Err(io(e));
    }
    sync_parent_dir(path).map_err(io)
}

/// Makes the new directory entry durable (unix); a no-op elsewhere.
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads and opens the key file at `path` with `master_key`.
pub fn read_key_file(path: &Path, master_key: &[u8]) -> Result<PrivateKey, KeyFileError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(KeyFileError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "private key file is readable by other users; chmod 600 it"
            );
        }
    }
    let mut text = Zeroizing::new(Vec::new());
    // Read one byte past the limit so an oversized file is seen as such.
    let limit = u64::try_from(MAX_FILE_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_end(&mut text)
        .map_err(|source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    decode_key_file(&text, master_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the many decodes below stay fast.
    const FAST: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn key() -> PrivateKey {
        PrivateKey::generate().unwrap()
    }

    fn same(a: &PrivateKey, b: &PrivateKey) -> bool {
        a.to_bytes() == b.to_bytes()
    }

    /// Replaces the value of the `name:` line and recomputes the checksum.
    fn edit(text: &str, name: &str, value: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            if line.starts_with(&format!("{name}:")) {
                out.push_str(&format!("{name}: {value}\n"));
            } else if !line.starts_with("checksum:") {
                out.push_str(line);
                out.push('\n');
            }
        }
        let sum = checksum(&out);
        out.push_str(&format!("checksum: {}\n", hex::encode(sum)));
        out
    }

    fn value<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap()
    }

    #[test]
    fn round_trip_default_params_empty_and_non_empty_master_key() {
        let k = key();
        for master in [b"".as_slice(), b"correct horse battery staple"] {
            let text = encode_key_file(&k, master).unwrap();
            assert!(text.starts_with("covenant-private-key v1\nkdf: argon2id m=19456 t=2 p=1\n"));
            assert!(!text.contains(&hex::encode(k.to_bytes().as_slice())));
            assert!(same(&decode_key_file(text.as_bytes(), master).unwrap(), &k));
        }
    }

    #[test]
    fn fresh_salt_and_nonce_each_time() {
        let k = key();
        let a = encode_with(&k, b"", FAST).unwrap();
        let b = encode_with(&k, b"", FAST).unwrap();
        assert_ne!(value(&a, "salt"), value(&b, "salt"));
        assert_ne!(value(&a, "ciphertext"), value(&b, "ciphertext"));
    }

    #[test]
    fn wrong_passphrase_is_its_own_error() {
        let k = key();
        let text = encode_with(&k, b"secret", FAST).unwrap();
        let err = decode_key_file(text.as_bytes(), b"").unwrap_err();
        assert!(matches!(err, KeyFileError::WrongPassphrase), "{err}");
        assert_eq!(err.code(), ErrorCode::WrongPassphrase);
        let msg = err.to_string();
        assert!(msg.contains("master key does not open"), "{msg}");
        assert!(
            msg.contains("-password") && msg.contains("-with-password"),
            "{msg}"
        );
        let err = decode_key_file(text.as_bytes(), b"Secret").unwrap_err();
        assert!(matches!(err, KeyFileError::WrongPassphrase));
    }

    #[test]
    fn damaged_bytes_are_corruption_not_wrong_passphrase() {
        let k = key();
        let text = encode_with(&k, b"pw", FAST).unwrap();
        // Flip one hex digit in each field without fixing the checksum.
        for name in ["salt", "nonce", "check", "ciphertext"] {
            let v = value(&text, name);
            let flipped: String = v
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i == 3 {
                        if c == '0' { '1' } else { '0' }
                    } else {
                        c
                    }
                })
                .collect();
            let bad = text.replace(&format!("{name}: {v}"), &format!("{name}: {flipped}"));
            let err = decode_key_file(bad.as_bytes(), b"pw").unwrap_err();
            match &err {
                KeyFileError::Corrupted { reason } => assert!(reason.contains("checksum")),
                other => panic!("{name}: expected Corrupted, got {other:?}"),
            }
            assert_eq!(err.code(), ErrorCode::KeyFile);
        }
    }

    #[test]
    fn tampered_ciphertext_with_fixed_checksum_fails_authentication() {
        let k = key();
        let text = encode_with(&k, b"pw", FAST).unwrap();
        let mut ct = hex::decode(value(&text, "ciphertext")).unwrap();
        ct[5] ^= 0x40;
        let bad = edit(&text, "ciphertext", &hex::encode(&ct));
        match decode_key_file(bad.as_bytes(), b"pw").unwrap_err() {
            KeyFileError::Corrupted { reason } => assert!(reason.contains("authentication")),
            other => panic!("expected Corrupted, got {other:?}"),
        }
        // The same file still says "wrong passphrase" to the wrong key.
        assert!(matches!(
            decode_key_file(bad.as_bytes(), b"nope").unwrap_err(),
            KeyFileError::WrongPassphrase
        ));
    }

    #[test]
    fn header_is_authenticated() {
        // Swap in a different nonce but keep the check value: decryption must fail,
        // not yield a different key.
        let k = key();
        let text = encode_with(&k, b"", FAST).unwrap();
        let bad = edit(&text, "nonce", &"00".repeat(NONCE_LEN));
        assert!(matches!(
            decode_key_file(bad.as_bytes(), b"").unwrap_err(),
            KeyFileError::Corrupted { .. }
        ));
    }

    #[test]
    fn truncated_files() {
        let text = encode_with(&key(), b"", FAST).unwrap();
        assert!(matches!(
            decode_key_file(b"", b"").unwrap_err(),
            KeyFileError::Truncated
        ));
        // Cut at every line boundary and in the middle of the last lines.
        let mut cuts: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        cuts.pop(); // the full file
        let ct_start = text.find("ciphertext: ").unwrap() + 20;
        cuts.push(ct_start);
        cuts.push(text.len() - 10);
        for cut in cuts {
            let err = decode_key_file(&text.as_bytes()[..cut], b"").unwrap_err();
            assert!(
                matches!(err, KeyFileError::Truncated),
                "cut at {cut}: {err:?}"
            );
            assert!(err.to_string().contains("truncated"));
        }
    }

    #[test]
    fn garbage_is_corrupted() {
        for bad in [
            b"hello world".as_slice(),
            b"\xff\xfe\x00",
            b"covenant-private-key vX\n",
            &[b'a'; MAX_FILE_LEN + 1],
        ] {
            assert!(matches!(
                decode_key_file(bad, b"").unwrap_err(),
                KeyFileError::Corrupted { .. }
            ));
        }
        let text = encode_with(&key(), b"", FAST).unwrap();
        let bad = edit(&text, "salt", "zz".repeat(SALT_LEN).as_str());
        match decode_key_file(bad.as_bytes(), b"").unwrap_err() {
            KeyFileError::Corrupted { reason } => assert!(reason.contains("salt"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let extra = format!("{text}extra: 1\n");
        assert!(matches!(
            decode_key_file(extra.as_bytes(), b"").unwrap_err(),
            KeyFileError::Corrupted { .. }
        ));
        let renamed = text.replace("nonce:", "noncE:");
        assert!(matches!(
            decode_key_file(renamed.as_bytes(), b"").unwrap_err(),
            KeyFileError::Corrupted { .. }
        ));
    }

    #[test]
    fn crlf_and_trailing_blank_lines_are_accepted() {
        let k = key();
        let text = encode_with(&k, b"", FAST).unwrap();
        let crlf = text.replace('\n', "\r\n") + "\r\n\n";
        assert!(same(&decode_key_file(crlf.as_bytes(), b"").unwrap(), &k));
    }

    #[test]
    fn unsupported_version() {
        let text = encode_with(&key(), b"", FAST).unwrap();
        let v2 = text.replacen("covenant-private-key v1", "covenant-private-key v2", 1);
        let err = decode_key_file(v2.as_bytes(), b"").unwrap_err();
        assert!(matches!(
            err,
            KeyFileError::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        ));
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        assert!(err.to_string().contains("version 2"));
    }

    #[test]
    fn hostile_kdf_params_are_refused_before_any_work() {
        let text = encode_with(&key(), b"", FAST).unwrap();
        for kdf in [
            "argon2id m=4294967295 t=2 p=1",
            "argon2id m=19456 t=101 p=1",
            "argon2id m=1048576 t=100 p=1",
            "argon2id m=19456 t=0 p=1",
            "argon2id m=19456 t=2 p=0",
            "argon2id m=19456 t=2 p=17",
            "argon2id m=4 t=2 p=1",
            "argon2id m=19456 t=2",
            "argon2id m=19456 t=2 p=1 p=1",
            "argon2id m=19456 t=2 p=1 x=3",
            "argon2id m=-1 t=2 p=1",
            "scrypt m=19456 t=2 p=1",
            "",
        ] {
            let bad = edit(&text, "kdf", kdf);
            let err = decode_key_file(bad.as_bytes(), b"").unwrap_err();
            assert!(
                matches!(err, KeyFileError::BadKdfParams { .. }),
                "{kdf}: {err:?}"
            );
            assert_eq!(err.code(), ErrorCode::KeyFile);
        }
    }

    #[test]
    fn changed_kdf_params_are_detected() {
        // Valid but different params: the derived key changes, so the check fails.
        let text = encode_with(&key(), b"", FAST).unwrap();
        let bad = edit(&text, "kdf", "argon2id m=64 t=2 p=1");
        assert!(matches!(
            decode_key_file(bad.as_bytes(), b"").unwrap_err(),
            KeyFileError::WrongPassphrase
        ));
    }

    #[test]
    fn file_round_trip_mode_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.key");
        let k = key();
        write_key_file(&path, &k, b"").unwrap();
        assert!(same(&read_key_file(&path, b"").unwrap(), &k));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let before = std::fs::read(&path).unwrap();
        let err = write_key_file(&path, &key(), b"").unwrap_err();
        assert!(matches!(&err, KeyFileError::AlreadyExists { path: p } if *p == path));
        assert!(err.to_string().contains("private.key"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn missing_file_and_io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.key");
        let err = read_key_file(&path, b"").unwrap_err();
        assert!(matches!(&err, KeyFileError::NotFound { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("nope.key") && msg.contains("cql generate"),
            "{msg}"
        );
        assert_eq!(err.code(), ErrorCode::Io);

        // Reading a directory, writing into a missing directory: Io with the path.
        let err = read_key_file(dir.path(), b"").unwrap_err();
        assert!(matches!(&err, KeyFileError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
        let deep = dir.path().join("missing-dir").join("private.key");
        let err = write_key_file(&deep, &key(), b"").unwrap_err();
        assert!(matches!(&err, KeyFileError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("missing-dir"));
        assert_eq!(err.code(), ErrorCode::Io);
    }

    #[test]
    fn decoder_survives_arbitrary_mutations() {
        // A small deterministic fuzz: every result must be an error or the key.
        let k = key();
        let text = encode_with(&k, b"", FAST).unwrap().into_bytes();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut t = text.clone();
            let pos = (state as usize) % t.len();
            match state % 3 {
                0 => t[pos] = (state >> 8) as u8,
                1 => t.truncate(pos),
                _ => t.insert(pos, (state >> 16) as u8),
            }
            if let Ok(got) = decode_key_file(&t, b"") {
                assert!(same(&got, &k));
            }
        }
    }
}
