//! The seed's funding step end to end: a 3-BP testnet of real `cqld`
//! processes, a new user from `cql generate -testnet`, `cql transfer
//! -wait-tx-confirm` from the super client, and `cql wallet` showing it.

mod common;

use common::{Testnet, assert_ok, cql, s, stdout};
use covenant::client::Token;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_transfer_confirms_and_shows_in_the_wallet() {
    let net = Testnet::start(3).await;
    let super_client = net.client();
    let before = super_client.balance(Token::Particle).await.unwrap();
    let (user_config, user) = net.generate_user("user");

    let o = cql(&[
        "transfer",
        "-config",
        s(&net.super_config()),
        "-wait-tx-confirm",
        "-to-user",
        &user.to_string(),
        "-amount",
        "10000000000",
        "-token",
        "Particle",
    ]);
    assert_ok(&o, "cql transfer");
    let text = stdout(&o);
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("tx hash: "))
        .unwrap_or_else(|| panic!("no tx hash line in:\n{text}"))
        .trim()
        .to_string();
    assert!(
        text.contains(&format!(
            "wait transaction confirmation tx_hash={hash} tx_state=Confirmed"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("transaction {hash} confirmed")),
        "{text}"
    );
    assert!(
        text.contains("succeed in sending transaction to CovenantSQL"),
        "{text}"
    );

    let o = cql(&["wallet", "-config", s(&user_config)]);
    assert_ok(&o, "cql wallet");
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            format!("wallet address: {user}").as_str(),
            "Particle balance is: 10000000000",
            "Wave balance is: 0",
        ],
        "{text}"
    );

    let o = cql(&["wallet", "-config", s(&user_config), "-token", "Particle"]);
    assert_ok(&o, "cql wallet -token");
    assert!(
        stdout(&o).ends_with("Particle balance is: 10000000000\n"),
        "{}",
        stdout(&o)
    );

    // Exactly the amount left the super client, and the confirmed tx says so.
    let after = super_client.balance(Token::Particle).await.unwrap();
    assert_eq!(before - after, 10_000_000_000);
    let status = super_client.tx_state(&hash.parse().unwrap()).await.unwrap();
    assert_eq!(status.state, covenant::client::TxState::Confirmed);
    assert_eq!(status.result, Some(covenant::client::TxResult::Ok));
}
