//! Bad input changes nothing: malformed CLI arguments are refused before
//! anything is sent, an overspend fails with its reason, and forged or
//! replayed transactions sent through the library's lower-level API are
//! refused by the block producers. Balances and nonces are checked after.

mod common;

use std::time::Duration;

use common::{Testnet, cql, s, stderr, stdout};
use covenant::client::{
    Account, Address, Client, ClientError, Token, Transaction, TxBody, TxPayload,
};
use covenant::core::ErrorCode;
use covenant::core::crypto::read_key_file;

async fn accounts(client: &Client, who: &[Address]) -> Vec<Account> {
    let mut out = Vec::new();
    for a in who {
        out.push(client.account(a).await.unwrap());
    }
    out
}

fn rejected_with(e: ClientError, code: ErrorCode, words: &str) {
    assert!(
        matches!(e, ClientError::Rejected { .. }),
        "expected a refusal, got {e:?}"
    );
    assert!(e.is(code), "expected code {code}, got {e:?}");
    let text = e.to_string();
    assert!(text.contains(words), "{text:?} should mention {words:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let net = Testnet::start(3).await;
    let root = net.client();
    let (user_config, user) = net.generate_user("user");
    let funding = root.transfer(user, Token::Particle, 1_000).await.unwrap();
    root.wait_for_tx(&funding, Duration::from_secs(20), |_| {})
        .await
        .unwrap();
    let everyone = [root.address(), user];
    let start = accounts(&root, &everyone).await;
    assert_eq!(start[1].balances.get(Token::Particle), 1_000);

    // Malformed arguments: usage errors (exit 2) with a clear message.
    let to = user.to_string();
    let super_config = net.super_config();
    let cases: [(&[&str], &str); 6] = [
        (
            &["-to-user", &to, "-amount", "5", "-token", "Dogecoin"],
            "valid tokens are: Particle, Wave",
        ),
        (
            &["-to-user", &to, "-amount", "-5", "-token", "Particle"],
            "cannot be negative",
        ),
        (
            &["-to-user", &to, "-amount", "0", "-token", "Particle"],
            "greater than zero",
        ),
        (
            &["-to-user", &to, "-amount", "lots", "-token", "Particle"],
            "not a whole number",
        ),
        (
            &[
                "-to-user",
                "not-an-address",
                "-amount",
                "5",
                "-token",
                "Particle",
            ],
            "not a wallet address",
        ),
        (
            &["-to-user", &to[..62], "-amount", "5", "-token", "Particle"],
            "64 hex characters",
        ),
    ];
    for (args, message) in cases {
        let mut argv = vec!["transfer", "-config", s(&super_config), "-wait-tx-confirm"];
        argv.extend_from_slice(args);
        let o = cql(&argv);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{argv:?}: {}", stderr(&o));
        assert!(!stdout(&o).contains("tx hash"), "{argv:?} sent something");
    }

    // Overspending: the transaction is put in a block as failed, with the reason.
    let o = cql(&[
        "transfer",
        "-config",
        s(&user_config),
        "-to-user",
        &root.address().to_string(),
        "-amount",
        "5000",
        "-token",
        "Particle",
        "-wait-tx-confirm",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("failed") && err.contains("insufficient Particle balance"),
        "{err}"
    );
    assert!(err.contains("has 1000, needs 5000"), "{err}");
    assert!(!stdout(&o).contains("succeed"), "{}", stdout(&o));

    // A token the user does not hold at all.
    let user_client = Client::from_config_file(&user_config, b"").unwrap();
    let h = user_client
        .transfer(root.address(), Token::Wave, 1)
        .await
        .unwrap();
    let e = user_client
        .wait_for_tx(&h, Duration::from_secs(20), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::TxFailed { .. }), "{e:?}");
    assert!(e.is(ErrorCode::InsufficientBalance), "{e:?}");

    // Lower-level API: a replayed nonce (the root's funding used nonce 0).
    let replay = root
        .sign(
            0,
            TxPayload::Transfer {
                to: user,
                token: Token::Particle,
                amount: 7,
            },
        )
        .unwrap();
    let e = root.submit_transaction(&replay).await.unwrap_err();
    rejected_with(e, ErrorCode::NonceReused, "already used");

    // A signature that belongs to another transaction.
    let next = root.next_nonce().await.unwrap();
    let mut forged = root
        .sign(
            next,
            TxPayload::Transfer {
                to: user,
                token: Token::Particle,
                amount: 7,
            },
        )
        .unwrap();
    let other = root
        .sign(
            next,
            TxPayload::Transfer {
                to: user,
                token: Token::Particle,
                amount: 8,
            },
        )
        .unwrap();
    forged.signature = other.signature;
    let e = root.submit_transaction(&forged).await.unwrap_err();
    rejected_with(e, ErrorCode::BadSignature, "signature");

    // The user signs a transfer out of the root's account.
    let user_key = read_key_file(&user_config.with_file_name("private.key"), b"").unwrap();
    let theft = Transaction::sign(
        TxBody {
            sender: root.address(),
            nonce: next,
            timestamp: 1,
            payload: TxPayload::Transfer {
                to: user,
                token: Token::Particle,
                amount: 1_000_000,
            },
        },
        &user_key,
    )
    .unwrap();
    let e = user_client.submit_transaction(&theft).await.unwrap_err();
    rejected_with(e, ErrorCode::WrongSigner, "signed by someone else");

    // A zero transfer through the library never leaves the client.
    let e = root.transfer(user, Token::Particle, 0).await.unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument(_)), "{e:?}");

    // Nothing changed: balances and nonces on every producer.
    for i in 0..3 {
        let node = net.node_id(i);
        for (a, before) in everyone.iter().zip(&start) {
            let now = root
                .call_node::<covenant::core::api::chain::GetAccount>(node, a)
                .await
                .unwrap();
            assert_eq!(&now, before, "bp_{i} account {a}");
        }
    }
    assert_eq!(root.next_nonce().await.unwrap(), next);
}
