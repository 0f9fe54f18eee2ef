//! One HTTP/1.1 connection: hyper serves it with the router as its service, and a watch ends it
//! when the client is too slow. A connection is always in one of three stages, each bounded
//! except the one where the server is at work:
//!
//! - waiting for a request: the first since the connection opened must have its head complete
//!   within the header timeout; a later one must start within the keep-alive timeout;
//! - reading a request head: complete within the header timeout of its first byte (of the
//!   connection's opening, for the first request), else 408 and close;
//! - answering: the handler runs as long as it needs; its request body is read under the body
//!   timeout (`TimedBody`, a stall or a trickle is 408 from the handler).
//!
//! In every stage, a client that takes none of the answer's bytes for the send timeout (it
//! stopped reading) has its connection closed.
//!
//! hyper's own `header_read_timeout` is not used: it runs from the moment a connection goes
//! idle, so it would be the keep-alive timeout too, and it closes without a word.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, header};
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::ConnectionLimits;

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long an answer written outside hyper (408, 503) may take, reading and dropping what
/// the client still sends meanwhile.
const LINGER: Duration = Duration::from_secs(2);

/// Serves one accepted connection until it ends, its client is too slow, or the server shuts
/// down (then the request in flight is answered and the connection closed). `_slot` is the
/// connection's place under the connection limit, given back when this returns.
pub(crate) async fn serve(
    stream: TcpStream,
    router: Router,
    limits: Arc<ConnectionLimits>,
    head_timeout_answer: Arc<[u8]>,
    mut shutdown: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let watch = Arc::new(Watch::new(&limits));
    let peer = stream.peer_addr().ok().map(|a| crate::PeerAddress(a.ip()));
    let io = TokioIo::new(WatchedStream {
        stream,
        watch: Arc::clone(&watch),
    });
    let service = {
        let watch = Arc::clone(&watch);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let requests = watch.request_started();
            let last = requests >= limits.max_requests_per_connection;
            let mut request = request.map(|body| TimedBody::new(body, &limits));
            if let Some(peer) = peer {
                request.extensions_mut().insert(peer);
            }
            let answered = router.clone().oneshot(request);
            let watch = Arc::clone(&watch);
            async move {
                let mut response = match answered.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if last {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response.map(|body| AnswerBody {
                    body,
                    _finished: AnswerFinished(watch),
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let mut connection = builder.serve_connection(io, service);
    let mut shutting_down = false;
    loop {
        if !shutting_down && *shutdown.borrow_and_update() {
            // Answers the request in flight, if any, then closes.
            Pin::new(&mut connection).graceful_shutdown();
            shutting_down = true;
        }
        let deadline = watch.deadline();
        tokio::select! {
            ended = &mut connection => {
                if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            () = watch.changed.notified() => {}
            changed = shutdown.changed(), if !shutting_down => {
                if changed.is_err() {
                    // The accept loop is gone without saying: treat it as shutdown.
                    Pin::new(&mut connection).graceful_shutdown();
                    shutting_down = true;
                }
            }
            () = sleep_until(deadline) => match watch.expired(Instant::now()) {
                None => {}
                Some(Expiry::SendStalled) => {
                    tracing::debug!("the client stopped taking its answer: closing");
                    return;
                }
                Some(Expiry::Stage(Stage::ReadingHead)) => {
                    tracing::debug!("a request head did not arrive in time: 408");
                    let stream = connection.into_parts().io.into_inner().stream;
                    answer_and_close(stream, &head_timeout_answer).await;
                    return;
                }
                Some(Expiry::Stage(Stage::Waiting | Stage::Answering)) => return,
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Writes a whole answer on a connection hyper does not serve (or no longer), then closes it:
/// the write side first, then whatever the client still sends is read and dropped for a moment,
/// because closing with unread input resets the connection and the client may lose the answer.
pub(crate) async fn answer_and_close(mut stream: TcpStream, answer: &[u8]) {
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// No byte of the next request yet.
    Waiting,
    /// Part of a request head has arrived.
    ReadingHead,
    /// A request is being answered.
    Answering,
}

/// Why a connection is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// It stayed too long in this stage.
    Stage(Stage),
    /// Its client took none of the answer's bytes for the send timeout.
    SendStalled,
}

struct Progress {
    stage: Stage,
    /// When the connection ends if it is still in this stage; none while answering.
    deadline: Option<Instant>,
    /// Requests started on this connection.
    requests: u64,
    /// Since when a write has been waiting for the client to take bytes.
    write_blocked_since: Option<Instant>,
}

/// Where a connection is, shared by its stream (bytes arrive), its service (a request starts,
/// its answer is handed over) and the task serving it (which ends it at the deadline).
struct Watch {
    progress: Mutex<Progress>,
    changed: Notify,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    send_timeout: Duration,
}

impl Watch {
    fn new(limits: &ConnectionLimits) -> Watch {
        Watch {
            progress: Mutex::new(Progress {
                stage: Stage::Waiting,
                deadline: Some(Instant::now() + limits.header_read_timeout),
                requests: 0,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
            header_read_timeout: limits.header_read_timeout,
            keep_alive_timeout: limits.keep_alive_timeout,
            send_timeout: limits.send_timeout,
        }
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline(&self) -> Option<Instant> {
        let progress = self.progress();
        let send = progress
            .write_blocked_since
            .map(|since| since + self.send_timeout);
        match (progress.deadline, send) {
            (Some(stage), Some(send)) => Some(stage.min(send)),
            (stage, send) => stage.or(send),
        }
    }

    /// Why the connection must end now, if it must.
    fn expired(&self, now: Instant) -> Option<Expiry> {
        let progress = self.progress();
        if progress
            .write_blocked_since
            .is_some_and(|since| since + self.send_timeout <= now)
        {
            return Some(Expiry::SendStalled);
        }
        progress
            .deadline
            .is_some_and(|deadline| deadline <= now)
            .then_some(Expiry::Stage(progress.stage))
    }

    /// A write waits for the client to take bytes.
    fn write_blocked(&self) {
        let mut progress = self.progress();
        if progress.write_blocked_since.is_none() {
            progress.write_blocked_since = Some(Instant::now());
            self.changed.notify_one();
        }
    }

    /// The client took bytes.
    fn write_went_through(&self) {
        let mut progress = self.progress();
        progress.write_blocked_since = None;
    }

    fn bytes_arrived(&self) {
        let mut progress = self.progress();
        if progress.stage == Stage::Waiting {
            progress.stage = Stage::ReadingHead;
            // The first request's head has been due since the connection opened.
            if progress.requests > 0 {
                progress.deadline = Some(Instant::now() + self.header_read_timeout);
                self.changed.notify_one();
            }
        }
    }

    /// A request head is complete; answers how many requests the connection has started.
    fn request_started(&self) -> u64 {
        let mut progress = self.progress();
        progress.stage = Stage::Answering;
        progress.deadline = None;
        progress.requests += 1;
        self.changed.notify_one();
        progress.requests
    }

    /// The answer has been handed to hyper in full.
    fn answer_finished(&self) {
        let mut progress = self.progress();
        progress.stage = Stage::Waiting;
        progress.deadline = Some(Instant::now() + self.keep_alive_timeout);
        self.changed.notify_one();
    }
}

/// The TCP stream, telling the watch when bytes arrive.
struct WatchedStream {
    stream: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_arrived();
        }
        polled
    }
}

impl WatchedStream {
    fn watch_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.watch.write_blocked(),
            Poll::Ready(Ok(written)) if *written > 0 => self.watch.write_went_through(),
            Poll::Ready(_) => {}
        }
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// An answer's body; hyper drops it once it has taken the last of it, which is when the
/// connection starts waiting for the next request.
struct AnswerBody {
    body: axum::body::Body,
    _finished: AnswerFinished,
}

struct AnswerFinished(Arc<Watch>);

impl Drop for AnswerFinished {
    fn drop(&mut self) {
        self.0.answer_finished();
    }
}

impl HttpBody for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with `BodyTimedOut` when it brings no bytes for the body timeout,
/// or, past that timeout, averages less than the minimum rate: it is due `body_read_timeout`
/// after the head, plus one second for every `body_min_rate` bytes received.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    min_rate: u64,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl TimedBody {
    fn new(inner: Incoming, limits: &ConnectionLimits) -> TimedBody {
        let started = Instant::now();
        TimedBody {
            inner,
            timeout: limits.body_read_timeout,
            min_rate: limits.body_min_rate,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + limits.body_read_timeout)),
        }
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let stall = now + self.timeout;
        if self.min_rate == 0 {
            return stall;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        stall.min(self.started + self.timeout + earned)
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let next = this.next_deadline(Instant::now());
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut {
                    timeout: this.timeout,
                    min_rate: this.min_rate,
                })))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body stalled or trickled past the body timeout.
#[derive(Debug)]
pub(crate) struct BodyTimedOut {
    timeout: Duration,
    min_rate: u64,
}

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body did not arrive in time: it stalled for {} s",
            self.timeout.as_secs_f64()
        )?;
        if self.min_rate > 0 {
            write!(
                f,
                " or came slower than {} bytes a second after the first {} s",
                self.min_rate,
                self.timeout.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

impl StdError for BodyTimedOut {}

/// The body timeout, if that is what `error` (or an error it wraps) is.
pub(crate) fn body_timed_out<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a BodyTimedOut> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return Some(timed_out);
        }
        current = error.source();
    }
    None
}
