//! `cql`: the Covenant command line.
fn main() {}
