//! `cql testnet init DIR`: keys, node ids, configs and the descriptor of a
//! local testnet. Refuses a folder that is not empty; on failure removes
//! what it wrote.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;
use covenant_core::config::{
    BlockProducerInfo, CONFIG_FILE_NAME, Config, GenesisAccount, GenesisConfig,
    PRIVATE_KEY_FILE_NAME, TESTNET_FILE_NAME, TestnetDescriptor,
};
use covenant_core::crypto::{Nonce, PrivateKey, write_key_file};
use covenant_core::pow::{MAX_DIFFICULTY, PowOptions};
use covenant_core::types::{Balances, Token};

use super::super::error::CliError;
use super::super::{GlobalArgs, progress, prompt};
use super::{SUPER_CLIENT_DIR, bp_dir_name};

/// What genesis gives the super client of every token.
pub(crate) const SUPER_CLIENT_FUNDS: u64 = 1_000_000_000_000_000_000;
// The seed's transfers (`-amount 10000000000`) must be coverable a million times.
const _: () = assert!(SUPER_CLIENT_FUNDS / 10_000_000_000 >= 1_000_000);

/// Arguments of `cql testnet init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Folder to write the testnet into (created; must be empty if it exists)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Number of block producers
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    bps: u16,
    /// Node-id difficulty of every identity, and the network's MinNodeIDDifficulty
    #[arg(long, value_name = "N", default_value_t = 16)]
    difficulty: u32,
    /// How often the leader cuts a block (BPPeriod)
    #[arg(long = "bp-period", value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    bp_period: Duration,
    /// Block producer i listens on 127.0.0.1:(P+i) [default: free ports]
    #[arg(long = "base-port", value_name = "P")]
    base_port: Option<u16>,
}

/// One identity to be written.
struct Identity {
    key: PrivateKey,
    nonce: Nonce,
}

pub(crate) fn run(
    args: &InitArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let invalid = |flag, reason: String| CliError::InvalidArgument { flag, reason };
    if args.difficulty > MAX_DIFFICULTY {
        return Err(invalid(
            "-difficulty",
            format!(
                "{} is more than the {MAX_DIFFICULTY} bits of a node id",
                args.difficulty
            ),
        ));
    }
    if args.bp_period.is_zero() {
        return Err(invalid(
            "-bp-period",
            "must be longer than zero (e.g. 1s)".into(),
        ));
    }
    let bps = usize::from(args.bps);
    let dir = std::path::absolute(&args.dir).map_err(|error| CliError::Io {
        action: "resolve",
        path: args.dir.clone(),
        error,
    })?;
    let created_dir = check_empty_dir(&dir)?;
    let ports = pick_ports(bps, args.base_port)?;
    let master = prompt::master_key(
        global.password.as_deref(),
        global.with_password,
        "the super client's private key",
        true,
    )?;
    let result = write_testnet(args, &dir, &ports, master.as_bytes(), out);
    if result.is_err() {
        clean_up(&dir, created_dir, bps);
    }
    result
}

/// Fails unless `dir` is absent or an empty folder; returns whether it is absent.
fn check_empty_dir(dir: &Path) -> Result<bool, CliError> {
    let io = |action, error| CliError::Io {
        action,
        path: dir.to_path_buf(),
        error,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::NotEmpty {
                    path: dir.to_path_buf(),
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io("read folder", e)),
    }
}

/// Removes what a failed `init` wrote.
fn clean_up(dir: &Path, created_dir: bool, bps: usize) {
    if created_dir {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    for i in 0..bps {
        let _ = std::fs::remove_dir_all(dir.join(bp_dir_name(i)));
    }
    let _ = std::fs::remove_dir_all(dir.join(SUPER_CLIENT_DIR));
    let _ = std::fs::remove_file(dir.join(TESTNET_FILE_NAME));
}

/// `n` ports on 127.0.0.1: `base..base+n`, or free ones the system picks.
fn pick_ports(n: usize, base: Option<u16>) -> Result<Vec<u16>, CliError> {
    if let Some(base) = base {
        let last = u32::from(base) + u32::try_from(n).unwrap_or(u32::MAX) - 1;
        if base == 0 || last > u32::from(u16::MAX) {
            return Err(CliError::InvalidArgument {
                flag: "-base-port",
                reason: format!("{base}..={last} is not a range of ports from 1 to 65535"),
            });
        }
        return Ok((0..n)
            .filter_map(|i| u16::try_from(usize::from(base) + i).ok())
            .collect());
    }
    // Hold every listener until all are picked, so the ports differ.
    let mut listeners = Vec::with_capacity(n);
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|error| CliError::Io {
            action: "find a free port on",
            path: PathBuf::from("127.0.0.1"),
            error,
        })?;
        listeners.push(l);
    }
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|error| CliError::Io {
                    action: "find a free port on",
                    path: PathBuf::from("127.0.0.1"),
                    error,
                })
        })
        .collect()
}

