//! Notifications over the network, thin over the `notify` service:
//!
//! - the operations `$status`, `$events` and `$get-ws-binding-token` on a Subscription the
//!   caller may read;
//! - the change-log consumer that numbers events (a thread, [`start`]), and the deliverer of
//!   rest-hook subscriptions: a handshake, then the events in order, at least once, each
//!   subscription on its own task so a receiver that is down delays only itself, retried with
//!   back-off; everything it needs is in the store, so a restarted server resumes at once;
//! - the websocket channel at `/subscriptions/ws` (`bind-with-token`, handshake, events,
//!   heartbeats), accepted by the accept loop straight from the socket;
//! - JetStream: where a NATS server is configured, every topic event is also published under
//!   `meridian.<topic>` (a change-log consumer of its own that moves on only once published).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use caller::Caller;
use fhir_model::{IssueCode, clock};
use futures_util::{SinkExt, StreamExt};
use notify::bundle::{self, Kind};
use notify::events::{self, Delivery};
use notify::{Channel, Subscriber};
use repository::{Repository, RepositoryError};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered, fhir_json};
use crate::request::{operation_params, param};
use crate::response::json_response;
use crate::{ApiError, AppState};

/// The websocket channel's path.
pub const WS_PATH: &str = "/subscriptions/ws";

/// Handshakes a rest-hook endpoint may fail before its subscription is in error.
const HANDSHAKE_ATTEMPTS: u32 = 5;

pub(crate) const OPERATIONS: &[Registered] = &[
    fhir_json(notify::operations::STATUS, status),
    fhir_json(notify::operations::EVENTS, events_operation),
    fhir_json(notify::operations::GET_WS_BINDING_TOKEN, binding_token),
];

fn answer(value: &Value, pretty: bool) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(value).unwrap_or_default(),
        pretty,
    )
}

/// The subscription `id` as `caller` may read it, with its kept configuration.
fn visible_subscription(
    repository: &Repository,
    caller: &Caller,
    id: &str,
) -> Result<(Value, Subscriber), ApiError> {
    let record = repository.read(caller, "Subscription", id)?;
    let resource = repository::parse_stored(&record)?;
    let subscriber = events::subscriber(&**repository.store(), id)?.ok_or_else(|| {
        RepositoryError::Internal(format!("Subscription/{id} has no kept configuration"))
    })?;
    Ok((resource, subscriber))
}

fn status_code_of(resource: &Value) -> String {
    resource
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("requested")
        .to_owned()
}

/// `Subscription/ID/$status`: a searchset with the subscription's status.
fn status(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id().to_owned();
        let fhir = call.fhir;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let base = fhir.base.clone();
        let status = blocking(move || {
            let (resource, subscriber) = visible_subscription(&repository, &caller, &id)?;
            let store = &**repository.store();
            let count = events::count(store, &id)?;
            let delivery = events::delivery(store, &id)?;
            Ok(bundle::status(
                &base,
                &subscriber,
                &status_code_of(&resource),
                Kind::QueryStatus,
                count,
                &[],
                delivery.error.as_deref(),
            ))
        })
        .await?;
        let bundle = json!({
            "resourceType": "Bundle", "type": "searchset", "total": 1,
            "entry": [{"fullUrl": format!("urn:uuid:{}", status["id"].as_str().unwrap_or_default()),
                "resource": status, "search": {"mode": "match"}}],
        });
        Ok(answer(&bundle, fhir.pretty))
    })
}

