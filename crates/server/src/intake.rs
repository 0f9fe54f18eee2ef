//! The intake's edges (`docs/intake.md`): the MLLP listener for HL7 v2 messages, the MQTT
//! subscriber and the HTTPS endpoint for kiosks' readings. Thin: framing, the sender's or
//! device's identity as the request's caller, the audit trail, the acknowledgement; what a
//! message or reading means is the `intake` service's.
//!
//! - MLLP: one task per connection reads frames in order; each message is applied on a
//!   blocking thread, audited, then acknowledged (original mode: AA/AE/AR; enhanced mode: the
//!   commit acknowledgement, then the application one, each as MSH-15/16 ask). The
//!   acknowledgement leaves only after the commit and the trail, so a message the sender saw
//!   acknowledged is never lost; one it did not see acknowledged it sends again, and the
//!   control id makes the second time a no-op.
//! - Readings: an upload (a JWS signed by the device) arrives over MQTT
//!   (`meridian/kiosk/<device>/readings`, answered on `meridian/kiosk/<device>/ack`) or HTTPS
//!   (`POST /intake/readings`). One writer thread takes verified uploads in batches and writes
//!   each institution's in one transaction; MQTT messages are acknowledged to the broker only
//!   after their batch commits (a persistent session, manual acknowledgements), so the broker
//!   keeps what the server had not written when it stopped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use access::audit::{Interaction, RestAccess};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use caller::{Actor, Caller};
use hl7v2::{AckCode, AckError, Message};
use intake::device::{ReadingStatus, Readings, Upload, UploadError};
use intake::{Disposition, Intake, Received, Sender, SenderConfig, Senders};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::auth::PeerAddress;
use crate::lanes::blocking;
use crate::operations::{Handled, Invocation, Registered, fhir_json};

/// What the intake listens on.
#[derive(Debug, Clone, Default)]
pub struct IntakeSettings {
    /// The MLLP listener's address (`--mllp-listen`).
    pub mllp: Option<SocketAddr>,
    /// The MQTT broker (`host:port`) whose kiosk topics are read (`--mqtt`).
    pub mqtt: Option<String>,
    /// The configured HL7 v2 senders; none accepts every sender.
    pub senders: Vec<SenderConfig>,
    /// The MQTT client id: stable for this server and store, so the broker keeps its
    /// sessions (and the readings published while the server is down) across restarts.
    pub mqtt_client_id: String,
    /// The shared-subscription group of the store's servers.
    pub mqtt_group: String,
}

/// Keeps the intake running; dropping it stops the listener and the subscriber (a message
/// being applied is finished and acknowledged first).
pub struct IntakeGuard {
    stop: CancellationToken,
    /// Where the MLLP listener listens (its port when 0 was asked).
    pub mllp_address: Option<SocketAddr>,
}

