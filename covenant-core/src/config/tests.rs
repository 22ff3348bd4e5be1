use std::time::{Duration, SystemTime};

use super::*;
use crate::crypto::PrivateKey;
use crate::types::{Balances, Token};

fn identity(seed: u8) -> (PublicKey, Nonce, NodeId) {
    let mut b = [0u8; 32];
    b[31] = seed;
    let pk = PrivateKey::from_bytes(&b).unwrap().public_key();
    let nonce = Nonce {
        a: u64::from(seed),
        b: 0,
        c: 0,
        d: 7,
    };
    (pk, nonce, NodeId::compute(&pk, &nonce))
}

fn bp(seed: u8, addr: &str) -> BlockProducerInfo {
    let (public_key, nonce, node_id) = identity(seed);
    BlockProducerInfo {
        node_id,
        addr: addr.to_string(),
        public_key,
        nonce,
    }
}

/// A config using every section, with difficulty 0 so the made-up BP ids pass.
fn full_config() -> Config {
    let mut c = Config {
        min_node_id_difficulty: 0,
        listen_addr: Some("127.0.0.1:7458".into()),
        bp_period: Duration::from_secs(3),
        block_producers: vec![bp(1, "127.0.0.1:7001"), bp(2, "bp.example.com:7002")],
        genesis: Some(GenesisConfig {
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            accounts: vec![GenesisAccount {
                address: identity(3).0.address(),
                balances: Balances::new()
                    .with(Token::Particle, 10_000)
                    .with(Token::Wave, 5),
            }],
        }),
        miner: Some(MinerConfig {
            target_users: vec![identity(4).0.address()],
            ..MinerConfig::default()
        }),
        adapter: Some(AdapterConfig {
            certificate_path: Some("server.pem".into()),
            private_key_path: Some("/etc/covenant/server.key".into()),
            admin_certs: vec!["admin.pem".into()],
            storage_root: Some("adapter-data".into()),
            ..AdapterConfig::default()
        }),
        ..Config::default()
    };
    let (pk, nonce, _) = identity(5);
    c.set_identity(&pk, nonce);
    c
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path)
}

/// Asserts loading `text` fails and the message names `key`; returns the message.
fn error_naming(text: &str, key: &str) -> String {
    let err = load_text(text).unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}\n");
    assert!(msg.contains(key), "error should name {key}: {msg}");
    assert_eq!(err.key(), Some(key), "{msg}");
    assert_eq!(err.code(), ErrorCode::Config);
    msg
}

