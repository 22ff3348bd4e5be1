//! `cql generate`: a new identity — key pair, proof-of-work node id,
//! `config.yaml` and the encrypted `private.key` — in one folder.
//!
//! Nothing is written until the nonce is found, existing files are never
//! replaced without a "yes" at the terminal, and a failure or Ctrl-C leaves
//! the folder as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use covenant_core::config::{
    CONFIG_FILE_NAME, Config, MinerConfig, PRIVATE_KEY_FILE_NAME, TestnetDescriptor,
    check_host_port,
};
use covenant_core::crypto::{PrivateKey, write_key_file};
use covenant_core::pow::{DEFAULT_DIFFICULTY, MAX_DIFFICULTY, PowOptions};

use super::error::CliError;
use super::{GlobalArgs, home_path, progress, prompt};

/// Arguments of `cql generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// Make a miner config that listens on (and advertises) HOST:PORT
    #[arg(long, value_name = "HOST:PORT")]
    miner: Option<String>,
    /// Join this testnet: a descriptor file (or a folder holding testnet.yaml)
    /// whose block producers and parameters are copied into the config
    #[arg(long, value_name = "NAME|FILE")]
    testnet: Option<String>,
    /// Leading zero bits of the node id to mine [default: 24, or the testnet's minimum if higher]
    #[arg(long, value_name = "N")]
    difficulty: Option<u32>,
    /// Folder to create config.yaml and private.key in [default: ~/.cql]
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// What `run` settled before generating anything.
struct Plan {
    dir: PathBuf,
    config_path: PathBuf,
    key_path: PathBuf,
    /// Existing files the user agreed to replace.
    replace: Vec<PathBuf>,
    /// `Some(name)` with `-testnet`.
    testnet: Option<String>,
    difficulty: u32,
    /// The config so far (testnet parameters); the identity is added later.
    config: Config,
}

pub(crate) fn run(
    args: &GenerateArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut plan = plan(args)?;
    // Ask for the passphrase before the (possibly long) search, not after it.
    let master = prompt::master_key(
        global.password.as_deref(),
        global.with_password,
        "the new private key",
        true,
    )?;
    let created_dir = ensure_dir(&plan.dir)?;
    let result = generate(&mut plan, master.as_bytes(), out);
    if result.is_err() && created_dir {
        // Only succeeds when empty: never removes anything but our own folder.
        let _ = std::fs::remove_dir(&plan.dir);
    }
    result
}

/// Checks every argument and existing file before any work is done.
fn plan(args: &GenerateArgs) -> Result<Plan, CliError> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => home_path(".cql", "DIR")?,
    };
    let dir = std::path::absolute(&dir).map_err(|error| CliError::Io {
        action: "resolve",
        path: dir.clone(),
        error,
    })?;
    let mut config = Config::default();
    if let Some(addr) = &args.miner {
        check_host_port(addr).map_err(|why| CliError::InvalidArgument {
            flag: "-miner",
            reason: format!("{addr:?} {why}"),
        })?;
        config.listen_addr = Some(addr.clone());
        config.miner = Some(MinerConfig::default());
    }
    let testnet = match &args.testnet {
        Some(name) => {
            let (descriptor, _file) = TestnetDescriptor::find(name)?;
            descriptor.apply_to(&mut config);
            Some(descriptor.display_name(name).to_string())
        }
        None => None,
    };
    let difficulty = args
        .difficulty
        .unwrap_or(DEFAULT_DIFFICULTY.max(config.min_node_id_difficulty));
    if difficulty > MAX_DIFFICULTY {
        return Err(CliError::InvalidArgument {
            flag: "-difficulty",
            reason: format!("{difficulty} is more than the {MAX_DIFFICULTY} bits of a node id"),
        });
    }
    let config_path = dir.join(CONFIG_FILE_NAME);
    let key_path = dir.join(PRIVATE_KEY_FILE_NAME);
    let replace = confirm_replacing(&[&config_path, &key_path])?;
    if difficulty < config.min_node_id_difficulty {
        eprintln!(
            "warning: difficulty {difficulty} is below the network's minimum {} \
             (MinNodeIDDifficulty); its nodes will refuse this node id",
            config.min_node_id_difficulty
        );
    }
    config.set_config_dir(&dir);
    Ok(Plan {
        dir,
        config_path,
        key_path,
        replace,
        testnet,
        difficulty,
        config,
    })
}

