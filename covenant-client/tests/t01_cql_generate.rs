//! `cql generate`, `help` and `version`, run as the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use covenant_core::config::{BlockProducerInfo, Config, NodeRole, TestnetDescriptor};
use covenant_core::crypto::{NodeId, Nonce, PrivateKey, read_key_file};

/// Runs `cql` with stdin closed (so it is not interactive).
fn cql(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cql"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cql")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What `cql generate` printed, checked line by line against the seed's shape.
struct Printed {
    nonce: Nonce,
    difficulty: u32,
    node_id: NodeId,
    public_key_hex: String,
    wallet: String,
}

fn parse_output(text: &str, dir: &Path, first_line: Option<&str>) -> Printed {
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(first) = first_line {
        assert_eq!(lines.remove(0), first, "{text}");
    }
    assert_eq!(lines.len(), 13, "{text}");
    assert_eq!(lines[0], "Generating key pair...");
    assert_eq!(lines[1], "Generated private key.");
    assert_eq!(lines[2], "Generating nonce...");
    // nonce: {{a b c d} difficulty id}
    let inner = lines[3]
        .strip_prefix("nonce: {{")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("bad nonce line {:?}", lines[3]));
    let (words, rest) = inner.split_once("} ").unwrap();
    let n: Vec<u64> = words.split(' ').map(|w| w.parse().unwrap()).collect();
    let (difficulty, id) = rest.split_once(' ').unwrap();
    let node_id: NodeId = id.parse().unwrap();
    assert_eq!(lines[4], format!("node id: {node_id}"));
    assert_eq!(lines[5], "Generated nonce.");
    assert_eq!(lines[6], "Generating config file...");
    assert_eq!(lines[7], "Generated config.");
    assert_eq!(lines[8], "");
    assert_eq!(
        lines[9],
        format!("Config file:      {}", dir.join("config.yaml").display())
    );
    assert_eq!(
        lines[10],
        format!("Private key file: {}", dir.join("private.key").display())
    );
    let public_key_hex = lines[11].strip_prefix("Public key's hex: ").unwrap();
    assert_eq!(public_key_hex.len(), 66);
    let wallet = lines[12].strip_prefix("Wallet address: ").unwrap();
    assert_eq!(wallet.len(), 64);
    Printed {
        nonce: Nonce {
            a: n[0],
            b: n[1],
            c: n[2],
            d: n[3],
        },
        difficulty: difficulty.parse().unwrap(),
        node_id,
        public_key_hex: public_key_hex.to_string(),
        wallet: wallet.to_string(),
    }
}

