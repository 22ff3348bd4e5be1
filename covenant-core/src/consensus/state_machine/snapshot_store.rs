//! The latest Raft snapshot of one group, kept on disk in the group's
//! directory so a restarted leader can still send it to a follower whose
//! log it purged (openraft 0.9 treats a missing snapshot, when one is
//! needed, as a storage error).
//!
//! Layout: the snapshot's bytes live in one of two slot files,
//! `snapshot-0.db` and `snapshot-1.db` (for a database, a plain SQLite
//! file), and `snapshot.meta` names the current slot with the snapshot's
//! Raft metadata and length (a [`codec::Versioned`] record). A new snapshot
//! is written to a staging file (`snapshot.tmp-N`), fsynced, renamed into
//! the slot the record does *not* name, and the directory fsynced; then a
//! new record is written to `snapshot.meta.tmp`, fsynced, renamed over
//! `snapshot.meta`, and the directory fsynced. The rename of the record is
//! the commit point: a crash anywhere leaves the old record naming an
//! untouched slot, or the new record naming a complete one. Staging files a
//! crash left behind are removed when the store is first read.
//!
//! Only the record (a few hundred bytes) is cached in memory; the bytes are
//! read when openraft asks for the snapshot (to send it to a follower).
//! This module must not import the network, SQLite or any replica.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use openraft::SnapshotMeta;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;
use crate::codec::{self, CodecError, Versioned};
use crate::consensus::types::RaftPeer;

/// The Raft metadata of a group's snapshot.
type Meta = SnapshotMeta<u64, RaftPeer>;

const RECORD_FILE: &str = "snapshot.meta";
const RECORD_TMP: &str = "snapshot.meta.tmp";
const STAGING_PREFIX: &str = "snapshot.tmp-";
const SLOTS: [&str; 2] = ["snapshot-0.db", "snapshot-1.db"];

/// Why the snapshot store failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotStoreError {
    /// A file operation failed.
    #[error("snapshot store: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The record (`snapshot.meta`) does not decode.
    #[error("snapshot store: {path} is corrupt: {source}")]
    CorruptRecord {
        /// The record file.
        path: PathBuf,
        /// Why it does not decode.
        source: CodecError,
    },
    /// The slot file is not as long as the record says.
    #[error("snapshot store: {path} holds {found} bytes, its record says {expected}")]
    Truncated {
        /// The slot file.
        path: PathBuf,
        /// Length in the record.
        expected: u64,
        /// Length on disk.
        found: u64,
    },
    /// The record names a slot that does not exist.
    #[error("snapshot store: the record names slot {slot}, which does not exist")]
    BadSlot {
        /// The slot number found.
        slot: u8,
    },
}

impl SnapshotStoreError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SnapshotStoreError::Io { .. } => ErrorCode::Storage,
            SnapshotStoreError::CorruptRecord { .. }
            | SnapshotStoreError::Truncated { .. }
            | SnapshotStoreError::BadSlot { .. } => ErrorCode::StorageCorrupt,
        }
    }
}

/// What `snapshot.meta` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    meta: Meta,
    slot: u8,
    len: u64,
}

impl Versioned for Record {
    const KIND: &'static str = "raft snapshot record";
    const VERSION: u16 = 1;
}

/// The latest snapshot of one group, on disk (see the module doc).
pub struct SnapshotStore {
    dir: PathBuf,
    /// `None` until first read; then the current record, if any.
    record: Mutex<Option<Option<Record>>>,
    staging: AtomicU64,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotStoreError {
    let path = path.to_path_buf();
    move |source| SnapshotStoreError::Io { op, path, source }
}

/// Fsyncs the directory `dir`, so creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl SnapshotStore {
    /// The store in `dir` (nothing is read until it is first used).
    pub fn new(dir: &Path) -> SnapshotStore {
        SnapshotStore {
            dir: dir.to_path_buf(),
            record: Mutex::new(None),
            staging: AtomicU64::new(0),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Option<Option<Record>>> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record, reading it (and removing staging leftovers) on first use.
    fn loaded<'a>(
        &self,
        guard: &'a mut MutexGuard<'_, Option<Option<Record>>>,
    ) -> Result<&'a Option<Record>, SnapshotStoreError> {
        if guard.is_none() {
            **guard = Some(self.read_record()?);
        }
        match guard.as_ref() {
            Some(r) => Ok(r),
            None => Ok(&None),
        }
    }

