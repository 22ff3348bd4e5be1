//! A database replicated on several `cql-minerd` processes, for the
//! replication tests: one block producer, N miners serving one user, and a
//! database created over all of them with `cql create -db-node N`. Helpers
//! find the group's leader as the miners themselves report it, kill
//! (SIGKILL) and restart single miners, read one replica's rows directly,
//! and wait until every replica holds the same rows and chain head.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use covenant::client::core::api::database::{GetHead, Query as QueryMethod};
use covenant::client::core::sqlchain::request::{Outcome, ReadLevel};
use covenant::client::{
    Address, Client, ClientError, ClientOptions, Database, Hash, NodeId, Query, QueryKind, Value,
};

use super::miner::{Miner, SQL_CHAIN_PERIOD, create_database, wait_provider};
use super::{START_TIMEOUT, Testnet, poll};

/// How long replicas may take to agree (rows, heads, a leader).
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows as a replica returned them.
pub type Rows = Vec<Vec<Value>>;

/// N miners replicating one database.
pub struct DbCluster {
    /// The miners, in creation order (declared first: dropped before the testnet).
    pub miners: Vec<Miner>,
    /// The main chain (one block producer).
    pub net: Testnet,
    /// The owner's config file.
    pub user_cfg: PathBuf,
    /// The owner's wallet.
    pub user: Address,
    /// `covenantsql://<id>`.
    pub dsn: String,
    /// Each miner's node id, by index.
    pub ids: Vec<NodeId>,
    /// The owner's client (default options), for signing replica reads.
    pub owner: Client,
}

impl DbCluster {
    /// Starts a block producer and `nodes` miners, and creates a database
    /// over all of them (`-db-eventual-consistency` when `eventual`).
    pub async fn start(nodes: usize, eventual: bool) -> DbCluster {
        DbCluster::start_with(nodes, eventual, |_| {}).await
    }

    /// [`DbCluster::start`], with `edit` applied to each miner once it is
    /// configured and before it starts (e.g. to change its config file).
    pub async fn start_with(nodes: usize, eventual: bool, edit: impl Fn(&Miner)) -> DbCluster {
        let net = Testnet::start(1).await;
        let (user_cfg, user) = net.generate_user("user");
        let mut miners: Vec<Miner> = (0..nodes)
            .map(|i| Miner::generate(&net, &format!("miner_{i}")))
            .collect();
        let wallets: Vec<Address> = miners.iter().map(|m| m.wallet).collect();
        let everyone: Vec<Address> = wallets.iter().copied().chain([user]).collect();
        fund_all(&net, &everyone).await;
        for m in &mut miners {
            m.configure(&[user], SQL_CHAIN_PERIOD);
            edit(m);
            m.spawn();
        }
        for m in &mut miners {
            wait_provider(&net, &m.wallet).await;
            m.assert_alive();
        }
        let extra: &[&str] = if eventual {
            &["-db-eventual-consistency"]
        } else {
            &[]
        };
        let (dsn, _) = create_database(&user_cfg, &wallets, extra);
        let ids = miners.iter().map(Miner::node_id).collect();
        let owner = Client::from_config_file(&user_cfg, b"").expect("user client");
        DbCluster {
            miners,
            net,
            user_cfg,
            user,
            dsn,
            ids,
            owner,
        }
    }

    /// The owner's client with `options`.
    pub fn client(&self, options: ClientOptions) -> Client {
        Client::from_config_file_with(&self.user_cfg, b"", options).expect("user client")
    }

    /// Opens the database with `client` and waits until it answers a read.
    pub async fn open(&self, client: &Client) -> Database {
        let db = client
            .open_database(&self.dsn)
            .await
            .expect("open the database");
        assert_eq!(db.miners().len(), self.miners.len(), "every miner is known");
        db.wait_ready(START_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("the database is not ready: {e}"));
        db
    }

    /// The index of miner `node`.
    pub fn index_of(&self, node: &NodeId) -> usize {
        self.ids
            .iter()
            .position(|id| id == node)
            .expect("one of the database's miners")
    }

    /// Indexes of the miners not killed.
    pub fn running(&self) -> Vec<usize> {
        (0..self.miners.len())
            .filter(|i| self.miners[*i].is_running())
            .collect()
    }