#[test]
fn round_trip_through_yaml_and_disk() {
    let c = full_config();
    let yaml = c.to_yaml().unwrap();
    for key in [
        "ThisNodeID:",
        "Nonce:",
        "WalletAddress:",
        "BPPeriod: 3s",
        "SQLChainPeriod: 1s",
        "MaxReqTimeGap: 5m",
        "ProvideServiceInterval: 10s",
        "RootDir: ./data",
        "StorageDriver: covenantsql",
    ] {
        assert!(yaml.contains(key), "missing {key} in\n{yaml}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    c.save(&path).unwrap();
    let back = Config::load(&path).unwrap();
    assert_eq!(back.config_dir(), dir.path());
    let mut expected = c.clone();
    expected.set_config_dir(dir.path());
    assert_eq!(back, expected);
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn ids_made_of_digits_survive_yaml() {
    // A node id of only digits must not come back as a number.
    let digits = "0000000000000000000000000000000000000000000000000000000000001234";
    let text = format!("WalletAddress: '{digits}'\n");
    let c = Config::from_yaml_str(&text, Path::new("/x")).unwrap();
    let back = Config::from_yaml_str(&c.to_yaml().unwrap(), Path::new("/x")).unwrap();
    assert_eq!(back.wallet_address.unwrap().to_hex(), digits);
}

#[test]
fn defaults_for_an_empty_file() {
    let c = Config::from_yaml_str("{}", Path::new("/cfg")).unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.bp_period, Duration::from_secs(1));
    assert_eq!(c.sql_chain_period, Duration::from_secs(1));
    assert_eq!(c.billing_block_count, 60);
    assert_eq!(c.min_node_id_difficulty, 24);
    assert_eq!(c.min_provider_deposit, 1_000_000);
    assert_eq!(c.private_key_path(), Path::new("/cfg/private.key"));
    assert_eq!(c.working_root(), Path::new("/cfg"));
    assert!(c.miner.is_none() && c.adapter.is_none() && c.known_nodes.is_empty());
    assert_eq!(c.role(), NodeRole::Client);

    let m = Config::from_yaml_str("Miner: {}\nAdapter: {}\n", Path::new("/cfg")).unwrap();
    let miner = m.miner.unwrap();
    assert_eq!(miner.root_dir, Path::new("./data"));
    assert_eq!(miner.max_req_time_gap, Duration::from_secs(300));
    assert_eq!(miner.provide_service_interval, Duration::from_secs(10));
    let adapter = m.adapter.unwrap();
    assert_eq!(adapter.listen_addr, "127.0.0.1:4661");
    assert_eq!(adapter.storage_driver, StorageDriver::Covenant);
    assert!(!adapter.tls_enabled());
}

#[test]
fn seed_miner_section_parses() {
    // The seed's hand edit of a miner config.
    let text = "Miner:\n  RootDir: './data'\n  MaxReqTimeGap: '5m'\n  ProvideServiceInterval: '10s'\n  \
                TargetUsers: ['eb46e59dbc4eac17b51762f051937a0082ff7423742866e4baff6c6053719451']\n";
    let c = Config::from_yaml_str(text, Path::new("/m")).unwrap();
    let m = c.resolved_miner().unwrap();
    assert_eq!(m.root_dir, Path::new("/m/./data"));
    assert_eq!(m.target_users.len(), 1);
    assert_eq!(
        m.target_users[0].to_hex(),
        "eb46e59dbc4eac17b51762f051937a0082ff7423742866e4baff6c6053719451"
    );
    assert_eq!(c.role(), NodeRole::Miner);
}

#[test]
fn relative_paths_resolve_against_the_config_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("node");
    std::fs::create_dir(&sub).unwrap();
    let mut c = full_config();
    c.working_root = Some("state".into());
    c.save(&sub.join("config.yaml")).unwrap();
    // Load through a relative path from elsewhere: resolution uses the file's folder.
    let back = Config::load(&sub.join("config.yaml")).unwrap();
    assert_eq!(
        back.private_key_file,
        Path::new("private.key"),
        "kept as written"
    );
    assert_eq!(back.private_key_path(), sub.join("private.key"));
    assert_eq!(back.working_root(), sub.join("state"));
    assert_eq!(back.resolved_miner().unwrap().root_dir, sub.join("./data"));
    let a = back.resolved_adapter().unwrap();
    assert_eq!(a.certificate_path.unwrap(), sub.join("server.pem"));
    assert_eq!(
        a.private_key_path.unwrap(),
        Path::new("/etc/covenant/server.key")
    );
    assert_eq!(a.admin_certs, vec![sub.join("admin.pem")]);
    assert_eq!(a.storage_root.unwrap(), sub.join("adapter-data"));
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let msg = error_naming("BPPeriod: 1s\nBogus: 1\n", "Bogus");
    assert!(msg.contains("line 2"), "{msg}");
    error_naming(
        "Miner:\n  RootDir: ./data\n  RootDirr: x\n",
        "Miner.RootDirr",
    );
    error_naming(
        "Adapter:\n  ListenAddr: 127.0.0.1:1\n  AdminCert: []\n",
        "Adapter.AdminCert",
    );
}

#[test]
fn bad_values_are_named_with_their_path() {
    let msg = error_naming("BPPeriod: soon\n", "BPPeriod");
    assert!(msg.contains("soon") && msg.contains("line 1"), "{msg}");
    error_naming("Miner:\n  MaxReqTimeGap: 5\n", "Miner.MaxReqTimeGap");
    error_naming("BillingBlockCount: many\n", "BillingBlockCount");
    error_naming("ThisNodeID: abc\n", "ThisNodeID");
    error_naming("Miner:\n  TargetUsers: ['zz']\n", "Miner.TargetUsers[0]");
    error_naming(
        "Nonce: {a: 1, b: -2, c: 0, d: 0}\nThisNodeID: 0000000000000000000000000000000000000000000000000000000000000000\n",
        "Nonce.b",
    );
    error_naming(
        "Adapter:\n  StorageDriver: mysql\n",
        "Adapter.StorageDriver",
    );
    error_naming("Genesis:\n  Timestamp: yesterday\n", "Genesis.Timestamp");
    let (pk, nonce, id) = identity(9);
    let text = format!(
        "KnownNodes:\n- ID: {id}\n  Role: Boss\n  PublicKey: {pk}\n  Nonce: {{a: {}, b: 0, c: 0, d: 7}}\n",
        nonce.a
    );
    error_naming(&text, "KnownNodes[0].Role");
}

#[test]
fn validation_failures_name_the_key() {
    error_naming("BPPeriod: 0s\n", "BPPeriod");
    error_naming("SQLChainPeriod: 0s\n", "SQLChainPeriod");
    error_naming("BillingBlockCount: 0\n", "BillingBlockCount");
    error_naming("ListenAddr: localhost\n", "ListenAddr");
    error_naming(
        "Miner:\n  ProvideServiceInterval: 0s\n",
        "Miner.ProvideServiceInterval",
    );
    error_naming("Adapter:\n  ListenAddr: 'nohost'\n", "Adapter.ListenAddr");
    error_naming(
        "Adapter:\n  CertificatePath: a.pem\n",
        "Adapter.PrivateKeyPath",
    );
    error_naming("Version: 2\n", "Version");
    error_naming(
        "ThisNodeID: 0000000000000000000000000000000000000000000000000000000000000000\n",
        "Nonce",
    );

    // A BP whose id does not match its key and nonce.
    let mut c = full_config();
    c.block_producers[1].nonce.d += 1;
    let msg = error_naming(&c.to_yaml().unwrap(), "BlockProducers[1].NodeID");
    assert!(msg.contains("does not match"), "{msg}");
    // A BP below the network's minimum difficulty.
    let mut c = full_config();
    c.min_node_id_difficulty = 200;
    let msg = error_naming(&c.to_yaml().unwrap(), "BlockProducers[0].NodeID");
    assert!(msg.contains("below the network minimum 200"), "{msg}");
    // A bad BP address, a duplicate BP.
    let mut c = full_config();
    c.block_producers[0].addr = "127.0.0.1:99999".into();
    error_naming(&c.to_yaml().unwrap(), "BlockProducers[0].Addr");
    let mut c = full_config();
    c.block_producers.push(c.block_producers[0].clone());
    error_naming(&c.to_yaml().unwrap(), "BlockProducers[2].NodeID");
    // A known node whose id does not match.
    let mut c = full_config();
    c.known_nodes[0].public_key = identity(8).0;
    error_naming(&c.to_yaml().unwrap(), "KnownNodes[0].ID");
    // The wallet address must belong to this node's key.
    let mut c = full_config();
    c.wallet_address = Some(identity(8).0.address());
    error_naming(&c.to_yaml().unwrap(), "WalletAddress");
    // Genesis: unknown token, duplicate account.
    let mut yaml = full_config().to_yaml().unwrap();
    yaml = yaml.replace("      Wave: 5", "      Dogecoin: 5");
    let msg = error_naming(&yaml, "Genesis.Accounts[0].Balances");
    assert!(msg.contains("Dogecoin"), "{msg}");
    let mut c = full_config();
    if let Some(g) = c.genesis.as_mut() {
        g.accounts.push(g.accounts[0].clone());
    }
    error_naming(&c.to_yaml().unwrap(), "Genesis.Accounts[1].Address");
}

#[test]
fn syntax_errors_and_io_errors_are_clear() {
    let err = load_text("Miner: [\n").unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("config.yaml"), "{err}");
    let missing = Path::new("/nonexistent/covenant/config.yaml");
    let err = Config::load(missing).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(
        err.to_string()
            .contains("/nonexistent/covenant/config.yaml"),
        "{err}"
    );
}

