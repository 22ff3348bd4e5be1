//! `cql console` against an in-process local network (1 block producer,
//! 1 miner, real TLS on loopback): the built `cql` binary driven with
//! `-command`, with a script on stdin, and interactively on a
//! pseudo-terminal (expectrl), including picking the database from `.dsn`.
//!
//! Every wait polls with a deadline; nothing sleeps as synchronisation.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use covenant_client::CreateOptions;
use covenant_client::core::config::{CONFIG_FILE_NAME, PRIVATE_KEY_FILE_NAME};
use covenant_client::core::crypto::write_key_file;
use covenant_miner::localnet::{LocalNet, LocalNetOptions};

/// A local network with one database, and a client config for its owner on disk.
struct Net {
    net: LocalNet,
    config: PathBuf,
    dsn: String,
    _dir: tempfile::TempDir,
}

impl Net {
    /// Starts the network, creates the database and records it in `.dsn`.
    async fn start() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let net = LocalNet::start(&dir.path().join("net"), LocalNetOptions::default())
            .await
            .unwrap();
        let client = net.super_client().unwrap();
        let miners = net.miner_addresses();
        net.wait_for_providers(Duration::from_secs(15))
            .await
            .unwrap();
        let id = client
            .create_database(CreateOptions {
                target_miners: miners,
                ..CreateOptions::default()
            })
            .await
            .unwrap();
        let db = client.open_database(&id.to_dsn()).await.unwrap();
        db.wait_ready(Duration::from_secs(15)).await.unwrap();

        let cfg_dir = dir.path().join("client");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        let identity = net.super_identity();
        let mut config = net.client_config_for(identity);
        config.set_config_dir(&cfg_dir);
        let path = cfg_dir.join(CONFIG_FILE_NAME);
        config.save(&path).unwrap();
        write_key_file(
            &cfg_dir.join(PRIVATE_KEY_FILE_NAME),
            identity.private_key(),
            b"",
        )
        .unwrap();
        std::fs::write(cfg_dir.join(".dsn"), format!("{}\n", id.to_dsn())).unwrap();
        Net {
            net,
            config: path,
            dsn: id.to_dsn(),
            _dir: dir,
        }
    }
}

/// `cql console -config CONFIG ARGS...` with `stdin` as its input.
fn console(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cql"))
        .arg("console")
        .arg("-config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_interactive_with_command_and_stdin() {
    let net = Net::start().await;
    let (config, dsn) = (net.config.clone(), net.dsn.clone());
    tokio::task::spawn_blocking(move || {
        // -command: several statements, a `;` inside a string.
        let o = console(
            &config,
            &[
                "-command",
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); \
                 INSERT INTO t (v) VALUES ('a'),('b;c'); SELECT * FROM t",
                &dsn,
            ],
            "",
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(
            text(&o.stdout),
            "OK, 0 rows affected, last insert id 0\n\
             OK, 2 rows affected, last insert id 2\n\
             id | v\n---+----\n1  | a\n2  | b;c\n(2 rows)\n"
        );

        // A script on stdin: multi-line statements, comments, meta-commands,
        // a last statement without `;`; -out gets the same results.
        let out_file = config.with_file_name("out.txt");
        let script = "-- a script\n\\timing off\nSELECT v\n  FROM t\n  WHERE id = 2;\n\
                      \\d\n\\d t\nINSERT INTO t (v) VALUES ('x'); SELECT count(*) AS n\nFROM t";
        let o = console(&config, &["-out", out_file.to_str().unwrap(), &dsn], script);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        assert!(
            out.starts_with("Timing is off.\nv\n---\nb;c\n(1 row)\nname\n----\nt\n(1 row)\n"),
            "{out}"
        );
        let lines: Vec<&str> = out.lines().collect();
        let desc = lines
            .iter()
            .position(|l| l.starts_with("cid ") && l.contains("| name") && l.contains("| type"))
            .unwrap_or_else(|| panic!("no column listing in:\n{out}"));
        assert!(
            lines[desc + 2].contains("| id ") && lines[desc + 2].contains("INTEGER"),
            "{out}"
        );
        assert!(
            lines[desc + 3].contains("| v ") && lines[desc + 3].contains("TEXT"),
            "{out}"
        );
        assert!(
            out.ends_with("(2 rows)\nOK, 1 rows affected, last insert id 3\nn\n-\n3\n(1 row)\n"),
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&out_file).unwrap(), out);

        // The first failure stops a script with SQLite's message and a non-zero exit.
        let o = console(
            &config,
            &[&dsn],
            "SELECT 1 AS one;\nSELEC oops;\nSELECT 2;\n",
        );
        assert!(!o.status.success());
        assert_eq!(text(&o.stdout), "one\n---\n1\n(1 row)\n");
        assert!(
            text(&o.stderr).contains("syntax error"),
            "{}",
            text(&o.stderr)
        );
        let o = console(&config, &[&dsn], "\\nope\n");
        assert!(!o.status.success());
        assert!(
            text(&o.stderr).contains("unknown meta-command \\nope"),
            "{}",
            text(&o.stderr)
        );

        // Without a DSN and without a terminal, the recorded ones are listed.
        let o = console(&config, &["-command", "SELECT 1"], "");
        assert!(!o.status.success());
        let err = text(&o.stderr);
        assert!(
            err.contains("interactively") && err.contains(&format!("1. {dsn}")),
            "{err}"
        );
    })
    .await
    .unwrap();
    net.net.shutdown().await;
}

