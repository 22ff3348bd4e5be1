//! `--vs-dqlite`: the same workload on dqlite, for comparison.
//!
//! Runs Debian's `dqlite-benchmark` (package `go-dqlite`; install it with
//! `scripts/install-bench-deps.sh`) as N nodes on loopback, free ports, data
//! in a temp dir: node 1 is the `--driver` (its in-process Go client runs the
//! `kvwrite` workload with C workers against the leader, 32-byte keys,
//! 1 KiB values by default), the others `--join` it. Its per-worker result
//! files (`n`, `n_err`, then one latency in ms per write) are parsed into a
//! [`Level`]. Nothing here touches Covenant.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::report::{Level, percentile};

/// The benchmark's executable name.
const BINARY: &str = "dqlite-benchmark";

/// The path of `dqlite-benchmark` on `PATH`, or an error saying how to install it.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(BINARY))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "--vs-dqlite needs `{BINARY}` on PATH (Debian package go-dqlite); \
                 install it with scripts/install-bench-deps.sh"
            )
        })
}

fn free_addr() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(format!("127.0.0.1:{}", l.local_addr()?.port()))
}

/// A started node: its process and where its output goes.
struct Node {
    child: tokio::process::Child,
    log: PathBuf,
}

fn start(bin: &Path, dir: &Path, i: usize, args: &[String]) -> anyhow::Result<Node> {
    let log = dir.join(format!("node{i}.log"));
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let child = tokio::process::Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Node { child, log })
}

/// Asks `node` to stop (SIGTERM), then kills it if it lingers.
async fn stop(mut node: Node) {
    crate::child::terminate(&mut node.child, Duration::from_secs(5)).await;
}

/// Runs `dqlite-benchmark --workload kvwrite` on `nodes` nodes with
/// `clients` workers for `seconds` and returns its figures.
pub async fn run(
    bin: &Path,
    nodes: usize,
    clients: usize,
    seconds: u64,
    value_bytes: usize,
) -> anyhow::Result<Level> {
    let dir = tempfile::tempdir()?;
    let addrs = (0..nodes.max(1))
        .map(|_| free_addr())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let first = addrs.first().context("no dqlite node")?.clone();
    let data = |i: usize| dir.path().join(format!("n{i}")).display().to_string();
    let driver_args = vec![
        "--db".to_string(),
        first.clone(),
        "--dir".into(),
        data(0),
        "--driver".into(),
        "--cluster".into(),
        addrs.join(","),
        "--cluster-timeout".into(),
        "60".into(),
        "--workload".into(),
        "kvwrite".into(),
        "--duration".into(),
        seconds.to_string(),
        "--workers".into(),
        clients.to_string(),
        "--value-size".into(),
        value_bytes.to_string(),
    ];
    let mut driver = start(bin, dir.path(), 0, &driver_args)?;
    let mut others = Vec::new();
    for (i, a) in addrs.iter().enumerate().skip(1) {
        let args = vec![
            "--db".to_string(),
            a.clone(),
            "--dir".into(),
            data(i),
            "--join".into(),
            first.clone(),
        ];
        others.push(start(bin, dir.path(), i, &args)?);
    }
    let limit = Duration::from_secs(seconds + 90);
    let status = tokio::time::timeout(limit, driver.child.wait()).await;
    for n in others {
        stop(n).await;
    }
    let log = std::fs::read_to_string(&driver.log).unwrap_or_default();
    let status = match status {
        Ok(s) => s?,
        Err(_) => {
            stop(driver).await;
            bail!("{BINARY} did not finish within {limit:?}; its output:\n{log}");
        }
    };
    if !status.success() {
        bail!("{BINARY} failed ({status}); its output:\n{log}");
    }
    let results = dir.path().join("n0").join(&first).join("results");
    let level = parse_results(&results, clients, seconds)
        .with_context(|| format!("reading {BINARY}'s results; its output:\n{log}"))?;
    Ok(level)
}

/// One result file: writes, failed writes and each write's latency in ms.
#[derive(Debug, Default, PartialEq)]
struct ResultFile {
    n: u64,
    n_err: u64,
    latencies: Vec<f64>,
}

fn parse_file(text: &str) -> anyhow::Result<ResultFile> {
    let mut f = ResultFile::default();
    let mut in_measurements = false;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("n_err ") {
            f.n_err = v.trim().parse().context("n_err")?;
        } else if let Some(v) = line.strip_prefix("n ") {
            f.n = v.trim().parse().context("n")?;
        } else if line.starts_with("measurements") {
            in_measurements = true;
        } else if line.starts_with("errors") {
            in_measurements = false;
        } else if in_measurements
            && let Some((_, ms)) = line.split_once(' ')
            && let Ok(ms) = ms.trim().parse::<f64>()
        {
            f.latencies.push(ms);
        }
    }
    Ok(f)
}

fn parse_results(dir: &Path, clients: usize, seconds: u64) -> anyhow::Result<Level> {
    let mut total = ResultFile::default();
    let mut files = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let f = parse_file(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        total.n += f.n;
        total.n_err += f.n_err;
        total.latencies.extend(f.latencies);
        files += 1;
    }
    if files == 0 {
        bail!("no result files in {}", dir.display());
    }
    total.latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Level {
        clients,
        wps: total.n as f64 / seconds.max(1) as f64,
        p50_ms: percentile(&total.latencies, 0.5),
        p99_ms: percentile(&total.latencies, 0.99),
        max_ms: total.latencies.last().copied().unwrap_or(0.0),
        errors: total.n_err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "n 3\nn_err 1\navg [ms] 2.1\nmax [ms] 4.0\nmin [ms] 0.4\n\
        measurements [timestamp in ns] [ms]\n1795632538590139659 1.5\n\
        1795632538591887161 1.0\n1795632538592915737 4.0\n\nerrors\n";

    #[test]
    fn parses_a_result_file() {
        let f = parse_file(SAMPLE).unwrap();
        assert_eq!(f.n, 3);
        assert_eq!(f.n_err, 1);
        assert_eq!(f.latencies, vec![1.5, 1.0, 4.0]);
    }

    #[test]
    fn sums_the_workers_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0-exec-1"), SAMPLE).unwrap();
        std::fs::write(dir.path().join("1-exec-1"), SAMPLE).unwrap();
        let l = parse_results(dir.path(), 2, 2).unwrap();
        assert_eq!(l.wps, 3.0);
        assert_eq!(l.errors, 2);
        assert_eq!(l.p50_ms, 1.5);
        assert!(parse_results(&dir.path().join("missing"), 1, 1).is_err());
    }
}
