//! rustls configuration (TLS 1.3 only, `ring` provider, mutual authentication
//! by node identity) and the connect/accept steps that yield a verified peer.

use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::server::NoServerSessionStorage;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::NetConfig;
use super::cert::{self, TlsCertificate};
use super::error::{IdentityError, NetError};
use super::identity::{NodeIdentity, PeerIdentity};
use super::verifier::{NodeVerifier, identity_failure};
use crate::crypto::NodeId;

/// ALPN protocol id; a peer speaking another protocol fails the handshake.
pub const ALPN: &[u8] = b"covenant/1";

/// The server name sent in the handshake; verifiers ignore it (identity is the node id).
const SERVER_NAME: &str = "covenant.node";

/// A process's TLS credentials and configurations, built once from its [`NodeIdentity`]:
/// an ephemeral TLS key, its identity-bound certificate, and verifiers enforcing
/// the configured minimum difficulty. Cheap to clone.
#[derive(Clone)]
pub struct TlsContext {
    inner: Arc<Inner>,
}

struct Inner {
    local: PeerIdentity,
    min_difficulty: u32,
    provider: Arc<CryptoProvider>,
    certified: Arc<CertifiedKey>,
    server: Arc<ServerConfig>,
    client_any: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("node_id", &self.inner.local.node_id)
            .field("min_difficulty", &self.inner.min_difficulty)
            .finish()
    }
}

fn tls_err(e: rustls::Error) -> NetError {
    NetError::Credentials {
        reason: e.to_string(),
    }
}

impl TlsContext {
    /// Credentials for `identity`, refusing peers under `config.min_difficulty`.
    pub fn new(identity: &NodeIdentity, config: &NetConfig) -> Result<TlsContext, NetError> {
        let certificate = cert::generate(identity)?;
        TlsContext::with_certificate(identity, certificate, config.min_difficulty)
    }

    /// Builds the configurations around an already made certificate (forgeries in tests).
    pub(crate) fn with_certificate(
        identity: &NodeIdentity,
        certificate: TlsCertificate,
        min_difficulty: u32,
    ) -> Result<TlsContext, NetError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(certificate.key)
            .map_err(tls_err)?;
        let certified = Arc::new(CertifiedKey::new(vec![certificate.cert], signing_key));

        let verifier = Arc::new(NodeVerifier::new(
            min_difficulty,
            None,
            provider.signature_verification_algorithms,
        ));
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
        server.alpn_protocols = vec![ALPN.to_vec()];
        // No resumption: every connection proves its identity afresh.
        server.send_tls13_tickets = 0;
        server.session_storage = Arc::new(NoServerSessionStorage {});

        let client_any = build_client(min_difficulty, &provider, &certified, None)?;
        Ok(TlsContext {
            inner: Arc::new(Inner {
                local: identity.as_peer(),
                min_difficulty,
                provider,
                certified,
                server: Arc::new(server),
                client_any,
            }),
        })
    }

    /// This process's own identity, as peers see it.
    pub fn local(&self) -> PeerIdentity {
        self.inner.local
    }

    /// The minimum node-id difficulty demanded of peers.
    pub fn min_difficulty(&self) -> u32 {
        self.inner.min_difficulty
    }

    fn client_config(&self, expected: Option<NodeId>) -> Result<Arc<ClientConfig>, NetError> {
        match expected {
            None => Ok(self.inner.client_any.clone()),
            Some(_) => build_client(
                self.inner.min_difficulty,
                &self.inner.provider,
                &self.inner.certified,
                expected,
            ),
        }
    }

    /// Opens a TCP connection to `addr` and runs the TLS handshake; when
    /// `expected` is given the peer must be that node. Bounded by the config's
    /// connect and handshake timeouts.
    pub async fn connect(
        &self,
        addr: &str,
        expected: Option<NodeId>,
        config: &NetConfig,
    ) -> Result<(client::TlsStream<TcpStream>, PeerIdentity), NetError> {
        let tcp = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(NetError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
            Err(_) => {
                return Err(NetError::Timeout {
                    what: "TCP connect",
                    after: config.connect_timeout,
                });
            }
        };
        // Small frames must not wait for Nagle's algorithm.
        tcp.set_nodelay(true).map_err(|source| NetError::Connect {
            addr: addr.to_string(),
            source,
        })?;
        let name = ServerName::try_from(SERVER_NAME).map_err(|e| NetError::Credentials {
            reason: e.to_string(),
        })?;
        let connector = TlsConnector::from(self.client_config(expected)?);
        let stream = match tokio::time::timeout(
            config.handshake_timeout,
            connector.connect(name, tcp),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(handshake_error(addr, &e)),
            Err(_) => {
                return Err(NetError::Timeout {
                    what: "TLS handshake",
                    after: config.handshake_timeout,
                });
            }
        };
        let peer = peer_of(stream.get_ref().1.peer_certificates()).map_err(|source| {
            NetError::PeerRefused {
                addr: addr.to_string(),
                source,
            }
        })?;
        Ok((stream, peer))
    }

    /// Runs the server side of the handshake on an accepted TCP connection.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        config: &NetConfig,
    ) -> Result<(server::TlsStream<TcpStream>, PeerIdentity), NetError> {
        let addr = tcp
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "unknown".into());
        tcp.set_nodelay(true).map_err(|source| NetError::Connect {
            addr: addr.clone(),
            source,
        })?;
        let acceptor = TlsAcceptor::from(self.inner.server.clone());
        let stream =
            match tokio::time::timeout(config.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(handshake_error(&addr, &e)),
                Err(_) => {
                    return Err(NetError::Timeout {
                        what: "TLS handshake",
                        after: config.handshake_timeout,
                    });
                }
            };
        let peer = peer_of(stream.get_ref().1.peer_certificates())
            .map_err(|source| NetError::PeerRefused { addr, source })?;
        Ok((stream, peer))
    }
}

fn build_client(
    min_difficulty: u32,
    provider: &Arc<CryptoProvider>,
    certified: &Arc<CertifiedKey>,
    expected: Option<NodeId>,
) -> Result<Arc<ClientConfig>, NetError> {
    let verifier = Arc::new(NodeVerifier::new(
        min_difficulty,
        expected,
        provider.signature_verification_algorithms,
    ));
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
    client.alpn_protocols = vec![ALPN.to_vec()];
    client.resumption = Resumption::disabled();
    Ok(Arc::new(client))
}

/// The verified peer identity after a completed handshake.
fn peer_of(
    certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
) -> Result<PeerIdentity, IdentityError> {
    match certs {
        Some([one]) => cert::read_identity(one),
        Some(many) => Err(IdentityError::CertificateCount { count: many.len() }),
        None => Err(IdentityError::CertificateCount { count: 0 }),
    }
}

/// Classifies a failed handshake: a refused identity keeps its typed reason.
fn handshake_error(addr: &str, e: &std::io::Error) -> NetError {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        if let Some(id) = identity_failure(tls) {
            return NetError::PeerRefused {
                addr: addr.to_string(),
                source: id.clone(),
            };
        }
        return NetError::Handshake {
            addr: addr.to_string(),
            reason: tls.to_string(),
        };
    }
    NetError::Handshake {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}
