//! The Covenant tour in one program: `cargo run --release --example quickstart`.
//!
//! Starts a whole network in this process — a block producer and three
//! miners on free 127.0.0.1 ports, real TLS, data in a temporary folder —
//! then, as a new user funded by the network's super client: creates a
//! database replicated on the three miners, creates a table, inserts and
//! selects rows, shows the database's latest blocks (every signed query is
//! in one) and verifies them. Everything stops, and the folder is deleted,
//! when the program exits; `--keep-running` keeps the network up until
//! Ctrl-C and prints the `cql console` command that reaches it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use covenant::client::core::config::CONFIG_FILE_NAME;
use covenant::client::core::crypto::write_key_file;
use covenant::client::core::net::NodeIdentity;
use covenant::client::core::sqlchain::block::SqlBlock;
use covenant::client::{
    Args, Client, CreateOptions, Database, Query, QueryKind, QueryResult, Token, Value,
    VerifyOptions,
};
use covenant::miner::localnet::{LocalNet, LocalNetOptions};

#[derive(Parser)]
#[command(about = "Start a local Covenant network in this process and take the tour")]
struct Opts {
    /// Keep the network running after the tour, until Ctrl-C, so `cql console` can reach it
    #[arg(long)]
    keep_running: bool,
    /// Block producers (1, 3 or 5)
    #[arg(long, default_value_t = 1)]
    block_producers: usize,
    /// Blocks of the database's chain to show
    #[arg(long, default_value_t = 3)]
    blocks: u64,
}

/// Miners in the network, and replicas of the database.
const MINERS: usize = 3;
/// What the super client sends the new user.
const FUNDS: u64 = 10_000_000_000;
/// Longest any one step may take.
const STEP: Duration = Duration::from_secs(30);

/// Prints `what` and the time since `since`.
fn step(since: Instant, what: &str) {
    println!("  {what} ({:.1} s)", since.elapsed().as_secs_f64());
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("covenant-quickstart-")
        .tempdir()?;

    println!(
        "Starting {} block producer(s) and {MINERS} miners on 127.0.0.1 (data in {})",
        opts.block_producers,
        dir.path().display()
    );
    let options = LocalNetOptions {
        block_producers: opts.block_producers,
        miners: MINERS,
        ..LocalNetOptions::default()
    };
    let net = LocalNet::start(dir.path(), options.clone()).await?;
    let result = tour(&net, &options, &opts, dir.path(), started).await;
    net.shutdown().await;
    result?;
    println!(
        "\nAll done in {:.1} s; the network is stopped and {} deleted.",
        started.elapsed().as_secs_f64(),
        dir.path().display()
    );
    Ok(())
}

async fn tour(
    net: &LocalNet,
    options: &LocalNetOptions,
    opts: &Opts,
    dir: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    let super_client = net.super_client()?;
    net.wait_for_providers(STEP).await?;
    step(
        started,
        "network up; every miner offers its service on the main chain",
    );

    // A new user: a key pair and a proof-of-work node id, funded by the super client.
    let user = NodeIdentity::mine_weak(options.difficulty)?;
    let tx = super_client
        .transfer(user.address(), Token::Particle, FUNDS)
        .await?;
    super_client.wait_for_tx(&tx, STEP, |_| {}).await?;
    let client = Client::new(net.client_config_for(&user), user.private_key().clone())?;
    println!("\nNew user {}", client.address());
    step(
        started,
        &format!(
            "funded with {} Particle by the super client (transaction {}…)",
            client.balance(Token::Particle).await?,
            short(&tx.to_hex())
        ),
    );

    let id = client
        .create_database(CreateOptions {
            node_count: u16::try_from(MINERS)?,
            target_miners: net.miner_addresses(),
            ..CreateOptions::default()
        })
        .await?;
    let db = client.open_database(&id.to_dsn()).await?;
    db.wait_ready(STEP).await?;
    println!("\nDatabase {}", db.dsn());
    let leader = db
        .head()
        .await?
        .leader
        .map(|m| m.to_string())
        .unwrap_or_default();
    step(
        started,
        &format!(
            "replicated on {} miners; miner {}… leads its Raft group",
            db.miners().len(),
            short(&leader)
        ),
    );

    println!();
    run_sql(&db).await?;
    step(
        started,
        "the table is written on a majority of the three miners",
    );

    show_blocks(&db, opts.blocks).await?;
    let report = db.verify(VerifyOptions::default()).await?;
    println!("\nVerifying the whole chain as the client sees it:");
    for line in report.to_string().lines() {
        println!("  {line}");
    }
    step(started, "verified");

    if opts.keep_running {
        keep_running(net, &user, &db, dir).await?;
    } else {
        println!(
            "\nThe network lives in this process and stops when it exits. To reach the database \
             with `cql console`, run\n  cargo run --release --example quickstart -- --keep-running"
        );
    }
    Ok(())
}

