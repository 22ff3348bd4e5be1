//! Typed RPC methods: a name plus request and response types.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One named RPC method with typed request and response.
///
/// The payloads are encoded with [`crate::codec::encode`] inside a versioned
/// envelope. A method's types never change incompatibly under the same name:
/// a new request or response layout gets a new name (for example `...v2`),
/// so old and new nodes can run side by side during a rolling upgrade.
pub trait Method: Send + Sync + 'static {
    /// The method's wire name, unique within a router (`"service.method"`).
    const NAME: &'static str;
    /// Whether running the call twice has the same effect as once; the pool
    /// retries idempotent calls once on a fresh connection when a cached one turns out dead.
    const IDEMPOTENT: bool = false;
    /// The request type.
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The response type.
    type Response: Serialize + DeserializeOwned + Send + 'static;
}
