//! Disk usage of the miner's data directory.
//!
//! Usage is the sum of the apparent sizes (`len`) of every regular file under
//! the root, found without following symbolic links below the root, rounded up to whole KiB
//! (1 KB = 1024 bytes, as `du -k` counts). Entries that vanish or cannot be
//! read while walking are skipped: a database being dropped must not make the
//! metrics endpoint fail.

use std::path::Path;

/// Bytes in one KB of `service:miner:disk:usage`.
const KB: u64 = 1024;

/// KB used by the regular files under `root`; 0 if `root` cannot be read.
pub(crate) fn usage_kb(root: &Path) -> u64 {
    usage_bytes(root).div_ceil(KB)
}

/// Total apparent size in bytes of the regular files under `root`.
fn usage_bytes(root: &Path) -> u64 {
    let mut total = 0u64;
    // The root itself may be a link (a data volume mounted elsewhere); follow it.
    let mut pending = vec![(root.to_path_buf(), true)];
    while let Some((path, follow)) = pending.pop() {
        let meta = if follow {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        };
        let Ok(meta) = meta else {
            continue;
        };
        if meta.is_file() {
            total = total.saturating_add(meta.len());
        } else if meta.is_dir() {
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            pending.extend(entries.filter_map(|e| e.ok()).map(|e| (e.path(), false)));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_nested_files_rounding_up_to_kib() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(dir.path().join("db1/chain")).unwrap();
        std::fs::write(dir.path().join("db1/data.sqlite"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join("db1/chain/log"), vec![0u8; 2145]).unwrap();
        // 1000 + 3000 + 2145 = 6145 bytes = 6 KiB + 1 byte -> 7.
        assert_eq!(usage_bytes(dir.path()), 6145);
        assert_eq!(usage_kb(dir.path()), 7);
    }

    #[test]
    fn empty_and_missing_roots_use_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(usage_kb(dir.path()), 0);
        assert_eq!(usage_kb(&dir.path().join("missing")), 0);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 10 * 1024]).unwrap();
        std::fs::write(dir.path().join("f"), vec![0u8; 1024]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        assert_eq!(usage_kb(dir.path()), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_root_is_followed() {
        let parent = tempfile::tempdir().unwrap();
        let real = tempfile::tempdir().unwrap();
        std::fs::write(real.path().join("f"), vec![0u8; 2048]).unwrap();
        let root = parent.path().join("root");
        std::os::unix::fs::symlink(real.path(), &root).unwrap();
        assert_eq!(usage_kb(&root), 2);
    }
}
