//! Support for the workspace end-to-end tests: the freshly built `cql` and
//! `cqld` binaries, and a [`Testnet`] of real `cqld` processes on 127.0.0.1
//! written by `cql testnet init`. `miner` runs `cql-minerd` processes and
//! `cluster` a database replicated over several of them.
//!
//! Every wait polls with a deadline; nothing sleeps as synchronisation.
#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod cluster;
pub mod miner;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use covenant::client::{Address, Client, ClientOptions, NodeId};
use covenant::core::config::{CONFIG_FILE_NAME, TESTNET_FILE_NAME, TestnetDescriptor};
use tokio::time::Instant;

/// Node-id difficulty of the test networks (fast to mine).
pub const DIFFICULTY: &str = "8";
/// Block period of the test networks.
pub const BP_PERIOD: &str = "200ms";
/// How long a testnet may take to elect a leader, or a restarted node to catch up.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths of the built binaries.
pub struct Binaries {
    /// The command line.
    pub cql: PathBuf,
    /// The block producer.
    pub cqld: PathBuf,
}

/// `target/<profile>` of this test executable (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps folder");
    deps.parent().expect("profile folder").to_path_buf()
}

/// The newest modification time of any source file of the workspace crates.
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(m);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for krate in ["covenant-core", "covenant-client", "covenant-miner"] {
        walk(&root.join(krate).join("src"), &mut newest);
        if let Ok(m) =
            std::fs::metadata(root.join(krate).join("Cargo.toml")).and_then(|m| m.modified())
        {
            newest = newest.max(m);
        }
    }
    newest
}

/// The built `cql`, `cqld` and `cql-minerd` of this test's profile.
///
/// `cargo test` on the workspace builds them before any test runs (they are
/// binaries of packages with integration tests), so normally this only
/// finds them. When one is missing or older than the sources (e.g. after
/// `cargo test -p covenant` alone), it builds them once per test process.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let dir = profile_dir();
        let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let newest = newest_source();
        let fresh = ["cql", "cqld", "cql-minerd"].iter().all(|n| {
            std::fs::metadata(exe(n))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= newest)
        });
        if !fresh {
            let profile = match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_string(),
                Some(other) => other.to_string(),
            };
            let target_dir = dir.parent().expect("target folder");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "covenant-miner",
                    "-p",
                    "covenant-client",
                    "--bins",
                ])
                .args(["--profile", &profile])
                .arg("--target-dir")
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build of cql and cqld failed");
        }
        let b = Binaries {
            cql: exe("cql"),
            cqld: exe("cqld"),
        };
        assert!(
            b.cql.is_file() && b.cqld.is_file(),
            "binaries missing in {}",
            dir.display()
        );
        b
    })
}

