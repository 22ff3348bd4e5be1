//! `config.yaml`: the schema every Covenant process reads, loading with
//! errors that name the offending key, path resolution, and saving.
//!
//! Keys are the seed's (original CovenantSQL's) PascalCase names: node
//! identity (`ThisNodeID`, `Nonce`, `PrivateKeyFile`, `WalletAddress`,
//! `ListenAddr`), `KnownNodes`, the network's `BlockProducers` and `Genesis`,
//! network parameters (`BPPeriod`, `SQLChainPeriod`, `BillingBlockCount`,
//! `MinProviderDeposit`, `MinNodeIDDifficulty`) and the role sections
//! `Miner` and `Adapter`. Durations are humantime strings (`1s`, `5m`).
//! Unknown keys are errors. Relative paths are kept as written (so a saved
//! config stays relocatable) and resolved against the config file's folder by
//! the accessors ([`Config::private_key_path`], [`Config::resolved_miner`], ...).
//!
//! A [`TestnetDescriptor`] names a network's BPs and parameters in its own file.
//!
//! Must not import the network, chain or consensus layers: they read a
//! `Config`, never the other way round.

mod nodes;
mod sections;
mod serde_time;
mod testnet;
mod validate;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{Address, NodeId, Nonce, PublicKey};
use crate::error::ErrorCode;

pub use nodes::{BlockProducerInfo, KnownNode, NodeRole};
pub use sections::{AdapterConfig, GenesisAccount, GenesisConfig, MinerConfig, StorageDriver};
pub use testnet::{TESTNET_FILE_NAME, TestnetDescriptor};
pub use validate::check_host_port;

/// The config file name `cql generate` writes.
pub const CONFIG_FILE_NAME: &str = "config.yaml";
/// The private key file name `cql generate` writes.
pub const PRIVATE_KEY_FILE_NAME: &str = "private.key";
/// Largest config or descriptor file read; a bigger one is refused unparsed.
pub const MAX_CONFIG_LEN: u64 = 16 << 20;

/// Why a config could not be read, parsed, validated or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("cannot {action} {}: {error}", .path.display())]
    Io {
        /// What was being done ("read", "write").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file is not valid YAML for the schema (unknown key, wrong type, bad value).
    #[error("invalid config file {}: {}{message}", .path.display(), key_prefix(.key))]
    Parse {
        /// The file.
        path: PathBuf,
        /// Path of the offending key (`Miner.MaxReqTimeGap`); empty for syntax errors.
        key: String,
        /// 1-based line of the error, when known.
        line: Option<u64>,
        /// The parser's explanation, with its line and column.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("invalid config{}: {key} {reason}", file_suffix(.path))]
    Invalid {
        /// The file, when the config came from one.
        path: Option<PathBuf>,
        /// Path of the offending key (`KnownNodes[0].Addr`).
        key: String,
        /// Why the value was refused.
        reason: String,
    },
    /// The config could not be written as YAML.
    #[error("cannot write config as YAML: {message}")]
    Encode {
        /// The serializer's explanation.
        message: String,
    },
    /// `-testnet NAME` named neither a descriptor file nor a folder holding one.
    #[error(
        "unknown testnet {name}: pass a testnet descriptor file such as DIR/testnet.yaml \
         written by `cql testnet init`"
    )]
    UnknownTestnet {
        /// What the user passed.
        name: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("at {key}: ")
    }
}

fn file_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" file {}", p.display()),
        None => String::new(),
    }
}

impl ConfigError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConfigError::Io { .. } => ErrorCode::Io,
            _ => ErrorCode::Config,
        }
    }

    /// The key this error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Parse { key, .. } | ConfigError::Invalid { key, .. }
                if !key.is_empty() =>
            {
                Some(key)
            }
            _ => None,
        }
    }

    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: None,
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Attaches the file an `Invalid` error came from.
    fn in_file(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Invalid { key, reason, .. } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                key,
                reason,
            },
            other => other,
        }
    }
}

