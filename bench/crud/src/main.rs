//! `crud-bench BASE CLIENTS SECONDS [patient|observation] [TOKEN]`: CLIENTS threads, each on
//! a kept-alive HTTP/1.1 connection to BASE (`http://127.0.0.1:8080/fhir`), each repeating
//! create (POST), read (GET), update (PUT) and delete (DELETE) of a resource of its own for
//! SECONDS: the CRUD workload of the public FHIR server benchmarks. A Patient cycle registers a
//! different resident each time (the master index matches every one); an Observation cycle
//! does not touch the index. Prints requests/s, errors, and p50/p99 per operation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// An answer: its status, its Location header and its body.
type Answer = (u16, Option<String>, Vec<u8>);

struct Connection {
    host: String,
    prefix: String,
    token: Option<String>,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(base: &str, token: Option<String>) -> Result<Connection> {
        let rest = base
            .strip_prefix("http://")
            .context("BASE is http://host:port/path")?;
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // `http://host:port` and `http://host:port/` serve at the root, `.../fhir` under it.
        let prefix = prefix.trim_end_matches('/');
        let stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            host: host.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
            token,
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// A new connection in place of one the server closed (it caps the requests a
    /// connection carries).
    fn reconnect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(&self.host)?;
        stream.set_nodelay(true)?;
        self.reader = BufReader::new(stream.try_clone()?);
        self.writer = stream;
        Ok(())
    }

    /// One request; answers the status, the Location header and the body. A connection the
    /// server closed is opened again and the request sent once more.
    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        match self.send_once(method, path, body) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) | Err(_) => {
                self.reconnect()?;
                self.send_once(method, path, body)?
                    .context("the server closed a fresh connection")
            }
        }
    }

    /// `None` when the connection turned out closed.
    fn send_once(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Answer>> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/fhir+json\r\nAccept: application/fhir+json\r\nContent-Length: {}\r\n",
            self.prefix,
            self.host,
            text.len()
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(text.as_bytes())?;
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line)? == 0 {
            return Ok(None);
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in '{status_line}'"))?;
        let (mut length, mut chunked, mut location, mut close) = (0usize, false, None, false);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "location" => location = Some(value.to_owned()),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let mut answer = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size)?;
                let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                answer.extend_from_slice(&chunk[..size]);
            }
        } else {
            answer.resize(length, 0);
            self.reader.read_exact(&mut answer)?;
        }
        if close {
            self.reconnect()?;
        }
        Ok(Some((status, location, answer)))
    }
}

fn resource(kind: &str, client: usize, cycle: u64, version: u32) -> Value {
    let resident = Resident::new(client, cycle);
    match kind {
        "patient" => json!({
            "resourceType": "Patient",
            "identifier": [{"system": "https://meridian.example/sid/bench", "value": format!("c{client}-{cycle}")}],
            "name": [{"family": resident.family, "given": [resident.given]}],
            "gender": if cycle.is_multiple_of(2) { "female" } else { "male" },
            "birthDate": resident.birth_date,
            "active": version.is_multiple_of(2),
        }),
        _ => json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/crud-bench-subject"},
            "effectiveDateTime": "2026-06-01T09:00:00+08:00",
            "valueQuantity": {"value": 60 + version + (cycle % 40) as u32, "unit": "/min",
                "system": "http://unitsofmeasure.org", "code": "/min"},
        }),
    }
}

/// Who a Patient cycle registers. By default every client's residents differ from every
/// other's as a region's do: names of three syllables each and birth dates over 90 years,
/// drawn from the client and cycle. With `CRUD_BENCH_RESIDENTS=lockstep`, the generator up to
/// b445fe7: family `Bench{client}`, given `N{cycle}` (the master index's name keys
/// drop the digits, so every resident shares one full-name key) and every client's n-th
/// resident born on one day, so that all clients contend for the same blocking keys.
struct Resident {
    family: String,
    given: String,
    birth_date: String,
}

