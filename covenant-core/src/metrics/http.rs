//! The metrics listener: plain HTTP/1.1 (hyper) serving `/debug/vars`,
//! `/metrics` and `/readyz`. [`route`] is the whole behaviour, socket-free;
//! [`serve`] only moves bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::{MetricsError, MinerMetrics, render_debug_vars, render_prometheus};

/// Content type of `/debug/vars`.
const JSON: &str = "application/json; charset=utf-8";
/// Content type of the Prometheus text exposition format.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of plain answers.
const TEXT: &str = "text/plain; charset=utf-8";
/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 64;
/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Answer one request: `(HTTP status, content type, body)`.
///
/// `GET /debug/vars` (expvar JSON), `GET /metrics` (Prometheus text) and
/// `GET /readyz` (200 `ready` / 503 `not ready: <reason>`); any other method
/// is 405, any other path 404. The two metric pages walk the data directory
/// when its cached usage is stale, so async callers run this on a blocking
/// thread.
pub fn route(method: &str, path: &str, metrics: &MinerMetrics) -> (u16, &'static str, String) {
    if method != "GET" {
        return (405, TEXT, format!("method {method} not allowed: use GET\n"));
    }
    match path {
        "/debug/vars" => (200, JSON, render_debug_vars(&metrics.snapshot())),
        "/metrics" => (200, PROMETHEUS, render_prometheus(&metrics.snapshot())),
        "/readyz" => match metrics.readiness() {
            (true, _) => (200, TEXT, "ready\n".to_string()),
            (false, reason) => (503, TEXT, format!("not ready: {reason}\n")),
        },
        _ => (
            404,
            TEXT,
            format!("{path} not found: try /debug/vars, /metrics or /readyz\n"),
        ),
    }
}

/// A running metrics listener; dropping it stops accepting connections too.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, close every open connection and release the port.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // The accept loop never panics; a cancelled join is as good as done.
            let _ = task.await;
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Bind `addr` (`host:port`; port 0 picks a free one) and serve `metrics`
/// on it from a spawned task until [`MetricsServer::shutdown`] or drop.
pub async fn serve(addr: &str, metrics: Arc<MinerMetrics>) -> Result<MetricsServer, MetricsError> {
    let bind_error = |source| MetricsError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let stop = CancellationToken::new();
    let task = tokio::spawn(accept_loop(listener, metrics, stop.clone()));
    tracing::info!(%local_addr, "metrics listener started");
    Ok(MetricsServer {
        local_addr,
        stop,
        task: Some(task),
    })
}

/// Accept connections until `stop`; dropping the set aborts open ones.
async fn accept_loop(listener: TcpListener, metrics: Arc<MinerMetrics>, stop: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "metrics listener busy; connection closed");
                        continue;
                    }
                    conns.spawn(serve_connection(stream, metrics.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics listener accept failed");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    }
                }
            },
        }
    }
    conns.abort_all();
    tracing::info!("metrics listener stopped");
}

/// Serve HTTP/1.1 requests on one connection until the client closes it.
async fn serve_connection(stream: TcpStream, metrics: Arc<MinerMetrics>) {
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let metrics = metrics.clone();
        async move { Ok::<_, Infallible>(answer(&req, metrics).await) }
    });
    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(error) = result {
        tracing::debug!(%error, "metrics connection ended with an error");
    }
}

/// Run [`route`] on a blocking thread and turn its answer into a response.
async fn answer<B>(req: &Request<B>, metrics: Arc<MinerMetrics>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let (status, content_type, body) =
        tokio::task::spawn_blocking(move || route(&method, &path, &metrics))
            .await
            .unwrap_or_else(|_| (500, TEXT, "internal error\n".to_string()));
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == 405 {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::metrics::ManualClock;
    use crate::metrics::tests::{db, metrics_at};

    #[test]
    fn metric_pages_render_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics_at(dir.path(), Arc::new(ManualClock::new(0)));
        m.set_chain_head(&db(9), 3, 4, Hash([5; 32]), 0);

        let (status, ct, body) = route("GET", "/debug/vars", &m);
        assert_eq!((status, ct), (200, JSON));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["service:miner:db:count"].as_u64(), Some(1));
        assert_eq!(
            v["service:miner:chain"]["09".repeat(32)]["head:count"].as_u64(),
            Some(3)
        );

        let (status, ct, body) = route("GET", "/metrics", &m);
        assert_eq!((status, ct), (200, PROMETHEUS));
        assert!(body.contains("covenant_miner_db_count 1\n"), "{body}");
    }

    #[test]
    fn readyz_flips_with_the_miner_flag() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics_at(dir.path(), Arc::new(ManualClock::new(0)));
        assert_eq!(
            route("GET", "/readyz", &m),
            (503, TEXT, "not ready: starting\n".to_string())
        );
        m.set_ready(false, "serving 1 of 2 databases");
        assert_eq!(
            route("GET", "/readyz", &m).2,
            "not ready: serving 1 of 2 databases\n"
        );
        m.set_ready(true, "");
        assert_eq!(
            route("GET", "/readyz", &m),
            (200, TEXT, "ready\n".to_string())
        );
        m.set_ready(false, "database assigned");
        assert_eq!(route("GET", "/readyz", &m).0, 503);
    }

    #[test]
    fn unknown_paths_are_404_and_other_methods_405() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics_at(dir.path(), Arc::new(ManualClock::new(0)));
        for path in ["/", "/debug", "/debug/vars/", "/metricsx", "/readyz/x"] {
            assert_eq!(route("GET", path, &m).0, 404, "{path}");
        }
        for method in ["POST", "PUT", "DELETE", "HEAD", "PATCH"] {
            assert_eq!(route(method, "/debug/vars", &m).0, 405, "{method}");
            assert_eq!(route(method, "/readyz", &m).0, 405, "{method}");
        }
    }
}