/// Makes the key, mines its id, writes both files and prints the seed's report.
fn generate(plan: &mut Plan, master_key: &[u8], out: &mut dyn Write) -> Result<(), CliError> {
    let out_err = CliError::Output;
    if let Some(name) = &plan.testnet {
        writeln!(out, "Generating testnet {name} config").map_err(out_err)?;
    }
    writeln!(out, "Generating key pair...").map_err(out_err)?;
    let key = PrivateKey::generate()?;
    let public_key = key.public_key();
    writeln!(out, "Generated private key.").map_err(out_err)?;
    writeln!(out, "Generating nonce...").map_err(out_err)?;
    out.flush().map_err(out_err)?;
    let opts = PowOptions {
        difficulty: plan.difficulty,
        ..PowOptions::default()
    };
    let found = progress::mine_with_progress(&public_key, &opts)?;
    super::print_nonce(out, &found)?;
    writeln!(out, "Generated nonce.").map_err(out_err)?;
    writeln!(out, "Generating config file...").map_err(out_err)?;
    plan.config.set_identity(&public_key, found.nonce);
    plan.config.validate()?;
    write_files(plan, &key, master_key)?;
    writeln!(out, "Generated config.").map_err(out_err)?;
    writeln!(out).map_err(out_err)?;
    writeln!(out, "Config file:      {}", plan.config_path.display()).map_err(out_err)?;
    writeln!(out, "Private key file: {}", plan.key_path.display()).map_err(out_err)?;
    writeln!(out, "Public key's hex: {}", public_key.to_hex()).map_err(out_err)?;
    writeln!(out, "Wallet address: {}", public_key.address()).map_err(out_err)?;
    Ok(())
}

/// Finds which of `paths` exist and asks once whether to replace them (or
/// refuses when no one can be asked); returns the files to replace.
fn confirm_replacing(paths: &[&Path]) -> Result<Vec<PathBuf>, CliError> {
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.to_path_buf())
        .collect();
    let Some(first) = existing.first() else {
        return Ok(existing);
    };
    if !prompt::interactive() {
        return Err(CliError::WouldOverwrite {
            path: first.clone(),
        });
    }
    if !prompt::confirm_overwrite(&existing)? {
        return Err(CliError::Declined {
            path: first.clone(),
        });
    }
    Ok(existing)
}

/// Creates `dir` if needed; returns whether it was created.
fn ensure_dir(dir: &Path) -> Result<bool, CliError> {
    let io = |action, error| CliError::Io {
        action,
        path: dir.to_path_buf(),
        error,
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(false),
        Ok(_) => Err(io(
            "use",
            std::io::Error::other("it exists and is not a folder"),
        )),
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| io("create folder", e))?;
            Ok(true)
        }
    }
}

/// Writes the key, then the config; if the config fails, the new key is removed.
fn write_files(plan: &Plan, key: &PrivateKey, master_key: &[u8]) -> Result<(), CliError> {
    let agreed = |path: &Path| plan.replace.iter().any(|p| p == path);
    // A file may have appeared while mining: still never replace it unasked.
    for path in [&plan.config_path, &plan.key_path] {
        if !agreed(path) && std::fs::symlink_metadata(path).is_ok() {
            return Err(CliError::WouldOverwrite {
                path: path.to_path_buf(),
            });
        }
    }
    if agreed(&plan.key_path) {
        match std::fs::remove_file(&plan.key_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::Io {
                    action: "replace",
                    path: plan.key_path.clone(),
                    error: e,
                });
            }
            _ => {}
        }
    }
    write_key_file(&plan.key_path, key, master_key)?;
    if let Err(e) = plan.config.save(&plan.config_path) {
        let _ = std::fs::remove_file(&plan.key_path);
        return Err(e.into());
    }
    Ok(())
}