    fn read_record(&self) -> Result<Option<Record>, SnapshotStoreError> {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(STAGING_PREFIX) || name == RECORD_TMP {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let path = self.dir.join(RECORD_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let record: Record = codec::decode_versioned(&bytes)
            .map_err(|source| SnapshotStoreError::CorruptRecord { path, source })?;
        if usize::from(record.slot) >= SLOTS.len() {
            return Err(SnapshotStoreError::BadSlot { slot: record.slot });
        }
        Ok(Some(record))
    }

    fn slot_path(&self, slot: u8) -> Result<PathBuf, SnapshotStoreError> {
        SLOTS
            .get(usize::from(slot))
            .map(|name| self.dir.join(name))
            .ok_or(SnapshotStoreError::BadSlot { slot })
    }

    /// The current snapshot's metadata, if there is one.
    pub fn meta(&self) -> Result<Option<Meta>, SnapshotStoreError> {
        let mut guard = self.lock();
        Ok(self.loaded(&mut guard)?.as_ref().map(|r| r.meta.clone()))
    }

    /// A fresh path in the directory where a new snapshot may be written
    /// before [`SnapshotStore::commit`]; a crash leaves it to be removed.
    pub fn staging_path(&self) -> Result<PathBuf, SnapshotStoreError> {
        // Read the record first, so its leftover clean-up never races a
        // staging file handed out here.
        self.meta()?;
        let n = self.staging.fetch_add(1, Ordering::Relaxed);
        Ok(self.dir.join(format!("{STAGING_PREFIX}{n}")))
    }

    /// Makes the complete file `staged` (from [`SnapshotStore::staging_path`])
    /// the current snapshot with `meta`, durably. A snapshot not newer than
    /// the current one is dropped: returns whether `staged` was kept.
    pub fn commit(&self, staged: &Path, meta: &Meta) -> Result<bool, SnapshotStoreError> {
        let mut guard = self.lock();
        let current = self.loaded(&mut guard)?.clone();
        if let Some(cur) = &current
            && cur.meta.last_log_id >= meta.last_log_id
        {
            let _ = std::fs::remove_file(staged);
            return Ok(false);
        }
        let file = File::open(staged).map_err(io("open", staged))?;
        file.sync_all().map_err(io("fsync", staged))?;
        let len = file.metadata().map_err(io("stat", staged))?.len();
        drop(file);
        let slot = match &current {
            Some(r) if r.slot == 0 => 1,
            _ => 0,
        };
        let slot_path = self.slot_path(slot)?;
        std::fs::rename(staged, &slot_path).map_err(io("rename into", &slot_path))?;
        sync_dir(&self.dir).map_err(io("fsync directory", &self.dir))?;
        let record = Record {
            meta: meta.clone(),
            slot,
            len,
        };
        let bytes = codec::encode_versioned(&record).map_err(|source| {
            SnapshotStoreError::CorruptRecord {
                path: self.dir.join(RECORD_FILE),
                source,
            }
        })?;
        let tmp = self.dir.join(RECORD_TMP);
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        drop(f);
        let path = self.dir.join(RECORD_FILE);
        std::fs::rename(&tmp, &path).map_err(io("rename into", &path))?;
        sync_dir(&self.dir).map_err(io("fsync directory", &self.dir))?;
        *guard = Some(Some(record));
        Ok(true)
    }

    /// Stores `data` as the current snapshot with `meta` (see [`SnapshotStore::commit`]).
    pub fn save(&self, meta: &Meta, data: &[u8]) -> Result<bool, SnapshotStoreError> {
        let staged = self.staging_path()?;
        let write = || -> Result<(), SnapshotStoreError> {
            let mut f = File::create(&staged).map_err(io("create", &staged))?;
            f.write_all(data).map_err(io("write", &staged))
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
        self.commit(&staged, meta)
    }

    /// The current snapshot's metadata and bytes, read from disk.
    pub fn load(&self) -> Result<Option<(Meta, Vec<u8>)>, SnapshotStoreError> {
        // Open under the lock; a later commit renames over the path but
        // this handle keeps reading the file it opened.
        let (record, file, path) = {
            let mut guard = self.lock();
            let Some(record) = self.loaded(&mut guard)?.clone() else {
                return Ok(None);
            };
            let path = self.slot_path(record.slot)?;
            let file = File::open(&path).map_err(io("open", &path))?;
            (record, file, path)
        };
        let mut data = Vec::new();
        let mut reader = std::io::BufReader::new(file);
        std::io::Read::read_to_end(&mut reader, &mut data).map_err(io("read", &path))?;
        if data.len() as u64 != record.len {
            return Err(SnapshotStoreError::Truncated {
                path,
                expected: record.len,
                found: data.len() as u64,
            });
        }
        Ok(Some((record.meta, data)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::{LogId, Membership, StoredMembership};

    use super::*;

    fn meta(index: u64) -> Meta {
        let nodes: BTreeMap<u64, RaftPeer> = [(1, RaftPeer::default())].into_iter().collect();
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), index)),
            last_membership: StoredMembership::new(
                Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 1)),
                Membership::new(vec![[1u64].into_iter().collect()], nodes),
            ),
            snapshot_id: format!("{index}"),
        }
    }

