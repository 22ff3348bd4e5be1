//! Generators and fixtures shared by the fuzz targets (`fuzz_targets/`) and
//! the seed writer (`examples/seed_corpora.rs`), kept apart from the targets:
//! fixed keys and a funded chain, fix-ups that re-sign fuzzed values so they
//! get past signature checks into the logic behind them, valid key files with
//! tiny KDF parameters, and seed inputs.
//!
//! Everything here calls `covenant-core`'s public API only (plus
//! `covenant_core::net::fuzzing`); it never changes what the library accepts.

pub mod canonical;
pub mod chain;
pub mod keyfile;
pub mod seeds;
