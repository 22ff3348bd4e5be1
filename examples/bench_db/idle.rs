//! `--idle-dbs N`: what many idle database groups cost a miner.
//!
//! Owned by the idle-cost work; `main.rs` calls [`run`] when `--idle-dbs`
//! is given and prints the `RESULT idle_dbs=..` line it returns.

/// Measures 3 miners hosting `dbs` idle three-node databases and returns
/// the `RESULT idle_dbs=.. cpu_pct_per_miner=.. rss_kib_per_db=.. failover_ms=..` line.
pub async fn run(dbs: usize) -> anyhow::Result<String> {
    anyhow::bail!("--idle-dbs {dbs}: the idle benchmark is not written yet")
}
