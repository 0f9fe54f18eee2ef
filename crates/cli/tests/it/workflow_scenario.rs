//! Issue 17's outside check, done from outside: the real `meridian serve` on both stores, a
//! township doctor, two county experts, a village family doctor, a resident and a stranger,
//! each with their own token from `meridian user add` and `meridian token`:
//!
//! - a consultation goes from request to answer through the states the server enforces (a
//!   second expert's acceptance is 409), with the questions and the answer shared between the
//!   two institutions only; the county's rest-hook receiver and the township's websocket
//!   client get the handshake and the events with consecutive numbers, also across a server
//!   restart (a receiver that was down gets what it missed; a websocket client that was away
//!   catches up with `$events`);
//! - an upward referral books a slot reserved for referrals, which the resident cannot;
//! - a discharge plan puts the follow-up on the village team's worklist;
//! - 50 concurrent bookings of 10 slots give exactly 10 (the others a 409);
//! - check-in by the resident's electronic health code;
//! - an overdue request escalates on a clock the test gives (`Task/$escalate?now=`);
//! - plain-HTTP endpoints off loopback are refused; the topics are in the CapabilityStatement
//!   and readable as `Basic` resources.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const FHIR_JSON: (&str, &str) = ("content-type", "application/fhir+json");
const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;
const TOPIC: &str = "https://meridian.example/fhir/SubscriptionTopic/";
const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/";

#[test]
fn care_across_levels_sqlite() {
    scenario(Backend::Sqlite);
}

#[test]
fn care_across_levels_postgres() {
    scenario(Backend::Postgres);
}

fn instant(micros: i64) -> String {
    fhir_model::clock::format_instant(micros)
}

fn now() -> i64 {
    fhir_model::clock::now_micros()
}