/// Runs `cql` with `args`, stdin closed (never interactive).
pub fn cql(args: &[&str]) -> Output {
    Command::new(&binaries().cql)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cql")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `path` as `&str`.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Panics with `what` and the command's output unless it succeeded.
pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Polls `check` every 50 ms until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local testnet written by `cql testnet init`, its `cqld` processes
/// started directly so a test can kill and restart each one. Dropping it
/// kills every process (and prints their logs' ends if the test failed).
pub struct Testnet {
    dir: tempfile::TempDir,
    /// The network as `init` described it.
    pub descriptor: TestnetDescriptor,
    nodes: Vec<Option<Child>>,
}

impl Testnet {
    /// Writes a testnet of `bps` block producers without starting them.
    pub fn init(bps: usize) -> Testnet {
        let dir = tempfile::tempdir().expect("temp dir");
        let net = dir.path().join("net");
        let o = cql(&[
            "testnet",
            "init",
            s(&net),
            "-bps",
            &bps.to_string(),
            "-difficulty",
            DIFFICULTY,
            "-bp-period",
            BP_PERIOD,
        ]);
        assert_ok(&o, "cql testnet init");
        let descriptor =
            TestnetDescriptor::load(&net.join(TESTNET_FILE_NAME)).expect("testnet.yaml");
        assert_eq!(descriptor.block_producers.len(), bps);
        Testnet {
            dir,
            descriptor,
            nodes: (0..bps).map(|_| None).collect(),
        }
    }

    /// Writes and starts a testnet of `bps` block producers and waits until
    /// all of them serve and agree on a leader.
    pub async fn start(bps: usize) -> Testnet {
        let mut net = Testnet::init(bps);
        for i in 0..bps {
            net.spawn(i);
        }
        net.wait_ready().await;
        net
    }

    /// The testnet folder.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// A scratch folder beside the testnet (for user configs).
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Block producer `i`'s folder.
    pub fn bp_dir(&self, i: usize) -> PathBuf {
        self.dir().join(format!("bp_{i}"))
    }

    /// The super client's config file.
    pub fn super_config(&self) -> PathBuf {
        self.dir()
            .join("super_client_config")
            .join(CONFIG_FILE_NAME)
    }

    /// The `testnet.yaml` descriptor.
    pub fn testnet_file(&self) -> PathBuf {
        self.dir().join(TESTNET_FILE_NAME)
    }

    /// Block producer `i`'s node id.
    pub fn node_id(&self, i: usize) -> NodeId {
        self.descriptor.block_producers[i].node_id
    }

    /// The index of block producer `id`.
    pub fn index_of(&self, id: &NodeId) -> usize {
        self.descriptor
            .block_producers
            .iter()
            .position(|bp| bp.node_id == *id)
            .expect("a configured block producer")
    }

    /// Indexes of the running block producers.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    /// Starts `cqld` for block producer `i` (appending to its `cqld.log`).
    pub fn spawn(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "bp_{i} is already running");
        let dir = self.bp_dir(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("cqld.log"))
            .expect("open cqld.log");
        let child = Command::new(&binaries().cqld)
            .arg("-config")
            .arg(dir.join(CONFIG_FILE_NAME))
            .current_dir(&dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start cqld");
        self.nodes[i] = Some(child);
    }

    /// Kills block producer `i` with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self, i: usize) {
        let mut child = self.nodes[i].take().expect("bp is running");
        child.kill().expect("kill cqld");
        child.wait().expect("reap cqld");
    }

    /// The super client through the library, with default options.
    pub fn client(&self) -> Client {
        Client::from_config_file(&self.super_config(), b"").expect("super client")
    }

    /// A client for the config at `path` with short per-call timeouts (for probing).
    pub fn probe(&self, path: &Path) -> Client {
        let options = ClientOptions {
            op_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(1),
            unreachable_timeout: Duration::from_secs(1),
            not_found_grace: None,
        };
        Client::from_config_file_with(path, b"", options).expect("client")
    }

    /// Waits until every running block producer answers and all name the same leader; returns it.
    pub async fn wait_ready(&mut self) -> NodeId {
        let probe = self.probe(&self.super_config());
        let running = self.running();
        let ids: Vec<NodeId> = running.iter().map(|i| self.node_id(*i)).collect();
        for i in &running {
            self.assert_alive(*i);
        }
        poll(
            "every block producer to serve with a common leader",
            START_TIMEOUT,
            || {
                let (probe, ids) = (probe.clone(), ids.clone());
                async move {
                    let mut leader = None;
                    for id in &ids {
                        let info = probe.head_of(*id).await.ok()?;
                        let l = info.leader?;
                        if leader.is_some_and(|x| x != l) || !ids.contains(&l) {
                            return None;
                        }
                        leader = Some(l);
                    }
                    leader
                }
            },
        )
        .await
    }

    /// Panics with its log if block producer `i` has exited.
    pub fn assert_alive(&mut self, i: usize) {
        if let Some(child) = self.nodes[i].as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("bp_{i} exited ({status}); log:\n{}", self.log_tail(i, 40));
        }
    }

    /// The end of block producer `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(self.bp_dir(i).join("cqld.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `cql generate -testnet testnet.yaml` into scratch folder `name`; returns the config and wallet address.
    pub fn generate_user(&self, name: &str) -> (PathBuf, Address) {
        let dir = self.scratch(name);
        let o = cql(&[
            "generate",
            "-testnet",
            s(&self.testnet_file()),
            "-difficulty",
            DIFFICULTY,
            s(&dir),
        ]);
        assert_ok(&o, "cql generate");
        let text = stdout(&o);
        let wallet = text
            .lines()
            .find_map(|l| l.strip_prefix("Wallet address: "))
            .expect("wallet address line")
            .trim()
            .parse()
            .expect("wallet address");
        (dir.join(CONFIG_FILE_NAME), wallet)
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                eprintln!("--- bp_{i} cqld.log (end) ---\n{}", self.log_tail(i, 30));
            }
        }
    }
}