impl Resident {
    fn new(client: usize, cycle: u64) -> Resident {
        if std::env::var("CRUD_BENCH_RESIDENTS").as_deref() == Ok("lockstep") {
            return Resident {
                family: format!("Bench{client}"),
                given: format!("N{cycle}"),
                birth_date: format!(
                    "19{:02}-0{}-1{}",
                    40 + (cycle % 60),
                    1 + cycle % 9,
                    cycle % 9
                ),
            };
        }
        // splitmix64 of the client and cycle: a fixed sequence, the same on every run.
        let mut h = (client as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(cycle);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
        const SYLLABLES: [&str; 32] = [
            "an", "bao", "chen", "da", "fang", "gao", "hui", "jia", "kai", "lin", "mei", "ning",
            "ping", "qing", "rui", "shan", "tao", "wen", "xia", "yan", "zhi", "bo", "cui", "dong",
            "feng", "guo", "hong", "jun", "lei", "min", "song", "yu",
        ];
        let name = |bits: u64| -> String {
            let mut name: String = (0..3)
                .map(|i| SYLLABLES[((bits >> (5 * i)) & 31) as usize])
                .collect();
            name[..1].make_ascii_uppercase();
            name
        };
        Resident {
            family: name(h),
            given: name(h >> 15),
            birth_date: format!(
                "{}-{:02}-{:02}",
                1930 + (h >> 30) % 90,
                1 + (h >> 38) % 12,
                1 + (h >> 44) % 28
            ),
        }
    }
}

/// Latencies (microseconds) of each operation, and the requests that failed.
#[derive(Default)]
struct Tally {
    latencies: [Vec<u64>; 4],
    errors: u64,
    first_error: Option<String>,
}

fn client(
    base: &str,
    token: Option<String>,
    kind: &str,
    number: usize,
    until: Instant,
) -> Result<Tally> {
    let mut connection = Connection::open(base, token)?;
    let mut tally = Tally::default();
    let type_name = if kind == "patient" {
        "Patient"
    } else {
        "Observation"
    };
    let mut cycle = 0u64;
    while Instant::now() < until {
        cycle += 1;
        let timed = |connection: &mut Connection,
                     tally: &mut Tally,
                     op: usize,
                     method: &str,
                     path: &str,
                     body: Option<&Value>|
         -> Result<Option<(Option<String>, Vec<u8>)>> {
            let started = Instant::now();
            let (status, location, answer) = connection.send(method, path, body)?;
            tally.latencies[op].push(started.elapsed().as_micros() as u64);
            if !(200..300).contains(&status) {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!(
                        "{method} {path}: {status} {}",
                        String::from_utf8_lossy(&answer)
                    ));
                }
                return Ok(None);
            }
            Ok(Some((location, answer)))
        };
        let created = timed(
            &mut connection,
            &mut tally,
            0,
            "POST",
            &format!("/{type_name}"),
            Some(&resource(kind, number, cycle, 0)),
        )?;
        let Some((location, answer)) = created else {
            continue;
        };
        let id = match location
            .as_deref()
            .and_then(|l| l.split(&format!("{type_name}/")).nth(1))
        {
            Some(rest) => rest.split('/').next().unwrap_or_default().to_owned(),
            None => serde_json::from_slice::<Value>(&answer)?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        if id.is_empty() {
            bail!("a create answered no id");
        }
        let path = format!("/{type_name}/{id}");
        timed(&mut connection, &mut tally, 1, "GET", &path, None)?;
        let mut updated = resource(kind, number, cycle, 1);
        updated["id"] = json!(id);
        timed(&mut connection, &mut tally, 2, "PUT", &path, Some(&updated))?;
        timed(&mut connection, &mut tally, 3, "DELETE", &path, None)?;
    }
    Ok(tally)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        bail!("usage: crud-bench BASE CLIENTS SECONDS [patient|observation] [TOKEN]");
    }
    let base = args[1].clone();
    let clients: usize = args[2].parse().context("CLIENTS")?;
    let seconds: u64 = args[3].parse().context("SECONDS")?;
    let kind = args.get(4).cloned().unwrap_or_else(|| "patient".into());
    let token = args.get(5).cloned();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tallies: Vec<Result<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|n| {
                let (base, token, kind) = (base.clone(), token.clone(), kind.clone());
                scope.spawn(move || client(&base, token, &kind, n, until))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for tally in tallies {
        let tally = tally?;
        for (op, latencies) in tally.latencies.into_iter().enumerate() {
            all.latencies[op].extend(latencies);
        }
        all.errors += tally.errors;
        all.first_error = all.first_error.or(tally.first_error);
    }
    let requests: usize = all.latencies.iter().map(Vec::len).sum();
    print!(
        "{kind} clients={clients} requests/s={:.0} errors={}",
        requests as f64 / elapsed,
        all.errors
    );
    for (name, latencies) in ["create", "read", "update", "delete"]
        .iter()
        .zip(all.latencies.iter_mut())
    {
        latencies.sort_unstable();
        print!(
            " {name}:p50={:.1}ms,p99={:.1}ms",
            percentile(latencies, 0.5),
            percentile(latencies, 0.99)
        );
    }
    println!();
    if let Some(error) = all.first_error {
        eprintln!(
            "first error: {}",
            error.chars().take(400).collect::<String>()
        );
    }
    Ok(())
}
