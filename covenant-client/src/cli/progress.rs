//! Running the node-id proof of work for the CLI: a live spinner on stderr
//! (best difficulty, hash rate, hashes; hidden when stderr is not a
//! terminal) and Ctrl-C turned into a clean cancellation.
//!
//! The Ctrl-C handler uses tokio's signal support; once installed, SIGINT
//! stays captured for the rest of the process, so call this as the last long
//! step of a command.

use std::io::IsTerminal as _;
use std::thread::JoinHandle;
use std::time::Duration;

use covenant_core::crypto::PublicKey;
use covenant_core::pow::{self, CancelToken, PowOptions, PowProgress, PowResult};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::error::CliError;

/// Mines a nonce for `public_key` with `opts`, showing progress; Ctrl-C
/// returns [`CliError::Cancelled`].
pub(crate) fn mine_with_progress(
    public_key: &PublicKey,
    opts: &PowOptions,
) -> Result<PowResult, CliError> {
    let cancel = CancelToken::new();
    let _ctrl_c = CtrlC::cancel_on_signal(cancel.clone());
    let bar = spinner(opts.difficulty);
    tracing::info!(difficulty = opts.difficulty, "mining node id");
    let show = |p: &PowProgress| bar.set_message(describe(p, opts.difficulty));
    let result = pow::mine(public_key, opts, &cancel, &show);
    bar.finish_and_clear();
    let found = result?;
    tracing::info!(
        threads = found.threads,
        hashes = found.hashes,
        elapsed = ?found.elapsed,
        "node id found"
    );
    Ok(found)
}

fn spinner(target: u32) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(format!("mining node id of difficulty {target}..."));
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// One progress line: `mining node id: best difficulty 17/24, 3.1 MH/s, 52.4 M hashes, 8 threads`.
fn describe(p: &PowProgress, target: u32) -> String {
    format!(
        "mining node id: best difficulty {}/{target}, {}H/s, {} hashes, {} threads",
        p.best_difficulty,
        si(p.hash_rate),
        si(p.hashes as f64),
        p.threads
    )
}

/// `x` with an SI prefix: `950 `, `12.30 k`, `4.56 M`, `1.20 G`.
fn si(x: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, unit) in UNITS {
        if x >= scale {
            return format!("{:.2} {unit}", x / scale);
        }
    }
    format!("{x:.0} ")
}

/// Cancels a token on Ctrl-C until dropped.
struct CtrlC {
    done: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CtrlC {
    fn cancel_on_signal(token: CancelToken) -> CtrlC {
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cql-ctrl-c".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    tokio::select! {
                        signal = tokio::signal::ctrl_c() => {
                            if signal.is_ok() {
                                token.cancel();
                            }
                        }
                        _ = finished => {}
                    }
                });
            })
            .ok();
        CtrlC {
            done: Some(done),
            thread,
        }
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_reads_well() {
        let p = PowProgress {
            best_difficulty: 17,
            best: None,
            hashes: 52_400_000,
            hash_rate: 3_100_000.0,
            elapsed: Duration::from_secs(17),
            threads: 8,
        };
        assert_eq!(
            describe(&p, 24),
            "mining node id: best difficulty 17/24, 3.10 MH/s, 52.40 M hashes, 8 threads"
        );
        assert_eq!(si(950.0), "950 ");
        assert_eq!(si(12_300.0), "12.30 k");
    }
}