/// Loads the generated config and key and checks they agree with what was printed.
fn check_identity(dir: &Path, printed: &Printed, min_difficulty: u32) -> Config {
    let config = Config::load(&dir.join("config.yaml")).unwrap();
    let key = read_key_file(&config.private_key_path(), b"").unwrap();
    let pk = key.public_key();
    assert_eq!(pk.to_hex(), printed.public_key_hex);
    assert_eq!(pk.address().to_hex(), printed.wallet);
    assert_eq!(config.this_node_id, Some(printed.node_id));
    assert_eq!(config.nonce, Some(printed.nonce));
    assert_eq!(config.wallet_address, Some(pk.address()));
    printed
        .node_id
        .verify(&pk, &printed.nonce, min_difficulty)
        .unwrap();
    assert_eq!(printed.node_id.difficulty(), printed.difficulty);
    assert_eq!(config.private_key_file, PathBuf::from("private.key"));
    let me = config.self_node().expect("own KnownNodes entry");
    assert_eq!(me.public_key, pk);
    assert_eq!(me.nonce, printed.nonce);
    config.verify_identity(&pk).unwrap();
    config
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn generate_miner_config_like_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("miner_config");
    let out = cql(&[
        "generate",
        "-miner",
        "127.0.0.1:7458",
        "-difficulty",
        "12",
        path_str(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = parse_output(&stdout(&out), &dir, None);
    assert!(printed.difficulty >= 12);
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("private.key")), 0o600);

    let config = check_identity(&dir, &printed, 12);
    assert_eq!(config.listen_addr.as_deref(), Some("127.0.0.1:7458"));
    let miner = config.miner.as_ref().expect("Miner section");
    assert_eq!(miner.root_dir, Path::new("./data"));
    assert_eq!(miner.max_req_time_gap.as_secs(), 300);
    assert_eq!(miner.provide_service_interval.as_secs(), 10);
    assert!(miner.target_users.is_empty());
    assert_eq!(
        config.resolved_miner().unwrap().root_dir,
        dir.join("./data")
    );
    let me = config.self_node().unwrap();
    assert_eq!(me.role, NodeRole::Miner);
    assert_eq!(me.addr.as_deref(), Some("127.0.0.1:7458"));
    assert_eq!(config.min_node_id_difficulty, 24);
    let yaml = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    for line in [
        "Miner:",
        "  RootDir: ./data",
        "  MaxReqTimeGap: 5m",
        "  ProvideServiceInterval: 10s",
        "ListenAddr: 127.0.0.1:7458",
        "PrivateKeyFile: private.key",
    ] {
        assert!(
            yaml.lines().any(|l| l == line),
            "missing {line:?} in\n{yaml}"
        );
    }
}

#[test]
fn generate_refuses_to_overwrite_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = cql(&["generate", "-difficulty", "8", path_str(dir)]);
    assert!(first.status.success(), "{}", stderr(&first));
    let config_before = std::fs::read(dir.join("config.yaml")).unwrap();
    let key_before = std::fs::read(dir.join("private.key")).unwrap();

    let again = cql(&["generate", "-difficulty", "8", path_str(dir)]);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(
        err.contains(&dir.join("config.yaml").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("pick another DIR") && err.contains("delete"),
        "{err}"
    );
    assert!(stdout(&again).is_empty(), "nothing should be generated");
    assert_eq!(
        std::fs::read(dir.join("config.yaml")).unwrap(),
        config_before
    );
    assert_eq!(std::fs::read(dir.join("private.key")).unwrap(), key_before);

    // The key alone is protected too.
    std::fs::remove_file(dir.join("config.yaml")).unwrap();
    let again = cql(&["generate", "-difficulty", "8", path_str(dir)]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(&dir.join("private.key").display().to_string()),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(dir.join("private.key")).unwrap(), key_before);
    assert!(!dir.join("config.yaml").exists());
}

#[test]
fn generate_client_config_with_double_dash_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("client_config");
    let out = cql(&["generate", "--difficulty", "8", path_str(&dir)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = parse_output(&stdout(&out), &dir, None);
    let config = check_identity(&dir, &printed, 8);
    assert!(config.miner.is_none());
    assert!(config.listen_addr.is_none());
    assert_eq!(config.self_node().unwrap().role, NodeRole::Client);

    let dir = tmp.path().join("miner2");
    let out = cql(&[
        "generate",
        "--miner",
        "127.0.0.1:7459",
        "--difficulty=8",
        path_str(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = parse_output(&stdout(&out), &dir, None);
    let config = check_identity(&dir, &printed, 8);
    assert_eq!(config.listen_addr.as_deref(), Some("127.0.0.1:7459"));
    assert!(config.miner.is_some());
}

#[test]
fn generate_with_a_password_needs_it_to_open_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cql(&[
        "generate",
        "-password",
        "s3cret",
        "-difficulty",
        "8",
        path_str(tmp.path()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = tmp.path().join("private.key");
    assert!(read_key_file(&key, b"").is_err());
    read_key_file(&key, b"s3cret").unwrap();
}

#[test]
fn generate_copies_a_testnet_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let bps: Vec<BlockProducerInfo> = (0..3)
        .map(|i| {
            let pk = PrivateKey::generate().unwrap().public_key();
            let nonce = Nonce::default();
            BlockProducerInfo {
                node_id: NodeId::compute(&pk, &nonce),
                addr: format!("127.0.0.1:{}", 7000 + i),
                public_key: pk,
                nonce,
            }
        })
        .collect();
    let mut descriptor = TestnetDescriptor::new(bps.clone());
    descriptor.name = Some("local".into());
    descriptor.min_node_id_difficulty = Some(0);
    descriptor.bp_period = Some(std::time::Duration::from_secs(2));
    let file = tmp.path().join("testnet.yaml");
    descriptor.save(&file).unwrap();

    let dir = tmp.path().join("cfg");
    let out = cql(&[
        "generate",
        "-testnet",
        path_str(&file),
        "-difficulty",
        "8",
        path_str(&dir),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = parse_output(&stdout(&out), &dir, Some("Generating testnet local config"));
    let config = check_identity(&dir, &printed, 8);
    assert_eq!(config.block_producers, bps);
    assert_eq!(config.min_node_id_difficulty, 0);
    assert_eq!(config.bp_period.as_secs(), 2);

    // A bare name that is no file is refused with a pointer to descriptors.
    let out = cql(&["generate", "-testnet", "w", path_str(&tmp.path().join("w"))]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unknown testnet w") && err.contains("testnet.yaml"),
        "{err}"
    );
    assert!(!tmp.path().join("w").exists(), "nothing created");
}

#[test]
fn bad_flags_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x");
    let out = cql(&["generate", "-miner", "nohost", path_str(&dir)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("-miner") && err.contains("nohost"), "{err}");
    assert!(!dir.exists());

    let out = cql(&["generate", "-bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_and_version() {
    let out = cql(&["help", "generate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Usage: cql generate"), "{text}");
    for flag in [
        "--miner",
        "--testnet",
        "--difficulty",
        "--with-password",
        "[DIR]",
    ] {
        assert!(text.contains(flag), "missing {flag} in {text}");
    }

    let out = cql(&["-h"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in ["generate", "idminer", "version", "help"] {
        assert!(text.contains(sub), "missing {sub} in {text}");
    }

    let out = cql(&["generate", "-help"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("Usage: cql generate"));

    let out = cql(&["version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with(&format!("cql {}", env!("CARGO_PKG_VERSION"))));
}
