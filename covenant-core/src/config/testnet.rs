//! A testnet descriptor: the YAML file naming a network's block producers and
//! parameters, which `cql generate -testnet FILE` copies into a new config
//! (and `cql testnet init` writes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::nodes::BlockProducerInfo;
use super::sections::GenesisConfig;
use super::serde_time::opt_duration;
use super::{Config, ConfigError, parse_yaml, read_text, write_atomically};

/// The file name `cql testnet init` writes and `-testnet DIR` looks for.
pub const TESTNET_FILE_NAME: &str = "testnet.yaml";

/// A network's block producers and parameters, as one YAML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TestnetDescriptor {
    /// Format version of this file.
    #[serde(default = "Config::default_version")]
    pub version: u32,
    /// A short name shown by `cql generate` ("Generating testnet NAME config").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The network's block producers; at least one.
    pub block_producers: Vec<BlockProducerInfo>,
    /// The network's minimum node-id difficulty.
    #[serde(
        rename = "MinNodeIDDifficulty",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_node_id_difficulty: Option<u32>,
    /// The main chain's block period.
    #[serde(
        rename = "BPPeriod",
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub bp_period: Option<Duration>,
    /// The SQL chains' block period.
    #[serde(
        rename = "SQLChainPeriod",
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub sql_chain_period: Option<Duration>,
    /// SQL-chain blocks per billing round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_block_count: Option<u64>,
    /// The smallest deposit a miner must lock to provide service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_provider_deposit: Option<u64>,
    /// The main chain's genesis, so every node can tell it is on this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis: Option<GenesisConfig>,
}

impl TestnetDescriptor {
    /// A descriptor listing `block_producers` with every parameter left to the defaults.
    pub fn new(block_producers: Vec<BlockProducerInfo>) -> TestnetDescriptor {
        TestnetDescriptor {
            version: Config::VERSION,
            name: None,
            block_producers,
            min_node_id_difficulty: None,
            bp_period: None,
            sql_chain_period: None,
            billing_block_count: None,
            min_provider_deposit: None,
            genesis: None,
        }
    }

    /// Parses and validates a descriptor; `path` is used in error messages.
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<TestnetDescriptor, ConfigError> {
        let d: TestnetDescriptor = parse_yaml(text, path)?;
        d.validate().map_err(|e| e.in_file(path))?;
        Ok(d)
    }

    /// Reads and validates the descriptor at `path`.
    pub fn load(path: &Path) -> Result<TestnetDescriptor, ConfigError> {
        let text = read_text(path)?;
        TestnetDescriptor::from_yaml_str(&text, path)
    }

    /// Finds a testnet by what the user typed after `-testnet`: a descriptor
    /// file, or a folder holding [`TESTNET_FILE_NAME`]. Returns the descriptor
    /// and the file it came from.
    pub fn find(name_or_path: &str) -> Result<(TestnetDescriptor, PathBuf), ConfigError> {
        let given = Path::new(name_or_path);
        let file = if given.is_dir() {
            given.join(TESTNET_FILE_NAME)
        } else {
            given.to_path_buf()
        };
        if !file.is_file() {
            return Err(ConfigError::UnknownTestnet {
                name: name_or_path.to_string(),
            });
        }
        let d = TestnetDescriptor::load(&file)?;
        Ok((d, file))
    }

    /// The name to show: the descriptor's `Name`, else `fallback`.
    pub fn display_name<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(fallback)
    }

    /// Checks the descriptor as the config it would produce would be checked.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.block_producers.is_empty() {
            return Err(ConfigError::invalid(
                "BlockProducers",
                "must list at least one block producer",
            ));
        }
        let mut c = Config::default();
        self.apply_to(&mut c);
        c.version = self.version;
        c.validate()
    }

    /// Copies the BP list and every parameter set here into `config`.
    pub fn apply_to(&self, config: &mut Config) {
        config.block_producers = self.block_producers.clone();
        if let Some(v) = self.min_node_id_difficulty {
            config.min_node_id_difficulty = v;
        }
        if let Some(v) = self.bp_period {
            config.bp_period = v;
        }
        if let Some(v) = self.sql_chain_period {
            config.sql_chain_period = v;
        }
        if let Some(v) = self.billing_block_count {
            config.billing_block_count = v;
        }
        if let Some(v) = self.min_provider_deposit {
            config.min_provider_deposit = v;
        }
        if self.genesis.is_some() {
            config.genesis = self.genesis.clone();
        }
    }

    /// The descriptor as YAML.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_saphyr::to_string(self).map_err(|e| ConfigError::Encode {
            message: e.to_string(),
        })
    }

    /// Writes the descriptor to `path` (atomically replacing any old file).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_atomically(path, self.to_yaml()?.as_bytes())
    }
}