/// A fresh key and a nonce giving it a node id of `difficulty`.
fn mine_identity(difficulty: u32) -> Result<Identity, CliError> {
    let key = PrivateKey::generate()?;
    let opts = PowOptions {
        difficulty,
        ..PowOptions::default()
    };
    let found = progress::mine_with_progress(&key.public_key(), &opts)?;
    Ok(Identity {
        key,
        nonce: found.nonce,
    })
}

fn make_dir(path: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(path).map_err(|error| CliError::Io {
        action: "create folder",
        path: path.to_path_buf(),
        error,
    })
}

fn write_testnet(
    args: &InitArgs,
    dir: &Path,
    ports: &[u16],
    master_key: &[u8],
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let out_err = CliError::Output;
    writeln!(
        out,
        "Generating {} block producer identities and a super client (difficulty {})...",
        ports.len(),
        args.difficulty
    )
    .map_err(out_err)?;
    out.flush().map_err(out_err)?;
    let bp_ids = ports
        .iter()
        .map(|_| mine_identity(args.difficulty))
        .collect::<Result<Vec<_>, _>>()?;
    let super_id = mine_identity(args.difficulty)?;

    let producers: Vec<BlockProducerInfo> = bp_ids
        .iter()
        .zip(ports)
        .map(|(id, port)| {
            let public_key = id.key.public_key();
            BlockProducerInfo {
                node_id: covenant_core::crypto::NodeId::compute(&public_key, &id.nonce),
                addr: format!("127.0.0.1:{port}"),
                public_key,
                nonce: id.nonce,
            }
        })
        .collect();
    let funds: Balances = Token::ALL
        .into_iter()
        .map(|t| (t, SUPER_CLIENT_FUNDS))
        .collect();
    let genesis = GenesisConfig {
        timestamp: SystemTime::now(),
        accounts: vec![GenesisAccount {
            address: super_id.key.public_key().address(),
            balances: funds,
        }],
    };
    let descriptor = TestnetDescriptor {
        name: Some("local".to_string()),
        min_node_id_difficulty: Some(args.difficulty),
        bp_period: Some(args.bp_period),
        genesis: Some(genesis),
        ..TestnetDescriptor::new(producers.clone())
    };
    descriptor.validate()?;

    make_dir(dir)?;
    writeln!(out).map_err(out_err)?;
    for (i, (id, bp)) in bp_ids.iter().zip(&producers).enumerate() {
        let bp_dir = dir.join(bp_dir_name(i));
        let config_path = write_bp(&bp_dir, id, bp, &descriptor)?;
        writeln!(
            out,
            "Block producer {i}: node id {}, listening on {}\n  config: {}",
            bp.node_id,
            bp.addr,
            config_path.display()
        )
        .map_err(out_err)?;
    }
    let super_dir = dir.join(SUPER_CLIENT_DIR);
    let super_config = write_super_client(&super_dir, &super_id, &descriptor, master_key)?;
    let testnet_file = dir.join(TESTNET_FILE_NAME);
    descriptor.save(&testnet_file)?;
    writeln!(
        out,
        "Super client: wallet address {}, {SUPER_CLIENT_FUNDS} of every token\n  config: {}",
        super_id.key.public_key().address(),
        super_config.display()
    )
    .map_err(out_err)?;
    writeln!(out, "Testnet descriptor: {}", testnet_file.display()).map_err(out_err)?;
    writeln!(out).map_err(out_err)?;
    writeln!(out, "Next:").map_err(out_err)?;
    writeln!(out, "  cql testnet up {}", dir.display()).map_err(out_err)?;
    writeln!(out, "  cql wallet -config {}", super_config.display()).map_err(out_err)?;
    writeln!(
        out,
        "  cql generate -testnet {} ~/.cql",
        testnet_file.display()
    )
    .map_err(out_err)?;
    Ok(())
}