/// `Subscription/ID/$events?eventsSinceNumber=&eventsUntilNumber=&content=`: the kept events
/// in that range, as a notification of type `query-event`.
fn events_operation(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id().to_owned();
        let limit = call.state.config().max_body_bytes;
        let fhir = call.fhir;
        let params = operation_params(&fhir, &call.method, call.body, limit).await?;
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            match param(&params, name) {
                None => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    ApiError::bad_request(
                        IssueCode::Value,
                        format!("{name} is an event number, not '{v}'"),
                    )
                }),
            }
        };
        let since = number("eventsSinceNumber")?;
        let until = number("eventsUntilNumber")?;
        let content = match param(&params, "content") {
            None => None,
            Some(v) => Some(notify::Content::parse(v).ok_or_else(|| {
                ApiError::bad_request(
                    IssueCode::Value,
                    format!("content is empty, id-only or full-resource, not '{v}'"),
                )
            })?),
        };
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let base = fhir.base.clone();
        let notification = {
            let repository = repository.clone();
            blocking(move || {
                let (resource, mut subscriber) = visible_subscription(&repository, &caller, &id)?;
                if let Some(content) = content {
                    subscriber.content = content;
                }
                let store = &**repository.store();
                let count = events::count(store, &id)?;
                let until = until.unwrap_or(count).min(count);
                let since = since.unwrap_or(1).max(1);
                let kept = events::events(store, &id, since, until)?;
                Ok(bundle::notification(
                    &repository,
                    &base,
                    &subscriber,
                    &status_code_of(&resource),
                    Kind::QueryEvent,
                    count,
                    &kept,
                )?)
            })
            .await?
        };
        fhir.audit
            .patients(crate::audit::patients_mentioned(&notification));
        Ok(answer(&notification, fhir.pretty))
    })
}

/// `Subscription/ID/$get-ws-binding-token`: a token the caller's websocket client binds with.
fn binding_token(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id().to_owned();
        let fhir = call.fhir;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let (token, expires) = blocking(move || {
            let (_, subscriber) = visible_subscription(&repository, &caller, &id)?;
            if subscriber.channel != Channel::Websocket {
                return Err(ApiError::from(RepositoryError::Unprocessable(vec![
                    fhir_model::Issue::error(
                        IssueCode::BusinessRule,
                        format!("Subscription/{id} is not a websocket subscription"),
                    ),
                ])));
            }
            Ok(notify::binding::issue(
                &**repository.store(),
                std::slice::from_ref(&id),
                clock::now_micros(),
            )?)
        })
        .await?;
        let ws = websocket_url(&fhir.base);
        let parameters = json!({"resourceType": "Parameters", "parameter": [
            {"name": "token", "valueString": token},
            {"name": "expiration", "valueDateTime": clock::format_instant(expires)},
            {"name": "subscription", "valueString": call.id.unwrap_or_default()},
            {"name": "websocket-url", "valueUrl": ws},
        ]});
        Ok(answer(&parameters, fhir.pretty))
    })
}

/// The websocket URL beside a FHIR base (`http://h/fhir` → `ws://h/subscriptions/ws`).
fn websocket_url(base: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    let host = rest.split('/').next().unwrap_or(rest);
    let scheme = if scheme == "https" { "wss" } else { "ws" };
    format!("{scheme}://{host}{WS_PATH}")
}

/// What the notification machinery is configured with.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The FHIR base URL notifications name resources under.
    pub base: String,
    /// A NATS server to publish every event to (JetStream), if any.
    pub nats: Option<String>,
}

