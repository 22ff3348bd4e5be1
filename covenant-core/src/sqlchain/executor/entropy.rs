//! Seeded `random()` and `randomblob()` for the writer connection.
//!
//! [`Entropy::install`] registers both functions on a connection, overriding
//! SQLite's built-ins (application functions win over built-ins of the same
//! name and arity), also inside views, triggers and column defaults. They
//! are not flagged `SQLITE_DETERMINISTIC`: each call draws new values, so
//! SQLite must not fold repeated calls.
//!
//! During a write ([`Entropy::scope`]) they draw from [`Stream`], seeded by
//! the leader's `WriteEnv::seed`: 32-byte block `i` is
//! `H(Tag::SqlRandom, seed || i as u64 big-endian)`, consumed byte by byte
//! in call order. Every replica runs the same statements in the same order,
//! so it draws the same values. This construction is part of the chain
//! format: changing it changes the rows a replayed chain produces.
//! `random()` takes 8 bytes as a little-endian `i64`, mapped as SQLite's own
//! `random()` does; `randomblob(N)` takes N bytes (at least 1).
//!
//! Outside a write (the executor's own SQL) they fall back to the operating
//! system's randomness, as SQLite's built-ins would.
//!
//! Imports `hash` and `crypto::random_bytes` only.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;

use crate::crypto;
use crate::hash::{HASH_LEN, PrefixHasher, Tag};

/// Largest `randomblob()`: the longest value a connection accepts.
const MAX_BLOB: usize = super::MAX_VALUE_BYTES;

/// The seeded byte stream of one write request.
#[derive(Clone)]
pub(crate) struct Stream {
    seed: [u8; 32],
    /// `tag || seed` absorbed, on the first draw: most writes never draw.
    hasher: Option<PrefixHasher>,
    counter: u64,
    block: [u8; HASH_LEN],
    used: usize,
}

impl Stream {
    /// The stream of a request stamped with `seed`.
    pub(crate) fn new(seed: &[u8; 32]) -> Stream {
        Stream {
            seed: *seed,
            hasher: None,
            counter: 0,
            block: [0; HASH_LEN],
            used: HASH_LEN,
        }
    }

    /// Fills `out` with the next bytes of the stream.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() {
            if self.used == HASH_LEN {
                let seed = &self.seed;
                let hasher = self
                    .hasher
                    .get_or_insert_with(|| PrefixHasher::new(Tag::SqlRandom, seed));
                self.block = *hasher.finish_with(&self.counter.to_be_bytes()).as_bytes();
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            let take = (HASH_LEN - self.used).min(out.len() - filled);
            if let (Some(dst), Some(src)) = (
                out.get_mut(filled..filled + take),
                self.block.get(self.used..self.used + take),
            ) {
                dst.copy_from_slice(src);
            }
            self.used += take;
            filled += take;
        }
    }

    /// The next `random()` value.
    #[cfg(test)]
    pub(crate) fn next_random(&mut self) -> i64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        random_from(b)
    }
}

/// SQLite's mapping of 8 random bytes to `random()`'s result.
fn random_from(bytes: [u8; 8]) -> i64 {
    let r = i64::from_le_bytes(bytes);
    if r < 0 { -(r & i64::MAX) } else { r }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The writer connection's random source: the current write's stream, if any.
#[derive(Clone, Default)]
pub(crate) struct Entropy {
    stream: Arc<Mutex<Option<Stream>>>,
}

/// While alive, `random()` and `randomblob()` draw from a request's stream.
pub(crate) struct Scope<'a> {
    entropy: &'a Entropy,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        *lock(&self.entropy.stream) = None;
    }
}

impl Entropy {
    /// Registers the seeded `random()` and `randomblob()` on `conn`.
    pub(crate) fn install(conn: &Connection) -> rusqlite::Result<Entropy> {
        let entropy = Entropy::default();
        // Innocuous: no side effects, so allowed in views, triggers and
        // defaults even when the schema is not trusted. Not deterministic.
        let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
        let e = entropy.clone();
        conn.create_scalar_function("random", 0, flags, move |_| {
            let mut b = [0u8; 8];
            e.fill(&mut b)?;
            Ok(random_from(b))
        })?;
        let e = entropy.clone();
        conn.create_scalar_function("randomblob", 1, flags, move |ctx| {
            let n = blob_len(ctx)?;
            let mut out = vec![0u8; n];
            e.fill(&mut out)?;
            Ok(out)
        })?;
        Ok(entropy)
    }

    /// Draws from `seed`'s stream until the scope ends.
    pub(crate) fn scope(&self, seed: &[u8; 32]) -> Scope<'_> {
        *lock(&self.stream) = Some(Stream::new(seed));
        Scope { entropy: self }
    }

    fn fill(&self, out: &mut [u8]) -> rusqlite::Result<()> {
        match lock(&self.stream).as_mut() {
            Some(stream) => {
                stream.fill(out);
                Ok(())
            }
            None => crypto::random_bytes(out)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e))),
        }
    }
}

