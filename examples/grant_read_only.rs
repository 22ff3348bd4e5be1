//! Sharing a database read-only: `cargo run --release --example grant_read_only`.
//!
//! On a local network in this process (one block producer, one miner), the
//! owner creates a database and a table, then grants a second user the
//! `Read` role with a `UpdatePermission` transaction on the main chain. The
//! reader can SELECT; its INSERT is refused by the miner with
//! [`ClientError::PermissionDenied`], whose message says why. Everything
//! stops when the program exits.

use std::time::{Duration, Instant};

use anyhow::bail;
use covenant::client::core::ErrorCode;
use covenant::client::core::net::NodeIdentity;
use covenant::client::{Args, Client, ClientError, CreateOptions, Permission, Roles, Token, Value};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("covenant-grant-")
        .tempdir()?;
    let options = LocalNetOptions::default();
    println!("Starting a block producer and a miner on 127.0.0.1...");
    let net = LocalNet::start(dir.path(), options.clone()).await?;
    let result = run(&net, &options).await;
    net.shutdown().await;
    result
}

async fn run(net: &LocalNet, options: &LocalNetOptions) -> anyhow::Result<()> {
    let bank = net.super_client()?;
    // Two users: the owner pays for the database; the reader needs no tokens to read.
    let owner_id = NodeIdentity::mine_weak(options.difficulty)?;
    let reader_id = NodeIdentity::mine_weak(options.difficulty)?;
    let tx = bank
        .transfer(owner_id.address(), Token::Particle, 1_000_000_000)
        .await?;
    bank.wait_for_tx(&tx, STEP, |_| {}).await?;
    let owner = Client::new(
        net.client_config_for(&owner_id),
        owner_id.private_key().clone(),
    )?;
    let reader = Client::new(
        net.client_config_for(&reader_id),
        reader_id.private_key().clone(),
    )?;
    println!("owner  {}", owner.address());
    println!("reader {}", reader.address());

    net.wait_for_providers(STEP).await?;
    let id = owner.create_database(CreateOptions::default()).await?;
    let dsn = id.to_dsn();
    let owned = owner.open_database(&dsn).await?;
    owned.wait_ready(STEP).await?;
    owned
        .exec(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
            Args::default(),
        )
        .await?;
    owned
        .exec(
            "INSERT INTO notes (body) VALUES (?), (?)",
            Args::Positional(vec!["shared with the reader".into(), "read-only".into()]),
        )
        .await?;
    println!("\nowner created {dsn} with a table of 2 rows");

    // Before the grant the reader is refused even a read.
    let theirs = reader.open_database(&dsn).await?;
    match theirs.query("SELECT 1", Args::default()).await {
        Err(ClientError::PermissionDenied { message }) => {
            println!("reader, before the grant: SELECT refused: {message}")
        }
        other => bail!("a user without a grant could read: {other:?}"),
    }

    // The grant is a main-chain transaction; `grant` waits for its confirmation.
    let tx = owner
        .grant(&id, reader.address(), Permission::new(Roles::READ))
        .await?;
    println!("owner granted Read to the reader (transaction {tx})");

    // The miner learns the grant from the main chain within moments.
    let deadline = Instant::now() + STEP;
    let rows = loop {
        match theirs
            .query("SELECT id, body FROM notes ORDER BY id", Args::default())
            .await
        {
            Ok(r) => break r.rows,
            Err(ClientError::PermissionDenied { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    println!("reader: SELECT id, body FROM notes ->");
    for row in &rows {
        let cells: Vec<String> = row.iter().map(Value::to_string).collect();
        println!("  {}", cells.join(" | "));
    }

    match theirs
        .exec(
            "INSERT INTO notes (body) VALUES ('sneaky')",
            Args::default(),
        )
        .await
    {
        Err(e @ ClientError::PermissionDenied { .. }) => {
            println!("reader: INSERT refused (code {}): {e}", e.code().as_u32());
            assert!(e.is(ErrorCode::PermissionDenied) && !e.retryable());
        }
        other => bail!("a read-only user could write: {other:?}"),
    }
    let count = owned
        .query("SELECT count(*) FROM notes", Args::default())
        .await?;
    let n = count.rows.first().and_then(|r| r.first());
    println!(
        "owner: the table still has {} rows",
        n.unwrap_or(&Value::Null)
    );
    Ok(())
}