/// Stops the notification threads and tasks when dropped.
pub struct NotifyGuard {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NotifyGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts numbering events from the change log, delivering rest-hook notifications and, when
/// configured, publishing to NATS. Call inside the runtime that serves.
pub fn start(state: &AppState, settings: NotifySettings) -> std::io::Result<NotifyGuard> {
    let stop = Arc::new(AtomicBool::new(false));
    let repository = Arc::clone(state.repository());
    let ticks = state.event_ticks().clone();
    {
        let repository = Arc::clone(&repository);
        let stop = Arc::clone(&stop);
        let written = state.written();
        std::thread::Builder::new()
            .name("notify-events".into())
            .spawn(move || number_events(&repository, &ticks, &written, &stop))?;
    }
    let mut tasks = vec![tokio::spawn(deliver_rest_hooks(
        state.clone(),
        settings.base.clone(),
        state.event_ticks().subscribe(),
    ))];
    if let Some(url) = settings.nats {
        tasks.push(tokio::spawn(publish_to_nats(
            Arc::clone(&repository),
            url,
            Arc::clone(&stop),
        )));
    }
    Ok(NotifyGuard { stop, tasks })
}

/// How often the change log is looked at when it had nothing new.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// After a write wakes the consumer, how long it lets more writes gather before it reads:
/// reading the log after every write was two statements per write for this consumer alone,
/// most of them finding one change that asked nothing of it.
const SETTLE: Duration = Duration::from_millis(25);

/// The consumer that numbers events: as often as changes come, every 50 ms when idle.
fn number_events(
    repository: &Repository,
    ticks: &tokio::sync::watch::Sender<u64>,
    written: &crate::lanes::Written,
    stop: &AtomicBool,
) {
    let consumer = Caller::operator("notify-events");
    let mut seen = 0;
    let mut cursor = repository::Cursor::default();
    while !stop.load(Ordering::Relaxed) {
        let feed = repository.change_feed(notify::CONSUMER);
        match feed.consume_relevant(
            &consumer,
            &mut cursor,
            200,
            |changes| events::concern_anyone(&**repository.store(), changes),
            |tx, changes| events::record(repository, tx, changes),
        ) {
            Ok(Some(touched)) => {
                if !touched.is_empty() {
                    ticks.send_modify(|t| *t += 1);
                }
            }
            // Nothing new: until this server's next write (another server's writes, and the
            // platform's own, are seen at the next poll).
            Ok(None) => {
                seen = written.wait_after(seen, IDLE_POLL);
                std::thread::sleep(SETTLE);
            }
            Err(error) => {
                tracing::warn!(%error, "numbering notification events");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// The deliverer: each rest-hook subscription with something due gets a task of its own.
async fn deliver_rest_hooks(
    state: AppState,
    base: String,
    mut ticks: tokio::sync::watch::Receiver<u64>,
) {
    let repository = Arc::clone(state.repository());
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no HTTP client for rest-hook notifications");
            return;
        }
    };
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    // A delivery that finished may have left more to send: it wakes the loop.
    let finished = Arc::new(tokio::sync::Notify::new());
    // After a restart, whatever is pending goes at once, whatever back-off was recorded.
    let started = clock::now_micros();
    loop {
        let due = {
            let repository = Arc::clone(&repository);
            tokio::task::spawn_blocking(move || due_work(&repository, started)).await
        };
        match due {
            Ok(Ok(work)) => {
                for (subscriber, delivery, count) in work {
                    let fresh = in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(subscriber.id.clone());
                    if !fresh {
                        continue;
                    }
                    let in_flight = Arc::clone(&in_flight);
                    let state = state.clone();
                    let client = client.clone();
                    let base = base.clone();
                    let finished = Arc::clone(&finished);
                    tokio::spawn(async move {
                        let id = subscriber.id.clone();
                        deliver_one(&state, &client, &base, subscriber, delivery, count).await;
                        in_flight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        finished.notify_one();
                    });
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "reading what notifications are due"),
            Err(error) => tracing::warn!(%error, "reading what notifications are due"),
        }
        tokio::select! {
            _ = ticks.changed() => {}
            () = finished.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

type Due = Vec<(Subscriber, Delivery, u64)>;

/// The rest-hook subscriptions with a handshake, events or a heartbeat due.
fn due_work(repository: &Repository, started: i64) -> Result<Due, RepositoryError> {
    let store = &**repository.store();
    let now = clock::now_micros();
    let mut due = Vec::new();
    for subscriber in events::subscribers(store)? {
        if subscriber.channel != Channel::RestHook || subscriber.status == "off" {
            continue;
        }
        let delivery = events::delivery(store, &subscriber.id)?;
        if delivery.next_attempt > now && delivery.next_attempt > started {
            continue;
        }
        if !delivery.handshake && delivery.failures >= HANDSHAKE_ATTEMPTS {
            continue;
        }
        let count = events::count(store, &subscriber.id)?;
        let heartbeat_due = subscriber.heartbeat_due(delivery.last_sent, now);
        if !delivery.handshake || delivery.delivered < count || heartbeat_due {
            due.push((subscriber, delivery, count));
        }
    }
    Ok(due)
}

/// One delivery attempt: the handshake, the next batch of events, or a heartbeat.
async fn deliver_one(
    state: &AppState,
    client: &reqwest::Client,
    base: &str,
    subscriber: Subscriber,
    mut delivery: Delivery,
    count: u64,
) {
    let Some(endpoint) = subscriber.endpoint.clone() else {
        return;
    };
    let handshake = !delivery.handshake;
    let built = {
        let repository = Arc::clone(state.repository());
        let subscriber = subscriber.clone();
        let base = base.to_owned();
        let sent = delivery.delivered;
        tokio::task::spawn_blocking(move || {
            if handshake {
                let bundle = bundle::notification(
                    &repository,
                    &base,
                    &subscriber,
                    "requested",
                    Kind::Handshake,
                    count,
                    &[],
                )?;
                return Ok(Some((bundle, sent)));
            }
            // The deliverer comes here for events or a heartbeat that are due.
            bundle::next(&repository, &base, &subscriber, sent, count, true)
        })
        .await
    };
    let (body, upto) = match built {
        Ok(Ok(Some(next))) => next,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            tracing::warn!(%error, subscription = %subscriber.id, "building a notification");
            return;
        }
        Err(_) => return,
    };
    // What the notification shows is on the trail before it leaves.
    if let Err(error) =
        crate::audit::record_notification(state, &subscriber.owner, &subscriber.id, &body).await
    {
        tracing::warn!(%error, subscription = %subscriber.id, "the trail cannot record a notification; it waits");
        return;
    }
    let mut request = client
        .post(&endpoint)
        .timeout(Duration::from_secs(subscriber.timeout))
        .header("Content-Type", "application/fhir+json")
        .body(serde_json::to_vec(&body).unwrap_or_default());
    for header in &subscriber.headers {
        if let Some((name, value)) = header.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let outcome = match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the endpoint answered {}", response.status())),
        Err(error) => Err(format!("the endpoint could not be reached: {error}")),
    };
    let now = clock::now_micros();
    let mut new_status = None;
    match outcome {
        Ok(()) => {
            if !delivery.handshake || subscriber.status != "active" {
                new_status = Some("active");
            }
            delivery.handshake = true;
            delivery.delivered = upto;
            delivery.failures = 0;
            delivery.next_attempt = 0;
            delivery.last_sent = now;
            delivery.error = None;
        }
        Err(error) => {
            tracing::info!(subscription = %subscriber.id, %error, handshake, "notification not delivered; retrying later");
            delivery.failures = delivery.failures.saturating_add(1);
            delivery.next_attempt = now + events::back_off(delivery.failures);
            delivery.error = Some(error);
            if !delivery.handshake && delivery.failures >= HANDSHAKE_ATTEMPTS {
                new_status = Some("error");
            }
        }
    }
    let repository = Arc::clone(state.repository());
    let id = subscriber.id.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(error) = events::set_delivery(&**repository.store(), &id, &delivery) {
            tracing::warn!(%error, subscription = %id, "keeping the delivery state");
        }
        if let Some(status) = new_status
            && let Err(error) = set_status(&repository, &id, status)
        {
            tracing::warn!(%error, subscription = %id, "setting the subscription's status");
        }
    })
    .await;
}

/// Sets a Subscription's status as the platform (its owner is kept).
fn set_status(repository: &Repository, id: &str, status: &str) -> Result<(), RepositoryError> {
    let platform = Caller::operator("notify-delivery");
    let record = repository.read(&platform, "Subscription", id)?;
    let mut resource = repository::parse_stored(&record)?;
    if resource.get("status").and_then(Value::as_str) == Some(status) {
        return Ok(());
    }
    resource["status"] = json!(status);
    repository.update(
        &platform,
        "Subscription",
        id,
        resource,
        Some(record.version),
    )?;
    Ok(())
}

/// What a connection's first bytes say it is.
pub(crate) enum Opening {
    /// A request for the websocket channel.
    Websocket,
    /// Anything else: hyper serves it.
    Http,
    /// Nothing within the header timeout: closed, as a connection whose request never came.
    Silent,
    /// Only the start of the websocket request line within the header timeout: 408, as a
    /// request head that did not arrive in time.
    Stalled,
}

/// Peeks at a connection's first bytes, for at most `wait` (the header timeout).
pub(crate) async fn opening(stream: &TcpStream, wait: Duration) -> Opening {
    let wanted = format!("GET {WS_PATH}");
    let wanted = wanted.as_bytes();
    let mut buffer = vec![0u8; wanted.len()];
    let mut seen = 0;
    let peeked = tokio::time::timeout(wait, async {
        loop {
            let n = stream.peek(&mut buffer).await.unwrap_or(0);
            seen = n;
            if n == 0 || buffer[..n] != wanted[..n] {
                return Opening::Http;
            }
            if n == wanted.len() {
                return Opening::Websocket;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    match peeked {
        Ok(opening) => opening,
        Err(_) if seen > 0 => Opening::Stalled,
        Err(_) => Opening::Silent,
    }
}

/// How long a websocket client has to bind before it is closed.
const BIND_WITHIN: Duration = Duration::from_secs(30);

/// Keeps the `Host` a websocket client connected to (a name without a path, a space or
/// credentials).
struct HostOf<'a>(&'a mut Option<String>);

impl tokio_tungstenite::tungstenite::handshake::server::Callback for HostOf<'_> {
    fn on_request(
        self,
        request: &tokio_tungstenite::tungstenite::handshake::server::Request,
        response: tokio_tungstenite::tungstenite::handshake::server::Response,
    ) -> Result<
        tokio_tungstenite::tungstenite::handshake::server::Response,
        tokio_tungstenite::tungstenite::handshake::server::ErrorResponse,
    > {
        *self.0 = request
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.len() < 256 && !h.contains(['/', ' ', '@']))
            .map(str::to_owned);
        Ok(response)
    }
}

/// Serves one websocket connection: waits for `bind-with-token`, sends each bound
/// subscription's handshake, then its events as they are numbered and its heartbeats.
pub(crate) async fn serve_websocket(
    stream: TcpStream,
    state: AppState,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    // Links in the notifications follow the public base, or the Host the client connected to
    // (its own name for this server, as in every answer when no public base is set).
    let mut host = None;
    let accepted = tokio_tungstenite::accept_hdr_async(stream, HostOf(&mut host)).await;
    let Ok(mut socket) = accepted else {
        return;
    };
    let repository = Arc::clone(state.repository());
    let base = match (&state.config().public_base, host) {
        (Some(base), _) => base.clone(),
        (None, Some(host)) => format!("http://{host}/fhir"),
        (None, None) => "http://localhost/fhir".into(),
    };
    let mut ticks = state.event_ticks().subscribe();
    // (subscriber, events sent, last sent)
    let mut bound: Vec<(Subscriber, u64, i64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let unbound_until = tokio::time::Instant::now() + BIND_WITHIN;
    loop {
        if bound.is_empty() && tokio::time::Instant::now() > unbound_until {
            // A connection that never binds holds a connection slot for nothing.
            let _ = socket.close(None).await;
            return;
        }
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str().trim();
                    let Some(token) = text.strip_prefix("bind-with-token ") else {
                        let _ = socket.send(Message::text(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid", "diagnostics": "send 'bind-with-token TOKEN'"}]}).to_string())).await;
                        continue;
                    };
                    let token = token.trim().to_owned();
                    let repository = Arc::clone(&repository);
                    let base = base.clone();
                    let bound_now = tokio::task::spawn_blocking(move || bind(&repository, &base, &token)).await;
                    match bound_now {
                        Ok(Ok(subscriptions)) => {
                            for (subscriber, count, handshake) in subscriptions {
                                if socket.send(Message::text(handshake.to_string())).await.is_err() {
                                    return;
                                }
                                bound.retain(|(s, _, _)| s.id != subscriber.id);
                                bound.push((subscriber, count, clock::now_micros()));
                            }
                        }
                        _ => {
                            let _ = socket.send(Message::text(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security", "diagnostics": "the binding token is unknown or expired"}]}).to_string())).await;
                        }
                    }
                }
                Some(Ok(Message::Ping(payload))) => {
                    if socket.send(Message::Pong(payload)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ticks.changed() => {}
            _ = tick.tick() => {}
            _ = stopping.changed() => {
                // The server is shutting down: say goodbye so the client reconnects later.
                let _ = socket.close(None).await;
                return;
            }
        }
        for (subscriber, sent, last_sent) in &mut bound {
            let pending = {
                let repository = Arc::clone(&repository);
                let subscriber = subscriber.clone();
                let base = base.clone();
                let from = *sent;
                let heartbeat_due = subscriber.heartbeat_due(*last_sent, clock::now_micros());
                tokio::task::spawn_blocking(move || {
                    let count = events::count(&**repository.store(), &subscriber.id)?;
                    bundle::next(&repository, &base, &subscriber, from, count, heartbeat_due)
                })
                .await
            };
            let Ok(Ok(Some((bundle, upto)))) = pending else {
                continue;
            };
            // Not sent unrecorded: tried again at the next tick.
            if crate::audit::record_notification(&state, &subscriber.owner, &subscriber.id, &bundle)
                .await
                .is_err()
            {
                continue;
            }
            if socket
                .send(Message::text(bundle.to_string()))
                .await
                .is_err()
            {
                return;
            }
            *sent = upto;
            *last_sent = clock::now_micros();
        }
    }
}

type Bound = Vec<(Subscriber, u64, Value)>;

/// The subscriptions a token binds, each with its event count and handshake; a websocket
/// subscription still `requested` becomes `active`.
fn bind(repository: &Repository, base: &str, token: &str) -> Result<Bound, RepositoryError> {
    let store = &**repository.store();
    let Some(ids) = notify::binding::bind(store, token, clock::now_micros())? else {
        return Err(RepositoryError::Forbidden("unknown binding token".into()));
    };
    let mut bound = Vec::new();
    for id in ids {
        let Some(subscriber) = events::subscriber(store, &id)? else {
            continue;
        };
        if subscriber.status == "requested" {
            set_status(repository, &id, "active")?;
        }
        let count = events::count(store, &id)?;
        let handshake = bundle::notification(
            repository,
            base,
            &subscriber,
            "active",
            Kind::Handshake,
            count,
            &[],
        )?;
        bound.push((subscriber, count, handshake));
    }
    Ok(bound)
}

/// Publishes every topic event to JetStream (`meridian.<topic>`, stream `MERIDIAN`), at least
/// once: the position in the change log moves only past what the server acknowledged.
async fn publish_to_nats(repository: Arc<Repository>, url: String, stop: Arc<AtomicBool>) {
    let feed_name = "nats";
    let publisher = Caller::operator("notify-nats");
    // The first time NATS is configured, publishing starts from now: the store's history is
    // not replayed into the stream.
    {
        let repository = Arc::clone(&repository);
        let publisher = publisher.clone();
        let started = tokio::task::spawn_blocking(move || {
            repository.change_feed(feed_name).start_at_end(&publisher)
        })
        .await;
        if !matches!(started, Ok(Ok(_))) {
            tracing::warn!("cannot find where the change log ends; NATS publishing waits");
            return;
        }
    }
    while !stop.load(Ordering::Relaxed) {
        let client = match async_nats::connect(&url).await {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, %url, "cannot reach NATS; trying again in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let jetstream = async_nats::jetstream::new(client);
        if let Err(error) = jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: "MERIDIAN".into(),
                subjects: vec!["meridian.>".into()],
                ..Default::default()
            })
            .await
        {
            tracing::warn!(%error, "cannot make the MERIDIAN stream; trying again in 5 s");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let batch = {
                let repository = Arc::clone(&repository);
                let publisher = publisher.clone();
                tokio::task::spawn_blocking(move || {
                    let feed = repository.change_feed(feed_name);
                    let changes = feed.next(200)?;
                    let mut messages = Vec::new();
                    for change in &changes {
                        for (topic, subject) in events::raised(&repository, &publisher, change)? {
                            messages.push((subject, topic, change.clone()));
                        }
                    }
                    Ok::<_, RepositoryError>((changes.last().map(|c| c.position), messages))
                })
                .await
            };
            let (last, messages) = match batch {
                Ok(Ok(batch)) => batch,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "reading the change log for NATS");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(_) => return,
            };
            let Some(last) = last else {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            };
            let mut published = true;
            for (subject, topic, change) in &messages {
                let payload = json!({
                    "topic": topic,
                    "focus": format!("{}/{}", change.resource_type, change.id),
                    "version": change.version,
                    "timestamp": clock::format_instant(change.last_updated),
                });
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    "Nats-Msg-Id",
                    format!(
                        "{}/{}/_history/{}/{topic}",
                        change.resource_type, change.id, change.version
                    )
                    .as_str(),
                );
                let acked = match jetstream
                    .publish_with_headers(subject.clone(), headers, payload.to_string().into())
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if !acked {
                    published = false;
                    break;
                }
            }
            if !published {
                tracing::warn!("NATS did not acknowledge an event; reconnecting");
                break;
            }
            let repository = Arc::clone(&repository);
            let publisher = publisher.clone();
            let advanced = tokio::task::spawn_blocking(move || {
                repository
                    .change_feed(feed_name)
                    .advance_to(&publisher, last)
            })
            .await;
            if !matches!(advanced, Ok(Ok(()))) {
                tracing::warn!("keeping the NATS position failed; events may be published again");
            }
        }
    }
}
