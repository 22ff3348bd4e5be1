//! A database's own chain on a miner (DESIGN §5): signed requests
//! ([`request`]), the SQLite executor ([`executor`]) with its values and
//! results ([`value`], [`query`]), blocks ([`block`]) and the bookkeeping
//! tables kept in the database's own file ([`ledger`]). Nothing here imports
//! openraft or the network; `consensus::database` adapts it to Raft.
pub mod block;
pub mod executor;
pub mod ledger;
pub mod query;
pub mod request;
pub mod value;
