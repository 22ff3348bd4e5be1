//! The RPC contracts between Covenant's processes: each service's methods as
//! typed [`Method`](crate::net::Method)s with their request and response
//! types. Servers (in `covenant-miner`) and clients (in `covenant-client`)
//! both build on these, so a contract lives in exactly one place.

pub mod chain;
pub mod database;
