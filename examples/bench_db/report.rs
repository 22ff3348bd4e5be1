//! Turning measured levels into the stderr table and the stdout `RESULT`
//! line. Pure formatting: no I/O, no network.

use std::fmt::Write as _;

/// One concurrency level's figures (ours or dqlite's).
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged writes per second.
    pub wps: f64,
    /// Median write latency.
    pub p50_ms: f64,
    /// 99th percentile write latency.
    pub p99_ms: f64,
    /// Slowest write.
    pub max_ms: f64,
    /// Failed writes.
    pub errors: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Miners replicating the database.
    pub nodes: usize,
    /// `strong` or `eventual`.
    pub mode: &'static str,
    /// Our levels, in the order measured.
    pub ours: Vec<Level>,
    /// dqlite-benchmark's levels, when `--vs-dqlite` ran it.
    pub dqlite: Option<Vec<Level>>,
    /// Raw rusqlite inserts/s (one node only).
    pub raw_wps: Option<f64>,
    /// Median `GetHead` round trip client -> leader (no consensus), from the first level's worker.
    pub rpc_p50_ms: Option<f64>,
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied().unwrap_or(0.0)
}

fn find(levels: &[Level], clients: usize) -> Option<&Level> {
    levels.iter().find(|l| l.clients == clients)
}

fn ratio(ours: Option<&Level>, theirs: Option<&Level>) -> Option<f64> {
    match (ours, theirs) {
        (Some(o), Some(t)) if t.wps > 0.0 => Some(o.wps / t.wps),
        _ => None,
    }
}

fn or_na(v: Option<String>) -> String {
    v.unwrap_or_else(|| "na".to_string())
}

impl Report {
    /// The human table (for stderr).
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "bench_db: {} node(s), {} consistency, signed 1-statement inserts from a separate client process",
            self.nodes, self.mode
        );
        let _ = writeln!(
            t,
            "{:>7} | {:>9} {:>8} {:>8} {:>8} {:>6} | {:>10} {:>8} {:>8} {:>7} | {:>7}",
            "clients",
            "writes/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "dqlite w/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "ratio"
        );
        let _ = writeln!(t, "{}", "-".repeat(111));
        for o in &self.ours {
            let d = self.dqlite.as_deref().and_then(|d| find(d, o.clients));
            let (dw, dp50, dp99, derr) = match d {
                Some(d) => (
                    format!("{:.0}", d.wps),
                    format!("{:.2}", d.p50_ms),
                    format!("{:.2}", d.p99_ms),
                    d.errors.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into(), "-".into()),
            };
            let r = ratio(Some(o), d).map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"));
            let _ = writeln!(
                t,
                "{:>7} | {:>9.0} {:>8.2} {:>8.2} {:>8.1} {:>6} | {:>10} {:>8} {:>8} {:>7} | {:>7}",
                o.clients, o.wps, o.p50_ms, o.p99_ms, o.max_ms, o.errors, dw, dp50, dp99, derr, r
            );
        }
        if let Some(rpc) = self.rpc_p50_ms {
            let _ = writeln!(
                t,
                "RPC floor (GetHead round trip to the leader, no consensus): p50 {rpc:.2} ms"
            );
        }
        if let Some(raw) = self.raw_wps {
            let _ = writeln!(
                t,
                "raw rusqlite (WAL, synchronous=FULL, 1 txn/insert, same process): {raw:.0} inserts/s"
            );
        }
        t
    }

    /// The `RESULT ...` line: nodes, mode, every level's writes/s, then
    /// latencies and errors, then `dqlite_c1_wps` and `ratio_c1` (`na`
    /// without `--vs-dqlite`), then dqlite's other levels and raw rusqlite.
    pub fn result_line(&self) -> String {
        let mut line = format!("RESULT nodes={} mode={}", self.nodes, self.mode);
        for l in &self.ours {
            let _ = write!(line, " c{}_wps={:.0}", l.clients, l.wps);
        }
        for l in &self.ours {
            let _ = write!(
                line,
                " c{0}_p50_ms={1:.2} c{0}_p99_ms={2:.2} c{0}_max_ms={3:.1}",
                l.clients, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
        for l in &self.ours {
            let _ = write!(line, " c{}_errors={}", l.clients, l.errors);
        }
        let dq = self.dqlite.as_deref().unwrap_or(&[]);
        let d1 = find(dq, 1);
        let _ = write!(
            line,
            " dqlite_c1_wps={} ratio_c1={}",
            or_na(d1.map(|d| format!("{:.0}", d.wps))),
            or_na(ratio(find(&self.ours, 1), d1).map(|r| format!("{r:.3}")))
        );
        for d in dq.iter().filter(|d| d.clients != 1) {
            let _ = write!(
                line,
                " dqlite_c{0}_wps={1:.0} ratio_c{0}={2}",
                d.clients,
                d.wps,
                or_na(ratio(find(&self.ours, d.clients), Some(d)).map(|r| format!("{r:.3}")))
            );
        }
        for d in dq {
            let _ = write!(
                line,
                " dqlite_c{0}_p50_ms={1:.2} dqlite_c{0}_p99_ms={2:.2} dqlite_c{0}_errors={3}",
                d.clients, d.p50_ms, d.p99_ms, d.errors
            );
        }
        if let Some(raw) = self.raw_wps {
            let top = self.ours.iter().map(|l| l.clients).max().unwrap_or(1);
            let r = find(&self.ours, top).map_or(0.0, |l| l.wps / raw.max(1.0));
            let _ = write!(line, " raw_wps={raw:.0} raw_ratio_c{top}={r:.3}");
        }
        if let Some(rpc) = self.rpc_p50_ms {
            let _ = write!(line, " rpc_p50_ms={rpc:.3}");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(clients: usize, wps: f64) -> Level {
        Level {
            clients,
            wps,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            errors: 0,
        }
    }

    #[test]
    fn result_line_keeps_the_issue_order() {
        let r = Report {
            nodes: 3,
            mode: "strong",
            ours: vec![level(1, 1000.0), level(8, 2000.0), level(32, 4000.0)],
            dqlite: Some(vec![level(1, 500.0), level(32, 1000.0)]),
            raw_wps: None,
            rpc_p50_ms: None,
        };
        let line = r.result_line();
        assert!(
            line.starts_with(
                "RESULT nodes=3 mode=strong c1_wps=1000 c8_wps=2000 c32_wps=4000 c1_p50_ms=1.00"
            ),
            "{line}"
        );
        assert!(
            line.contains(" dqlite_c1_wps=500 ratio_c1=2.000 dqlite_c32_wps=1000 ratio_c32=4.000")
        );
    }

    #[test]
    fn without_dqlite_the_ratio_is_na() {
        let r = Report {
            nodes: 1,
            mode: "eventual",
            ours: vec![level(1, 100.0), level(32, 300.0)],
            dqlite: None,
            raw_wps: Some(150.0),
            rpc_p50_ms: Some(0.3),
        };
        let line = r.result_line();
        assert!(line.contains(" dqlite_c1_wps=na ratio_c1=na"), "{line}");
        assert!(
            line.ends_with(" raw_wps=150 raw_ratio_c32=2.000 rpc_p50_ms=0.300"),
            "{line}"
        );
        assert!(r.table().contains("raw rusqlite"));
    }

    #[test]
    fn percentile_picks_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
