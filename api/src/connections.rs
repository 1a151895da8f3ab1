//! Accepting connections. `axum::serve` sets no deadline for a request's headers, so a
//! client that trickles them in byte by byte holds a socket and a task for as long as
//! it likes; this loop serves each connection with hyper's HTTP/1 server under a header
//! deadline and a header size cap, and stops gracefully: no new connections, open
//! requests finish.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest read buffer for one request's head (request line and headers); a bigger
/// head is refused with 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most headers one request may carry.
const MAX_HEADERS: usize = 100;

/// Serves `router` on `listener` until `stop` is cancelled, then waits for the open
/// connections to finish their requests.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    wait_after_accept_error(&e).await;
                    continue;
                }
            },
        };
        // Streamed answers (SSE) go out token by token; Nagle would batch them.
        let _ = stream.set_nodelay(true);
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS);
        let service = TowerToHyperService::new(router.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // Clients that vanish or stall past the header deadline end up here;
                // that is their business, not an error of the node.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// A failed accept is either one client's problem (it reset before we took it) or the
/// node's (out of file descriptors); in the second case, back off instead of spinning.
async fn wait_after_accept_error(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