#[test]
fn original_role_names_are_accepted() {
    let (pk, nonce, id) = identity(6);
    let text = format!(
        "KnownNodes:\n- ID: {id}\n  Role: Leader\n  Addr: bp00.example.com:7777\n  PublicKey: \"{pk}\"\n  \
         Nonce:\n    a: {}\n    b: 0\n    c: 0\n    d: 7\n",
        nonce.a
    );
    let c = Config::from_yaml_str(&text, Path::new("/x")).unwrap();
    assert_eq!(c.known_nodes[0].role, NodeRole::BlockProducer);
    assert!(c.to_yaml().unwrap().contains("Role: BlockProducer"));
}

#[test]
fn set_and_verify_identity() {
    let mut c = Config {
        listen_addr: Some("10.0.0.1:7458".into()),
        miner: Some(MinerConfig::default()),
        ..Config::default()
    };
    let (pk, nonce, id) = identity(7);
    assert_eq!(c.set_identity(&pk, nonce), id);
    assert_eq!(c.self_node().unwrap().role, NodeRole::Miner);
    assert_eq!(
        c.self_node().unwrap().addr.as_deref(),
        Some("10.0.0.1:7458")
    );
    c.verify_identity(&pk).unwrap();
    // A better nonce replaces the entry instead of adding one.
    let better = Nonce { d: 99, ..nonce };
    let id2 = c.set_identity(&pk, better);
    assert_eq!(c.known_nodes.len(), 1);
    assert_eq!(c.self_node().unwrap().id, id2);
    c.validate().unwrap();
    let other = identity(8).0;
    assert_eq!(
        c.verify_identity(&other).unwrap_err().key(),
        Some("ThisNodeID")
    );
}

