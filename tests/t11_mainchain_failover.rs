//! The main chain survives its leader: kill the Raft leader's `cqld`,
//! transfers still confirm on the two others (through the library and the
//! CLI), and the restarted producer catches up to the same head.

mod common;

use std::time::Duration;

use common::{START_TIMEOUT, Testnet, assert_ok, cql, poll, s};
use covenant::client::Token;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_confirm_without_the_leader_and_it_catches_up() {
    let mut net = Testnet::start(3).await;
    let client = net.client();
    let (_, user) = net.generate_user("user");

    // Something on the chain before the failure.
    let h = client.transfer(user, Token::Particle, 1_000).await.unwrap();
    client
        .wait_for_tx(&h, Duration::from_secs(20), |_| {})
        .await
        .unwrap();

    let leader = client.head().await.unwrap().leader.expect("a leader");
    let old = net.index_of(&leader);
    net.kill(old);

    // The client finds the new leader by itself.
    for amount in [10, 20, 30] {
        let h = client
            .transfer(user, Token::Particle, amount)
            .await
            .unwrap();
        let status = client
            .wait_for_tx(&h, Duration::from_secs(20), |_| {})
            .await
            .unwrap();
        assert!(status.height.is_some());
    }
    let new_leader = client.head().await.unwrap().leader.expect("a new leader");
    assert_ne!(new_leader, leader, "the dead producer cannot lead");

    // So does a fresh `cql` process whose config lists the dead producer first.
    let o = cql(&[
        "transfer",
        "-config",
        s(&net.super_config()),
        "-to-user",
        &user.to_string(),
        "-amount",
        "40",
        "-token",
        "Particle",
        "-wait-tx-confirm",
    ]);
    assert_ok(&o, "cql transfer without the old leader");
    assert_eq!(
        client
            .account(&user)
            .await
            .unwrap()
            .balances
            .get(Token::Particle),
        1_100
    );

    // Restart the old leader: it catches up from its disk and the others.
    net.spawn(old);
    let others: Vec<usize> = net.running().into_iter().filter(|i| *i != old).collect();
    let restarted = net.node_id(old);
    let reference = net.node_id(others[0]);
    let head = poll(
        "the restarted producer to reach the others' head",
        START_TIMEOUT,
        || {
            let client = client.clone();
            async move {
                let mine = client.head_of(restarted).await.ok()?;
                let theirs = client.head_of(reference).await.ok()?;
                (mine.head == theirs.head).then_some(mine.head)
            }
        },
    )
    .await;
    assert!(head.height >= 5, "five transfers were confirmed: {head:?}");
    for i in others {
        let h = client.head_of(net.node_id(i)).await.unwrap();
        assert_eq!(h.head.hash, head.hash, "bp_{i}");
    }
    // Its state agrees too.
    let account = client
        .call_node::<covenant::core::api::chain::GetAccount>(restarted, &user)
        .await
        .unwrap();
    assert_eq!(account.balances.get(Token::Particle), 1_100);
    net.assert_alive(old);
}
