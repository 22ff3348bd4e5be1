//! `config.yaml` and testnet descriptor text against their parsers: a typed
//! error or a config, never a panic; a refused value names its key; and an
//! accepted file saves (`to_yaml`) to text that loads back to the same value.
//!
//! Input: `[selector][YAML, UTF-8 lossy]`; even selectors parse a `Config`,
//! odd ones a `TestnetDescriptor`.
#![no_main]

use std::path::Path;

use covenant_core::config::{Config, ConfigError, TestnetDescriptor};
use libfuzzer_sys::fuzz_target;

fn check_error(e: &ConfigError) {
    let _ = e.code();
    let msg = e.to_string();
    if let ConfigError::Invalid { key, .. } = e {
        assert!(!key.is_empty(), "an invalid value must name its key: {msg}");
        assert!(
            msg.contains(key.as_str()),
            "the message must name {key}: {msg}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let dir = Path::new("/tmp");
    if selector % 2 == 0 {
        match Config::from_yaml_str(&text, dir) {
            Ok(c) => {
                let yaml = c.to_yaml().expect("an accepted config saves");
                let again = Config::from_yaml_str(&yaml, dir)
                    .unwrap_or_else(|e| panic!("a saved config does not load: {e}\n{yaml}"));
                assert_eq!(again, c, "save and load changed the config:\n{yaml}");
                let _ = (c.private_key_path(), c.working_root(), c.role());
                let _ = (c.resolved_miner(), c.resolved_adapter(), c.self_node());
            }
            Err(e) => check_error(&e),
        }
    } else {
        let path = dir.join("testnet.yaml");
        match TestnetDescriptor::from_yaml_str(&text, &path) {
            Ok(d) => {
                let yaml = d.to_yaml().expect("an accepted descriptor saves");
                let again = TestnetDescriptor::from_yaml_str(&yaml, &path)
                    .unwrap_or_else(|e| panic!("a saved descriptor does not load: {e}\n{yaml}"));
                assert_eq!(again, d, "save and load changed the descriptor:\n{yaml}");
                let mut c = Config::default();
                d.apply_to(&mut c);
            }
            Err(e) => check_error(&e),
        }
    }
});
