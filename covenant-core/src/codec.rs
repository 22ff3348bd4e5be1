//! The one canonical binary encoding: bincode 2 in serde mode with a single
//! fixed configuration. Nothing else in Covenant names a bincode config.
//!
//! Two layers:
//! - [`encode`] / [`decode`]: the canonical bytes of a value. Everything that is
//!   hashed or signed goes through [`encode`]; [`decode`] rejects trailing bytes
//!   and inputs over [`MAX_DECODE_LEN`].
//! - [`encode_versioned`] / [`decode_versioned`]: the same bytes behind a
//!   format version, for everything that crosses the network or lands on disk.
//!   A decoder meeting a version it does not know refuses with an error naming
//!   both versions, so a later release can change a format and run beside this
//!   one during a rolling upgrade (implement [`Versioned::decode_older`]).
//!
//! This module must not import anything else from the crate except `error`.

use serde::{Serialize, de::DeserializeOwned};

use crate::error::ErrorCode;

/// Largest input [`decode`] accepts; bigger inputs are refused before parsing.
pub const MAX_DECODE_LEN: usize = 64 << 20;

/// The canonical configuration: little-endian, variable-length integers,
/// and a decode limit so a hostile length prefix cannot allocate unbounded memory.
fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_DECODE_LEN>()
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value cannot be represented in the canonical encoding.
    #[error("cannot encode {kind}: {reason}")]
    Encode {
        /// What was being encoded.
        kind: &'static str,
        /// The encoder's explanation.
        reason: String,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("cannot decode {kind}: {reason}")]
    Decode {
        /// What was being decoded.
        kind: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// A valid value was followed by bytes that belong to nothing.
    #[error("cannot decode {kind}: {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        kind: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The input is larger than the decoder accepts.
    #[error("cannot decode {kind}: {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// What was being decoded.
        kind: &'static str,
        /// Input length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The data was written in a format version this build does not read.
    #[error(
        "{kind} is in format version {found}, but this build reads version {supported}; \
         upgrade this node (or downgrade the writer)"
    )]
    UnsupportedVersion {
        /// What was being decoded.
        kind: &'static str,
        /// The version found in the data.
        found: u16,
        /// The version this build writes and reads.
        supported: u16,
    },
}

impl CodecError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CodecError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::Codec,
        }
    }
}

/// The canonical bytes of `value`: what gets hashed, signed and stored.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| CodecError::Encode {
        kind: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

/// Decodes exactly one `T` from `bytes`; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_named(std::any::type_name::<T>(), bytes)
}

fn decode_named<T: DeserializeOwned>(kind: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_DECODE_LEN {
        return Err(CodecError::TooLarge {
            kind,
            len: bytes.len(),
            limit: MAX_DECODE_LEN,
        });
    }
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config()).map_err(|e| {
            CodecError::Decode {
                kind,
                reason: e.to_string(),
            }
        })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            kind,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// A type with a persisted or wire format that carries a version.
pub trait Versioned: Serialize + DeserializeOwned {
    /// Human name used in errors ("main block", "rpc envelope").
    const KIND: &'static str;
    /// The format version this build writes.
    const VERSION: u16;

    /// Decodes a payload written in an older `version`. The default knows none;
    /// a release that changes a format overrides it to keep reading the old one.
    fn decode_older(version: u16, payload: &[u8]) -> Result<Self, CodecError> {
        let _ = payload;
        Err(CodecError::UnsupportedVersion {
            kind: Self::KIND,
            found: version,
            supported: Self::VERSION,
        })
    }
}

/// `version (u16, little-endian) || encode(value)`.
pub fn encode_versioned<T: Versioned>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&T::VERSION.to_le_bytes());
    let body = encode(value)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the version prefix and decodes the payload, refusing unknown versions.
pub fn decode_versioned<T: Versioned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (head, payload) = bytes
        .split_at_checked(2)
        .ok_or_else(|| CodecError::Decode {
            kind: T::KIND,
            reason: "missing format version".into(),
        })?;
    let version = u16::from_le_bytes([head[0], head[1]]);
    if version == T::VERSION {
        decode_named(T::KIND, payload)
    } else if version < T::VERSION {
        T::decode_older(version, payload)
    } else {
        Err(CodecError::UnsupportedVersion {
            kind: T::KIND,
            found: version,
            supported: T::VERSION,
        })
    }
}