/// `randomblob(N)`'s length: N as SQLite converts it to an integer, at least 1.
fn blob_len(ctx: &Context<'_>) -> rusqlite::Result<usize> {
    let n = if ctx.is_empty() {
        0
    } else {
        int64_of(ctx.get_raw(0))
    };
    let n = usize::try_from(n.max(1)).unwrap_or(usize::MAX);
    if n > MAX_BLOB {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_TOOBIG),
            Some("string or blob too big".to_owned()),
        ));
    }
    Ok(n)
}

/// A value as an integer, the way `sqlite3_value_int64` converts it: reals
/// truncate (saturating), text and blobs give their leading integer (0 if none).
fn int64_of(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Null => 0,
        ValueRef::Integer(i) => i,
        // `as` truncates toward zero and saturates, NaN gives 0.
        ValueRef::Real(f) => f as i64,
        ValueRef::Text(b) | ValueRef::Blob(b) => leading_integer(b),
    }
}

fn leading_integer(bytes: &[u8]) -> i64 {
    let mut it = bytes
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .peekable();
    let negative = match it.peek() {
        Some(b'-') => {
            it.next();
            true
        }
        Some(b'+') => {
            it.next();
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for d in it.map_while(|b| b.is_ascii_digit().then(|| i64::from(b - b'0'))) {
        n = if negative {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash;

    #[test]
    fn stream_is_counter_mode_sha3_known_answer() {
        let seed = [7u8; 32];
        let mut s = Stream::new(&seed);
        let mut got = [0u8; 70];
        s.fill(&mut got[..5]);
        s.fill(&mut got[5..]);
        let mut want = Vec::new();
        for i in 0u64..3 {
            want.extend_from_slice(
                hash::hash_parts(Tag::SqlRandom, &[&seed, &i.to_be_bytes()]).as_bytes(),
            );
        }
        assert_eq!(got[..], want[..70]);
        // Pinned (Python hashlib.sha3_256): the rows of every replayed chain
        // depend on these bytes.
        assert_eq!(
            hex::encode(&got[..32]),
            "9f29cee4afd7ae69fa32f59fb9df10641961b11e47f877463572b3209366d49f"
        );
        assert_eq!(
            Stream::new(&[1; 32]).next_random(),
            1_259_041_415_811_334_969
        );
    }

    #[test]
    fn seeds_give_distinct_streams() {
        let a = Stream::new(&[0; 32]).next_random();
        let b = Stream::new(&[1; 32]).next_random();
        assert_ne!(a, b);
        let mut s = Stream::new(&[0; 32]);
        assert_eq!(s.next_random(), a);
        assert_ne!(s.next_random(), a);
    }

    #[test]
    fn random_mapping_matches_sqlite() {
        assert_eq!(random_from(5i64.to_le_bytes()), 5);
        assert_eq!(random_from((-5i64).to_le_bytes()), -(-5i64 & i64::MAX));
        assert_eq!(random_from(i64::MIN.to_le_bytes()), 0);
    }

    #[test]
    fn functions_follow_the_scope() {
        let c = Connection::open_in_memory().unwrap();
        let e = Entropy::install(&c).unwrap();
        let draw = |c: &Connection| -> (i64, Vec<u8>) {
            c.query_row("SELECT random(), randomblob(3)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        let first = {
            let _s = e.scope(&[9; 32]);
            draw(&c)
        };
        let again = {
            let _s = e.scope(&[9; 32]);
            draw(&c)
        };
        assert_eq!(first, again);
        let mut s = Stream::new(&[9; 32]);
        let r = s.next_random();
        let mut b = [0u8; 3];
        s.fill(&mut b);
        assert_eq!(first, (r, b.to_vec()));
        // Outside a scope: real randomness, still working.
        assert_eq!(draw(&c).1.len(), 3);
    }

    #[test]
    fn randomblob_lengths_convert_like_sqlite() {
        let c = Connection::open_in_memory().unwrap();
        let e = Entropy::install(&c).unwrap();
        let _s = e.scope(&[0; 32]);
        for (arg, len) in [
            ("16", 16),
            ("0", 1),
            ("-3", 1),
            ("NULL", 1),
            ("2.9", 2),
            ("' 7x'", 7),
            ("'abc'", 1),
        ] {
            let got: i64 = c
                .query_row(&format!("SELECT length(randomblob({arg}))"), [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(got, len, "randomblob({arg})");
        }
        let err = c
            .query_row("SELECT randomblob(2000000000)", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .unwrap_err();
        assert!(err.to_string().contains("too big"), "{err}");
    }
}