/// A rest-hook receiver: records every notification posted to it and answers with the
/// status it is set to (503 plays a receiver that is down).
struct Receiver {
    address: SocketAddr,
    answer: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let answer = Arc::new(AtomicU16::new(200));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (a, r) = (Arc::clone(&answer), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let status = a.load(Ordering::SeqCst);
                if status == 200
                    && let Ok(value) = serde_json::from_slice::<Value>(&body)
                {
                    r.lock().unwrap().push(value);
                }
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
            }
        });
        Receiver {
            address,
            answer,
            received,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Waits until a notification satisfies `wanted`; answers every one received so far.
    fn wait_for(&self, what: &str, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            let received = self.received.lock().unwrap().clone();
            if wanted(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never got {what}: {received:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The status Parameters of a notification Bundle: its type and the event numbers it carries.
fn notification_of(bundle: &Value) -> (String, u64, Vec<u64>) {
    let status = &bundle["entry"][0]["resource"];
    let parameter = |name: &str| {
        status["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let kind = parameter("type")[0]["valueCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let count = parameter("events-since-subscription-start")[0]["valueString"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let numbers = parameter("notification-event")
        .iter()
        .map(|e| {
            e["part"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "event-number")
                .unwrap()["valueString"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    (kind, count, numbers)
}

/// The event numbers notified, each once, in the order they first came. Delivery is at least
/// once: a notification whose answer the server did not see in time (a loaded CI machine) is
/// sent again, and a subscriber tells the repeat by its number.
fn event_numbers(received: &[Value]) -> Vec<u64> {
    let mut numbers: Vec<u64> = Vec::new();
    for number in received
        .iter()
        .map(notification_of)
        .filter(|(kind, _, _)| kind == "event-notification")
        .flat_map(|(_, _, numbers)| numbers)
    {
        if !numbers.contains(&number) {
            numbers.push(number);
        }
    }
    numbers
}

struct Region {
    serving: Serving,
}

impl Region {
    fn call(&self, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let text = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, _, answer) = send_as(
            self.serving.address,
            Some(token),
            method,
            path,
            &[FHIR_JSON],
            &text,
        );
        assert!(status < 500, "{method} {path}: {status} {answer}");
        let value = if answer.trim().is_empty() {
            Value::Null
        } else {
            json_of(&answer)
        };
        (status, value)
    }

    fn ok(&self, token: &str, method: &str, path: &str, body: &Value) -> Value {
        let (status, value) = self.call(token, method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    fn put(&self, token: &str, resource: Value) -> Value {
        let path = format!(
            "/fhir/{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        self.ok(token, "PUT", &path, &resource)
    }

    fn admin(&self) -> String {
        self.serving.token.clone()
    }

    /// An account for a practitioner role (or a resident), and its token.
    fn user(&self, name: &str, role: &str) -> String {
        let flag = if role.starts_with("Patient/") {
            "--patient"
        } else {
            "--practitioner-role"
        };
        self.serving.meridian(
            &["user", "add", name, "--password-stdin", flag, role],
            "a long enough password 1\n",
        );
        self.serving.meridian(&["token", "--user", name], "")
    }
}

fn subscription(
    id: &str,
    topic: &str,
    channel: &str,
    endpoint: Option<&str>,
    filter: Option<&str>,
) -> Value {
    let mut s = json!({
        "resourceType": "Subscription", "id": id, "status": "requested", "reason": "scenario",
        "criteria": format!("{TOPIC}{topic}"),
        "channel": {"type": channel, "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": format!("{BACKPORT}backport-payload-content"), "valueCode": "id-only"}]}},
    });
    if let Some(endpoint) = endpoint {
        s["channel"]["endpoint"] = json!(endpoint);
    }
    if let Some(filter) = filter {
        s["_criteria"] = json!({"extension": [{"url": format!("{BACKPORT}backport-filter-criteria"), "valueString": filter}]});
    }
    s
}

fn consultation(id: &str, priority: &str) -> Value {
    json!({
        "resourceType": "Task", "id": id, "status": "requested", "intent": "order",
        "priority": priority,
        "code": {"coding": [{"system": "https://meridian.example/CodeSystem/workflow", "code": "consultation"}]},
        "focus": {"reference": format!("ServiceRequest/{id}-request")},
        "for": {"reference": "Patient/p1"},
        "requester": {"reference": "PractitionerRole/township-doctor"},
        "restriction": {"recipient": [{"reference": "Organization/county"}]},
        "input": [{"type": {"text": "ECG"}, "valueReference": {"reference": "Observation/ecg-1"}}],
    })
}

/// A websocket client bound to a subscription; answers the handshake.
fn websocket(
    region: &Region,
    token: &str,
    subscription: &str,
) -> (tungstenite::WebSocket<std::net::TcpStream>, Value) {
    let parameters = region.ok(
        token,
        "POST",
        &format!("/fhir/Subscription/{subscription}/$get-ws-binding-token"),
        &Value::Null,
    );
    let get = |name: &str| {
        parameters["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let url = get("websocket-url")["valueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let binding = get("token")["valueString"].as_str().unwrap().to_owned();
    let path = url
        .split_once("/subscriptions")
        .map(|(_, p)| format!("/subscriptions{p}"))
        .unwrap();
    let stream = std::net::TcpStream::connect(region.serving.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (mut socket, _) =
        tungstenite::client::client(format!("ws://{}{path}", region.serving.address), stream)
            .unwrap();
    socket
        .send(tungstenite::Message::text(format!(
            "bind-with-token {binding}"
        )))
        .unwrap();
    let handshake = next_bundle(&mut socket);
    (socket, handshake)
}

fn next_bundle(socket: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Value {
    loop {
        match socket.read().expect("a notification within 30 s") {
            tungstenite::Message::Text(text) => return json_of(text.as_str()),
            _ => continue,
        }
    }
}

/// The next event notification (heartbeats skipped).
fn next_event(socket: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Value {
    loop {
        let bundle = next_bundle(socket);
        if notification_of(&bundle).0 == "event-notification" {
            return bundle;
        }
    }
}

fn scenario(backend: Backend) {
    let region = Region {
        serving: serve_on(backend, &[]),
    };
    let admin = region.admin();
    let org = |id: &str, parent: Option<&str>| {
        let mut o =
            json!({"resourceType": "Organization", "id": id, "name": format!("{id} health")});
        if let Some(parent) = parent {
            o["partOf"] = json!({"reference": format!("Organization/{parent}")});
        }
        o
    };
    for (id, parent) in [
        ("city", None),
        ("county", Some("city")),
        ("township", Some("county")),
        ("village", Some("township")),
        ("elsewhere", None),
    ] {
        region.put(&admin, org(id, parent));
    }
    for (role, practitioner, organization) in [
        ("township-doctor", "doctor-t", "township"),
        ("expert-1", "expert-1", "county"),
        ("expert-2", "expert-2", "county"),
        ("family-doctor", "family-doctor", "village"),
        ("stranger", "stranger", "elsewhere"),
    ] {
        region.put(&admin, json!({"resourceType": "Practitioner", "id": practitioner, "name": [{"family": practitioner}]}));
        region.put(
            &admin,
            json!({"resourceType": "PractitionerRole", "id": role, "active": true,
            "practitioner": {"reference": format!("Practitioner/{practitioner}")},
            "organization": {"reference": format!("Organization/{organization}")}}),
        );
    }
    let township = region.user("doctor-t", "PractitionerRole/township-doctor");
    let expert = region.user("expert-1", "PractitionerRole/expert-1");
    let second = region.user("expert-2", "PractitionerRole/expert-2");
    let family = region.user("family-doctor", "PractitionerRole/family-doctor");
    let stranger = region.user("stranger", "PractitionerRole/stranger");
    region.put(
        &township,
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "王", "given": ["芳"]}],
        "birthDate": "1961-04-02", "gender": "female"}),
    );
    let resident = region.user("wang-fang", "Patient/p1");
    region.put(&township, json!({"resourceType": "Observation", "id": "ecg-1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "procedure"}]}],
        "code": {"text": "12-lead ECG"}, "subject": {"reference": "Patient/p1"}}));

    // The topics are announced and readable.
    let (_, _, capability) = send_as(
        region.serving.address,
        None,
        "GET",
        "/fhir/metadata",
        &[],
        "",
    );
    let capability = json_of(&capability);
    let subscription_entry = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Subscription")
        .unwrap()
        .clone();
    let topics: Vec<&str> = subscription_entry["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["valueCanonical"].as_str())
        .collect();
    assert!(
        topics.contains(&format!("{TOPIC}task-accepted").as_str()),
        "{topics:?}"
    );
    let basic = region.ok(&township, "GET", "/fhir/Basic/task-answered", &Value::Null);
    assert_eq!(basic["code"]["coding"][0]["code"], "SubscriptionTopic");

    // Subscriptions: plain HTTP off loopback is refused.
    let (status, _) = region.call(
        &expert,
        "PUT",
        "/fhir/Subscription/bad",
        &subscription(
            "bad",
            "task-requested",
            "rest-hook",
            Some("http://example.org/hook"),
            None,
        ),
    );
    assert_eq!(status, 422);
    let county_hook = Receiver::start();
    // The county asks for the requests themselves in its notifications (full-resource).
    let mut county_requests = subscription(
        "county-requests",
        "task-requested",
        "rest-hook",
        Some(&county_hook.endpoint()),
        Some("Task?party=Organization/county"),
    );
    county_requests["channel"]["_payload"]["extension"][0]["valueCode"] = json!("full-resource");
    region.put(&expert, county_requests);
    let township_hook = Receiver::start();
    township_hook.answer.store(503, Ordering::SeqCst);
    region.put(
        &township,
        subscription(
            "township-accepted",
            "task-accepted",
            "rest-hook",
            Some(&township_hook.endpoint()),
            None,
        ),
    );
    region.put(
        &township,
        subscription("township-answers", "task-answered", "websocket", None, None),
    );
    county_hook.wait_for("a handshake", |r| {
        r.iter().any(|b| notification_of(b).0 == "handshake")
    });
    let (mut socket, handshake) = websocket(&region, &township, "township-answers");
    assert_eq!(notification_of(&handshake), ("handshake".into(), 0, vec![]));
    // Heartbeats, when a subscription asks for them.
    let mut beating = subscription(
        "township-declined",
        "task-declined",
        "websocket",
        None,
        None,
    );
    beating["channel"]["extension"] =
        json!([{"url": format!("{BACKPORT}backport-heartbeat-period"), "valueUnsignedInt": 1}]);
    region.put(&township, beating);
    let (mut beats, _) = websocket(&region, &township, "township-declined");
    assert_eq!(notification_of(&next_bundle(&mut beats)).0, "heartbeat");
    drop(beats);

    // The consultation: request, receipt, acceptance (once), questions, answer.
    region.put(&township, json!({"resourceType": "ServiceRequest", "id": "c1-request", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/p1"}, "code": {"text": "cardiology consultation"},
        "performer": [{"reference": "Organization/county"}]}));
    let task = region.put(&township, consultation("c1", "urgent"));
    let received = county_hook.wait_for("the request", |r| event_numbers(r) == vec![1]);
    let focus = received
        .iter()
        .map(notification_of)
        .find(|n| n.0 == "event-notification")
        .unwrap();
    assert_eq!(focus.2, vec![1]);
    let carried = received
        .iter()
        .find(|b| notification_of(b).0 == "event-notification")
        .unwrap();
    assert_eq!(carried["entry"][1]["resource"]["id"], "c1", "{carried}");
    // A notification that shows a record is on the trail as the subscriber's access.
    let trail = region.ok(
        &admin,
        "GET",
        "/fhir/AuditEvent?patient=Patient/p1&subtype=%24subscription-notification",
        &Value::Null,
    );
    assert!(
        trail["entry"].as_array().is_some_and(|e| !e.is_empty()),
        "{trail}"
    );
    let worklist = region.ok(&expert, "GET", "/fhir/Task/$worklist", &Value::Null);
    assert_eq!(worklist["entry"][0]["resource"]["id"], "c1");
    region.ok(&expert, "GET", "/fhir/Observation/ecg-1", &Value::Null);
    // The trail records that read as made under the open consultation.
    let trail = region.ok(
        &admin,
        "GET",
        "/fhir/AuditEvent?patient=Patient/p1&entity=Observation/ecg-1&_count=50",
        &Value::Null,
    );
    let under_request = trail["entry"].as_array().unwrap().iter().any(|e| {
        let event = &e["resource"];
        event["subtype"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["code"] == "workflow-access")
            && event["agent"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["policy"] == json!(["Task/c1"]))
    });
    assert!(under_request, "{trail}");
    let (status, _) = region.call(&stranger, "GET", "/fhir/Task/c1", &Value::Null);
    assert_eq!(status, 404);

    let mut moved = task.clone();
    moved["status"] = json!("received");
    let moved = region.put(&expert, moved);
    let mut accepted = moved.clone();
    accepted["status"] = json!("accepted");
    accepted["owner"] = json!({"reference": "PractitionerRole/expert-1"});
    region.put(&expert, accepted.clone());
    let mut rival = moved;
    rival["status"] = json!("accepted");
    rival["owner"] = json!({"reference": "PractitionerRole/expert-2"});
    let (status, outcome) = region.call(&second, "PUT", "/fhir/Task/c1", &rival);
    assert_eq!(status, 409, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    region.put(&expert, json!({"resourceType": "Communication", "id": "q1", "status": "completed",
        "subject": {"reference": "Patient/p1"}, "partOf": [{"reference": "Task/c1"}],
        "sender": {"reference": "Organization/county"}, "recipient": [{"reference": "Organization/township"}],
        "payload": [{"contentString": "Any chest pain on exertion?"}]}));
    region.ok(&township, "GET", "/fhir/Communication/q1", &Value::Null);
    region.put(
        &expert,
        json!({"resourceType": "DiagnosticReport", "id": "c1-answer", "status": "final",
        "code": {"text": "ECG reading"}, "subject": {"reference": "Patient/p1"},
        "conclusion": "Sinus rhythm, left ventricular hypertrophy."}),
    );
    region.put(
        &expert,
        json!({"resourceType": "CarePlan", "id": "c1-plan", "status": "draft", "intent": "plan",
        "subject": {"reference": "Patient/p1"}, "author": {"reference": "Organization/county"},
        "contributor": [{"reference": "Organization/township"}],
        "description": "Start an ACE inhibitor; review blood pressure in two weeks."}),
    );
    let mut working = region.ok(&expert, "GET", "/fhir/Task/c1", &Value::Null);
    working["status"] = json!("in-progress");
    let working = region.put(&expert, working);
    let mut done = working;
    done["status"] = json!("completed");
    done["output"] = json!([
        {"type": {"text": "report"}, "valueReference": {"reference": "DiagnosticReport/c1-answer"}},
        {"type": {"text": "plan"}, "valueReference": {"reference": "CarePlan/c1-plan"}}
    ]);
    region.put(&expert, done);
    let answered = next_event(&mut socket);
    assert_eq!(
        notification_of(&answered),
        ("event-notification".into(), 1, vec![1])
    );
    region.ok(
        &township,
        "GET",
        "/fhir/DiagnosticReport/c1-answer",
        &Value::Null,
    );
    region.ok(&township, "GET", "/fhir/CarePlan/c1-plan", &Value::Null);
    let (status, _) = region.call(
        &stranger,
        "GET",
        "/fhir/DiagnosticReport/c1-answer",
        &Value::Null,
    );
    assert_eq!(status, 404);
    let followed = region.ok(&resident, "GET", "/fhir/Task/c1", &Value::Null);
    assert_eq!(followed["status"], "completed");

    // A second consultation accepted while the township's receiver is down; then the server
    // restarts and the receiver comes back: it gets both acceptances, numbered 1 and 2.
    region.put(&township, json!({"resourceType": "ServiceRequest", "id": "c2-request", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/p1"}, "code": {"text": "echocardiogram reading"},
        "performer": [{"reference": "Organization/county"}]}));
    let c2 = region.put(&township, consultation("c2", "routine"));
    let mut c2_accepted = c2;
    c2_accepted["status"] = json!("accepted");
    c2_accepted["owner"] = json!({"reference": "PractitionerRole/expert-1"});
    let c2_accepted = region.put(&expert, c2_accepted);
    // The township's receiver being down holds up no one else's notifications.
    county_hook.wait_for(
        "the second request while the township's receiver is down",
        |r| event_numbers(r) == vec![1, 2],
    );
    let status = region.ok(
        &township,
        "GET",
        "/fhir/Subscription/township-accepted/$status",
        &Value::Null,
    );
    let status = &status["entry"][0]["resource"];
    assert_eq!(status["resourceType"], "Parameters");
    drop(socket);
    let region = Region {
        serving: region.serving.restart(&[]),
    };
    township_hook.answer.store(200, Ordering::SeqCst);
    let township_received = township_hook.wait_for("both acceptances after the restart", |r| {
        event_numbers(r).len() >= 2
    });
    let numbers = event_numbers(&township_received);
    assert_eq!(numbers, vec![1, 2], "{township_received:#?}");

    // The township's websocket client was away for c2's answer: the handshake says how many
    // events there were, and `$events` gives it the one it missed.
    let mut c2_working = c2_accepted;
    c2_working["status"] = json!("in-progress");
    let c2_working = region.put(&expert, c2_working);
    let mut c2_done = c2_working;
    c2_done["status"] = json!("completed");
    region.put(&expert, c2_done);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = region.ok(
            &township,
            "GET",
            "/fhir/Subscription/township-answers/$status",
            &Value::Null,
        );
        if notification_of(&json!({"entry": [{"resource": status["entry"][0]["resource"]}]})).1 == 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second answer was never numbered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut socket, handshake) = websocket(&region, &township, "township-answers");
    assert_eq!(notification_of(&handshake).1, 2);
    let missed = region.ok(
        &township,
        "GET",
        "/fhir/Subscription/township-answers/$events?eventsSinceNumber=2&eventsUntilNumber=2",
        &Value::Null,
    );
    assert_eq!(notification_of(&missed), ("query-event".into(), 2, vec![2]));

    // Upward referral into reserved capacity.
    region.put(
        &expert,
        json!({"resourceType": "HealthcareService", "id": "cardiology",
        "providedBy": {"reference": "Organization/county"}, "name": "Cardiology outpatients"}),
    );
    region.put(
        &expert,
        json!({"resourceType": "Schedule", "id": "cardiology",
        "actor": [{"reference": "HealthcareService/cardiology"}]}),
    );
    let slot = |id: &str, start: i64, reserved: bool| {
        let mut s = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/cardiology"},
            "status": "free", "start": instant(start), "end": instant(start + 15 * MINUTE)});
        if reserved {
            s["extension"] = json!([{"url": "https://meridian.example/fhir/StructureDefinition/reserved-for", "valueCode": "referral"}]);
        }
        s
    };
    let referral_start = now() + 5 * DAY;
    region.put(&expert, slot("reserved-1", referral_start, true));
    region.put(&family, json!({"resourceType": "ServiceRequest", "id": "ref-1", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/p1"}, "category": [{"text": "referral"}],
        "code": {"text": "cardiology outpatient referral"}, "performer": [{"reference": "Organization/county"}]}));
    let booking = |basis: Option<&str>| {
        let mut a = json!({"resourceType": "Appointment", "status": "booked",
            "slot": [{"reference": "Slot/reserved-1"}],
            "start": instant(referral_start), "end": instant(referral_start + 15 * MINUTE),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]});
        if let Some(basis) = basis {
            a["basedOn"] = json!([{"reference": basis}]);
        }
        a
    };
    let (status, outcome) = region.call(&resident, "POST", "/fhir/Appointment", &booking(None));
    assert_eq!(status, 403, "{outcome}");
    let found = region.ok(&resident, "GET", "/fhir/Slot/$find", &Value::Null);
    assert_eq!(found["total"], 0, "{found}");
    let found = region.ok(
        &family,
        "GET",
        "/fhir/Slot/$find?referral=ServiceRequest/ref-1",
        &Value::Null,
    );
    assert_eq!(found["entry"][0]["resource"]["id"], "reserved-1");
    let (status, booked) = region.call(
        &family,
        "POST",
        "/fhir/Appointment/$book",
        &json!({
        "resourceType": "Appointment", "slot": [{"reference": "Slot/reserved-1"}],
        "basedOn": [{"reference": "ServiceRequest/ref-1"}],
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]}),
    );
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["status"], "booked");
    let taken = region.ok(&family, "GET", "/fhir/Slot/reserved-1", &Value::Null);
    assert_eq!(taken["status"], "busy");
    // The county sees the appointment in its slot; the resident sees theirs.
    let id = booked["id"].as_str().unwrap();
    region.ok(
        &expert,
        "GET",
        &format!("/fhir/Appointment/{id}"),
        &Value::Null,
    );
    region.ok(
        &resident,
        "GET",
        &format!("/fhir/Appointment/{id}"),
        &Value::Null,
    );

    // Downward referral: the discharge plan's follow-up on the village worklist.
    region.put(&expert, json!({"resourceType": "CarePlan", "id": "discharge-1", "status": "active", "intent": "plan",
        "subject": {"reference": "Patient/p1"}, "author": {"reference": "Organization/county"},
        "activity": [{"detail": {"status": "scheduled", "description": "blood pressure follow-up",
            "scheduledPeriod": {"start": instant(now() + 14 * DAY)},
            "performer": [{"reference": "Organization/village"}]}}]}));
    let worklist = region.ok(&family, "GET", "/fhir/Task/$worklist", &Value::Null);
    let entries = worklist["entry"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["resource"]["description"] == "blood pressure follow-up"),
        "{worklist}"
    );

    // Check-in by electronic health code, for an appointment today.
    let today = now() + 3 * MINUTE;
    region.put(&expert, slot("today-1", today, false));
    region.ok(&township, "POST", "/fhir/Appointment", &json!({"resourceType": "Appointment", "status": "booked",
        "slot": [{"reference": "Slot/today-1"}], "start": instant(today), "end": instant(today + 15 * MINUTE),
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]}));
    let code = region.ok(
        &resident,
        "POST",
        "/fhir/Patient/p1/$health-code",
        &json!({"resourceType": "Parameters"}),
    );
    let code = code["parameter"][0]["valueString"]
        .as_str()
        .unwrap()
        .to_owned();
    let checked = region.ok(&expert, "POST", "/fhir/Appointment/$check-in",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]}));
    assert_eq!(checked["status"], "checked-in");

    // Fifty concurrent bookings of ten slots.
    let start = now() + 2 * DAY;
    for i in 0..10 {
        region.put(
            &expert,
            slot(&format!("rush-{i}"), start + i * 15 * MINUTE, false),
        );
    }
    let address = region.serving.address;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let token = township.clone();
                scope.spawn(move || {
                    let slot = i % 10;
                    let body = json!({"resourceType": "Appointment", "status": "booked",
                        "slot": [{"reference": format!("Slot/rush-{slot}")}],
                        "start": instant(start + slot * 15 * MINUTE), "end": instant(start + slot * 15 * MINUTE + 15 * MINUTE),
                        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}]});
                    send_as(address, Some(&token), "POST", "/fhir/Appointment", &[FHIR_JSON], &body.to_string()).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        40,
        "{statuses:?}"
    );

    // An overdue stat request escalates on the clock the test gives.
    region.put(&township, json!({"resourceType": "ServiceRequest", "id": "c3-request", "status": "active",
        "intent": "order", "subject": {"reference": "Patient/p1"}, "code": {"text": "urgent ECG reading"},
        "performer": [{"reference": "Organization/county"}]}));
    region.put(&township, consultation("c3", "stat"));
    let escalated = region.ok(&admin, "POST", "/fhir/Task/$escalate",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "now", "valueInstant": instant(now() + 31 * MINUTE)}]}));
    let names: Vec<&str> = escalated["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["valueReference"]["reference"].as_str())
        .collect();
    assert_eq!(names, vec!["Task/c3"]);
    let c3 = region.ok(&township, "GET", "/fhir/Task/c3", &Value::Null);
    assert_eq!(c3["businessStatus"]["coding"][0]["code"], "overdue");
    let (status, _) = region.call(
        &township,
        "POST",
        "/fhir/Task/$escalate",
        &json!({"resourceType": "Parameters"}),
    );
    assert_eq!(
        status, 403,
        "only administrators run the escalation by hand"
    );

    // The month's turnaround for the county.
    let figures = region.ok(&expert, "GET", "/fhir/Task/$turnaround", &Value::Null);
    assert_eq!(
        figures["parameter"][1]["part"][0]["valueReference"]["reference"],
        "Organization/county"
    );
    let _ = socket.close(None);

    // Bad input is a clear 4xx in FHIR's own form, never a 500.
    let patch_headers = [("content-type", "application/json-patch+json")];
    for (method, path, headers, body, expected) in [
        (
            "PATCH",
            "/fhir/Task/c3",
            &patch_headers[..],
            "[{\"op\": \"frobnicate\"}]",
            &[400u16, 422][..],
        ),
        (
            "PATCH",
            "/fhir/Task/c3",
            &patch_headers[..],
            "[{\"op\": \"replace\", \"path\": \"/status\", \"value\": \"completed\"}]",
            &[403, 409],
        ),
        (
            "PUT",
            "/fhir/Task/c3",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Task\", \"id\": \"c3\", \"status\": \"bogus\", \"intent\": \"order\"}",
            &[400, 422],
        ),
        (
            "GET",
            "/fhir/Subscription/township-answers/$events?eventsSinceNumber=abc",
            &[][..],
            "",
            &[400],
        ),
        (
            "POST",
            "/fhir/Task/$escalate",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Parameters\", \"parameter\": [{\"name\": \"now\", \"valueString\": \"soon\"}]}",
            &[400],
        ),
        (
            "POST",
            "/fhir/Appointment/$book",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Patient\"}",
            &[400],
        ),
        (
            "POST",
            "/fhir/Appointment/$book",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Appointment\", \"slot\": [{\"reference\": \"Slot/none\"}], \"participant\": [{\"actor\": {\"reference\": \"Patient/p1\"}, \"status\": \"accepted\"}]}",
            &[404],
        ),
        (
            "POST",
            "/fhir/Appointment/$check-in",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Parameters\"}",
            &[400],
        ),
        (
            "POST",
            "/fhir/Appointment/$check-in",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Parameters\", \"parameter\": [{\"name\": \"code\", \"valueString\": \"forged.code\"}]}",
            &[400, 401, 403, 410],
        ),
        ("GET", "/fhir/Slot/$find?_count=many", &[][..], "", &[400]),
        (
            "GET",
            "/fhir/Task/$turnaround?month=December",
            &[][..],
            "",
            &[400],
        ),
        (
            "PUT",
            "/fhir/Subscription/odd",
            &[FHIR_JSON][..],
            "{\"resourceType\": \"Subscription\", \"id\": \"odd\", \"status\": \"requested\", \"reason\": \"x\", \"criteria\": \"Task?status=accepted\", \"channel\": {\"type\": \"email\", \"endpoint\": \"mailto:a@b.c\"}}",
            &[422],
        ),
    ] {
        let token = if path.contains("$escalate") {
            &admin
        } else {
            &expert
        };
        let (status, _, body) = send_as(
            region.serving.address,
            Some(token),
            method,
            path,
            headers,
            body,
        );
        assert!(
            expected.contains(&status),
            "{method} {path}: {status} {body}"
        );
        assert_eq!(
            json_of(&body)["resourceType"],
            "OperationOutcome",
            "{method} {path}: {body}"
        );
    }
    // A websocket client that binds with a forged token is told so, and the server lives on.
    let stream = std::net::TcpStream::connect(region.serving.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (mut forged, _) = tungstenite::client::client(
        format!("ws://{}/subscriptions/ws", region.serving.address),
        stream,
    )
    .unwrap();
    forged
        .send(tungstenite::Message::text("bind-with-token not-a-token"))
        .unwrap();
    let refusal = next_bundle(&mut forged);
    assert_eq!(refusal["resourceType"], "OperationOutcome");
    forged.send(tungstenite::Message::text("hello")).unwrap();
    assert_eq!(next_bundle(&mut forged)["resourceType"], "OperationOutcome");
    region.ok(&township, "GET", "/fhir/Task/c1", &Value::Null);
}

/// Every topic event also reaches NATS JetStream (`meridian.<topic>`), published by the
/// server the moment it is numbered, even with no subscription on the platform.
#[test]
fn events_reach_nats_jetstream() {
    let serving = serve_on(Backend::Sqlite, &["--nats", "nats://127.0.0.1:4222"]);
    let region = Region { serving };
    let admin = region.admin();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, mut messages) = runtime.block_on(async {
        let client = async_nats::connect("nats://127.0.0.1:4222")
            .await
            .expect("the NATS server on this machine (see .ci/run)");
        let jetstream = async_nats::jetstream::new(client.clone());
        let stream = jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: "MERIDIAN".into(),
                subjects: vec!["meridian.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                filter_subject: "meridian.task-requested".into(),
                deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let messages = consumer.messages().await.unwrap();
        (client, messages)
    });
    let id = format!("n{}", uuid::Uuid::new_v4().simple());
    region.put(
        &admin,
        json!({"resourceType": "Organization", "id": "county", "name": "county"}),
    );
    region.put(
        &admin,
        json!({"resourceType": "Task", "id": id, "status": "requested", "intent": "order",
        "restriction": {"recipient": [{"reference": "Organization/county"}]}}),
    );
    let found = runtime.block_on(async {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, messages.next())
                .await
                .expect("the event reached JetStream within 30 s")
                .unwrap()
                .unwrap();
            let payload: Value = serde_json::from_slice(&next.payload).unwrap();
            if payload["focus"] == format!("Task/{id}") {
                return (next.subject.to_string(), payload);
            }
        }
    });
    assert_eq!(found.0, "meridian.task-requested");
    assert_eq!(found.1["topic"], format!("{TOPIC}task-requested"));
    assert_eq!(found.1["version"], 1);
    drop(client);
}
