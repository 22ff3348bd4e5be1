//! The seed's database flow on a local testnet (one block producer, one
//! miner serving only its `TargetUsers`): `cql create` matches the miner and
//! records the DSN, another user's create is not matched, `cql console`
//! writes and reads (also `-out` and stdin), an SQL error keeps SQLite's
//! message, `cql transfer -to-dsn` and `cql wallet -dsn` work, and
//! `cql drop` removes the data.

mod common;

use std::time::Duration;

use common::miner::{DbNet, fund};
use common::{assert_ok, cql, poll, s, stderr, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_console_and_drop() {
    let db = DbNet::start().await;
    let dsn = db.dsn.clone();
    let user_cfg = db.user_cfg.clone();

    // cql create printed the DSN as the seed does and recorded it.
    let out = stdout(&db.create_output);
    assert!(dsn.starts_with("covenantsql://"), "{dsn}");
    assert!(
        out.contains("could be used as a dsn for `cql console`"),
        "{out}"
    );
    let recorded = std::fs::read_to_string(user_cfg.with_file_name(".dsn")).unwrap();
    assert_eq!(recorded.lines().collect::<Vec<_>>(), [dsn.as_str()]);

    // Another user is not among the miner's TargetUsers: no match.
    let (other_cfg, other) = db.net.generate_user("other");
    fund(&db.net, &other);
    let o = cql(&[
        "create",
        "-config",
        s(&other_cfg),
        "-db-node",
        "1",
        "-db-target-miners",
        &db.miner.wallet.to_string(),
    ]);
    assert!(!o.status.success(), "other user's create succeeded");
    assert!(
        stderr(&o).to_lowercase().contains("not enough miners"),
        "{}",
        stderr(&o)
    );

    // Writes and reads through the console.
    let o = db.console(
        &user_cfg,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'),('b'); SELECT * FROM t",
    );
    assert_ok(&o, "cql console");
    let out = stdout(&o);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "OK, 0 rows affected, last insert id 0",
            "OK, 2 rows affected, last insert id 2",
            "id | v",
            "---+--",
            "1  | a",
            "2  | b",
            "(2 rows)",
        ],
        "{out}"
    );

    // -out writes the same output to a file; SQL may come on stdin.
    let out_file = user_cfg.with_file_name("out.txt");
    let o = cql(&[
        "console",
        "-config",
        s(&user_cfg),
        "-out",
        s(&out_file),
        "-command",
        "SELECT v FROM t WHERE id = 2",
        &dsn,
    ]);
    assert_ok(&o, "cql console -out");
    assert_eq!(stdout(&o), "v\n-\nb\n(1 row)\n");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), stdout(&o));
    let o = console_stdin(&user_cfg, "SELECT count(*) AS n FROM t;\n", &dsn);
    assert_ok(&o, "cql console < stdin");
    assert_eq!(stdout(&o), "n\n-\n2\n(1 row)\n");

    // Without a DSN: not interactive yet, and the recorded DSNs are listed.
    let o = cql(&["console", "-config", s(&user_cfg)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("interactive") && stderr(&o).contains(&dsn),
        "{}",
        stderr(&o)
    );

    // An SQL error is reported with SQLite's message and a non-zero exit.
    let o = db.console(&user_cfg, "SELECT * FROM missing");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no such table: missing"),
        "{}",
        stderr(&o)
    );

    // Paying into the database and looking at its account.
    let o = cql(&[
        "transfer",
        "-config",
        s(&user_cfg),
        "-to-dsn",
        &dsn,
        "-amount",
        "1000",
        "-token",
        "Particle",
        "-wait-tx-confirm",
    ]);
    assert_ok(&o, "cql transfer -to-dsn");
    let o = cql(&["wallet", "-config", s(&user_cfg), "-dsn", &dsn]);
    assert_ok(&o, "cql wallet -dsn");
    let out = stdout(&o);
    assert!(out.contains("Particle balance is: "), "{out}");
    assert!(out.contains("permission: Admin"), "{out}");
    assert!(out.contains("advance payment: "), "{out}");

    // cql drop removes the data and the .dsn entry; queries then fail clearly.
    let id_hex = dsn.trim_start_matches("covenantsql://").to_string();
    let data = db.miner.root_dir().join(&id_hex);
    assert!(data.exists(), "{} missing", data.display());
    let o = cql(&["drop", "-config", s(&user_cfg), &dsn]);
    assert_ok(&o, "cql drop");
    poll(
        "the miner to delete the database",
        Duration::from_secs(20),
        || {
            let gone = !data.exists();
            async move { gone.then_some(()) }
        },
    )
    .await;
    let recorded = std::fs::read_to_string(user_cfg.with_file_name(".dsn")).unwrap();
    assert!(!recorded.contains(&dsn), "{recorded}");
    let o = db.console(&user_cfg, "SELECT * FROM t");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

/// `cql console -config CONFIG DSN` with `sql` on stdin.
fn console_stdin(config: &std::path::Path, sql: &str, dsn: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(&common::binaries().cql)
        .args(["console", "-config", s(config), dsn])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cql console");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("cql console output")
}