#[cfg(unix)]
mod pty {
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use expectrl::process::unix::WaitStatus;
    use expectrl::session::{OsProcess, OsSession, OsStream, log};
    use expectrl::stream::log::LogStream;
    use expectrl::{ControlCode, Eof, Expect as _};

    /// Everything read from and written to the terminal, for failure messages.
    #[derive(Clone, Default)]
    struct Transcript(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Transcript {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `cql console` on a pseudo-terminal.
    pub(super) struct Shell {
        session: expectrl::Session<OsProcess, LogStream<OsStream, Transcript>>,
        transcript: Transcript,
    }

    impl Shell {
        /// Starts `cql console -config CONFIG [DSN]` on a terminal.
        pub(super) fn spawn(config: &Path, dsn: Option<&str>) -> Shell {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cql"));
            cmd.arg("console").arg("-config").arg(config);
            cmd.args(dsn);
            cmd.env("TERM", "xterm").env("RUST_LOG", "error");
            let session: OsSession = expectrl::Session::spawn(cmd).unwrap();
            let transcript = Transcript::default();
            let mut session = log(session, transcript.clone()).unwrap();
            session.set_expect_timeout(Some(Duration::from_secs(15)));
            Shell {
                session,
                transcript,
            }
        }

        fn fail(&self, what: &str, e: impl std::fmt::Display) -> ! {
            let t = self.transcript.0.lock().unwrap().clone();
            panic!(
                "waiting for {what}: {e}\n--- terminal transcript ---\n{}",
                String::from_utf8_lossy(&t)
            )
        }

        /// Waits until the output shows `needle`.
        pub(super) fn expect(&mut self, needle: &str) {
            if let Err(e) = self.session.expect(needle) {
                self.fail(&format!("{needle:?}"), e);
            }
        }

        /// Types `line` and Enter.
        pub(super) fn line(&mut self, line: &str) {
            if let Err(e) = self.session.send_line(line) {
                self.fail("sending a line", e);
            }
        }

        /// Presses Ctrl-C.
        pub(super) fn ctrl_c(&mut self) {
            if let Err(e) = self.session.send(ControlCode::EndOfText) {
                self.fail("sending Ctrl-C", e);
            }
        }

        /// Waits for the end of output and returns the exit status.
        pub(super) fn wait_exit(mut self) -> i32 {
            if let Err(e) = self.session.expect(Eof) {
                self.fail("the end of output", e);
            }
            match self.session.get_process().wait() {
                Ok(WaitStatus::Exited(_, code)) => code,
                other => self.fail("the exit status", format!("{other:?}")),
            }
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_session_on_a_terminal() {
    let net = Net::start().await;
    let (config, dsn) = (net.config.clone(), net.dsn.clone());
    tokio::task::spawn_blocking(move || {
        // No DSN: the one in .dsn is offered and picked by number.
        let mut sh = pty::Shell::spawn(&config, None);
        sh.expect(&format!("1. {dsn}"));
        sh.expect("Open which one? [1-1]");
        sh.line("1");
        let prompt = dsn.trim_start_matches("covenantsql://")[..8].to_string();
        sh.expect("Timing is on.");
        sh.expect(&format!("{prompt}=> "));

        // A statement over two lines: the continuation prompt, then the result.
        sh.line("CREATE TABLE t (id INTEGER PRIMARY KEY,");
        sh.expect(&format!("{prompt}-> "));
        sh.line("  v TEXT);");
        sh.expect("OK, 0 rows affected, last insert id 0");
        sh.expect("Time: ");
        sh.expect(&format!("{prompt}=> "));

        sh.line("INSERT INTO t (v) VALUES ('hello');");
        sh.expect("OK, 1 rows affected, last insert id 1");
        sh.expect(&format!("{prompt}=> "));

        // Ctrl-C drops the half-typed statement.
        sh.line("SELECT 'dropped'");
        sh.expect(&format!("{prompt}-> "));
        sh.ctrl_c();
        sh.expect(&format!("{prompt}=> "));

        sh.line("SELECT * FROM t;");
        sh.expect("id | v\r\n---+------\r\n1  | hello\r\n(1 row)\r\nTime: ");
        sh.expect(&format!("{prompt}=> "));

        sh.line("\\d");
        sh.expect("name\r\n----\r\nt\r\n(1 row)");
        sh.expect(&format!("{prompt}=> "));
        sh.line("\\d t");
        sh.expect("cid | name | type");
        sh.expect("| v    | TEXT");
        sh.expect(&format!("{prompt}=> "));

        // An error is printed and the session goes on.
        sh.line("SELEC oops;");
        sh.expect("ERROR: ");
        sh.expect("syntax error");
        sh.expect(&format!("{prompt}=> "));
        sh.line("\\timing off");
        sh.expect("Timing is off.");
        sh.expect(&format!("{prompt}=> "));
        sh.line("SELECT count(*) AS n FROM t;");
        sh.expect("n\r\n-\r\n1\r\n(1 row)\r\n");
        sh.expect(&format!("{prompt}=> "));

        sh.line("\\?");
        sh.expect("\\d TABLE          show TABLE's columns");
        sh.expect(&format!("{prompt}=> "));

        sh.line("\\q");
        assert_eq!(sh.wait_exit(), 0);

        // The history file keeps the two-line statement as one entry.
        let history = std::fs::read_to_string(config.with_file_name(".console_history")).unwrap();
        assert!(
            history.contains("CREATE TABLE t (id INTEGER PRIMARY KEY,\\n  v TEXT);"),
            "{history}"
        );
        assert!(!history.contains("dropped"), "{history}");
    })
    .await
    .unwrap();
    net.net.shutdown().await;
}
