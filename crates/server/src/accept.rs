//! The accept loop: each connection gets a slot under the connection limit and a task that
//! serves it (`connection`); a connection over the limit is answered 503 with `Retry-After`
//! and closed at once, so the process keeps file descriptors for the clients it serves. On
//! shutdown it stops listening, lets every connection answer its request in flight, and
//! returns when the last one has closed.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::{ApiError, AppState, connection};

/// Refused connections being answered at once; past this, a refused connection is closed
/// without an answer, so refusing cannot itself use up file descriptors.
const REFUSALS_AT_ONCE: usize = 64;

/// What a refused client is told to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: u64 = 2;

/// How long a failing `accept` (out of file descriptors, say) waits before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A warning repeated at most this often (refusals and accept failures come in floods).
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Arc::new(state.config().connections.clone());
    let router = crate::router(state.clone());
    let head_timeout: Arc<[u8]> = raw_answer(ApiError::RequestTimeout(format!(
        "the request head did not arrive within {} s",
        limits.header_read_timeout.as_secs_f64()
    )))
    .await
    .into();
    let overloaded: Arc<[u8]> = raw_answer(ApiError::Overloaded {
        message: format!(
            "the server is serving its limit of {} connections; retry in {RETRY_AFTER_SECONDS} s",
            limits.max_connections
        ),
        retry_after_seconds: RETRY_AFTER_SECONDS,
    })
    .await
    .into();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let (stop, stopping) = watch::channel(false);
    let mut refusal_warning = Warning::default();
    let mut accept_warning = Warning::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    if accept_warning.due() {
                        tracing::warn!(%error, "cannot accept connections");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let router = router.clone();
                let limits = Arc::clone(&limits);
                let head_timeout = Arc::clone(&head_timeout);
                let stopping = stopping.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    // The subscriptions' websocket channel is served off hyper, from the
                    // socket (it holds its slot while it lives).
                    use crate::subscriptions::{Opening, opening, serve_websocket};
                    match opening(&stream, limits.header_read_timeout).await {
                        Opening::Websocket => {
                            serve_websocket(stream, state, stopping).await;
                            drop(slot);
                        }
                        Opening::Http => {
                            connection::serve(stream, router, limits, head_timeout, stopping, slot)
                                .await;
                        }
                        Opening::Silent => drop(slot),
                        Opening::Stalled => {
                            connection::answer_and_close(stream, &head_timeout).await;
                            drop(slot);
                        }
                    }
                });
            }
            Err(_) => {
                if refusal_warning.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "every connection slot is in use: new connections get 503"
                    );
                }
                refuse(stream, &refusals, &overloaded);
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its slot until it closes: all slots back means all are done.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>, answer: &Arc<[u8]>) {
    match Arc::clone(refusals).try_acquire_owned() {
        Ok(permit) => {
            let answer = Arc::clone(answer);
            tokio::spawn(async move {
                connection::answer_and_close(stream, &answer).await;
                drop(permit);
            });
        }
        Err(_) => drop(stream),
    }
}

/// Errors of one connection that came and went before it was accepted: nothing to wait out.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An error's answer as HTTP/1.1 bytes, for a connection hyper is not serving: the same
/// OperationOutcome a handler would give, then the connection closes.
async fn raw_answer(error: ApiError) -> Vec<u8> {
    let response: Response = error.into_response("-");
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let mut raw = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_str(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH && name != header::CONNECTION {
            raw.extend_from_slice(name.as_str().as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\n");
        }
    }
    raw.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    raw.extend_from_slice(&body);
    raw
}

/// Says when a repeated warning is due again.
#[derive(Default)]
struct Warning {
    last: Option<Instant>,
}

impl Warning {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= WARNING_INTERVAL);
        if due {
            self.last = Some(now);
        }
        due
    }
}