/// A whole `config.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "PascalCase")]
pub struct Config {
    /// Format version of this file ([`Config::VERSION`]).
    pub version: u32,
    /// Folder for a node's state (block producers keep their chain here);
    /// relative to the config's folder, which it defaults to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_root: Option<PathBuf>,
    /// The encrypted private key; relative to the config's folder.
    pub private_key_file: PathBuf,
    /// This node's id; `H(public key || Nonce)`.
    #[serde(rename = "ThisNodeID", skip_serializing_if = "Option::is_none")]
    pub this_node_id: Option<NodeId>,
    /// This node's proof-of-work nonce, presented with its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<Nonce>,
    /// This node's wallet address (derived from its key; recorded for humans).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_address: Option<Address>,
    /// `host:port` this node listens on and advertises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen_addr: Option<String>,
    /// The network's minimum node-id difficulty (leading zero bits).
    #[serde(rename = "MinNodeIDDifficulty")]
    pub min_node_id_difficulty: u32,
    /// How often the main chain's leader cuts a block.
    #[serde(rename = "BPPeriod", with = "serde_time::duration")]
    pub bp_period: Duration,
    /// How often a database's leader seals a SQL-chain block.
    #[serde(rename = "SQLChainPeriod", with = "serde_time::duration")]
    pub sql_chain_period: Duration,
    /// SQL-chain blocks per billing round (`UpdateBilling`).
    pub billing_block_count: u64,
    /// The smallest deposit a miner must lock to provide service.
    pub min_provider_deposit: u64,
    /// The network's block producers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_producers: Vec<BlockProducerInfo>,
    /// The main chain's genesis (read by block producers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genesis: Option<GenesisConfig>,
    /// Other nodes this one knows, including itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known_nodes: Vec<KnownNode>,
    /// Present in a miner's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miner: Option<MinerConfig>,
    /// Present in an adapter's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterConfig>,
    /// The folder relative paths resolve against (the config file's folder).
    #[serde(skip)]
    config_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: Config::VERSION,
            working_root: None,
            private_key_file: PathBuf::from(PRIVATE_KEY_FILE_NAME),
            this_node_id: None,
            nonce: None,
            wallet_address: None,
            listen_addr: None,
            min_node_id_difficulty: Config::DEFAULT_MIN_NODE_ID_DIFFICULTY,
            bp_period: Duration::from_secs(1),
            sql_chain_period: Duration::from_secs(1),
            billing_block_count: Config::DEFAULT_BILLING_BLOCK_COUNT,
            min_provider_deposit: Config::DEFAULT_MIN_PROVIDER_DEPOSIT,
            block_producers: Vec::new(),
            genesis: None,
            known_nodes: Vec::new(),
            miner: None,
            adapter: None,
            config_dir: PathBuf::from("."),
        }
    }
}

impl Config {
    /// The config format version this build writes and reads.
    pub const VERSION: u32 = 1;
    /// Default `MinNodeIDDifficulty` (and `cql generate`'s default difficulty).
    pub const DEFAULT_MIN_NODE_ID_DIFFICULTY: u32 = 24;
    /// Default `BillingBlockCount`.
    pub const DEFAULT_BILLING_BLOCK_COUNT: u64 = 60;
    /// Default `MinProviderDeposit`.
    pub const DEFAULT_MIN_PROVIDER_DEPOSIT: u64 = 1_000_000;

    fn default_version() -> u32 {
        Config::VERSION
    }

