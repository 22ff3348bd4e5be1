//! A `cql-minerd` process for the end-to-end tests: generated with
//! `cql generate -miner`, configured (`TargetUsers`, `SQLChainPeriod`),
//! started with `METRIC_WEB_ADDR`, killed (SIGKILL) and restarted. Its
//! stderr/stdout go to `minerd.log` in its folder; dropping it kills the
//! process and, if the test failed, prints the log's end. [`DbNet`] is the
//! seed's whole set-up up to a created database, shared by the `t2x` tests.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use covenant::client::core::api::chain::GetProvider;
use covenant::client::{Address, Client, NodeId};
use covenant::core::config::{CONFIG_FILE_NAME, Config};

use super::{DIFFICULTY, Testnet, assert_ok, binaries, cql, s, stdout};

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// One miner: its folder, identity and (when running) process.
pub struct Miner {
    /// The miner's folder (config.yaml, private.key, data, minerd.log).
    pub dir: PathBuf,
    /// Its wallet address.
    pub wallet: Address,
    /// Where it listens.
    pub addr: String,
    /// Where it serves `/debug/vars`.
    pub metrics_addr: String,
    child: Option<Child>,
}

impl Miner {
    /// `cql generate -miner 127.0.0.1:<free port> -testnet ... -difficulty 8` into scratch folder `name`.
    pub fn generate(net: &Testnet, name: &str) -> Miner {
        let dir = net.scratch(name);
        let addr = format!("127.0.0.1:{}", free_port());
        let o = cql(&[
            "generate",
            "-miner",
            &addr,
            "-testnet",
            s(&net.testnet_file()),
            "-difficulty",
            DIFFICULTY,
            s(&dir),
        ]);
        assert_ok(&o, "cql generate -miner");
        let wallet = stdout(&o)
            .lines()
            .find_map(|l| l.strip_prefix("Wallet address: "))
            .expect("wallet address line")
            .trim()
            .parse()
            .expect("wallet address");
        Miner {
            dir,
            wallet,
            addr,
            metrics_addr: format!("127.0.0.1:{}", free_port()),
            child: None,
        }
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE_NAME)
    }

    /// Sets `Miner.TargetUsers` and `SQLChainPeriod` in the config.
    pub fn configure(&self, target_users: &[Address], sql_chain_period: Duration) {
        let path = self.config_path();
        let mut config = Config::load(&path).expect("load miner config");
        config.sql_chain_period = sql_chain_period;
        let miner = config.miner.as_mut().expect("a Miner section");
        miner.target_users = target_users.to_vec();
        config.save(&path).expect("save miner config");
    }

    /// Its node id (`ThisNodeID` in the config).
    pub fn node_id(&self) -> NodeId {
        Config::load(&self.config_path())
            .expect("load miner config")
            .this_node_id
            .expect("a ThisNodeID")
    }

    /// Whether the process was started and not killed (it may have exited).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The miner's `RootDir`, resolved.
    pub fn root_dir(&self) -> PathBuf {
        Config::load(&self.config_path())
            .expect("load miner config")
            .resolved_miner()
            .expect("a Miner section")
            .root_dir
    }

    /// Starts `cql-minerd -config config.yaml` (appending to `minerd.log`).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "the miner is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("minerd.log"))
            .expect("open minerd.log");
        let exe = binaries()
            .cql
            .with_file_name(format!("cql-minerd{}", std::env::consts::EXE_SUFFIX));
        let child = Command::new(exe)
            .arg("-config")
            .arg(self.config_path())
            .current_dir(&self.dir)
            .env("METRIC_WEB_ADDR", &self.metrics_addr)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start cql-minerd");
        self.child = Some(child);
    }

    /// Kills the miner with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the miner is running");
        child.kill().expect("kill cql-minerd");
        child.wait().expect("reap cql-minerd");
    }

    /// Panics with the log if the miner has exited.
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("cql-minerd exited ({status}); log:\n{}", self.log_tail(40));
        }
    }

    /// The end of the miner's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("minerd.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `GET path` on the metrics address (plain HTTP/1.1); the body, if the status is 200.
    pub fn http_get(&self, path: &str) -> Option<String> {
        self.http_status(path)
            .and_then(|(status, body)| (status == 200).then_some(body))
    }

    /// `GET path` on the metrics address: the status and the body.
    pub fn http_status(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(&self.metrics_addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics_addr
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        Some((status, body.to_string()))
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- cql-minerd log (end) ---\n{}", self.log_tail(60));
        }
    }
}