/// Creates a table, inserts rows (positional and named parameters, one
/// atomic batch) and prints what a SELECT returns.
async fn run_sql(db: &Database) -> anyhow::Result<()> {
    let create = "CREATE TABLE ledger (id INTEGER PRIMARY KEY, who TEXT NOT NULL, \
                  amount REAL, note TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)";
    println!("> {create}");
    db.exec(create, Args::default()).await?;
    let insert = "INSERT INTO ledger (who, amount, note) VALUES (?, ?, ?)";
    println!("> {insert}  -- ×2, in one atomic request");
    let rows = [("alice", 12.5, "first"), ("bob", -3.0, "Zoë's café")];
    let batch = rows
        .iter()
        .map(|&(who, amount, note)| {
            Query::positional(insert, vec![who.into(), amount.into(), note.into()])
        })
        .collect();
    db.execute(QueryKind::Write, batch).await?;
    let named = "INSERT INTO ledger (who, amount) VALUES (:who, :amount)";
    println!("> {named}");
    let r = db
        .exec(
            named,
            Args::Named(vec![
                ("who".into(), "carol".into()),
                ("amount".into(), Value::Real(40.0)),
            ]),
        )
        .await?;
    println!(
        "  {} row inserted, id {}",
        r.affected_rows, r.last_insert_id
    );
    let select = "SELECT id, who, amount, note, at FROM ledger ORDER BY id";
    println!("> {select}");
    let r = db.query(select, Args::default()).await?;
    print_table(&r);
    Ok(())
}

/// Prints a result as an aligned table with a row count.
fn print_table(r: &QueryResult) {
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| row.iter().map(Value::to_string).collect())
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|s| s.chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String]| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count()))))
            .collect();
        format!("  {}", padded.join(" | ").trim_end())
    };
    println!("{}", line(&r.columns));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("  {}", rule.join("-+-"));
    for row in &cells {
        println!("{}", line(row));
    }
    println!(
        "  ({} row{})",
        r.rows.len(),
        if r.rows.len() == 1 { "" } else { "s" }
    );
}

/// Waits until the writes are sealed, then prints the last `n` blocks.
async fn show_blocks(db: &Database, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP;
    let head = loop {
        let h = db.head().await?;
        if let Some(head) = h.head
            && h.pending == 0
        {
            break head;
        }
        if Instant::now() > deadline {
            bail!("the writes were not sealed into a block within {STEP:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "\nThe database's chain has {} blocks; the last {}:",
        head.count + 1,
        n.min(head.count + 1)
    );
    for count in head.count.saturating_sub(n.saturating_sub(1))..=head.count {
        let block = db
            .block(count)
            .await?
            .with_context(|| format!("the leader does not have block {count}"))?;
        print_block(&block)?;
    }
    Ok(())
}

fn print_block(b: &SqlBlock) -> anyhow::Result<()> {
    let h = &b.header;
    println!(
        "  block {} (height {}) {}…  parent {}…  sealed by miner {}…: {} write(s), {} read(s)",
        h.count,
        h.height,
        short(&b.hash()?.to_hex()),
        short(&h.parent.to_hex()),
        short(&h.producer.to_string()),
        b.writes.len(),
        b.reads.len()
    );
    for (kind, entries) in [("write", &b.writes), ("read", &b.reads)] {
        for e in entries.iter() {
            let sql: Vec<&str> = e
                .request
                .body
                .queries
                .iter()
                .map(|q| q.sql.as_str())
                .collect();
            let sql = sql.join("; ");
            let shown: String = sql.chars().take(60).collect();
            let more = if shown.len() < sql.len() { "…" } else { "" };
            println!(
                "    {kind:5} by {}…: {shown}{more}",
                short(&e.request.body.user.to_string())
            );
        }
    }
    Ok(())
}

/// Writes the user's config and key where `cql` can use them, prints the
/// console command and waits for Ctrl-C.
async fn keep_running(
    net: &LocalNet,
    user: &NodeIdentity,
    db: &Database,
    dir: &Path,
) -> anyhow::Result<()> {
    let user_dir = dir.join("user");
    std::fs::create_dir_all(&user_dir)?;
    let mut config = net.client_config_for(user);
    config.set_config_dir(&user_dir);
    let config_path = user_dir.join(CONFIG_FILE_NAME);
    config.save(&config_path)?;
    write_key_file(&config.private_key_path(), user.private_key(), b"")?;
    std::fs::write(user_dir.join(".dsn"), format!("{}\n", db.dsn()))?;
    println!(
        "\nThe network keeps running until you press Ctrl-C. In another terminal:\n\n  \
         cargo run --release -p covenant-client --bin cql -- console -config {} {}\n\n\
         (or `cql console ...` if you installed it with `cargo install --path covenant-client`).",
        config_path.display(),
        db.dsn()
    );
    tokio::signal::ctrl_c().await?;
    println!("\nStopping the network...");
    Ok(())
}
