//! RPC over one TLS connection: multiplexing, typed errors, deadlines, frame
//! limits, and a misbehaving connection that must not disturb the others.

#[path = "net_support/common.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use covenant_core::error::ErrorCode;
use covenant_core::net::{Connection, NetConfig, NetError, Router};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// Reads until the peer closes; `true` when it did within `within`.
async fn closed_by_peer<S: AsyncRead + Unpin>(stream: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

fn small_frames() -> NetConfig {
    NetConfig {
        max_frame_len: 1024,
        ..config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_complete_out_of_order_with_right_answers() {
    let server_id = identity();
    let (server, counters) = start(&server_id, config()).await;
    let conn = Connection::dial(
        &tls(&identity()),
        &server.local_addr().to_string(),
        None,
        &config(),
    )
    .await
    .unwrap();
    // Earlier calls sleep longer, so answers come back in a different order.
    let calls = (0..1000u64).map(|i| {
        let conn = conn.clone();
        async move {
            let sum = conn
                .call::<SlowAdd>(&(i, 2 * i, (1000 - i) % 50), CALL)
                .await;
            (i, sum)
        }
    });
    let mut finished = Vec::new();
    let mut pending: futures::stream::FuturesUnordered<_> = calls.collect();
    use futures::StreamExt as _;
    while let Some((i, sum)) = pending.next().await {
        assert_eq!(sum.unwrap(), 3 * i, "call {i}");
        finished.push(i);
    }
    assert_eq!(finished.len(), 1000);
    assert!(
        !finished.is_sorted(),
        "answers arrived strictly in call order"
    );
    assert_eq!(counters.calls.load(Ordering::SeqCst), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_travel_typed_and_leave_the_connection_usable() {
    let (server, _) = start(&identity(), config()).await;
    let conn = Connection::dial(
        &tls(&identity()),
        &server.local_addr().to_string(),
        None,
        &config(),
    )
    .await
    .unwrap();
    let e = conn.call::<Missing>(&(), CALL).await.unwrap_err();
    assert!(
        e.remote().is_some_and(|r| r.is(ErrorCode::UnknownMethod)),
        "{e:?}"
    );
    let e = conn.call::<WrongEcho>(&7, CALL).await.unwrap_err();
    assert!(
        e.remote().is_some_and(|r| r.is(ErrorCode::BadRequest)),
        "{e:?}"
    );
    let e = conn.call::<NotLeader>(&(), CALL).await.unwrap_err();
    let r = e.remote().expect("a remote error");
    assert!(r.is(ErrorCode::PermissionDenied) && r.retryable);
    assert_eq!(r.leader_hint.as_deref(), Some("10.1.2.3:4661"));
    assert!(e.retryable());
    assert_eq!(conn.call::<Echo>(&"ok".into(), CALL).await.unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_times_out_and_the_connection_survives() {
    let (server, _) = start(&identity(), config()).await;
    let conn = Connection::dial(
        &tls(&identity()),
        &server.local_addr().to_string(),
        None,
        &config(),
    )
    .await
    .unwrap();
    let e = conn
        .call::<Sleep>(&60_000, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(e, NetError::Timeout { .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Timeout);
    assert!(!conn.is_closed());
    assert_eq!(
        conn.call::<Echo>(&"after".into(), CALL).await.unwrap(),
        "after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_locally() {
    let (server, counters) = start(&identity(), small_frames()).await;
    let conn = Connection::dial(
        &tls(&identity()),
        &server.local_addr().to_string(),
        None,
        &small_frames(),
    )
    .await
    .unwrap();
    let e = conn
        .call::<Echo>(&"x".repeat(4096), CALL)
        .await
        .unwrap_err();
    assert!(
        matches!(e, NetError::FrameTooLarge { max: 1024, .. }),
        "{e:?}"
    );
    assert_eq!(counters.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        conn.call::<Echo>(&"small".into(), CALL).await.unwrap(),
        "small"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_only_that_connection() {
    let server_id = identity();
    let (server, _) = start(&server_id, small_frames()).await;
    let addr = server.local_addr().to_string();
    let good = Connection::dial(&tls(&identity()), &addr, None, &small_frames())
        .await
        .unwrap();
    let (mut raw, _) = tls(&identity())
        .connect(&addr, None, &small_frames())
        .await
        .unwrap();
    raw.write_all(&100_000u32.to_be_bytes()).await.unwrap();
    raw.write_all(&[0u8; 512]).await.unwrap();
    raw.flush().await.unwrap();
    assert!(
        closed_by_peer(&mut raw, CALL).await,
        "the server kept the connection"
    );
    assert_eq!(
        good.call::<Echo>(&"alive".into(), CALL).await.unwrap(),
        "alive"
    );
    let fresh = Connection::dial(&tls(&identity()), &addr, None, &small_frames())
        .await
        .unwrap();
    assert_eq!(
        fresh.call::<Echo>(&"new".into(), CALL).await.unwrap(),
        "new"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_frame_closes_only_that_connection() {
    let (server, counters) = start(&identity(), config()).await;
    let addr = server.local_addr().to_string();
    let good = Connection::dial(&tls(&identity()), &addr, None, &config())
        .await
        .unwrap();
    let (mut raw, _) = tls(&identity())
        .connect(&addr, None, &config())
        .await
        .unwrap();
    let junk = b"\x01\x00this is not an envelope";
    raw.write_all(&(junk.len() as u32).to_be_bytes())
        .await
        .unwrap();
    raw.write_all(junk).await.unwrap();
    raw.flush().await.unwrap();
    assert!(
        closed_by_peer(&mut raw, CALL).await,
        "the server kept the connection"
    );
    // An unknown envelope version is refused the same way.
    let (mut raw, _) = tls(&identity())
        .connect(&addr, None, &config())
        .await
        .unwrap();
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0]).await.unwrap();
    raw.flush().await.unwrap();
    assert!(
        closed_by_peer(&mut raw, CALL).await,
        "the server kept the connection"
    );
    assert_eq!(counters.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        good.call::<Echo>(&"alive".into(), CALL).await.unwrap(),
        "alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_garbage_is_dropped_and_the_server_keeps_serving() {
    let (server, _) = start(&identity(), config()).await;
    let addr = server.local_addr().to_string();
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_peer(&mut plain, CALL).await,
        "the server kept the connection"
    );
    let good = Connection::dial(&tls(&identity()), &addr, None, &config())
        .await
        .unwrap();
    assert_eq!(
        good.call::<Echo>(&"alive".into(), CALL).await.unwrap(),
        "alive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_fails_waiting_calls_and_frees_the_port() {
    let server_id = identity();
    let (server, counters) = start(&server_id, config()).await;
    let addr = server.local_addr().to_string();
    let conn = Connection::dial(&tls(&identity()), &addr, None, &config())
        .await
        .unwrap();
    let waiting = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call::<Sleep>(&60_000, CALL).await }
    });
    // Shut down only once the call is running on the server.
    assert!(eventually(CALL, || counters.calls.load(Ordering::SeqCst) == 1).await);
    server.shutdown().await;
    let e = waiting.await.unwrap().unwrap_err();
    assert!(matches!(e, NetError::ConnectionClosed { .. }), "{e:?}");
    assert!(eventually(CALL, || conn.is_closed()).await);
    // The port is free again.
    let (again, _) = start_at(&addr, &server_id, config()).await;
    assert_eq!(again.local_addr().to_string(), addr);
}

#[test]
fn duplicate_method_names_are_refused() {
    let mut r = Router::new();
    r.register::<Echo, _, _>(|_, s: String| async move { Ok(s) })
        .unwrap();
    let e = r
        .register::<WrongEcho, _, _>(|_, n: u64| async move { Ok(n.to_string()) })
        .unwrap_err();
    assert!(matches!(e, NetError::DuplicateMethod("test.echo")));
    assert_eq!(r.methods().collect::<Vec<_>>(), ["test.echo"]);
}
