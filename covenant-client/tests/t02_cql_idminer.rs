//! `cql idminer`, run as the built binary on a config made by `cql generate`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use covenant_core::config::Config;
use covenant_core::crypto::read_key_file;

fn cql(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cql"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cql")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn generate(dir: &Path, extra: &[&str]) {
    let mut args = vec!["generate", "-miner", "127.0.0.1:7460", "-difficulty", "8"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = cql(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn idminer_raises_the_difficulty_and_updates_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    generate(dir, &[]);
    let path = dir.join("config.yaml");
    let before = Config::load(&path).unwrap();
    let old_nonce = before.nonce.unwrap();
    let old_difficulty = before.this_node_id.unwrap().difficulty();
    let target = (old_difficulty + 2).max(10);

    let target_text = target.to_string();
    let out = cql(&[
        "idminer",
        "-config",
        path.to_str().unwrap(),
        "-difficulty",
        &target_text,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Generating nonce..."), "{stdout}");
    assert!(stdout.contains("Updated config file:"), "{stdout}");

    let after = Config::load(&path).unwrap();
    let id = after.this_node_id.unwrap();
    let nonce = after.nonce.unwrap();
    assert!(id.difficulty() >= target, "{stdout}");
    assert!(
        stdout.contains(&format!("nonce: {{{nonce} {} {id}}}", id.difficulty())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("node id: {id}")), "{stdout}");
    // Work continued after the old nonce instead of starting over.
    let as_tuple = |n: covenant_core::crypto::Nonce| (n.a, n.b, n.c, n.d);
    assert!(as_tuple(nonce) > as_tuple(old_nonce));

    let pk = read_key_file(&after.private_key_path(), b"")
        .unwrap()
        .public_key();
    id.verify(&pk, &nonce, target).unwrap();
    after.verify_identity(&pk).unwrap();
    assert_eq!(
        after.known_nodes.len(),
        1,
        "the own entry is replaced, not added"
    );
    assert_eq!(after.self_node().unwrap().nonce, nonce);
    // The rest of the config is kept.
    assert_eq!(after.miner, before.miner);
    assert_eq!(after.listen_addr, before.listen_addr);

    // Asking for no more than it has changes nothing.
    let out = cql(&[
        "idminer",
        "--config",
        path.to_str().unwrap(),
        "--difficulty",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing to mine"));
    assert_eq!(Config::load(&path).unwrap(), after);
}

#[test]
fn idminer_needs_the_master_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    generate(dir, &["-password", "pw"]);
    let path = dir.join("config.yaml");
    let before = std::fs::read(&path).unwrap();

    let out = cql(&[
        "idminer",
        "-config",
        path.to_str().unwrap(),
        "-difficulty",
        "10",
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("master key"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let out = cql(&[
        "idminer",
        "-config",
        path.to_str().unwrap(),
        "-password",
        "pw",
        "-difficulty",
        "10",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        Config::load(&path)
            .unwrap()
            .this_node_id
            .unwrap()
            .difficulty()
            >= 10
    );
}

#[test]
fn idminer_reports_a_missing_config() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.yaml");
    let out = cql(&["idminer", "-config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("nope.yaml"), "{err}");
}