    #[test]
    fn empty_store_has_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotStore::new(dir.path());
        assert_eq!(s.meta().unwrap(), None);
        assert!(s.load().unwrap().is_none());
    }

    #[test]
    fn saved_snapshot_survives_reopen_and_older_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotStore::new(dir.path());
        assert!(s.save(&meta(10), b"ten").unwrap());
        assert!(s.save(&meta(20), b"twenty").unwrap());
        assert!(!s.save(&meta(15), b"fifteen").unwrap(), "older is dropped");
        assert!(
            !s.save(&meta(20), b"again").unwrap(),
            "same point is dropped"
        );
        let again = SnapshotStore::new(dir.path());
        let (m, data) = again.load().unwrap().unwrap();
        assert_eq!(m, meta(20));
        assert_eq!(data, b"twenty");
        // Slots alternate; nothing staged is left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["snapshot-0.db", "snapshot-1.db", "snapshot.meta"]);
    }

    #[test]
    fn commit_of_a_staged_file_and_leftovers_removed_on_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotStore::new(dir.path());
        let staged = s.staging_path().unwrap();
        std::fs::write(&staged, b"built").unwrap();
        assert!(s.commit(&staged, &meta(5)).unwrap());
        assert!(!staged.exists());
        // A crash mid-build leaves a staging file and a half-written record tmp.
        std::fs::write(dir.path().join("snapshot.tmp-7"), b"partial").unwrap();
        std::fs::write(dir.path().join(RECORD_TMP), b"xx").unwrap();
        let again = SnapshotStore::new(dir.path());
        assert_eq!(again.load().unwrap().unwrap().1, b"built");
        assert!(!dir.path().join("snapshot.tmp-7").exists());
        assert!(!dir.path().join(RECORD_TMP).exists());
    }

    #[test]
    fn corrupt_record_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        SnapshotStore::new(dir.path())
            .save(&meta(3), b"abc")
            .unwrap();
        let path = dir.path().join(RECORD_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = SnapshotStore::new(dir.path()).meta().unwrap_err();
        assert!(matches!(e, SnapshotStoreError::CorruptRecord { .. }), "{e}");
        assert_eq!(e.code(), ErrorCode::StorageCorrupt);

        // An unknown format version names both versions.
        let mut future = bytes.clone();
        future[..2].copy_from_slice(&99u16.to_le_bytes());
        std::fs::write(&path, &future).unwrap();
        let e = SnapshotStore::new(dir.path()).load().unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotStoreError::CorruptRecord {
                    source: CodecError::UnsupportedVersion { found: 99, .. },
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn truncated_or_missing_slot_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        SnapshotStore::new(dir.path())
            .save(&meta(3), b"abcdef")
            .unwrap();
        std::fs::write(dir.path().join(SLOTS[0]), b"abc").unwrap();
        let e = SnapshotStore::new(dir.path()).load().unwrap_err();
        assert!(
            matches!(
                e,
                SnapshotStoreError::Truncated {
                    expected: 6,
                    found: 3,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::remove_file(dir.path().join(SLOTS[0])).unwrap();
        let e = SnapshotStore::new(dir.path()).load().unwrap_err();
        assert!(matches!(e, SnapshotStoreError::Io { .. }), "{e}");
        assert_eq!(e.code(), ErrorCode::Storage);
    }
}
