//! The self-signed TLS certificate that binds an ephemeral TLS key to a node identity.
//!
//! In the manner of the libp2p TLS handshake: each process makes an ephemeral
//! ECDSA P-256 TLS key and a self-signed certificate carrying one extension,
//! [`IDENTITY_EXTENSION_OID`], whose DER content is
//!
//! ```text
//! CovenantIdentity ::= SEQUENCE {
//!     version    INTEGER,        -- 1
//!     nodeId     OCTET STRING,   -- 32 bytes, H(publicKey || nonce)
//!     publicKey  OCTET STRING,   -- 33 bytes, compressed secp256k1
//!     nonce      OCTET STRING,   -- 32 bytes, four big-endian u64
//!     signature  OCTET STRING }  -- 64 bytes, secp256k1 over
//!                                --   H(Tag::TlsBinding, SubjectPublicKeyInfo DER)
//! ```
//!
//! The verifier recomputes the node id from the key and nonce, checks its
//! difficulty, checks that the node key signed this certificate's TLS key and
//! that the certificate's self-signature holds. The TLS handshake itself then
//! proves possession of the TLS key, so the peer holds both keys.

use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, PublicKeyData as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use x509_parser::prelude::{ASN1Time, FromDer as _, X509Certificate};

use super::error::{IdentityError, NetError};
use super::identity::{NodeIdentity, PeerIdentity};
use crate::crypto::{NodeId, Nonce, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN, Signature};
use crate::hash::{HASH_LEN, Hash, Tag, hash};

/// OID of the Covenant identity extension: a private-enterprise arc placeholder
/// (`1.3.6.1.4.1.59999.1.1`) until the project registers its own number.
pub const IDENTITY_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 59999, 1, 1];

/// The extension format version this build writes and reads.
const EXTENSION_VERSION: u64 = 1;

/// The identity claims carried in the certificate extension.
#[derive(Clone, Debug)]
pub(crate) struct Binding {
    pub(crate) node_id: NodeId,
    pub(crate) public_key: PublicKey,
    pub(crate) nonce: Nonce,
    pub(crate) signature: Signature,
}

/// The digest a node key signs to vouch for a TLS key.
pub(crate) fn binding_digest(spki_der: &[u8]) -> Hash {
    hash(Tag::TlsBinding, spki_der)
}

/// An ephemeral TLS key and its self-signed certificate.
pub(crate) struct TlsCertificate {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: PrivateKeyDer<'static>,
}

/// A fresh TLS key and certificate vouched for by `identity`.
pub(crate) fn generate(identity: &NodeIdentity) -> Result<TlsCertificate, NetError> {
    generate_with(identity, |spki| {
        Some(Binding {
            node_id: identity.node_id(),
            public_key: identity.public_key(),
            nonce: identity.nonce(),
            signature: identity.private_key().sign(&binding_digest(spki)),
        })
    })
}

/// Builds a certificate whose extension is whatever `binding` returns for the
/// new key's SubjectPublicKeyInfo (`None`: no extension). Forgeries in tests use this.
pub(crate) fn generate_with(
    identity: &NodeIdentity,
    binding: impl FnOnce(&[u8]) -> Option<Binding>,
) -> Result<TlsCertificate, NetError> {
    let cred = |e: rcgen::Error| NetError::Credentials {
        reason: e.to_string(),
    };
    let key_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cred)?;
    let spki = key_pair.subject_public_key_info();
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cred)?;
    params.distinguished_name.push(
        DnType::CommonName,
        format!("covenant node {}", identity.node_id()),
    );
    if let Some(b) = binding(&spki) {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                IDENTITY_EXTENSION_OID,
                encode_binding(&b),
            ));
    }
    let cert = params.self_signed(&key_pair).map_err(cred)?;
    Ok(TlsCertificate {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
    })
}

fn encode_binding(b: &Binding) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u64(EXTENSION_VERSION);
            w.next().write_bytes(b.node_id.as_bytes());
            w.next().write_bytes(b.public_key.as_bytes());
            w.next().write_bytes(&b.nonce.to_bytes());
            w.next().write_bytes(&b.signature.0);
        })
    })
}

/// The raw fields of an extension, before their lengths and key are checked.
struct RawBinding {
    node_id: Vec<u8>,
    public_key: Vec<u8>,
    nonce: Vec<u8>,
    signature: Vec<u8>,
}