    /// Kills miner `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        eprintln!("killing miner {i} ({})", self.ids[i]);
        self.miners[i].kill();
    }

    /// Starts miner `i` again on the same folder and address.
    pub fn restart(&mut self, i: usize) {
        eprintln!("restarting miner {i} ({})", self.ids[i]);
        self.miners[i].spawn();
    }

    /// Panics with the log of any running miner that has exited.
    pub fn assert_alive(&mut self) {
        for m in self.miners.iter_mut().filter(|m| m.is_running()) {
            m.assert_alive();
        }
    }

    /// Waits until every running miner names the same leader, itself
    /// running; returns its index.
    pub async fn wait_leader(&mut self, db: &Database) -> usize {
        self.assert_alive();
        let running = self.running();
        let ids: Vec<NodeId> = running.iter().map(|i| self.ids[*i]).collect();
        let leader = poll(
            "the running miners to agree on a leader",
            CONVERGE_TIMEOUT,
            || {
                let ids = ids.clone();
                async move {
                    let mut leader = None;
                    for id in &ids {
                        let head = db.call_miner::<GetHead>(*id, &db.id()).await.ok()?;
                        let l = head.leader?;
                        if leader.is_some_and(|x| x != l) || !ids.contains(&l) {
                            return None;
                        }
                        leader = Some(l);
                    }
                    leader
                }
            },
        )
        .await;
        self.index_of(&leader)
    }

    /// Runs the read `sql` on miner `i`'s own replica (a replica read, not
    /// through the leader); the last statement's rows.
    pub async fn replica_rows(
        &self,
        db: &Database,
        i: usize,
        sql: &str,
    ) -> Result<Rows, ClientError> {
        let signed = db.sign(QueryKind::Read, vec![Query::new(sql)])?;
        let mut body = signed.body;
        body.read_level = ReadLevel::Replica { max_lag_ms: 60_000 };
        let request = self.owner.sign_request(body)?;
        let response = db.call_miner::<QueryMethod>(self.ids[i], &request).await?;
        match response.outcome {
            Outcome::Ok(mut results) => Ok(results.pop().map(|r| r.rows).unwrap_or_default()),
            Outcome::Failed { code, message } => Err(ClientError::Sql { code, message }),
        }
    }

    /// Waits until every miner (all must be running) returns the same rows
    /// for `sql` from its own replica, and `accept` approves them; returns them.
    pub async fn wait_converged(
        &mut self,
        db: &Database,
        sql: &str,
        accept: impl Fn(&Rows) -> bool,
    ) -> Rows {
        assert_eq!(
            self.running().len(),
            self.miners.len(),
            "start every miner first"
        );
        self.assert_alive();
        let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
        loop {
            // Each replica's rows, or why it did not answer.
            let mut answers: Vec<Result<Rows, String>> = Vec::new();
            for i in 0..self.miners.len() {
                answers.push(
                    self.replica_rows(db, i, sql)
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
            if let Some(Ok(first)) = answers.first()
                && answers.iter().all(|a| a.as_ref() == Ok(first))
                && accept(first)
            {
                return first.clone();
            }
            let summary: Vec<String> = answers
                .iter()
                .enumerate()
                .map(|(i, a)| match (a, answers.first()) {
                    (Ok(rows), Some(Ok(first))) => match first_difference(first, rows) {
                        Some(at) => format!(
                            "miner {i}: {} rows, row {at} differs from miner 0: {:?} vs {:?}",
                            rows.len(),
                            rows.get(at),
                            first.get(at)
                        ),
                        None => format!("miner {i}: {} rows", rows.len()),
                    },
                    (Ok(rows), _) => format!("miner {i}: {} rows", rows.len()),
                    (Err(e), _) => format!("miner {i}: {e}"),
                })
                .collect();
            assert!(
                tokio::time::Instant::now() < deadline,
                "replicas did not converge on {sql:?} within {CONVERGE_TIMEOUT:?}; last answers:\n  {}",
                summary.join("\n  ")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every replica holds the latest of `acked` in the
    /// single-integer rows `sql` returns, then checks that none holds a
    /// value twice or misses an acknowledged one, and that all share a head.
    pub async fn wait_all_acked(&mut self, db: &Database, sql: &str, acked: &BTreeSet<i64>) {
        let last = *acked.last().expect("some acknowledged writes");
        let rows = self
            .wait_converged(db, sql, |rows| {
                rows.iter().any(|r| r.as_slice() == [Value::Integer(last)])
            })
            .await;
        let present: BTreeSet<i64> = rows
            .iter()
            .map(|r| match r.as_slice() {
                [Value::Integer(v)] => *v,
                other => panic!("unexpected row {other:?}"),
            })
            .collect();
        assert_eq!(
            present.len(),
            rows.len(),
            "a write was applied twice: {rows:?}"
        );
        let lost: Vec<_> = acked.difference(&present).collect();
        assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
        self.wait_same_head(db).await;
    }

    /// Waits until every miner reports the same sealed head with nothing
    /// pending; returns its hash.
    pub async fn wait_same_head(&mut self, db: &Database) -> Hash {
        assert_eq!(
            self.running().len(),
            self.miners.len(),
            "start every miner first"
        );
        self.assert_alive();
        let ids = self.ids.clone();
        poll(
            "every replica to report the same chain head",
            CONVERGE_TIMEOUT,
            || {
                let ids = ids.clone();
                async move {
                    let mut heads = Vec::new();
                    for id in &ids {
                        let h = db.call_miner::<GetHead>(*id, &db.id()).await.ok()?;
                        if h.pending != 0 {
                            return None;
                        }
                        heads.push(h.head?);
                    }
                    let first = *heads.first()?;
                    heads.iter().all(|h| *h == first).then_some(first.hash)
                }
            },
        )
        .await
    }
}

/// Sends 100 000 000 Particle from the super client to each of `to` and
/// waits until every transfer is confirmed.
pub async fn fund_all(net: &Testnet, to: &[Address]) {
    let chain = net.client();
    let mut hashes = Vec::new();
    for a in to {
        let hash = chain
            .transfer(*a, covenant::client::Token::Particle, 100_000_000)
            .await
            .expect("submit a funding transfer");
        hashes.push(hash);
    }
    for h in &hashes {
        chain
            .wait_for_tx(h, START_TIMEOUT, |_| {})
            .await
            .expect("funding transfer confirmed");
    }
}

/// The index of the first row where `a` and `b` differ, if any.
fn first_difference(a: &Rows, b: &Rows) -> Option<usize> {
    (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
}
