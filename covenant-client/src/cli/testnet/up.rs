//! `cql testnet up DIR`: runs one `cqld` per block producer of a testnet
//! written by `init`, waits until all of them serve and a leader is elected,
//! then stays in the foreground. Ctrl-C or SIGTERM stops the children
//! cleanly (SIGTERM, a grace period, then SIGKILL) and exits 0; a child that
//! dies is reported with the end of its log and a non-zero exit.

use std::fs::OpenOptions;
use std::io::{Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use clap::Args;
use covenant_core::config::{CONFIG_FILE_NAME, TESTNET_FILE_NAME, TestnetDescriptor};
use covenant_core::crypto::NodeId;
use tokio::time::Instant;

use super::super::error::CliError;
use super::super::{GlobalArgs, open_client_with, runtime};
use super::{SUPER_CLIENT_DIR, bp_dir_name};
use crate::{Client, ClientOptions};

/// The block producer binary.
const CQLD: &str = "cqld";
/// How long stopped children get to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often children and block producers are checked.
const POLL: Duration = Duration::from_millis(100);
/// Log lines shown when a child fails.
const TAIL_LINES: usize = 20;

/// Arguments of `cql testnet up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Folder written by `cql testnet init`
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// How long to wait for every block producer to serve and elect a leader
    #[arg(long = "start-timeout", value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    start_timeout: Duration,
}

/// One running block producer.
struct Node {
    name: String,
    node_id: NodeId,
    addr: String,
    log: PathBuf,
    child: Child,
}

/// The children; whatever is still running when dropped is killed.
struct Nodes(Vec<Node>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.0 {
            if matches!(n.child.try_wait(), Ok(None)) {
                let _ = n.child.kill();
                let _ = n.child.wait();
            }
        }
    }
}

impl Nodes {
    /// The first child that has exited, with its status.
    fn exited(&mut self) -> Option<(usize, ExitStatus)> {
        self.0
            .iter_mut()
            .enumerate()
            .find_map(|(i, n)| n.child.try_wait().ok().flatten().map(|s| (i, s)))
    }

    /// The failure of child `i`: `reason` and the end of its log.
    fn failure(&self, i: usize, reason: String) -> CliError {
        match self.0.get(i) {
            Some(n) => CliError::NodeFailed {
                name: n.name.clone(),
                reason,
                log: n.log.clone(),
                tail: log_tail(&n.log, TAIL_LINES),
            },
            None => CliError::NodeFailed {
                name: format!("block producer {i}"),
                reason,
                log: PathBuf::new(),
                tail: String::new(),
            },
        }
    }

    /// SIGTERM to every child still running, then SIGKILL after the grace period.
    async fn stop(&mut self) {
        for n in &mut self.0 {
            if matches!(n.child.try_wait(), Ok(None)) {
                terminate(&mut n.child);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self
                .0
                .iter_mut()
                .all(|n| !matches!(n.child.try_wait(), Ok(None)))
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        for n in &mut self.0 {
            if matches!(n.child.try_wait(), Ok(None)) {
                tracing::warn!(node = %n.name, "did not stop after SIGTERM; killing it");
                let _ = n.child.kill();
                let _ = n.child.wait();
            }
        }
    }
}

/// Asks `child` to stop: SIGTERM on unix, a kill elsewhere.
fn terminate(child: &mut Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) has no memory effects; `pid` is our own unreaped child,
            // so it cannot have been recycled for another process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            return;
        }
    }
    let _ = child.kill();
}

/// The last `lines` lines of `path` (at most 64 KiB are read).
fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let Ok(mut f) = std::fs::File::open(path) else {
        return "(no log)".to_string();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    // An error printed with RUST_BACKTRACE set ends in frames; the error is above them.
    let text = match text.rfind("Stack backtrace:") {
        Some(cut) => &text[..cut],
        None => &text[..],
    };
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `cqld` next to the running executable, else on `PATH`.
fn find_cqld() -> Result<PathBuf, CliError> {
    let file = format!("{CQLD}{}", std::env::consts::EXE_SUFFIX);
    let next_to = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&file)))
        .unwrap_or_else(|| PathBuf::from(&file));
    if next_to.is_file() {
        return Ok(next_to);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
    });
    on_path.ok_or(CliError::BinaryNotFound {
        name: CQLD,
        package: "covenant-miner",
        next_to,
    })
}

pub(crate) fn run(args: &UpArgs, global: &GlobalArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let dir = std::path::absolute(&args.dir).map_err(|error| CliError::Io {
        action: "resolve",
        path: args.dir.clone(),
        error,
    })?;
    let descriptor = TestnetDescriptor::load(&dir.join(TESTNET_FILE_NAME))?;
    let configs: Vec<PathBuf> = (0..descriptor.block_producers.len())
        .map(|i| dir.join(bp_dir_name(i)).join(CONFIG_FILE_NAME))
        .collect();
    if let Some(missing) = configs.iter().find(|p| !p.is_file()) {
        return Err(CliError::Io {
            action: "find",
            path: missing.clone(),
            error: std::io::Error::other(
                "it is missing; was this folder written by `cql testnet init`?",
            ),
        });
    }
    let cqld = find_cqld()?;
    let super_config = dir.join(SUPER_CLIENT_DIR).join(CONFIG_FILE_NAME);
    let probe = open_client_with(Some(&super_config), global, probe_options())?;
    let rt = runtime()?;
    rt.block_on(async {
        let mut signals = Signals::new()?;
        let mut nodes = Nodes(Vec::new());
        for (i, (config, bp)) in configs.iter().zip(&descriptor.block_producers).enumerate() {
            let node = spawn(&cqld, i, config, bp.node_id, &bp.addr)?;
            nodes.0.push(node);
        }
        let leader = tokio::select! {
            ready = wait_ready(&probe, &mut nodes, args.start_timeout) => ready,
            _ = signals.recv() => {
                nodes.stop().await;
                return Ok(());
            }
        };
        let leader = match leader {
            Ok(l) => l,
            Err(e) => {
                nodes.stop().await;
                return Err(e);
            }
        };
        print_up(out, &nodes, leader)?;
        let outcome = tokio::select! {
            _ = signals.recv() => Ok(()),
            failed = watch(&mut nodes) => Err(failed),
        };
        nodes.stop().await;
        if outcome.is_ok() {
            writeln!(out, "testnet stopped").map_err(CliError::Output)?;
        }
        outcome
    })
}