/// Writes block producer `bp`'s folder; returns its config's path.
fn write_bp(
    bp_dir: &Path,
    id: &Identity,
    bp: &BlockProducerInfo,
    descriptor: &TestnetDescriptor,
) -> Result<PathBuf, CliError> {
    make_dir(bp_dir)?;
    let mut config = Config::default();
    descriptor.apply_to(&mut config);
    config.working_root = Some(PathBuf::from("./data"));
    config.listen_addr = Some(bp.addr.clone());
    config.known_nodes = descriptor
        .block_producers
        .iter()
        .map(BlockProducerInfo::to_known_node)
        .collect();
    config.this_node_id = Some(bp.node_id);
    config.nonce = Some(id.nonce);
    config.wallet_address = Some(bp.public_key.address());
    config.set_config_dir(bp_dir);
    // Block producers start unattended: their keys use the empty master key.
    write_key_file(&bp_dir.join(PRIVATE_KEY_FILE_NAME), &id.key, b"")?;
    let path = bp_dir.join(CONFIG_FILE_NAME);
    config.save(&path)?;
    Ok(path)
}

/// Writes the super client's folder; returns its config's path.
fn write_super_client(
    dir: &Path,
    id: &Identity,
    descriptor: &TestnetDescriptor,
    master_key: &[u8],
) -> Result<PathBuf, CliError> {
    make_dir(dir)?;
    let mut config = Config::default();
    descriptor.apply_to(&mut config);
    // Clients need not carry the genesis; block producers check it.
    config.genesis = None;
    config.set_identity(&id.key.public_key(), id.nonce);
    config.set_config_dir(dir);
    write_key_file(&dir.join(PRIVATE_KEY_FILE_NAME), &id.key, master_key)?;
    let path = dir.join(CONFIG_FILE_NAME);
    config.save(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_differ_and_base_ports_count_up() {
        let ports = pick_ports(5, None).unwrap();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 5);
        assert_eq!(pick_ports(3, Some(7000)).unwrap(), [7000, 7001, 7002]);
        assert!(pick_ports(3, Some(65534)).is_err());
        assert!(pick_ports(1, Some(0)).is_err());
    }

    #[test]
    fn writes_a_loadable_testnet_and_refuses_a_non_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let args = InitArgs {
            dir: dir.clone(),
            bps: 2,
            difficulty: 4,
            bp_period: Duration::from_millis(200),
            base_port: None,
        };
        let global = GlobalArgs {
            password: None,
            with_password: false,
        };
        let mut out = Vec::new();
        run(&args, &global, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("cql testnet up"), "{text}");

        let (d, _) = TestnetDescriptor::find(dir.to_str().unwrap()).unwrap();
        assert_eq!(d.block_producers.len(), 2);
        assert_eq!(d.min_node_id_difficulty, Some(4));
        assert_eq!(d.bp_period, Some(Duration::from_millis(200)));
        let super_cfg = Config::load(&dir.join(SUPER_CLIENT_DIR).join(CONFIG_FILE_NAME)).unwrap();
        let funded = &d.genesis.as_ref().unwrap().accounts[0];
        assert_eq!(Some(funded.address), super_cfg.wallet_address);
        assert_eq!(funded.balances.get(Token::Wave), SUPER_CLIENT_FUNDS);
        for i in 0..2 {
            let bp = Config::load(&dir.join(bp_dir_name(i)).join(CONFIG_FILE_NAME)).unwrap();
            assert_eq!(bp.this_node_id, Some(d.block_producers[i].node_id));
            assert_eq!(
                bp.listen_addr.as_deref(),
                Some(d.block_producers[i].addr.as_str())
            );
            assert!(bp.genesis.is_some());
            let key = covenant_core::crypto::read_key_file(&bp.private_key_path(), b"").unwrap();
            bp.verify_identity(&key.public_key()).unwrap();
        }

        let again = run(&args, &global, &mut Vec::new()).unwrap_err();
        assert!(matches!(again, CliError::NotEmpty { .. }), "{again}");
        assert!(
            dir.join(TESTNET_FILE_NAME).is_file(),
            "a refusal must not remove anything"
        );
    }
}
