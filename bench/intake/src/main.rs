//! Kiosk readings over MQTT under load (BENCHMARKS.md, "Intake"). `run.sh` starts the server
//! on a seeded store, registers the kiosks and issues their secrets; this program has every
//! kiosk publish its uploads (JWS HS256, as docs/intake.md says), each as soon as the previous
//! one is answered, and times the whole and each upload's answer.
//!
//! Arguments: BROKER (host:port), DEVICES (a file of `device-id secret` lines), RESIDENTS (a
//! file of resident ID numbers), READINGS (total), PER_UPLOAD (readings per upload).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, broker, devices, residents, readings, per_upload] = args.as_slice() else {
        bail!("usage: intake-bench BROKER DEVICES RESIDENTS READINGS PER_UPLOAD");
    };
    let devices: Vec<(String, Vec<u8>)> = std::fs::read_to_string(devices)?
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(id, secret)| {
            let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret.trim());
            secret.map(|s| (id.to_owned(), s))
        })
        .collect::<Result<_, _>>()?;
    let residents: Vec<String> = std::fs::read_to_string(residents)?
        .lines()
        .map(str::to_owned)
        .collect();
    let readings: usize = readings.parse()?;
    let per_upload: usize = per_upload.parse()?;
    if devices.is_empty() || residents.is_empty() {
        bail!("no devices or residents");
    }
    // Every upload signed before the clock starts.
    let mut uploads = Vec::new();
    let mut made = 0;
    let mut upload_no = 0;
    // Readings' ids unique to this run: a run on a store that has an earlier run's readings
    // writes new ones.
    let run = std::process::id();
    // Times of measurement as a region's kiosks send them: most uploads carry what was
    // measured in the last hour, in the order it is sent; every tenth kiosk comes back from
    // hours offline with readings up to three days old. (Spread at random over a month, as
    // earlier runs had them, every reading's Observation id and dates took an index page of
    // their own: BENCHMARKS.md, "Fewer pages per reading".)
    let now = fhir_model::clock::now_micros();
    let hour: i64 = 3_600_000_000;
    let measured_at = |n: usize, upload_no: usize| -> String {
        let micros = if upload_no % 10 == 9 {
            now - hour - (n as i64 * 7_919 % 72) * hour
        } else {
            now - hour + (n as i64) * hour / readings as i64
        };
        fhir_model::clock::format_instant(micros / 1_000_000 * 1_000_000)
    };
    while made < readings {
        let (device, secret) = &devices[upload_no % devices.len()];
        let count = per_upload.min(readings - made);
        // A kiosk session measures one resident several ways (blood pressure, glucose, SpO2,
        // heart rate, weight): an upload carries the sessions since the last one.
        let batch: Vec<Value> = (0..count)
            .map(|i| {
                let n = made + i;
                let resident = &residents[(n / 5) * 7919 % residents.len()];
                let measured = measured_at(n, upload_no);
                let mut reading = json!({"id": format!("b{run}-{upload_no}-{i}"),
                    "resident": {"idNumber": resident}, "measured": measured});
                let values = match n % 5 {
                    0 => json!({"type": "blood-pressure", "systolic": 110 + n * 13 % 60, "diastolic": 70 + n * 7 % 25, "unit": "mm[Hg]"}),
                    1 => json!({"type": "glucose", "value": 4.5 + (n % 40) as f64 / 10.0, "unit": "mmol/L"}),
                    2 => json!({"type": "spo2", "value": 94 + n % 6, "unit": "%"}),
                    3 => json!({"type": "heart-rate", "value": 60 + n % 40, "unit": "/min"}),
                    _ => json!({"type": "weight", "value": 50 + n % 30, "unit": "kg"}),
                };
                for (k, v) in values.as_object().into_iter().flatten() {
                    reading[k] = v.clone();
                }
                reading
            })
            .collect();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(device.clone());
        let jws = jsonwebtoken::encode(
            &header,
            &json!({"device": device, "readings": batch}),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )?;
        uploads.push((device.clone(), jws));
        made += count;
        upload_no += 1;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(publish(broker, uploads, readings))
}

/// Each kiosk keeps up to `PER_KIOSK` uploads unanswered (a kiosk sends what it has queued,
/// keeping each until it is answered), sending the next as one is answered.
const PER_KIOSK: usize = 4;

/// The kiosks' uploads published and answered.
async fn publish(broker: &str, uploads: Vec<(String, String)>, readings: usize) -> Result<()> {
    let (host, port) = broker.rsplit_once(':').context("BROKER is host:port")?;
    let mut options = rumqttc::MqttOptions::new("intake-bench", host, port.parse()?);
    options.set_max_packet_size(16 << 20, 16 << 20);
    options.set_inflight(1_000);
    options.set_keep_alive(Duration::from_secs(60));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10_000);
    let total = uploads.len();
    let mut queues: HashMap<String, std::collections::VecDeque<String>> = HashMap::new();
    for (device, jws) in uploads {
        queues.entry(device).or_default().push_back(jws);
    }
    let send = |device: &str, jws: String| {
        let client = client.clone();
        let topic = format!("meridian/kiosk/{device}/readings");
        async move {
            client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, jws)
                .await
        }
    };
    let mut in_flight: HashMap<String, std::collections::VecDeque<Instant>> = HashMap::new();
    let mut latencies = Vec::with_capacity(total);
    let (mut accepted, mut refused, mut failed) = (0u64, 0u64, 0u64);
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(1_800);
    while latencies.len() < total && Instant::now() < deadline {
        let event = tokio::time::timeout(Duration::from_secs(30), events.poll()).await;
        let Ok(event) = event else {
            bail!(
                "no acknowledgement for 30 s ({} of {total} answered)",
                latencies.len()
            )
        };
        match event? {
            rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                // Subscribed: every kiosk sends its first upload.
                started = Some(Instant::now());
                for (device, queue) in &mut queues {
                    for _ in 0..PER_KIOSK {
                        if let Some(jws) = queue.pop_front() {
                            in_flight
                                .entry(device.clone())
                                .or_default()
                                .push_back(Instant::now());
                            send(device, jws).await?;
                        }
                    }
                }
            }
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) => {
                client
                    .subscribe("meridian/kiosk/+/ack", rumqttc::QoS::AtLeastOnce)
                    .await?;
            }
            rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish)) => {
                let device = publish.topic.split('/').nth(2).unwrap_or("").to_owned();
                let answer: Value = serde_json::from_slice(&publish.payload)?;
                if answer["status"] == "ok" {
                    accepted += answer["accepted"].as_u64().unwrap_or(0);
                    refused += answer["refused"].as_u64().unwrap_or(0);
                } else {
                    failed += 1;
                }
                if let Some(at) = in_flight.get_mut(&device).and_then(|q| q.pop_front()) {
                    latencies.push(at.elapsed());
                }
                if let Some(jws) = queues.get_mut(&device).and_then(|q| q.pop_front()) {
                    in_flight
                        .entry(device.clone())
                        .or_default()
                        .push_back(Instant::now());
                    send(&device, jws).await?;
                }
            }
            _ => {}
        }
    }
    let elapsed = started.context("never subscribed")?.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    println!(
        "uploads={total} readings={readings} accepted={accepted} refused={refused} failed_uploads={failed} seconds={:.2} readings_per_second={:.0} upload_ack_ms p50={:.0} p95={:.0} p99={:.0} max={:.0}",
        elapsed.as_secs_f64(),
        readings as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
