//! Kiosk readings over MQTT under load (BENCHMARKS.md, "Intake"). `run.sh` starts the server
//! on a seeded store, registers the kiosks and issues their secrets; this program publishes
//! every kiosk's uploads (JWS HS256, as docs/intake.md says) as fast as the broker takes them
//! and waits for each upload's acknowledgement.
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
    while made < readings {
        let (device, secret) = &devices[upload_no % devices.len()];
        let count = per_upload.min(readings - made);
        let batch: Vec<Value> = (0..count)
            .map(|i| {
                let n = made + i;
                let resident = &residents[n * 7919 % residents.len()];
                let (systolic, diastolic) = (110 + (n * 13 % 60), 70 + (n * 7 % 25));
                json!({"id": format!("b{upload_no}-{i}"), "resident": {"idNumber": resident},
                    "measured": format!("2026-11-{:02}T{:02}:{:02}:00+08:00", 1 + n % 28, 7 + n % 12, n % 60),
                    "type": "blood-pressure", "systolic": systolic, "diastolic": diastolic, "unit": "mm[Hg]"})
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

async fn publish(broker: &str, uploads: Vec<(String, String)>, readings: usize) -> Result<()> {
    let (host, port) = broker.rsplit_once(':').context("BROKER is host:port")?;
    let mut options = rumqttc::MqttOptions::new("intake-bench", host, port.parse()?);
    options.set_max_packet_size(16 << 20, 16 << 20);
    options.set_inflight(500);
    options.set_keep_alive(Duration::from_secs(60));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 10_000);
    client
        .subscribe("meridian/kiosk/+/ack", rumqttc::QoS::AtLeastOnce)
        .await?;
    let total = uploads.len();
    let sender = client.clone();
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let publisher = tokio::spawn(async move {
        // Give the subscription a moment to be in place before the first upload.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        for (device, jws) in uploads {
            let topic = format!("meridian/kiosk/{device}/readings");
            let _ = sent_tx.send((device, Instant::now()));
            sender
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, jws)
                .await?;
        }
        Ok::<_, anyhow::Error>(started)
    });
    // Acknowledgements come per device in the order its uploads were sent.
    let mut pending: HashMap<String, std::collections::VecDeque<Instant>> = HashMap::new();
    let mut latencies = Vec::with_capacity(total);
    let (mut accepted, mut refused, mut failed) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(900);
    while latencies.len() < total && Instant::now() < deadline {
        while let Ok((device, at)) = sent_rx.try_recv() {
            pending.entry(device).or_default().push_back(at);
        }
        let event = tokio::time::timeout(Duration::from_secs(30), events.poll()).await;
        let Ok(event) = event else {
            bail!("no acknowledgement for 30 s")
        };
        if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish)) = event? {
            while let Ok((device, at)) = sent_rx.try_recv() {
                pending.entry(device).or_default().push_back(at);
            }
            let device = publish.topic.split('/').nth(2).unwrap_or("").to_owned();
            let answer: Value = serde_json::from_slice(&publish.payload)?;
            if answer["status"] == "ok" {
                accepted += answer["accepted"].as_u64().unwrap_or(0);
                refused += answer["refused"].as_u64().unwrap_or(0);
            } else {
                failed += 1;
            }
            if let Some(at) = pending.get_mut(&device).and_then(|q| q.pop_front()) {
                latencies.push(at.elapsed());
            }
        }
    }
    let started = publisher.await??;
    let elapsed = started.elapsed();
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
