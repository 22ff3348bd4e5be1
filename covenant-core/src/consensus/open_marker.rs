//! A marker beside a replica's SQLite file saying the file is open, and
//! since which boot of the machine, so that startup can tell how the last
//! run ended.
//!
//! A replica runs its file with `synchronous=OFF` (the Raft log is the
//! durable record; see `sqlchain/executor.rs`). A process that crashes
//! loses nothing, because the kernel still holds every write; a machine
//! that loses power or crashes may leave the file torn. So at startup a
//! marker left by the same boot means the file is whole, and one left by an
//! earlier boot (or unreadable) means it must be discarded and rebuilt from
//! the stored snapshot and the log. A clean close removes the marker after
//! fsyncing the file.
//!
//! Only the file system and `/proc`; no SQLite, no openraft.

use std::io;
use std::path::{Path, PathBuf};

use super::state_machine::sync_dir;

/// Where the kernel publishes the id of the current boot (Linux).
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// How the last run that opened the file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastRun {
    /// It closed the file cleanly (or there was none): the file is whole.
    Closed,
    /// Its process stopped with the file open, during this boot: the
    /// kernel wrote everything it had been given, so the file is whole.
    ProcessStopped,
    /// The machine went down (or may have) with the file open: the file
    /// may be torn and must be rebuilt.
    MachineDown,
}

/// The marker's path for the replica file `data`.
fn marker_path(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".open");
    PathBuf::from(p)
}

/// This boot's id, if the system tells it.
fn boot_id() -> Option<String> {
    std::fs::read_to_string(BOOT_ID)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// How the last run ended, judged from a marker's content (`None`: no marker).
fn judge(marker: Option<&str>, now: Option<&str>) -> LastRun {
    match (marker, now) {
        (None, _) => LastRun::Closed,
        (Some(then), Some(now)) if then.trim() == now => LastRun::ProcessStopped,
        _ => LastRun::MachineDown,
    }
}

/// How the last run that opened `data` ended. Read it, act on it (discard
/// a torn file), and only then call [`mark_open`]: a crash in between must
/// still find the old marker.
pub(crate) fn last_run(data: &Path) -> io::Result<LastRun> {
    let previous = match std::fs::read(marker_path(data)) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(judge(previous.as_deref(), boot_id().as_deref()))
}

/// Marks `data` open for this run, durably (the marker and its directory
/// are fsynced, so the removal of a discarded file is durable too).
pub(crate) fn mark_open(data: &Path) -> io::Result<()> {
    let path = marker_path(data);
    let mut f = std::fs::File::create(&path)?;
    io::Write::write_all(&mut f, boot_id().unwrap_or_default().as_bytes())?;
    f.sync_all()?;
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Removes the marker: call only once the file is durable on disk.
pub(crate) fn mark_closed(data: &Path) -> io::Result<()> {
    match std::fs::remove_file(marker_path(data)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match data.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Overwrites the marker as an earlier boot would have left it (tests only).
#[cfg(test)]
pub(crate) fn pretend_earlier_boot(data: &Path) -> io::Result<()> {
    std::fs::write(marker_path(data), "a boot before this one")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_tells_how_the_last_run_ended() {
        assert_eq!(judge(None, Some("b1")), LastRun::Closed);
        assert_eq!(judge(Some("b1\n"), Some("b1")), LastRun::ProcessStopped);
        assert_eq!(judge(Some("b0"), Some("b1")), LastRun::MachineDown);
        // Without a boot id nothing proves the machine stayed up.
        assert_eq!(judge(Some(""), None), LastRun::MachineDown);
    }

    #[test]
    fn open_close_and_crash_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.db");
        let reopen = |data: &Path| {
            let last = last_run(data).unwrap();
            mark_open(data).unwrap();
            last
        };
        assert_eq!(reopen(&data), LastRun::Closed);
        let crashed = reopen(&data);
        if boot_id().is_some() {
            assert_eq!(crashed, LastRun::ProcessStopped);
        } else {
            assert_eq!(crashed, LastRun::MachineDown);
        }
        mark_closed(&data).unwrap();
        assert_eq!(reopen(&data), LastRun::Closed);
        pretend_earlier_boot(&data).unwrap();
        // Until the file is marked open again, the old boot's marker stands.
        assert_eq!(last_run(&data).unwrap(), LastRun::MachineDown);
        assert_eq!(reopen(&data), LastRun::MachineDown);
        mark_closed(&data).unwrap();
        mark_closed(&data).unwrap();
        assert!(!marker_path(&data).exists());
    }
}
