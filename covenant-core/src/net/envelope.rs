//! The versioned envelopes every frame carries: requests
//! `{id, method, timeout, payload}` and responses `{id, result}`.

use serde::{Deserialize, Serialize};

use super::error::RpcError;
use crate::codec::Versioned;

/// A request: the caller's id (echoed in the response), the method name, the
/// caller's remaining patience in milliseconds (0: none), and the encoded request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RequestEnvelope {
    pub(crate) id: u64,
    pub(crate) method: String,
    pub(crate) timeout_ms: u64,
    pub(crate) payload: Payload,
}

impl Versioned for RequestEnvelope {
    const KIND: &'static str = "rpc request";
    const VERSION: u16 = 1;
}

/// A response: the request's id and either the encoded response or a typed error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResponseEnvelope {
    pub(crate) id: u64,
    pub(crate) result: Result<Payload, RpcError>,
}

impl Versioned for ResponseEnvelope {
    const KIND: &'static str = "rpc response";
    const VERSION: u16 = 1;
}

/// Encoded message bytes, written as one byte string (not element by element).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Payload(pub(crate) Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Payload, E> {
                Ok(Payload(b.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, b: Vec<u8>) -> Result<Payload, E> {
                Ok(Payload(b))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Payload, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Payload(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_versioned, encode_versioned};
    use crate::error::ErrorCode;

    #[test]
    fn golden_request_bytes() {
        let r = RequestEnvelope {
            id: 1,
            method: "a.b".into(),
            timeout_ms: 300,
            payload: Payload(vec![9, 8]),
        };
        let bytes = encode_versioned(&r).unwrap();
        // version 1 | id 1 | "a.b" | varint 300 | 2 bytes.
        assert_eq!(hex::encode(&bytes), "01000103612e62fb2c01020908");
        assert_eq!(decode_versioned::<RequestEnvelope>(&bytes).unwrap(), r);
    }

    #[test]
    fn responses_round_trip_and_garbage_fails() {
        for result in [
            Ok(Payload(vec![1, 2, 3])),
            Err(RpcError::new(ErrorCode::UnknownMethod, "nope").with_leader_hint("x:1")),
        ] {
            let r = ResponseEnvelope {
                id: u64::MAX,
                result,
            };
            let bytes = encode_versioned(&r).unwrap();
            assert_eq!(decode_versioned::<ResponseEnvelope>(&bytes).unwrap(), r);
            for n in 0..bytes.len() {
                assert!(decode_versioned::<ResponseEnvelope>(&bytes[..n]).is_err());
            }
        }
        assert!(decode_versioned::<RequestEnvelope>(&[1, 0, 0xff, 0xff, 0xff]).is_err());
    }
}