fn print_up(out: &mut dyn Write, nodes: &Nodes, leader: NodeId) -> Result<(), CliError> {
    let out_err = CliError::Output;
    writeln!(
        out,
        "testnet up: {} block producers serving (leader {leader})",
        nodes.0.len()
    )
    .map_err(out_err)?;
    for n in &nodes.0 {
        writeln!(
            out,
            "  {}  {}  {}  log: {}",
            n.name,
            n.addr,
            n.node_id,
            n.log.display()
        )
        .map_err(out_err)?;
    }
    writeln!(out, "Press Ctrl-C to stop.").map_err(out_err)?;
    out.flush().map_err(out_err)
}

/// Starts `cqld -config CONFIG` in the config's folder, logging to `cqld.log` there.
fn spawn(
    cqld: &Path,
    i: usize,
    config: &Path,
    node_id: NodeId,
    addr: &str,
) -> Result<Node, CliError> {
    let folder = config.parent().unwrap_or(Path::new(".")).to_path_buf();
    let log = folder.join("cqld.log");
    let io = |action, path: &Path, error| CliError::Io {
        action,
        path: path.to_path_buf(),
        error,
    };
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| io("open log", &log, e))?;
    let err_file = file.try_clone().map_err(|e| io("open log", &log, e))?;
    let mut command = Command::new(cqld);
    command
        .arg("-config")
        .arg(config)
        .current_dir(&folder)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err_file);
    #[cfg(unix)]
    {
        // Own process group: a terminal's Ctrl-C reaches only `cql`, which stops
        // the children in order.
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
    }
    let child = command.spawn().map_err(|e| io("start", cqld, e))?;
    tracing::info!(node = i, pid = child.id(), %addr, "started cqld");
    Ok(Node {
        name: bp_dir_name(i),
        node_id,
        addr: addr.to_string(),
        log,
        child,
    })
}

/// Polls every block producer until all answer and agree on a leader.
async fn wait_ready(
    probe: &Client,
    nodes: &mut Nodes,
    timeout: Duration,
) -> Result<NodeId, CliError> {
    let deadline = Instant::now() + timeout;
    let ids: Vec<NodeId> = nodes.0.iter().map(|n| n.node_id).collect();
    loop {
        if let Some((i, status)) = nodes.exited() {
            return Err(nodes.failure(i, format!("exited during start-up ({status})")));
        }
        let mut leaders = Vec::with_capacity(ids.len());
        for id in &ids {
            match probe.head_of(*id).await {
                Ok(info) => leaders.push(info.leader),
                Err(_) => break,
            }
        }
        if leaders.len() == ids.len()
            && let Some(Some(leader)) = leaders.first()
            && leaders.iter().all(|l| *l == Some(*leader))
        {
            return Ok(*leader);
        }
        if Instant::now() >= deadline {
            let i = leaders.len().min(ids.len().saturating_sub(1));
            let reason = if leaders.len() < ids.len() {
                format!("does not answer after {timeout:?}")
            } else {
                format!("block producers elected no common leader within {timeout:?}")
            };
            return Err(nodes.failure(i, reason));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Returns when a child exits, as its failure.
async fn watch(nodes: &mut Nodes) -> CliError {
    loop {
        if let Some((i, status)) = nodes.exited() {
            return nodes.failure(i, format!("exited unexpectedly ({status})"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Ctrl-C and (on unix) SIGTERM.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(CliError::Runtime)?,
        })
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Options for the start-up probe: short calls, it polls anyway.
fn probe_options() -> ClientOptions {
    ClientOptions {
        op_timeout: Duration::from_secs(2),
        call_timeout: Duration::from_secs(1),
        unreachable_timeout: Duration::from_secs(1),
        not_found_grace: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.log");
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let tail = log_tail(&p, 3);
        assert_eq!(tail, "line 47\nline 48\nline 49");
        assert_eq!(log_tail(&tmp.path().join("none"), 3), "(no log)");
        let crash = "starting\nError: cannot listen on 127.0.0.1:9\n\nStack backtrace:\n   0: main\n   1: start\n";
        std::fs::write(&p, crash).unwrap();
        assert_eq!(
            log_tail(&p, 2),
            "starting\nError: cannot listen on 127.0.0.1:9"
        );
    }

    #[test]
    fn missing_cqld_names_both_places_and_the_build_command() {
        let e = CliError::BinaryNotFound {
            name: CQLD,
            package: "covenant-miner",
            next_to: PathBuf::from("/x/cqld"),
        };
        let m = e.to_string();
        assert!(m.contains("/x/cqld") && m.contains("PATH"), "{m}");
        assert!(m.contains("cargo build --release -p covenant-miner"), "{m}");
    }
}
