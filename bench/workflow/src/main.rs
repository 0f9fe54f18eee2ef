//! `workflow-bench`: the workflows of issue 17 under load, from outside, against a running
//! `meridian serve` whose store holds the region `bench/workflow/run.sh` writes (a township, a
//! county, their clinicians). Three measurements, one after the other:
//!
//! 1. consultations: `--consultations` Tasks, each created by the township and moved by the
//!    county through received, accepted, in-progress and completed, from `--clients` threads;
//!    the latency of each move (the state machine and its clock in the write's transaction);
//! 2. notifications: the township subscribes (rest-hook, to a receiver in this process) to
//!    `task-accepted`; for each acceptance, the time from the write's answer to the
//!    notification's arrival;
//! 3. bookings: `--slots` free slots booked by `--clients` threads as fast as answered
//!    (bookings a second), then 50 clients booking 10 slots at once (10 must succeed).
//!
//!   workflow-bench --origin http://127.0.0.1:18082 --admin TOKEN --township TOKEN
//!                  --county TOKEN [--consultations 200] [--slots 500] [--clients 4]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

struct Args {
    origin: String,
    admin: String,
    township: String,
    county: String,
    consultations: usize,
    slots: usize,
    clients: usize,
}

fn args() -> Result<Args> {
    let mut args = Args {
        origin: "http://127.0.0.1:18082".into(),
        admin: String::new(),
        township: String::new(),
        county: String::new(),
        consultations: 200,
        slots: 500,
        clients: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().with_context(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--origin" => args.origin = value,
            "--admin" => args.admin = value,
            "--township" => args.township = value,
            "--county" => args.county = value,
            "--consultations" => args.consultations = value.parse()?,
            "--slots" => args.slots = value.parse()?,
            "--clients" => args.clients = value.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// One request on a connection of its own: the status and the body.
fn send(origin: &str, token: &str, method: &str, path: &str, body: &Value) -> Result<(u16, Value)> {
    let host = origin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .context("no status")?
        .parse()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer)?;
    Ok((
        status,
        serde_json::from_slice(&answer).unwrap_or(Value::Null),
    ))
}

fn ok(origin: &str, token: &str, method: &str, path: &str, body: &Value) -> Result<Value> {
    let (status, answer) = send(origin, token, method, path, body)?;
    if !(200..300).contains(&status) {
        bail!("{method} {path}: {status} {answer}");
    }
    Ok(answer)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label:<34} n={:>5}  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
    );
}

fn instant(micros: i64) -> String {
    fhir_model::clock::format_instant(micros)
}

