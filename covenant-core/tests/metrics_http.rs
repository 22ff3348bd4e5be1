//! The metrics listener over a real socket: bind port 0, plain HTTP/1.1 GETs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use covenant_core::crypto::{Address, NodeId};
use covenant_core::hash::Hash;
use covenant_core::metrics::{MinerMetrics, serve};
use covenant_core::types::DatabaseId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deadline for one request/response exchange.
const DEADLINE: Duration = Duration::from_secs(10);

/// Send `method path` with `Connection: close`; return (status, headers, body).
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(DEADLINE, exchange).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn serves_vars_metrics_and_readyz_over_http() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), vec![0u8; 3 * 1024]).unwrap();
    let metrics = Arc::new(MinerMetrics::new(
        "10.0.0.1:11105".to_string(),
        NodeId(Hash([1; 32])),
        Address(Hash([2; 32])),
        PathBuf::from(dir.path()),
    ));
    let db = DatabaseId(Hash([3; 32]));
    metrics.set_chain_head(&db, 5, 6, Hash([4; 32]), 1_600_000_000_000);
    metrics.record_request(&db);

    let server = serve("127.0.0.1:0", metrics.clone()).await.unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let (status, head, body) = request(addr, "GET", "/debug/vars").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["service:miner:addr"], "10.0.0.1:11105");
    assert_eq!(v["service:miner:disk:usage"].as_u64(), Some(3));
    assert_eq!(v["service:miner:db:count"].as_u64(), Some(1));
    let chain = &v["service:miner:chain"][db.to_hex()];
    assert_eq!(chain["head:count"].as_u64(), Some(5));
    assert_eq!(chain["head:height"].as_u64(), Some(6));
    assert_eq!(chain["head:timestamp"], "2020-09-13T12:26:40.000Z");

    let (status, head, body) = request(addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("# TYPE covenant_miner_disk_usage_kb gauge\n"));
    assert!(body.contains(&format!(
        "covenant_miner_chain_head_count{{database=\"{}\"}} 5\n",
        db.to_hex()
    )));

    assert_eq!(request(addr, "GET", "/readyz").await.0, 503);
    metrics.set_ready(true, "");
    let (status, _, body) = request(addr, "GET", "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    assert_eq!(request(addr, "GET", "/nope").await.0, 404);
    let (status, head, _) = request(addr, "POST", "/debug/vars").await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get"), "{head}");

    server.shutdown().await;
    // The port is released: a new connection is refused (or reset at once).
    match tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .unwrap()
    {
        Err(_) => {}
        Ok(mut s) => {
            let mut buf = [0u8; 1];
            let n = tokio::time::timeout(DEADLINE, s.read(&mut buf))
                .await
                .unwrap()
                .unwrap_or(0);
            assert_eq!(n, 0, "nothing answers after shutdown");
        }
    }
}

#[tokio::test]
async fn bind_failure_is_a_typed_error() {
    let metrics = Arc::new(MinerMetrics::new(
        "a:1".to_string(),
        NodeId(Hash::default()),
        Address(Hash::default()),
        PathBuf::from("."),
    ));
    let first = serve("127.0.0.1:0", metrics.clone()).await.unwrap();
    let taken = first.local_addr().to_string();
    let err = serve(&taken, metrics).await.unwrap_err();
    assert_eq!(err.code(), covenant_core::ErrorCode::Network);
    assert!(err.to_string().contains(&taken), "{err}");
    first.shutdown().await;
}