impl Drop for IntakeGuard {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A client the intake's edges authenticate by its own means (an HL7 v2 sender by its
/// configuration, a kiosk by its signature): `client` as actor and client id, acting for
/// `organization` with `scopes`. The one place these edges make a caller.
fn intake_client(
    client: String,
    organization: Option<String>,
    scopes: &[&str],
    address: Option<IpAddr>,
    request_id: String,
) -> Caller {
    Caller {
        request_id,
        actor: Actor::Client(client.clone()),
        organization,
        client_id: Some(client),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        patient: None,
        purpose: caller::DEFAULT_PURPOSE.into(),
        break_glass: None,
        address,
    }
}

/// The caller an HL7 v2 sender acts as: a client of its institution, with the scopes of
/// what messages write. Built here, at the edge that received the message (the command
/// line's replay builds it the same way).
pub fn sender_caller(sender: &Sender, address: Option<IpAddr>, request_id: String) -> Caller {
    intake_client(
        format!("hl7v2:{}", sender.key),
        Some(format!("Organization/{}", sender.organization)),
        &["system/*.cru", "system/*.s"],
        address,
        request_id,
    )
}

/// Records on the audit trail what replayed messages wrote, each as its sender (the command
/// line's `meridian intake replay` is an edge like the listener: what it applies is audited
/// the same way). Blocks until the events are durable.
pub fn audit_replayed(
    repository: &Arc<repository::Repository>,
    replayed: &[(Caller, String, Vec<u8>)],
) -> Result<(), access::audit::AuditError> {
    if replayed.is_empty() {
        return Ok(());
    }
    let trail = crate::audit::Trail {
        repository: Arc::clone(repository),
        sink: Arc::new(access::audit::AuditSink::start(
            Arc::clone(repository),
            Caller::operator("audit-trail"),
            access::audit::SinkConfig::default(),
        )),
        observer: access::audit::Observer {
            name: "Meridian".into(),
            base: None,
        },
    };
    let mut accesses: Vec<(&Caller, RestAccess, &[u8])> = replayed
        .iter()
        .map(|(caller, event, response)| {
            let mut access = RestAccess::new(Interaction::Operation("$hl7v2-message".into()), None);
            access.query = Some(format!("event={event}&replay=true"));
            (caller, access, response.as_slice())
        })
        .collect();
    crate::audit::record_intakes(
        &trail,
        accesses
            .iter_mut()
            .map(|(who, access, response)| (*who, access, Some(*response)))
            .collect(),
    )
}

/// Starts the MLLP listener and the MQTT subscriber the settings ask for, on the current
/// runtime.
pub async fn start(state: &AppState, settings: IntakeSettings) -> std::io::Result<IntakeGuard> {
    let stop = CancellationToken::new();
    let mut mllp_address = None;
    if let Some(address) = settings.mllp {
        let listener = tokio::net::TcpListener::bind(address).await?;
        mllp_address = Some(listener.local_addr()?);
        let intake = Arc::new(Intake::new(
            Arc::clone(state.repository()),
            Senders::new(settings.senders.clone()),
        ));
        tracing::info!(address = %listener.local_addr()?, "Meridian takes HL7 v2 over MLLP");
        tokio::spawn(accept_mllp(listener, state.clone(), intake, stop.clone()));
    }
    if let Some(broker) = settings.mqtt {
        // Several sessions share the subscription: a broker hands each session only so many
        // unacknowledged messages at once (Mosquitto: 20), and the writer acknowledges after
        // the commit, so more sessions mean larger batches. Servers sharing a store share the
        // group too, each with sessions of its own.
        // The group is the store's: servers of one store share the readings, another
        // store's servers (a test's, a second region's) get their own copy.
        let filter = format!("$share/{}/{READINGS_TOPIC}", settings.mqtt_group);
        for session in 0..MQTT_SESSIONS {
            tokio::spawn(subscribe_mqtt(
                broker.clone(),
                format!("{}-{session}", settings.mqtt_client_id),
                filter.clone(),
                state.clone(),
                stop.clone(),
            ));
        }
    }
    Ok(IntakeGuard { stop, mllp_address })
}

async fn accept_mllp(
    listener: tokio::net::TcpListener,
    state: AppState,
    intake: Arc<Intake>,
    stop: CancellationToken,
) {
    // Each connection may hold a frame of up to 16 MiB: their number is bounded, and one over
    // the bound is closed at once (the sender retries).
    let slots = Arc::new(tokio::sync::Semaphore::new(MLLP_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, "too many MLLP connections; one refused");
                    continue;
                };
                let (state, intake, stop) = (state.clone(), Arc::clone(&intake), stop.clone());
                tokio::spawn(async move {
                    serve_mllp(socket, peer, state, intake, stop).await;
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting an MLLP connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// How long an MLLP connection may stay silent before it is closed.
const MLLP_IDLE: Duration = Duration::from_secs(600);

/// How long writing an acknowledgement may take before the connection is dropped (a sender
/// that stopped reading).
const MLLP_SEND: Duration = Duration::from_secs(60);

/// MLLP connections served at once.
const MLLP_CONNECTIONS: usize = 512;

async fn serve_mllp(
    mut socket: tokio::net::TcpStream,
    peer: SocketAddr,
    state: AppState,
    intake: Arc<Intake>,
    stop: CancellationToken,
) {
    let mut decoder = hl7v2::mllp::Decoder::new(hl7v2::MAX_MESSAGE_BYTES);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = tokio::time::timeout(MLLP_IDLE, socket.read(&mut buffer)) => read,
        };
        let n = match read {
            Ok(Ok(0)) | Err(_) => return,
            Ok(Ok(n)) => n,
            Ok(Err(error)) => {
                tracing::debug!(%error, %peer, "MLLP connection ended");
                return;
            }
        };
        let frames = match decoder.push(&buffer[..n]) {
            Ok(frames) => frames,
            Err(too_large) => {
                let reply = unreadable_ack(&too_large.to_string());
                let _ = socket.write_all(&hl7v2::mllp::frame(&reply)).await;
                return;
            }
        };
        // Frames are answered in order, each after it is applied: stopping between two
        // leaves the second unread, for the sender to send again.
        for frame in frames {
            let Some(replies) = answer(&state, &intake, frame, peer.ip()).await else {
                return;
            };
            for reply in replies {
                let sent =
                    tokio::time::timeout(MLLP_SEND, socket.write_all(&hl7v2::mllp::frame(&reply)))
                        .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

/// The acknowledgements of one MLLP frame (one message, or a batch of them); `None` when
/// one of them cannot be answered (see [`apply`]).
async fn answer(
    state: &AppState,
    intake: &Arc<Intake>,
    frame: Vec<u8>,
    peer: IpAddr,
) -> Option<Vec<Vec<u8>>> {
    // One message, several, or a batch or file envelope around them: each is answered.
    let messages: Vec<(Vec<u8>, Result<Message, String>)> = match hl7v2::parse_batch(&frame) {
        Ok(batch) if batch.messages.len() == 1 => {
            let message = batch.messages.into_iter().next().map(Ok);
            vec![(frame, message.unwrap_or_else(|| Err("no message".into())))]
        }
        Ok(batch) if batch.messages.is_empty() => {
            vec![(frame, Err("the envelope holds no message".into()))]
        }
        Ok(batch) => batch
            .messages
            .into_iter()
            .map(|message| (message.encode_bytes(), Ok(message)))
            .collect(),
        Err(error) => vec![(frame, Err(error.to_string()))],
    };
    let mut replies = Vec::new();
    for (bytes, parsed) in messages {
        let message = match parsed {
            Ok(message) => message,
            Err(error) => {
                let kept = {
                    let intake = Arc::clone(intake);
                    let (bytes, error) = (bytes.clone(), error.clone());
                    tokio::task::spawn_blocking(move || intake.keep_unreadable(&bytes, &error))
                        .await
                        .ok()
                        .flatten()
                };
                tracing::warn!(%error, ?kept, "an unreadable HL7 v2 message");
                replies.push(unreadable_ack(&error));
                continue;
            }
        };
        replies.extend(apply(state, intake, message, bytes, peer).await?);
    }
    Some(replies)
}

/// Applies one message and answers its acknowledgements; `None` when it cannot say
/// whether the message was applied (the connection is then closed unanswered).
async fn apply(
    state: &AppState,
    intake: &Arc<Intake>,
    message: Message,
    bytes: Vec<u8>,
    peer: IpAddr,
) -> Option<Vec<Vec<u8>>> {
    // An acknowledgement from the other side (of an answer it got) is not a message to apply.
    if message.message_type().0 == Some("ACK") {
        return Some(Vec::new());
    }
    let sender = match intake.sender(&message, Some(peer)) {
        Ok(sender) => sender,
        Err(refusal) => {
            return Some(acknowledgements(
                &message,
                &Received {
                    code: refusal.code,
                    errors: vec![refusal.error],
                    disposition: Disposition::Refused,
                },
            ));
        }
    };
    let request_id = format!("hl7v2-{}", uuid::Uuid::new_v4());
    let caller = sender_caller(&sender, Some(peer), request_id);
    let (received, message) = {
        let intake = Arc::clone(intake);
        let caller = caller.clone();
        match tokio::task::spawn_blocking(move || {
            let received = intake.receive(&caller, &sender, &message, &bytes);
            (received, message)
        })
        .await
        {
            Ok(done) => done,
            Err(error) => {
                // The server is stopping (or the work panicked): whether the message was
                // applied is not known here, so it is not answered at all; the sender sends
                // it again and its control id settles it.
                tracing::error!(%error, "applying an HL7 v2 message was cut short");
                return None;
            }
        }
    };
    let mut received = received;
    if let Disposition::Applied { event, response } = &received.disposition {
        state.written().bump();
        let mut access = RestAccess::new(Interaction::Operation("$hl7v2-message".into()), None);
        access.query = Some(format!(
            "event={event}&control-id={}",
            message.control_id().unwrap_or("")
        ));
        let trail = crate::audit::Trail::of(state);
        let (caller, response) = (caller.clone(), response.clone());
        let audited = tokio::task::spawn_blocking(move || {
            crate::audit::record_intake(&trail, &caller, access, Some(&response))
        })
        .await;
        if !matches!(audited, Ok(Ok(()))) {
            tracing::error!(
                ?audited,
                "the HL7 v2 message was applied but its audit trail failed"
            );
            received = Received {
                code: AckCode::ApplicationReject,
                errors: vec![AckError::error(
                    207,
                    "the message was applied but its access could not be recorded; send it again",
                )],
                disposition: Disposition::Refused,
            };
        }
    }
    Some(acknowledgements(&message, &received))
}

/// The acknowledgements of a message: the application acknowledgement in the original mode;
/// in the enhanced mode the commit acknowledgement (CA once the message is applied or kept,
/// CR when refused) and the application one, each when MSH-15/16 ask for it, and the
/// application one when they ask for neither.
fn acknowledgements(message: &Message, received: &Received) -> Vec<Vec<u8>> {
    let now = fhir_model::clock::now_micros();
    let stamp = hl7_timestamp(now);
    let control = |n: u32| format!("MER{}{n}", now);
    match message.ack_mode() {
        hl7v2::ack::AckMode::Original => {
            vec![
                hl7v2::ack(
                    message,
                    received.code,
                    &received.errors,
                    &control(1),
                    &stamp,
                )
                .encode_bytes(),
            ]
        }
        hl7v2::ack::AckMode::Enhanced {
            accept,
            application,
        } => {
            // CE: the platform could not take it now (send again); CR: refused for good.
            let unavailable = received.errors.iter().any(|e| e.code == 207);
            let commit = match received.disposition {
                Disposition::Refused if unavailable => AckCode::CommitError,
                Disposition::Refused => AckCode::CommitReject,
                _ => AckCode::CommitAccept,
            };
            let mut out = Vec::new();
            if accept.wants(commit) {
                let errors: &[AckError] = if commit == AckCode::CommitAccept {
                    &[]
                } else {
                    &received.errors
                };
                out.push(hl7v2::ack(message, commit, errors, &control(1), &stamp).encode_bytes());
            }
            // A message that asks for no acknowledgement at all (NE and NE, as many senders
            // write) still gets its application acknowledgement: over MLLP every block is
            // answered, or the sender cannot know it may send the next one.
            if application.wants(received.code) || out.is_empty() {
                out.push(
                    hl7v2::ack(
                        message,
                        received.code,
                        &received.errors,
                        &control(2),
                        &stamp,
                    )
                    .encode_bytes(),
                );
            }
            out
        }
    }
}

/// The NAK of bytes that are not a message (no MSH to answer from): AE with the reason.
fn unreadable_ack(reason: &str) -> Vec<u8> {
    let stamp = hl7_timestamp(fhir_model::clock::now_micros());
    let stub = hl7v2::parse(format!("MSH|^~\\&|||||{stamp}||ACK|UNKNOWN|P|2.5").as_bytes());
    match stub {
        Ok(stub) => hl7v2::ack(
            &stub,
            AckCode::ApplicationError,
            &[AckError::error(
                102,
                format!("the message cannot be read: {reason}"),
            )],
            "MERUNREADABLE",
            &stamp,
        )
        .encode_bytes(),
        Err(_) => b"MSH|^~\\&|||||||ACK||P|2.5\rMSA|AE|\r".to_vec(),
    }
}

/// `YYYYMMDDHHMMSS+0000`.
fn hl7_timestamp(micros: i64) -> String {
    let instant = fhir_model::clock::format_instant(micros);
    let digits: String = instant
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    format!("{digits}+0000")
}

// --- Readings ---------------------------------------------------------------------------

/// The topic kiosks publish their uploads to, and the one they read answers from.
pub const READINGS_TOPIC: &str = "meridian/kiosk/+/readings";

/// MQTT sessions per server: 16 × Mosquitto's 20 unacknowledged uploads of 50 readings fill
/// a batch (`BATCH_READINGS`). Never fewer than a release before had: what the broker queued
/// for a session no longer opened would wait for it.
const MQTT_SESSIONS: usize = 16;

/// An upload waiting for the writer, with where its answer goes.
struct Pending {
    caller: Caller,
    upload: Upload,
    reply: Reply,
}

enum Reply {
    Http(tokio::sync::oneshot::Sender<Result<Vec<(String, ReadingStatus)>, String>>),
    Mqtt {
        client: rumqttc::AsyncClient,
        publish: Box<rumqttc::Publish>,
        device: String,
        /// The runtime the client's event loop runs on, to send the answer from the writer.
        runtime: tokio::runtime::Handle,
    },
}

/// The readings writer: verified uploads in, batches written per institution.
pub(crate) struct ReadingsWriter {
    queue: std::sync::mpsc::SyncSender<Pending>,
    devices: Mutex<HashMap<String, KnownDevice>>,
}

/// A device seen before: its secret and the institution it belongs to.
struct KnownDevice {
    secret: Vec<u8>,
    owner: Option<String>,
    read: std::time::Instant,
}

/// How long a device's secret and owner are trusted without reading them again (a new
/// secret, or a device made inactive, takes effect within this).
const DEVICE_TTL: Duration = Duration::from_secs(60);

/// Readings per batch at most: the larger the batch, the more of its readings share each
/// index page its commit writes (BENCHMARKS.md, "Fewer pages per reading").
const BATCH_READINGS: usize = 16_000;

impl ReadingsWriter {
    pub(crate) fn start(context: WriterContext) -> Arc<ReadingsWriter> {
        let (queue, taken) = std::sync::mpsc::sync_channel::<Pending>(4_096);
        let writer = Arc::new(ReadingsWriter {
            queue,
            devices: Mutex::new(HashMap::new()),
        });
        // The writer hands each batch's audit and answers to a thread of their own and goes
        // on with the next batch: the trail is prepared while the next readings are written.
        let (done, finished) = std::sync::mpsc::sync_channel::<Written>(4);
        let trail = context.trail.clone();
        let spawned = std::thread::Builder::new()
            .name("readings-writer".into())
            .spawn(move || write_batches(&context, &taken, &done))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("readings-answers".into())
                    .spawn(move || audit_and_answer(&trail, &finished))
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "the readings writer could not start");
        }
        writer
    }

    /// Verifies an upload and the device that signed it; answers the device's caller.
    fn verify(
        &self,
        state: &AppState,
        jws: &str,
        address: Option<IpAddr>,
    ) -> Result<(Caller, Upload), UploadError> {
        let known = |device: &str| {
            let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
            devices
                .get(device)
                .filter(|known| known.read.elapsed() < DEVICE_TTL)
                .map(|known| (known.secret.clone(), known.owner.clone()))
        };
        let repository = Arc::clone(state.repository());
        let secret = |device: &str| match known(device) {
            Some((secret, _)) => Ok(Some(secret)),
            None => intake::device::device_secret(&repository, device),
        };
        let upload = intake::device::verify(jws, &secret)?;
        let owner = match known(&upload.device) {
            Some((_, owner)) => owner,
            None => {
                let owner = owner_of(state, &upload.device)?;
                if let Ok(Some(secret)) = intake::device::device_secret(&repository, &upload.device)
                {
                    self.devices
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            upload.device.clone(),
                            KnownDevice {
                                secret,
                                owner: owner.clone(),
                                read: std::time::Instant::now(),
                            },
                        );
                }
                owner
            }
        };
        let caller = intake_client(
            format!("device:{}", upload.device),
            owner,
            &["system/Observation.cru", "system/Patient.s"],
            address,
            format!("device-{}", uuid::Uuid::new_v4()),
        );
        Ok((caller, upload))
    }

    /// Queues an upload for the writer (waiting while the queue is full); false when the
    /// writer has stopped.
    fn enqueue(&self, pending: Pending) -> bool {
        self.queue.send(pending).is_ok()
    }
}

/// The institution a device belongs to (`Device.owner`), read from the directory as the
/// device (a client with no institution yet, allowed to read Devices).
fn owner_of(state: &AppState, device: &str) -> Result<Option<String>, UploadError> {
    let reader = intake_client(
        format!("device:{device}"),
        None,
        &["system/Device.r"],
        None,
        format!("device-{device}"),
    );
    let record = state
        .repository()
        .read(&reader, "Device", device)
        .map_err(|e| match e {
            repository::RepositoryError::Store(_) | repository::RepositoryError::Internal(_) => {
                UploadError::Unavailable(format!("Device/{device}: {e}"))
            }
            _ => UploadError::Unauthenticated(format!("Device/{device}: {e}")),
        })?;
    let resource = repository::parse_stored(&record)
        .map_err(|e| UploadError::Unauthenticated(format!("Device/{device}: {e}")))?;
    if resource.get("status").and_then(Value::as_str) == Some("inactive") {
        return Err(UploadError::Unauthenticated(format!(
            "Device/{device} is inactive"
        )));
    }
    Ok(resource
        .pointer("/owner/reference")
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("Organization/"))
        .map(str::to_owned))
}

/// The writer thread: takes what is queued (up to a batch), writes each institution's
/// uploads in one transaction, audits them, then answers each upload.
/// What the writer thread holds: not the server's state, so that dropping the state stops
/// the writer (its queue's sender goes with it).
pub(crate) struct WriterContext {
    pub(crate) trail: crate::audit::Trail,
    pub(crate) identity: Option<crate::IdentityServices>,
    pub(crate) written: Arc<crate::lanes::Written>,
}

/// A batch written: the accesses to record (one per device and patient) and each upload
/// with its answer, in the order the uploads arrived.
struct Written {
    accesses: Vec<(Caller, RestAccess)>,
    answers: Vec<(Pending, Answered)>,
}

fn write_batches(
    state: &WriterContext,
    taken: &std::sync::mpsc::Receiver<Pending>,
    done: &std::sync::mpsc::SyncSender<Written>,
) {
    let readings = Readings::new();
    while let Ok(first) = taken.recv() {
        let mut batch = vec![first];
        let mut count = batch[0].upload.readings.len();
        while count < BATCH_READINGS {
            match taken.try_recv() {
                Ok(next) => {
                    count += next.upload.readings.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        // One transaction per institution (what it holds is written as its own)...
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (index, pending) in batch.iter().enumerate() {
            match groups
                .iter_mut()
                .find(|group| batch[group[0]].caller.organization == pending.caller.organization)
            {
                Some(group) => group.push(index),
                None => groups.push(vec![index]),
            }
        }
        let mut results: Vec<Option<Answered>> = (0..batch.len()).map(|_| None).collect();
        let mut accesses = Vec::new();
        for group in groups {
            let (answered, group_accesses) = write_group(state, &readings, &batch, &group);
            accesses.extend(group_accesses);
            for (index, result) in group.into_iter().zip(answered) {
                results[index] = Some(result);
            }
        }
        if !accesses.is_empty() {
            state.written.bump();
        }
        // ...and every upload answered in the order it arrived (MQTT acknowledges a
        // session's messages in the order they were received), once its trail is durable.
        let answers = batch
            .into_iter()
            .zip(results)
            .map(|(pending, result)| {
                (
                    pending,
                    result.unwrap_or_else(|| Err("the upload was not written".into())),
                )
            })
            .collect();
        if let Err(unsent) = done.send(Written { accesses, answers }) {
            for (pending, _) in unsent.0.answers {
                answer_upload(
                    pending,
                    Err("the platform is stopping; send it again later".into()),
                );
            }
        }
    }
}

/// Records each written batch on the audit trail, then answers its uploads; an upload whose
/// readings were written but not recorded is answered with an error (the kiosk sends it
/// again; its readings are then duplicates).
fn audit_and_answer(trail: &crate::audit::Trail, finished: &std::sync::mpsc::Receiver<Written>) {
    while let Ok(Written {
        mut accesses,
        answers,
    }) = finished.recv()
    {
        let audited = if accesses.is_empty() {
            Ok(())
        } else {
            crate::audit::record_intakes(
                trail,
                accesses
                    .iter_mut()
                    .map(|(who, access)| (&*who, access, None))
                    .collect(),
            )
        };
        if let Err(error) = &audited {
            tracing::error!(%error, "readings were written but their audit trail failed");
        }
        for (pending, result) in answers {
            let result = match (&audited, result) {
                (Err(_), Ok(_)) => Err(
                    "the readings were written but their access could not be recorded; send them again".into(),
                ),
                (_, result) => result,
            };
            answer_upload(pending, result);
        }
    }
}

/// What became of an upload's readings, or why none was written.
type Answered = Result<Vec<(String, ReadingStatus)>, String>;

/// Attempts at a batch whose store is unavailable, before its uploads are answered with an
/// error (the kiosks send them again).
const WRITE_ATTEMPTS: u32 = 4;

/// Writes one institution's uploads of a batch (`group` indexes `batch`) in one transaction;
/// answers each upload's readings and the accesses to record, one per device and patient
/// (each resident's trail lists what was written about them, by which kiosk).
fn write_group(
    state: &WriterContext,
    readings: &Readings,
    batch: &[Pending],
    group: &[usize],
) -> (Vec<Answered>, Vec<(Caller, RestAccess)>) {
    let caller = &batch[group[0]].caller;
    let uploads: Vec<Upload> = group.iter().map(|&i| batch[i].upload.clone()).collect();
    let repository = Arc::clone(&state.trail.repository);
    let resolve = |code: &str| -> Option<String> {
        let identity = state.identity.as_ref()?;
        identity
            .codes
            .identify(&identity.mpi, &repository, caller, code, None)
            .ok()?
            .into_iter()
            .next()
    };
    let started = std::time::Instant::now();
    let mut attempt = 0;
    let written = loop {
        attempt += 1;
        match readings.write(&repository, caller, &uploads, &resolve) {
            Err(repository::RepositoryError::Store(error)) if attempt < WRITE_ATTEMPTS => {
                tracing::warn!(%error, attempt, "writing readings failed; trying again");
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            other => break other,
        }
    };
    let results: Vec<Answered> = match written {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(error) => {
            tracing::warn!(%error, "writing readings failed");
            group
                .iter()
                .map(|_| Err(format!("the platform could not write the readings now, send them again later: {error}")))
                .collect()
        }
    };
    let mut accesses: Vec<(Caller, String, RestAccess)> = Vec::new();
    for (&index, result) in group.iter().zip(&results) {
        let device = &batch[index].caller;
        for (_, status) in result.iter().flatten() {
            let ReadingStatus::Accepted {
                observation,
                patient,
            } = status
            else {
                continue;
            };
            let position = accesses
                .iter()
                .position(|(who, p, _)| who.request_id == device.request_id && p == patient);
            let position = position.unwrap_or_else(|| {
                let mut access = RestAccess::new(Interaction::Create, Some("Observation"));
                access.add_patient(patient.clone());
                accesses.push((device.clone(), patient.clone(), access));
                accesses.len() - 1
            });
            accesses[position].2.add_resource(observation.clone());
        }
    }
    tracing::debug!(
        uploads = group.len(),
        readings = uploads.iter().map(|u| u.readings.len()).sum::<usize>(),
        write_ms = started.elapsed().as_millis() as u64,
        "a batch of readings written"
    );
    (
        results,
        accesses
            .into_iter()
            .map(|(who, _, access)| (who, access))
            .collect(),
    )
}

/// An upload's answer: each reading's id and status, for the kiosk to show.
fn answer_json(result: &Result<Vec<(String, ReadingStatus)>, String>) -> Value {
    match result {
        Err(error) => json!({"status": "error", "error": error}),
        Ok(statuses) => {
            let readings: Vec<Value> = statuses
                .iter()
                .map(|(id, status)| match status {
                    ReadingStatus::Accepted { observation, .. } => {
                        json!({"id": id, "status": "accepted", "observation": observation})
                    }
                    ReadingStatus::Duplicate(reference) => {
                        json!({"id": id, "status": "duplicate", "observation": reference})
                    }
                    ReadingStatus::Refused(reason) => {
                        json!({"id": id, "status": "refused", "reason": reason})
                    }
                })
                .collect();
            let count = |wanted: &str| readings.iter().filter(|r| r["status"] == wanted).count();
            json!({"status": "ok", "accepted": count("accepted"), "duplicates": count("duplicate"),
                "refused": count("refused"), "readings": readings})
        }
    }
}

fn answer_upload(pending: Pending, result: Answered) {
    match pending.reply {
        Reply::Http(sender) => {
            let _ = sender.send(result);
        }
        Reply::Mqtt {
            client,
            publish,
            device,
            runtime,
        } => {
            let body = answer_json(&result).to_string();
            // The kiosk has its answer (an error says: send again) before the broker is told
            // the upload is done; an upload the server never answered (it stopped first)
            // stays with the broker, which delivers it again.
            runtime.block_on(async {
                let _ = client
                    .publish(
                        format!("meridian/kiosk/{device}/ack"),
                        rumqttc::QoS::AtLeastOnce,
                        false,
                        body,
                    )
                    .await;
                let _ = client.ack(&publish).await;
            });
        }
    }
}

pub(crate) const OPERATIONS: &[Registered] =
    &[fhir_json(::intake::operations::ISSUE_SECRET, issue_secret)];

/// `POST Device/[id]/$issue-secret`: the device must be registered; its new secret is
/// answered once, as a Parameters `secret`.
fn issue_secret(call: Invocation) -> Handled {
    Box::pin(async move {
        let id = call.id().to_owned();
        let fhir = call.fhir;
        let repository = call.state.repository().clone();
        let caller = fhir.caller.clone();
        let secret = blocking(move || {
            repository.read(&caller, "Device", &id)?;
            Ok::<_, crate::ApiError>(intake::device::issue_secret(&repository, &id)?)
        })
        .await?;
        let body = json!({"resourceType": "Parameters",
            "parameter": [{"name": "secret", "valueString": secret}]});
        Ok(crate::response::json_response(
            StatusCode::OK,
            serde_json::to_vec(&body).unwrap_or_default(),
            fhir.pretty,
        ))
    })
}

pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route("/intake/readings", post(post_readings))
}

/// `POST /intake/readings`: an upload signed by its device (`application/jose`, the compact
/// JWS); answers each reading's status.
async fn post_readings(State(state): State<AppState>, request: Request) -> Response {
    let address = request.extensions().get::<PeerAddress>().map(|p| p.0);
    let limit = state.config().max_body_bytes;
    let body: Bytes = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(body) => body,
        Err(_) => return problem(StatusCode::PAYLOAD_TOO_LARGE, "the upload is too large"),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the upload must be a compact JWS (text)",
        );
    };
    let writer = state.readings();
    let verified = {
        let (state, writer, text) = (state.clone(), Arc::clone(&writer), text.to_owned());
        tokio::task::spawn_blocking(move || writer.verify(&state, &text, address)).await
    };
    let (caller, upload) = match verified {
        Ok(Ok(verified)) => verified,
        Ok(Err(UploadError::Unauthenticated(reason))) => {
            return problem(StatusCode::UNAUTHORIZED, &reason);
        }
        Ok(Err(UploadError::Malformed(reason))) => {
            return problem(StatusCode::BAD_REQUEST, &reason);
        }
        Ok(Err(error @ UploadError::Unavailable(_))) => {
            return problem(StatusCode::SERVICE_UNAVAILABLE, &error.to_string());
        }
        Err(_) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the upload could not be checked",
            );
        }
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let pending = Pending {
        caller,
        upload,
        reply: Reply::Http(sender),
    };
    // The queue is bounded: a full one holds this request (on a blocking thread) until the
    // writer catches up.
    let queued = tokio::task::spawn_blocking(move || writer.enqueue(pending)).await;
    if !matches!(queued, Ok(true)) {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the platform is stopping; send it again later",
        );
    }
    match receiver.await {
        Ok(Ok(statuses)) => {
            let body = answer_json(&Ok(statuses));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Ok(Err(error)) => problem(StatusCode::SERVICE_UNAVAILABLE, &error),
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the platform is stopping; send it again later",
        ),
    }
}

fn problem(status: StatusCode, reason: &str) -> Response {
    let body = json!({"status": "error", "error": reason});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Reads kiosks' uploads from the broker until stopped; reconnects after a failure. The
/// session is persistent and messages are acknowledged after they are written, so the broker
/// keeps what arrives while the server is down or busy.
async fn subscribe_mqtt(
    broker: String,
    client_id: String,
    filter: String,
    state: AppState,
    stop: CancellationToken,
) {
    let (host, port) = match broker.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.parse().unwrap_or(1883)),
        None => (broker.clone(), 1883),
    };
    let mut options = rumqttc::MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_manual_acks(true);
    options.set_max_packet_size(16 << 20, 1 << 20);
    options.set_inflight(1_000);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 4_096);
    let writer = state.readings();
    tracing::info!(%broker, topic = READINGS_TOPIC, "Meridian takes kiosk readings over MQTT");
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => {
                let _ = client.disconnect().await;
                return;
            }
            event = events.poll() => event,
        };
        match event {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                if let Err(error) = client
                    .subscribe(filter.as_str(), rumqttc::QoS::AtLeastOnce)
                    .await
                {
                    tracing::warn!(%error, "subscribing to the kiosk topic");
                }
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                let device = publish.topic.split('/').nth(2).unwrap_or("").to_owned();
                let text = String::from_utf8_lossy(&publish.payload).into_owned();
                let verified = {
                    let (state, writer) = (state.clone(), Arc::clone(&writer));
                    tokio::task::spawn_blocking(move || writer.verify(&state, &text, None)).await
                };
                let refused =
                    |reason: String| json!({"status": "error", "error": reason}).to_string();
                match verified {
                    Ok(Ok((caller, upload))) if upload.device == device => {
                        let pending = Pending {
                            caller,
                            upload,
                            reply: Reply::Mqtt {
                                client: client.clone(),
                                publish: Box::new(publish),
                                device,
                                runtime: tokio::runtime::Handle::current(),
                            },
                        };
                        // The queue is bounded: waiting here slows reading from the broker.
                        let writer = Arc::clone(&writer);
                        let _ = tokio::task::spawn_blocking(move || writer.enqueue(pending)).await;
                    }
                    other => {
                        let reason = match other {
                            Ok(Ok(_)) => format!(
                                "the upload on {}'s topic is signed by another device",
                                device
                            ),
                            Ok(Err(error)) => error.to_string(),
                            Err(_) => "the upload could not be checked".into(),
                        };
                        tracing::info!(%device, %reason, "a kiosk upload was refused");
                        let _ = client
                            .publish(
                                format!("meridian/kiosk/{device}/ack"),
                                rumqttc::QoS::AtLeastOnce,
                                false,
                                refused(reason),
                            )
                            .await;
                        let _ = client.ack(&publish).await;
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "the MQTT broker connection failed; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
