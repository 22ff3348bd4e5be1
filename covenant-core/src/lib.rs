//! `covenant-core`: everything Covenant's nodes and clients share.
//!
//! Modules are laid out by concept (see DESIGN §1): [`hash`] is the one place
//! that calls SHA3, [`codec`] the one place that names a bincode
//! configuration, [`crypto`] owns keys, signatures, addresses and node ids.
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod chain;
pub mod codec;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod error;
pub mod hash;
pub mod merkle;
pub mod metrics;
pub mod net;
pub mod pow;
pub mod sqlchain;
pub mod types;

pub use error::{Error, ErrorCode, Result};
