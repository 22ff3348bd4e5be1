//! Stopping the processes the bench starts (miners, dqlite nodes).

use std::time::Duration;

/// Asks `child` to stop (SIGTERM), then kills it if it lingers past `grace`.
pub async fn terminate(child: &mut tokio::process::Child, grace: Duration) {
    if let Some(pid) = child.id() {
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
