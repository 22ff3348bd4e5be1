//! A database's own chain on a miner: the SQLite executor, query values and results.
pub mod executor;
pub mod query;
pub mod value;
