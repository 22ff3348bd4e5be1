//! `covenant-client`: what apps `cargo add` to use a Covenant database, and
//! the library behind the `cql` command line.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;

pub use covenant_core as core;
