//! [`VerifiedHead`]: the one hash a client keeps to catch a miner that
//! rewrites history, and its small text file.
//!
//! The file is plain text so a user can read and compare it:
//!
//! ```text
//! # Covenant verified head: the last block of this database a client checked.
//! version 1
//! database 5b1f…
//! count 42
//! hash 9c0e…
//! ```
//!
//! Lines are `key value`; `#` starts a comment. An unknown `version` is
//! refused with both versions named. Must not touch the network.

use std::path::Path;

use covenant_core::hash::Hash;
use covenant_core::types::DatabaseId;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// The format version of the file this build writes.
pub const HEAD_FILE_VERSION: u32 = 1;

/// A database block a client verified: later heads must extend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHead {
    /// The database.
    pub database: DatabaseId,
    /// The block number.
    pub count: u64,
    /// The block hash.
    pub hash: Hash,
}

impl VerifiedHead {
    /// The file's text.
    pub fn to_text(&self) -> String {
        format!(
            "# Covenant verified head: the last block of this database a client checked.\n\
             version {HEAD_FILE_VERSION}\n\
             database {}\n\
             count {}\n\
             hash {}\n",
            self.database.to_hex(),
            self.count,
            self.hash.to_hex()
        )
    }

    /// Parses the file's text; the error says what is wrong.
    pub fn from_text(text: &str) -> Result<VerifiedHead, String> {
        let mut version = None;
        let mut database = None;
        let mut count = None;
        let mut hash = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .ok_or_else(|| format!("line {}: expected `key value`, found {line:?}", i + 1))?;
            let bad = |what: &str| format!("line {}: {key} is not {what}: {value:?}", i + 1);
            match key {
                "version" => version = Some(value.parse::<u32>().map_err(|_| bad("a number"))?),
                "database" => {
                    database = Some(DatabaseId::from_dsn(value).map_err(|_| bad("a database id"))?)
                }
                "count" => count = Some(value.parse::<u64>().map_err(|_| bad("a block number"))?),
                "hash" => hash = Some(Hash::from_hex(value).ok_or_else(|| bad("a 64-hex hash"))?),
                other => return Err(format!("line {}: unknown key {other:?}", i + 1)),
            }
        }
        match version {
            Some(HEAD_FILE_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "format version {v} is not supported (this build reads version {HEAD_FILE_VERSION})"
                ));
            }
            None => return Err("no `version` line".to_string()),
        }
        Ok(VerifiedHead {
            database: database.ok_or("no `database` line")?,
            count: count.ok_or("no `count` line")?,
            hash: hash.ok_or("no `hash` line")?,
        })
    }

    /// Reads the head saved at `path`.
    pub fn load(path: &Path) -> Result<VerifiedHead, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClientError::HeadFile {
            path: path.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        VerifiedHead::from_text(&text).map_err(|reason| ClientError::HeadFile {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// [`VerifiedHead::load`], or `None` when there is no file at `path`.
    pub fn load_if_exists(path: &Path) -> Result<Option<VerifiedHead>, ClientError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => VerifiedHead::load(path).map(Some),
        }
    }

    /// Writes the head to `path` (creating its folder), replacing the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        let fail = |what: &str, e: std::io::Error| ClientError::HeadFile {
            path: path.to_path_buf(),
            reason: format!("cannot {what}: {e}"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail("create its folder", e))?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_text()).map_err(|e| fail("write it", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("replace it", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::hash::{Tag, hash};

    fn head() -> VerifiedHead {
        VerifiedHead {
            database: DatabaseId(hash(Tag::Message, b"db")),
            count: 42,
            hash: hash(Tag::Message, b"block"),
        }
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".verified").join("db");
        assert_eq!(VerifiedHead::load_if_exists(&path).unwrap(), None);
        head().save(&path).unwrap();
        assert_eq!(VerifiedHead::load(&path).unwrap(), head());
        assert_eq!(VerifiedHead::load_if_exists(&path).unwrap(), Some(head()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("count 42\n"), "{text}");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let good = head().to_text();
        for (text, want) in [
            (
                good.replace("version 1", "version 9"),
                "version 9 is not supported",
            ),
            (
                good.replace("count 42", "count many"),
                "count is not a block number",
            ),
            (
                good.replace("hash ", "hash zz"),
                "hash is not a 64-hex hash",
            ),
            (good.replace("count 42\n", ""), "no `count` line"),
            (format!("{good}colour blue\n"), "unknown key"),
            (String::new(), "no `version` line"),
        ] {
            let e = VerifiedHead::from_text(&text).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h");
        std::fs::write(&path, "garbage").unwrap();
        let e = VerifiedHead::load(&path).unwrap_err();
        assert!(matches!(e, ClientError::HeadFile { .. }), "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