    /// Reads, parses and validates the config at `path`; relative paths in it
    /// will resolve against `path`'s folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_text(path)?;
        let dir = absolute_parent(path).map_err(|error| ConfigError::Io {
            action: "resolve the folder of",
            path: path.to_path_buf(),
            error,
        })?;
        Config::parse(&text, path, dir)
    }

    /// Parses and validates YAML text whose relative paths resolve against `config_dir`.
    pub fn from_yaml_str(text: &str, config_dir: &Path) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            &config_dir.join(CONFIG_FILE_NAME),
            config_dir.to_path_buf(),
        )
    }

    fn parse(text: &str, path: &Path, dir: PathBuf) -> Result<Config, ConfigError> {
        let mut c: Config = parse_yaml(text, path)?;
        c.config_dir = dir;
        c.validate().map_err(|e| e.in_file(path))?;
        Ok(c)
    }

    /// Checks every value beyond its type; the error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self).map_err(|(key, reason)| ConfigError::invalid(key, reason))
    }

    /// The config as YAML, with paths as written (relative stays relative).
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_saphyr::to_string(self).map_err(|e| ConfigError::Encode {
            message: e.to_string(),
        })
    }

    /// Validates and writes the config to `path`, atomically replacing any
    /// old file (a crash leaves the old or the new file, never half of one).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate().map_err(|e| e.in_file(path))?;
        write_atomically(path, self.to_yaml()?.as_bytes())
    }

    /// The folder relative paths resolve against.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// Sets the folder relative paths resolve against (for a config built in code).
    pub fn set_config_dir(&mut self, dir: impl Into<PathBuf>) {
        self.config_dir = dir.into();
    }

    /// `path` if absolute, else `path` under the config's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.config_dir.join(path)
        }
    }

    /// The private key file, resolved.
    pub fn private_key_path(&self) -> PathBuf {
        self.resolve(&self.private_key_file)
    }

    /// The working root, resolved (the config's folder when unset).
    pub fn working_root(&self) -> PathBuf {
        match &self.working_root {
            Some(p) => self.resolve(p),
            None => self.config_dir.clone(),
        }
    }

    /// The `Miner` section with `RootDir` resolved.
    pub fn resolved_miner(&self) -> Option<MinerConfig> {
        self.miner.as_ref().map(|m| MinerConfig {
            root_dir: self.resolve(&m.root_dir),
            ..m.clone()
        })
    }

    /// The `Adapter` section with every path resolved.
    pub fn resolved_adapter(&self) -> Option<AdapterConfig> {
        let opt = |p: &Option<PathBuf>| p.as_deref().map(|p| self.resolve(p));
        let all = |v: &[PathBuf]| v.iter().map(|p| self.resolve(p)).collect();
        self.adapter.as_ref().map(|a| AdapterConfig {
            certificate_path: opt(&a.certificate_path),
            private_key_path: opt(&a.private_key_path),
            client_ca_path: opt(&a.client_ca_path),
            admin_certs: all(&a.admin_certs),
            write_certs: all(&a.write_certs),
            storage_root: opt(&a.storage_root),
            ..a.clone()
        })
    }

    /// This node's own `KnownNodes` entry (the one with id `ThisNodeID`).
    pub fn self_node(&self) -> Option<&KnownNode> {
        let id = self.this_node_id?;
        self.known_nodes.iter().find(|n| n.id == id)
    }

    /// The role this config gives its node: its own entry's role, else
    /// `Miner` with a `Miner` section, `Adapter` with an `Adapter` section,
    /// else `Client`.
    pub fn role(&self) -> NodeRole {
        if let Some(me) = self.self_node() {
            return me.role;
        }
        if self.miner.is_some() {
            NodeRole::Miner
        } else if self.adapter.is_some() {
            NodeRole::Adapter
        } else {
            NodeRole::Client
        }
    }

    /// Records `public_key` + `nonce` as this node's identity: sets
    /// `ThisNodeID`, `Nonce`, `WalletAddress` and replaces the node's own
    /// `KnownNodes` entry (keeping its role; the address is `ListenAddr`).
    pub fn set_identity(&mut self, public_key: &PublicKey, nonce: Nonce) -> NodeId {
        let role = self.role();
        let old = self.this_node_id;
        let id = NodeId::compute(public_key, &nonce);
        let entry = KnownNode {
            id,
            role,
            addr: self.listen_addr.clone(),
            public_key: *public_key,
            nonce,
        };
        let existing = self
            .known_nodes
            .iter()
            .position(|n| Some(n.id) == old || n.id == id || n.public_key == *public_key);
        match existing {
            Some(i) => {
                if let Some(slot) = self.known_nodes.get_mut(i) {
                    *slot = entry;
                }
            }
            None => self.known_nodes.push(entry),
        }
        self.this_node_id = Some(id);
        self.nonce = Some(nonce);
        self.wallet_address = Some(public_key.address());
        id
    }

    /// Checks that `ThisNodeID`/`Nonce` and `WalletAddress` belong to
    /// `public_key` (the key read from `PrivateKeyFile`).
    pub fn verify_identity(&self, public_key: &PublicKey) -> Result<(), ConfigError> {
        if let (Some(id), Some(nonce)) = (&self.this_node_id, &self.nonce)
            && NodeId::compute(public_key, nonce) != *id
        {
            return Err(ConfigError::invalid(
                "ThisNodeID",
                format!("{id} does not match the private key and Nonce {nonce}"),
            ));
        }
        if let Some(wallet) = &self.wallet_address
            && *wallet != public_key.address()
        {
            return Err(ConfigError::invalid(
                "WalletAddress",
                format!(
                    "{wallet} is not the private key's address {}",
                    public_key.address()
                ),
            ));
        }
        Ok(())
    }
}

/// Reads a config-sized text file.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    let io = |error| ConfigError::Io {
        action: "read",
        path: path.to_path_buf(),
        error,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CONFIG_LEN {
        return Err(io(std::io::Error::other(format!(
            "file is {len} bytes, larger than the {MAX_CONFIG_LEN}-byte limit"
        ))));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
        path: path.to_path_buf(),
        key: String::new(),
        line: None,
        message: "the file is not UTF-8 text".to_string(),
    })
}

/// Parses YAML into `T`, naming the key path of any error.
fn parse_yaml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let mut key = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            // A bad map key shows as `.?`; the map's own path names it well enough.
            key = e.path().to_string().trim_end_matches(".?").to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let line = e.location().map(|l| l.line());
        let mut message = e.without_snippet().to_string();
        let excerpt = line
            .and_then(|l| usize::try_from(l).ok())
            .and_then(|l| text.lines().nth(l.saturating_sub(1)).map(|s| (l, s)));
        if let Some((l, source)) = excerpt {
            message.push_str(&format!("\n  {l} | {source}"));
        }
        ConfigError::Parse {
            path: path.to_path_buf(),
            key: if key == "." { String::new() } else { key },
            line,
            message,
        }
    })
}

/// The absolute folder holding `path`.
fn absolute_parent(path: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    Ok(abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/")))
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    let io = |error| ConfigError::Io {
        action: "write",
        path: path.to_path_buf(),
        error,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file path")))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(error));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