/// `SQLChainPeriod` of the test miners, so blocks appear quickly.
pub const SQL_CHAIN_PERIOD: Duration = Duration::from_millis(200);

/// Sends 100 000 000 Particle from the super client to `to`, waiting for confirmation.
pub fn fund(net: &Testnet, to: &Address) {
    let o = cql(&[
        "transfer",
        "-config",
        s(&net.super_config()),
        "-to-user",
        &to.to_string(),
        "-amount",
        "100000000",
        "-token",
        "Particle",
        "-wait-tx-confirm",
    ]);
    assert_ok(&o, "cql transfer (funding)");
}

/// Polls until the main chain holds `wallet`'s `ProvideService` offer.
pub async fn wait_provider(net: &Testnet, wallet: &Address) {
    let chain = net.client();
    let wallet = *wallet;
    super::poll(
        "the miner's ProvideService on chain",
        Duration::from_secs(30),
        || {
            let chain = chain.clone();
            async move { chain.call::<GetProvider>(&wallet).await.ok().flatten() }
        },
    )
    .await;
}

/// `cql create -config USER_CFG -wait-tx-confirm -db-node <miners> -db-target-miners <miners> EXTRA...`;
/// returns the DSN it printed and its output.
pub fn create_database(user_cfg: &Path, miners: &[Address], extra: &[&str]) -> (String, Output) {
    let nodes = miners.len().to_string();
    let targets = miners.iter().map(|m| format!("{m}, ")).collect::<String>();
    let mut args = vec![
        "create",
        "-config",
        s(user_cfg),
        "-wait-tx-confirm",
        "-db-node",
        &nodes,
        "-db-target-miners",
        &targets,
    ];
    args.extend_from_slice(extra);
    let o = cql(&args);
    assert_ok(&o, "cql create");
    let out = stdout(&o);
    let dsn = out
        .lines()
        .find_map(|l| l.strip_prefix("The newly created database is: \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no DSN line in:\n{out}"))
        .to_string();
    (dsn, o)
}

/// The seed's set-up: one block producer, one miner serving only `user`
/// (funded, its offer on chain), and a database `user` created on it with
/// `cql create -wait-tx-confirm`.
pub struct DbNet {
    /// The miner (declared first: dropped before the testnet).
    pub miner: Miner,
    /// The main chain.
    pub net: Testnet,
    /// The owner's config file.
    pub user_cfg: PathBuf,
    /// The owner's wallet.
    pub user: Address,
    /// `covenantsql://<id>` as `cql create` printed it.
    pub dsn: String,
    /// What `cql create` printed.
    pub create_output: Output,
}

impl DbNet {
    /// Runs the set-up; panics with the processes' logs if a step fails.
    pub async fn start() -> DbNet {
        let net = Testnet::start(1).await;
        let mut miner = Miner::generate(&net, "miner");
        let (user_cfg, user) = net.generate_user("user");
        miner.configure(&[user], SQL_CHAIN_PERIOD);
        fund(&net, &miner.wallet);
        fund(&net, &user);
        miner.spawn();
        wait_provider(&net, &miner.wallet).await;
        miner.assert_alive();
        let (dsn, o) = create_database(&user_cfg, &[miner.wallet], &[]);
        DbNet {
            miner,
            net,
            user_cfg,
            user,
            dsn,
            create_output: o,
        }
    }

    /// The owner's client.
    pub fn user_client(&self) -> Client {
        Client::from_config_file(&self.user_cfg, b"").expect("user client")
    }

    /// `cql console -config CONFIG -command SQL DSN`.
    pub fn console(&self, config: &Path, sql: &str) -> Output {
        cql(&["console", "-config", s(config), "-command", sql, &self.dsn])
    }
}