#[test]
fn testnet_descriptor_find_load_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = TestnetDescriptor::new(vec![bp(1, "127.0.0.1:7001")]);
    d.name = Some("local".into());
    d.min_node_id_difficulty = Some(0);
    d.bp_period = Some(Duration::from_secs(2));
    d.billing_block_count = Some(10);
    d.save(&dir.path().join(TESTNET_FILE_NAME)).unwrap();

    // By folder and by file.
    let (by_dir, file) = TestnetDescriptor::find(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(file, dir.path().join(TESTNET_FILE_NAME));
    let (by_file, _) = TestnetDescriptor::find(file.to_str().unwrap()).unwrap();
    assert_eq!(by_dir, d);
    assert_eq!(by_file, d);
    assert_eq!(d.display_name("x"), "local");

    let mut c = Config::default();
    d.apply_to(&mut c);
    assert_eq!(c.block_producers, d.block_producers);
    assert_eq!(c.min_node_id_difficulty, 0);
    assert_eq!(c.bp_period, Duration::from_secs(2));
    assert_eq!(c.billing_block_count, 10);
    assert_eq!(
        c.sql_chain_period,
        Duration::from_secs(1),
        "unset stays default"
    );
    c.validate().unwrap();

    // A name that is not a file.
    let err = TestnetDescriptor::find("w").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("unknown testnet w") && msg.contains("cql testnet init"),
        "{msg}"
    );

    // A descriptor is validated like a config: its BPs must check out.
    let mut bad = d.clone();
    bad.min_node_id_difficulty = None; // default 24: the made-up ids are too easy
    let path = dir.path().join("bad.yaml");
    bad.save(&path).unwrap();
    let err = TestnetDescriptor::load(&path).unwrap_err();
    assert_eq!(err.key(), Some("BlockProducers[0].NodeID"), "{err}");
    let path = dir.path().join("empty.yaml");
    std::fs::write(&path, "BlockProducers: []\n").unwrap();
    let err = TestnetDescriptor::load(&path).unwrap_err();
    assert_eq!(err.key(), Some("BlockProducers"), "{err}");
    std::fs::write(&path, "BlockProducers: []\nBPPeriod: 1x\n").unwrap();
    let err = TestnetDescriptor::load(&path).unwrap_err();
    assert_eq!(err.key(), Some("BPPeriod"), "{err}");
}