fn decode_binding(der: &[u8]) -> Result<Binding, IdentityError> {
    let malformed = |reason: String| IdentityError::MalformedExtension { reason };
    let parsed = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let version = r.next().read_u64()?;
            if version != EXTENSION_VERSION {
                // Skip whatever a newer layout holds, so the caller can name the version.
                while r.read_optional(|r| r.read_der())?.is_some() {}
                return Ok((version, None));
            }
            let raw = RawBinding {
                node_id: r.next().read_bytes()?,
                public_key: r.next().read_bytes()?,
                nonce: r.next().read_bytes()?,
                signature: r.next().read_bytes()?,
            };
            Ok((version, Some(raw)))
        })
    })
    .map_err(|e| malformed(e.to_string()))?;
    let raw = match parsed {
        (_, Some(raw)) => raw,
        (found, None) => {
            return Err(IdentityError::UnsupportedExtensionVersion {
                found,
                supported: EXTENSION_VERSION,
            });
        }
    };
    let node_id: [u8; HASH_LEN] = raw
        .node_id
        .as_slice()
        .try_into()
        .map_err(|_| malformed(format!("node id is {} bytes", raw.node_id.len())))?;
    if raw.public_key.len() != PUBLIC_KEY_LEN {
        return Err(malformed(format!(
            "public key is {} bytes",
            raw.public_key.len()
        )));
    }
    let public_key = PublicKey::from_bytes(&raw.public_key)
        .map_err(|_| malformed("public key is not a secp256k1 point".into()))?;
    let nonce: [u8; 32] = raw
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| malformed(format!("nonce is {} bytes", raw.nonce.len())))?;
    let signature: [u8; SIGNATURE_LEN] = raw
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| malformed(format!("signature is {} bytes", raw.signature.len())))?;
    Ok(Binding {
        node_id: NodeId(Hash(node_id)),
        public_key,
        nonce: nonce_from_bytes(&nonce),
        signature: Signature(signature),
    })
}

fn nonce_from_bytes(b: &[u8; 32]) -> Nonce {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i * 8..i * 8 + 8]);
        u64::from_be_bytes(w)
    };
    Nonce {
        a: word(0),
        b: word(1),
        c: word(2),
        d: word(3),
    }
}