/// Serde helpers for fixed-size byte arrays (keys, hashes, signatures):
/// raw bytes in binary formats, no per-element overhead.
pub mod serde_bytes_array {
    use serde::{Deserializer, Serializer, de};

    /// Writes the array as one byte string.
    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Reads a byte string of exactly `N` bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> de::Visitor<'de> for V<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<[u8; N], E> {
                b.try_into().map_err(|_| E::invalid_length(b.len(), &self))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(de::Error::invalid_length(N + 1, &self));
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

/// Serde helpers for byte vectors (blobs, message payloads): one byte
/// string in binary formats, which the canonical encoding writes exactly
/// as it writes a sequence of `u8` (length, then the bytes) but without
/// handling each byte on its own; human-readable formats keep the plain
/// `Vec<u8>` form.
pub mod serde_byte_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    /// Writes the bytes as one byte string.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            v.serialize(s)
        } else {
            s.serialize_bytes(v)
        }
    }

    /// Reads a byte string (or, human-readable, a list of bytes).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Vec<u8>, E> {
                Ok(b.to_vec())
            }
            fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(b)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        if d.is_human_readable() {
            Vec::<u8>::deserialize(d)
        } else {
            d.deserialize_byte_buf(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: String,
        c: Vec<u8>,
        d: Option<i32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob(#[serde(with = "serde_byte_vec")] Vec<u8>);

    #[test]
    fn byte_vectors_encode_like_a_sequence_of_bytes() {
        for len in [0usize, 1, 250, 251, 1024, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let fast = encode(&Blob(bytes.clone())).unwrap();
            assert_eq!(fast, encode(&bytes).unwrap(), "length {len}");
            assert_eq!(decode::<Blob>(&fast).unwrap(), Blob(bytes.clone()));
            let json = serde_json::to_string(&Blob(bytes.clone())).unwrap();
            assert_eq!(json, serde_json::to_string(&bytes).unwrap());
            assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), Blob(bytes));
        }
        // A truncated encoding is an error, not a short vector.
        let enc = encode(&Blob(vec![7; 10])).unwrap();
        assert!(decode::<Blob>(&enc[..enc.len() - 1]).is_err());
    }

    impl Versioned for Sample {
        const KIND: &'static str = "sample";
        const VERSION: u16 = 1;
    }

    fn sample() -> Sample {
        Sample {
            a: 300,
            b: "hi".into(),
            c: vec![1, 2],
            d: Some(-1),
        }
    }

    #[test]
    fn golden_bytes() {
        // Pinned: varint 300 = fb 2c 01; "hi" = len 2 + bytes; vec = len 2 + bytes;
        // Some = 01, zigzag(-1) = 01.
        let bytes = encode(&sample()).unwrap();
        assert_eq!(hex::encode(&bytes), "fb2c010268690201020101");
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
        let v = encode_versioned(&sample()).unwrap();
        assert_eq!(hex::encode(&v), "0100fb2c010268690201020101");
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        let err = decode::<Sample>(&bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes { extra: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_garbage_are_errors() {
        let bytes = encode(&sample()).unwrap();
        for n in 0..bytes.len() {
            assert!(decode::<Sample>(&bytes[..n]).is_err());
        }
        // A length prefix claiming a huge string must not allocate it.
        assert!(decode::<String>(&[0xfc, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn unknown_version_names_both() {
        let mut v = encode_versioned(&sample()).unwrap();
        v[0] = 9;
        let err = decode_versioned::<Sample>(&v).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("version 9") && msg.contains("version 1"),
            "{msg}"
        );
        assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
        v[0] = 0;
        assert!(matches!(
            decode_versioned::<Sample>(&v),
            Err(CodecError::UnsupportedVersion { found: 0, .. })
        ));
        assert!(decode_versioned::<Sample>(&[1]).is_err());
    }

    #[test]
    fn byte_arrays_are_compact() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct K(#[serde(with = "serde_bytes_array")] [u8; 33]);
        let k = K([7; 33]);
        let bytes = encode(&k).unwrap();
        assert_eq!(bytes.len(), 34);
        assert_eq!(decode::<K>(&bytes).unwrap(), k);
        assert!(decode::<K>(&bytes[..33]).is_err());
    }
}
