//! `cql testnet up`: runs the block producers in the foreground, serves the
//! seed's commands, stops them all on SIGTERM and exits 0; reports a block
//! producer that cannot start with its log; names where it looked for `cqld`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Testnet, assert_ok, binaries, cql, s, stderr, stdout};

/// Starts `cql testnet up DIR` with stdout read line by line on a thread.
fn up(dir: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(&binaries().cql)
        .args(["testnet", "up", s(dir)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cql testnet up");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until one starts with `prefix` (all lines read so far on timeout).
fn read_until(
    rx: &mpsc::Receiver<String>,
    prefix: &str,
    timeout: Duration,
) -> Result<Vec<String>, Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.starts_with(prefix);
                seen.push(line);
                if done {
                    return Ok(seen);
                }
            }
            Err(_) => return Err(seen),
        }
    }
}

/// Waits for `child` to exit within `timeout`.
fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("cql testnet up did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_until_sigterm_then_stops_every_producer() {
    let net = Testnet::init(3);
    let (mut child, lines) = up(&net.dir());
    let seen = match read_until(&lines, "testnet up:", Duration::from_secs(60)) {
        Ok(seen) => seen,
        Err(seen) => {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "no `testnet up` line; stdout: {seen:?}\nstderr: {}",
                stderr(&out)
            );
        }
    };
    let first = seen.last().expect("a line");
    assert!(
        first.starts_with("testnet up: 3 block producers serving (leader "),
        "{first}"
    );
    for i in 0..3 {
        let line = read_until(&lines, "  bp_", Duration::from_secs(5)).expect("a BP line");
        let line = line.last().expect("a line");
        assert!(
            line.contains(&net.descriptor.block_producers[i].addr),
            "{line}"
        );
    }

    // The seed's wallet command works against it.
    let o = cql(&["wallet", "-config", s(&net.super_config())]);
    assert_ok(&o, "cql wallet");
    assert!(
        stdout(&o).contains("Particle balance is: 1000000000000000000"),
        "{}",
        stdout(&o)
    );

    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "cql testnet up exited with {status}");
    let rest = read_until(&lines, "testnet stopped", Duration::from_secs(5));
    assert!(rest.is_ok(), "no `testnet stopped` line: {rest:?}");

    // Every block producer is gone.
    let probe = net.probe(&net.super_config());
    for i in 0..3 {
        let e = probe.head_of(net.node_id(i)).await;
        assert!(e.is_err(), "bp_{i} still answers after the testnet stopped");
    }
}

#[test]
fn a_producer_that_cannot_start_is_reported_with_its_log() {
    let net = Testnet::init(3);
    // Take bp_1's port, so its cqld cannot listen.
    let addr = &net.descriptor.block_producers[1].addr;
    let _squatter = TcpListener::bind(addr).expect("bind bp_1's port");
    let (mut child, _lines) = up(&net.dir());
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).unwrap();
    assert!(err.contains("bp_1") && err.contains("exited"), "{err}");
    assert!(err.contains("cqld.log"), "{err}");
    assert!(
        err.contains(addr),
        "the log's end should show the bind failure: {err}"
    );
}

#[test]
fn a_missing_cqld_names_where_it_looked() {
    let net = Testnet::init(1);
    let lonely = net.scratch("bin");
    std::fs::create_dir_all(&lonely).unwrap();
    let cql_copy = lonely.join("cql");
    std::fs::copy(&binaries().cql, &cql_copy).unwrap();
    let o = Command::new(&cql_copy)
        .args(["testnet", "up", s(&net.dir())])
        .env("PATH", "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(s(&lonely.join("cqld"))) && err.contains("PATH"),
        "{err}"
    );
    assert!(
        err.contains("cargo build --release -p covenant-miner"),
        "{err}"
    );
}