fn parse(cert_der: &[u8]) -> Result<(X509Certificate<'_>, Binding), IdentityError> {
    let (rest, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| IdentityError::MalformedCertificate {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(IdentityError::MalformedCertificate {
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    let mut found = None;
    for ext in cert.extensions() {
        let ours = ext
            .oid
            .iter()
            .is_some_and(|arcs| arcs.eq(IDENTITY_EXTENSION_OID.iter().copied()));
        if ours {
            if found.is_some() {
                return Err(IdentityError::MalformedExtension {
                    reason: "identity extension appears twice".into(),
                });
            }
            found = Some(ext.value);
        }
    }
    let binding = decode_binding(found.ok_or(IdentityError::MissingExtension)?)?;
    Ok((cert, binding))
}

/// Fully checks a peer's certificate and returns the identity it proves.
///
/// Cheap checks run first (structure, validity, node id and difficulty), the
/// two signature verifications last.
pub(crate) fn verify(
    cert_der: &[u8],
    min_difficulty: u32,
    now: UnixTime,
) -> Result<PeerIdentity, IdentityError> {
    let (cert, b) = parse(cert_der)?;
    let now = i64::try_from(now.as_secs())
        .ok()
        .and_then(|s| ASN1Time::from_timestamp(s).ok())
        .ok_or(IdentityError::NotValidNow)?;
    if !cert.validity().is_valid_at(now) {
        return Err(IdentityError::NotValidNow);
    }
    let computed = NodeId::compute(&b.public_key, &b.nonce);
    if computed != b.node_id {
        return Err(IdentityError::NodeIdMismatch {
            claimed: b.node_id,
            computed,
        });
    }
    let difficulty = computed.difficulty();
    if difficulty < min_difficulty {
        return Err(IdentityError::DifficultyTooLow {
            id: computed,
            difficulty,
            minimum: min_difficulty,
        });
    }
    b.public_key
        .verify(&binding_digest(cert.public_key().raw), &b.signature)
        .map_err(|_| IdentityError::BadBindingSignature)?;
    cert.verify_signature(None)
        .map_err(|_| IdentityError::BadSelfSignature)?;
    Ok(PeerIdentity::from_key(b.public_key, b.nonce))
}

/// The identity in a certificate that [`verify`] already accepted (no signature checks).
pub(crate) fn read_identity(cert_der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    let (_, b) = parse(cert_der)?;
    Ok(PeerIdentity::from_key(b.public_key, b.nonce))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PrivateKey;

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn genuine_certificate_verifies() {
        let id = NodeIdentity::mine_weak(4).unwrap();
        let c = generate(&id).unwrap();
        let peer = verify(&c.cert, 4, now()).unwrap();
        assert_eq!(peer, id.as_peer());
        assert_eq!(read_identity(&c.cert).unwrap(), id.as_peer());
    }

    #[test]
    fn binding_round_trips_and_rejects_bad_lengths() {
        let id = NodeIdentity::mine_weak(0).unwrap();
        let b = Binding {
            node_id: id.node_id(),
            public_key: id.public_key(),
            nonce: Nonce {
                a: 1,
                b: 2,
                c: u64::MAX,
                d: 4,
            },
            signature: Signature([7; 64]),
        };
        let der = encode_binding(&b);
        let back = decode_binding(&der).unwrap();
        assert_eq!(back.nonce, b.nonce);
        assert_eq!(back.public_key, b.public_key);
        assert_eq!(back.signature, b.signature);
        for n in 0..der.len() {
            assert!(decode_binding(&der[..n]).is_err());
        }
        let short = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u64(1);
                w.next().write_bytes(&[0; 31]);
                w.next().write_bytes(id.public_key().as_bytes());
                w.next().write_bytes(&[0; 32]);
                w.next().write_bytes(&[0; 64]);
            })
        });
        assert!(matches!(
            decode_binding(&short),
            Err(IdentityError::MalformedExtension { .. })
        ));
        let future = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u64(2);
                w.next().write_bytes(b"anything");
            })
        });
        assert_eq!(
            decode_binding(&future).unwrap_err(),
            IdentityError::UnsupportedExtensionVersion {
                found: 2,
                supported: 1
            }
        );
    }

    #[test]
    fn forged_bindings_are_refused() {
        let id = NodeIdentity::mine_weak(4).unwrap();
        let other = PrivateKey::generate().unwrap();
        // Signed over another TLS key.
        let c = generate_with(&id, |_| {
            Some(Binding {
                node_id: id.node_id(),
                public_key: id.public_key(),
                nonce: id.nonce(),
                signature: id.private_key().sign(&binding_digest(b"another key")),
            })
        })
        .unwrap();
        assert_eq!(
            verify(&c.cert, 0, now()).unwrap_err(),
            IdentityError::BadBindingSignature
        );
        // Signed by a key other than the one named.
        let c = generate_with(&id, |spki| {
            Some(Binding {
                node_id: id.node_id(),
                public_key: id.public_key(),
                nonce: id.nonce(),
                signature: other.sign(&binding_digest(spki)),
            })
        })
        .unwrap();
        assert_eq!(
            verify(&c.cert, 0, now()).unwrap_err(),
            IdentityError::BadBindingSignature
        );
        // No extension at all.
        let c = generate_with(&id, |_| None).unwrap();
        assert_eq!(
            verify(&c.cert, 0, now()).unwrap_err(),
            IdentityError::MissingExtension
        );
        // Difficulty over the peer's.
        let c = generate(&id).unwrap();
        let too_hard = id.node_id().difficulty() + 1;
        assert!(matches!(
            verify(&c.cert, too_hard, now()),
            Err(IdentityError::DifficultyTooLow { .. })
        ));
        // Garbage is an error, not a panic.
        assert!(matches!(
            verify(b"not a certificate", 0, now()),
            Err(IdentityError::MalformedCertificate { .. })
        ));
    }

    #[test]
    fn tampered_certificate_fails_self_signature() {
        let id = NodeIdentity::mine_weak(0).unwrap();
        let c = generate(&id).unwrap();
        let mut der = c.cert.to_vec();
        // Flip a bit inside the signature value, the last bytes of the certificate.
        let last = der.len() - 2;
        der[last] ^= 1;
        assert_eq!(
            verify(&der, 0, now()).unwrap_err(),
            IdentityError::BadSelfSignature
        );
    }
}
