//! App CRUD with the blocking client API: no async in the app's code.
//!
//! Starts a local network in this process (1 block producer, 3 miners, on
//! free loopback ports, data in a temporary folder), funds a new user,
//! creates a 3-node database as that user, then creates, reads, updates and
//! deletes rows with `?` parameters, reads them into a struct with serde,
//! and verifies that every write is in the database's signed blocks.
//! Everything stops when it ends.
//!
//! ```text
//! cargo run --release --example crud_blocking
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use covenant::client::blocking::Client;
use covenant::client::core::net::NodeIdentity;
use covenant::client::{Args, CreateOptions, RowsExt as _, Token, Value, VerifyOptions};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};
use serde::Deserialize;

/// A row of the app's table.
#[derive(Debug, Deserialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
    note: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("starting a local network: 1 block producer, 3 miners...");
    // The network runs on its own runtime; the app below uses none.
    let network_rt = tokio::runtime::Runtime::new()?;
    let options = LocalNetOptions {
        miners: 3,
        ..LocalNetOptions::default()
    };
    let difficulty = options.difficulty;
    let net = network_rt.block_on(LocalNet::start(dir.path(), options))?;
    network_rt.block_on(net.wait_for_providers(Duration::from_secs(30)))?;
    let result = app(&net, difficulty);
    eprintln!("stopping the network...");
    network_rt.block_on(net.shutdown());
    result
}

/// Polls `f` until it yields a value, for at most `limit`.
fn eventually<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > end {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn app(net: &LocalNet, difficulty: u32) -> anyhow::Result<()> {
    // The network's funded "super client" pays the new user.
    let bank = net.super_identity().clone();
    let bank = Client::new(net.client_config_for(&bank), bank.private_key().clone())?;
    let me = NodeIdentity::mine_weak(difficulty)?;
    let client = Client::new(net.client_config_for(&me), me.private_key().clone())?;
    eprintln!("user {}: funding it...", client.address());
    let tx = bank.transfer(client.address(), Token::Particle, 1_000_000_000)?;
    bank.wait_for_tx(&tx, Duration::from_secs(30))?;
    eprintln!("balance: {} Particle", client.balance(Token::Particle)?);

    eprintln!("creating a 3-node database...");
    let id = client.create_database(CreateOptions {
        node_count: 3,
        target_miners: net.miner_addresses(),
        advance_payment: 100_000_000,
        ..CreateOptions::default()
    })?;
    let db = client.open_database(&id.to_dsn())?;
    db.wait_ready(Duration::from_secs(30))
        .context("waiting for the database's miners to elect a leader")?;
    println!("database: {}", db.dsn());

    // Create.
    db.exec(
        "CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT NOT NULL, \
         done INTEGER NOT NULL DEFAULT 0, note TEXT)",
        Args::default(),
    )?;
    for (title, note) in [
        ("write the docs", None),
        ("run the tests", Some("all of them")),
        ("ship it", None),
    ] {
        let r = db.exec(
            "INSERT INTO todo (title, note) VALUES (?, ?)",
            Args::Positional(vec![Value::from(title), Value::from(note)]),
        )?;
        println!("inserted todo {}: {title}", r.last_insert_id);
    }
    // Update.
    let r = db.exec(
        "UPDATE todo SET done = 1 WHERE title = ?",
        Args::Positional(vec![Value::from("run the tests")]),
    )?;
    println!("marked {} todo done", r.affected_rows);
    // Delete.
    let r = db.exec(
        "DELETE FROM todo WHERE id = ?",
        Args::Positional(vec![Value::Integer(3)]),
    )?;
    println!("deleted {} todo", r.affected_rows);
    // Read, into structs.
    let todos: Vec<Todo> = db
        .query(
            "SELECT id, title, done, note FROM todo ORDER BY id",
            Args::default(),
        )?
        .rows_as()?;
    for t in &todos {
        println!(
            "  [{}] {} {}{}",
            if t.done { "x" } else { " " },
            t.id,
            t.title,
            t.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }

    // Every acknowledged write is in a signed block.
    eprintln!("waiting for the writes to be sealed in blocks...");
    let mut failure = None;
    let report = eventually(
        "the writes to be sealed",
        Duration::from_secs(30),
        || match db.verify(VerifyOptions::default()) {
            Ok(r) => (r.writes_unsealed == 0).then_some(Some(r)),
            Err(e) if e.retryable() => None,
            Err(e) => {
                failure = Some(e);
                Some(None)
            }
        },
    )?;
    let Some(report) = report else {
        return Err(failure.map_or_else(|| anyhow::anyhow!("verification failed"), Into::into));
    };
    print!("{report}");
    Ok(())
}