/// When the notification about each Task arrived.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// A receiver of rest-hook notifications: when each Task's acceptance arrived.
fn receiver() -> Result<(String, Arrivals)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}/hook", listener.local_addr()?);
    let arrivals: Arrivals = Arc::default();
    let kept = Arc::clone(&arrivals);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().expect("a socket clones"));
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
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let at = Instant::now();
            if let Ok(bundle) = serde_json::from_slice::<Value>(&body) {
                let focuses = bundle["entry"][0]["resource"]["parameter"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["name"] == "notification-event")
                    .filter_map(|p| {
                        p["part"]
                            .as_array()?
                            .iter()
                            .find(|q| q["name"] == "focus")?["valueReference"]["reference"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect::<Vec<_>>();
                let mut arrivals = kept.lock().expect("not poisoned");
                for focus in focuses {
                    let id = focus.rsplit('/').next().unwrap_or_default().to_owned();
                    arrivals.push((id, at));
                }
            }
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    Ok((endpoint, arrivals))
}

/// When the notification about Task `id` arrived, if it did.
fn arrivals_of(arrivals: &Mutex<Vec<(String, Instant)>>, id: &str) -> Option<Instant> {
    arrivals
        .lock()
        .expect("not poisoned")
        .iter()
        .find(|(a, _)| a == id)
        .map(|(_, at)| *at)
}

fn consultation(id: &str) -> Value {
    json!({
        "resourceType": "Task", "id": id, "status": "requested", "intent": "order", "priority": "urgent",
        "code": {"coding": [{"system": "https://meridian.example/CodeSystem/workflow", "code": "consultation"}]},
        "for": {"reference": "Patient/bench-patient"},
        "restriction": {"recipient": [{"reference": "Organization/bench-county"}]},
        "input": [{"type": {"text": "ECG"}, "valueReference": {"reference": "Observation/bench-ecg"}}],
    })
}

fn main() -> Result<()> {
    let args = args()?;
    let origin = args.origin.as_str();
    let run = fhir_model::clock::now_micros();

    // The township subscribes to acceptances, to a receiver here.
    let (endpoint, arrivals) = receiver()?;
    let subscription = format!("bench-{run}");
    ok(
        origin,
        &args.township,
        "PUT",
        &format!("/fhir/Subscription/{subscription}"),
        &json!({
            "resourceType": "Subscription", "id": subscription, "status": "requested", "reason": "bench",
            "criteria": "https://meridian.example/fhir/SubscriptionTopic/task-accepted",
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"},
        }),
    )?;
    std::thread::sleep(Duration::from_secs(2));

    // 1 and 2: consultations moved by the county, from several clients.
    let moves: Arc<Mutex<Vec<(&'static str, Duration)>>> = Arc::default();
    let accepted_at: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for client in 0..args.clients {
            let (moves, accepted_at) = (Arc::clone(&moves), Arc::clone(&accepted_at));
            let args = &args;
            handles.push(scope.spawn(move || -> Result<()> {
                for n in (client..args.consultations).step_by(args.clients) {
                    let id = format!("b{run}-{n}");
                    let path = format!("/fhir/Task/{id}");
                    let mut task = consultation(&id);
                    let t = Instant::now();
                    ok(origin, &args.township, "PUT", &path, &task)?;
                    moves
                        .lock()
                        .expect("not poisoned")
                        .push(("create (requested)", t.elapsed()));
                    for (status, owner) in [
                        ("received", false),
                        ("accepted", true),
                        ("in-progress", true),
                        ("completed", true),
                    ] {
                        task["status"] = json!(status);
                        if owner {
                            task["owner"] = json!({"reference": "PractitionerRole/bench-expert"});
                        }
                        let t = Instant::now();
                        ok(origin, &args.county, "PUT", &path, &task)?;
                        let took = t.elapsed();
                        if status == "accepted" {
                            accepted_at
                                .lock()
                                .expect("not poisoned")
                                .push((id.clone(), Instant::now()));
                        }
                        let label = match status {
                            "received" => "move to received",
                            "accepted" => "move to accepted",
                            "in-progress" => "move to in-progress",
                            _ => "move to completed",
                        };
                        moves.lock().expect("not poisoned").push((label, took));
                    }
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle.join().expect("a client thread")?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    println!(
        "consultations: {} in {:.1} s ({:.1} consultations/s, {:.1} writes/s), {} clients",
        args.consultations,
        elapsed.as_secs_f64(),
        args.consultations as f64 / elapsed.as_secs_f64(),
        args.consultations as f64 * 5.0 / elapsed.as_secs_f64(),
        args.clients
    );
    let moves = moves.lock().expect("not poisoned").clone();
    for label in [
        "create (requested)",
        "move to received",
        "move to accepted",
        "move to in-progress",
        "move to completed",
    ] {
        report(
            label,
            moves
                .iter()
                .filter(|(l, _)| *l == label)
                .map(|(_, d)| *d)
                .collect(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().expect("not poisoned").len() < args.consultations
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let arrivals_handle = Arc::clone(&arrivals);
    let arrivals = arrivals.lock().expect("not poisoned").clone();
    let accepted_at = accepted_at.lock().expect("not poisoned").clone();
    let delays: Vec<Duration> = accepted_at
        .iter()
        .filter_map(|(id, at)| {
            arrivals
                .iter()
                .find(|(a, _)| a == id)
                .map(|(_, arrived)| arrived.saturating_duration_since(*at))
        })
        .collect();
    println!(
        "notifications received: {} of {}",
        delays.len(),
        accepted_at.len()
    );
    report("write answered -> rest-hook (busy)", delays);

    // One acceptance at a time, a quarter second apart: the notification's own latency.
    let mut quiet = Vec::new();
    for n in 0..40 {
        let id = format!("q{run}-{n}");
        let path = format!("/fhir/Task/{id}");
        let mut task = consultation(&id);
        ok(origin, &args.township, "PUT", &path, &task)?;
        task["status"] = json!("accepted");
        task["owner"] = json!({"reference": "PractitionerRole/bench-expert"});
        ok(origin, &args.county, "PUT", &path, &task)?;
        let answered = Instant::now();
        let deadline = answered + Duration::from_secs(10);
        loop {
            if let Some(at) = arrivals_of(&arrivals_handle, &id) {
                quiet.push(at.saturating_duration_since(answered));
                break;
            }
            if Instant::now() > deadline {
                bail!("no notification for {id} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    report("write answered -> rest-hook (quiet)", quiet);

    // 3: bookings of free slots, then contention.
    let start = fhir_model::clock::now_micros() + 2 * 86_400_000_000;
    let minute = 60_000_000i64;
    let slot = |id: &str, at: i64| {
        json!({"resourceType": "Slot", "id": id,
        "schedule": {"reference": "Schedule/bench-clinic"}, "status": "free",
        "start": instant(at), "end": instant(at + 10 * minute)})
    };
    for n in 0..args.slots {
        let id = format!("s{run}-{n}");
        ok(
            origin,
            &args.county,
            "PUT",
            &format!("/fhir/Slot/{id}"),
            &slot(&id, start + n as i64 * 10 * minute),
        )?;
    }
    let booking = |id: &str, at: i64| {
        json!({"resourceType": "Appointment", "status": "booked",
        "slot": [{"reference": format!("Slot/{id}")}], "start": instant(at), "end": instant(at + 10 * minute),
        "participant": [{"actor": {"reference": "Patient/bench-patient"}, "status": "accepted"}]})
    };
    let times: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for client in 0..args.clients {
            let times = Arc::clone(&times);
            let args = &args;
            let booking = &booking;
            handles.push(scope.spawn(move || -> Result<()> {
                for n in (client..args.slots).step_by(args.clients) {
                    let id = format!("s{run}-{n}");
                    let t = Instant::now();
                    ok(
                        origin,
                        &args.township,
                        "POST",
                        "/fhir/Appointment",
                        &booking(&id, start + n as i64 * 10 * minute),
                    )?;
                    times.lock().expect("not poisoned").push(t.elapsed());
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle.join().expect("a client thread")?;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    println!(
        "bookings of free slots: {} in {:.1} s ({:.1} bookings/s), {} clients",
        args.slots,
        elapsed.as_secs_f64(),
        args.slots as f64 / elapsed.as_secs_f64(),
        args.clients
    );
    report(
        "book a free slot",
        times.lock().expect("not poisoned").clone(),
    );

    let rush = start + 30 * 86_400_000_000;
    for n in 0..10 {
        let id = format!("r{run}-{n}");
        ok(
            origin,
            &args.county,
            "PUT",
            &format!("/fhir/Slot/{id}"),
            &slot(&id, rush + n * 10 * minute),
        )?;
    }
    let results: Vec<(u16, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let args = &args;
                let booking = &booking;
                scope.spawn(move || {
                    let n = i % 10;
                    let id = format!("r{run}-{n}");
                    let t = Instant::now();
                    let status = send(
                        origin,
                        &args.township,
                        "POST",
                        "/fhir/Appointment",
                        &booking(&id, rush + n * 10 * minute),
                    )
                    .map(|(s, _)| s)
                    .unwrap_or(0);
                    (status, t.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    });
    let won = results.iter().filter(|(s, _)| *s == 201).count();
    let lost = results.iter().filter(|(s, _)| *s == 409).count();
    println!(
        "50 clients, 10 slots: {won} booked, {lost} refused (409), {} other",
        50 - won - lost
    );
    report(
        "contended booking: 201",
        results
            .iter()
            .filter(|(s, _)| *s == 201)
            .map(|(_, d)| *d)
            .collect(),
    );
    report(
        "contended booking: 409",
        results
            .iter()
            .filter(|(s, _)| *s == 409)
            .map(|(_, d)| *d)
            .collect(),
    );
    let _ = args.admin;
    Ok(())
}
