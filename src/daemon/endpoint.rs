//! The `[metrics]` HTTP endpoint: `/metrics` (Prometheus/OpenMetrics text)
//! and `/health` (200 or 503 with a JSON reason).
//!
//! A plain HTTP/1 server on the daemon's runtime, one task per connection,
//! that only reads [`Metrics`]; it must never hold a lock of the pipeline or
//! wait on a sink, so a scrape cannot slow the polling down, and it never
//! serves anything but these two read-only paths.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::metrics::Metrics;
use crate::config::MetricsSettings;

/// What OpenMetrics scrapers (Prometheus among them) expect for this text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bind the endpoint's address, before the sources start, so that a port in
/// use stops the daemon at start with a clear line rather than later.
pub(crate) async fn bind(settings: &MetricsSettings) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(settings.listen).await.with_context(|| {
        format!(
            "cannot listen on {} for [metrics]; choose another `metrics.listen`",
            settings.listen
        )
    })?;
    let local = listener.local_addr().unwrap_or(settings.listen);
    if !local.ip().is_loopback() {
        warn!(
            listen = %local,
            "the metrics endpoint listens on a non-loopback address (allow_non_loopback = true): anyone who can reach it reads every tunnel's name, peer and byte counts"
        );
    }
    info!(listen = %local, "metrics endpoint on http://{local}/metrics and /health");
    Ok(listener)
}

/// Answer scrapes until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait, do not spin.
                warn!("metrics endpoint: cannot accept a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(peer = %peer, "metrics endpoint: connection ended: {e}");
            }
        });
    }
}

/// The answer to one request.
fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/metrics" => match metrics.render() {
            Ok(text) => with_type(StatusCode::OK, OPENMETRICS, text),
            Err(e) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot encode the metrics: {e}\n"),
            ),
        },
        "/health" => {
            let (status, body) = match metrics.health() {
                Ok(()) => (StatusCode::OK, serde_json::json!({ "status": "ok" })),
                Err(reasons) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "status": "failing", "reasons": reasons }),
                ),
            };
            with_type(status, "application/json", format!("{body}\n"))
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found; try /metrics or /health\n",
        ),
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", text.to_string())
}

fn with_type(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
