//! `cds-bench`: the decision-support service under load, from outside, as a hospital system
//! calls it. Against a running `meridian serve` (sign-in on) it registers two institutions'
//! clients (a county hospital that writes a patient's record of `--resources` resources, and
//! a city hospital whose CDS client signs every request with a fresh ES384 JWT), writes the
//! recognition catalogue and the patient's consent, then posts `order-sign` with five draft
//! orders (a CT with a prior CT to offer, a barium meal for a patient with intestinal
//! obstruction, warfarin with ibuprofen, a blood count) from `--clients` threads for
//! `--seconds`, each request at most `--rate` per second in all (0: as fast as answered).
//! Prints throughput and latency percentiles; the JWT is signed before the clock starts.
//!
//!   cds-bench --origin http://127.0.0.1:18081 --admin-token TOKEN [--resources 5000]
//!             [--clients 4] [--seconds 20] [--rate 0]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const LEVEL: &str = "https://meridian.example/CodeSystem/institution-level";
const DAY: i64 = 86_400_000_000;
/// Diabetes, hypertension, asthma, reflux, low back pain.
const CONDITIONS: [&str; 5] = ["E11.9", "I10", "J45.9", "K21.0", "M54.5"];
/// Metformin, lisinopril, amlodipine, atorvastatin (RxNorm).
const MEDICATIONS: [&str; 4] = ["860975", "314076", "197361", "617312"];

struct Args {
    origin: String,
    admin: String,
    resources: usize,
    clients: usize,
    seconds: u64,
    rate: f64,
    /// `standard` (a CT among the five) or `laboratory` (three laboratory orders, amoxicillin
    /// and ibuprofen: no draft a rule about observations can fire on, so none are read).
    drafts: String,
}

fn args() -> Result<Args> {
    let mut args = Args {
        origin: "http://127.0.0.1:18081".into(),
        admin: String::new(),
        resources: 5000,
        clients: 4,
        seconds: 20,
        rate: 0.0,
        drafts: "standard".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().with_context(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--origin" => args.origin = value,
            "--admin-token" => args.admin = value,
            "--resources" => args.resources = value.parse()?,
            "--clients" => args.clients = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--rate" => args.rate = value.parse()?,
            "--drafts" => args.drafts = value,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.admin.is_empty() {
        bail!("--admin-token is required (meridian token)");
    }
    Ok(args)
}

/// One HTTP/1.1 connection, kept alive.
struct Connection {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(origin: &str) -> Result<Connection> {
        let host = origin.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&host)?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            host,
            reader: BufReader::new(stream),
        })
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String)> {
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(body);
        self.reader.get_mut().write_all(text.as_bytes())?;
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .context("no status")?
            .parse()?;
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
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
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn call(
    origin: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Value> {
    let mut connection = Connection::open(origin)?;
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = connection.send(method, path, &headers, &text)?;
    if status >= 300 {
        bail!("{method} {path}: {status} {answer}");
    }
    Ok(serde_json::from_str(&answer).unwrap_or(Value::Null))
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn key(kid: &str) -> Result<Key> {
    use p384::elliptic_curve::sec1::ToEncodedPoint;
    use p384::pkcs8::EncodePrivateKey;
    let secret = p384::SecretKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der()?;
    let point = secret.public_key().to_encoded_point(false);
    Ok(Key {
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({"kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().context("x")?),
            "y": URL_SAFE_NO_PAD.encode(point.y().context("y")?)}),
    })
}

fn now_seconds() -> i64 {
    fhir_model::clock::now_micros() / 1_000_000
}

fn jwt(key: &Key, client: &str, audience: &str) -> Result<String> {
    let mut header = Header::new(Algorithm::ES384);
    header.kid = Some(key.kid.clone());
    let now = now_seconds();
    Ok(jsonwebtoken::encode(
        &header,
        &json!({"iss": client, "sub": client, "aud": audience, "iat": now, "exp": now + 240,
            "jti": uuid::Uuid::new_v4().to_string()}),
        &key.encoding,
    )?)
}

/// Registers a backend client of `organization` and answers its id and an access token.
fn client(
    origin: &str,
    admin: &str,
    key: &Key,
    organization: &str,
    scope: &str,
) -> Result<(String, String)> {
    let registered = call(
        origin,
        Some(admin),
        "POST",
        "/auth/register",
        &json!({
            "client_name": format!("{organization} bench"), "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["client_credentials"], "jwks": {"keys": [key.jwk]}, "scope": scope,
            "organization": organization,
        }),
    )?;
    let id = registered["client_id"]
        .as_str()
        .context("client_id")?
        .to_owned();
    let assertion = jwt(key, &id, &format!("{origin}/auth/token"))?;
    let form = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}&scope={}",
        scope
            .replace('/', "%2F")
            .replace('*', "%2A")
            .replace(' ', "+")
    );
    let mut connection = Connection::open(origin)?;
    let (status, body) = connection.send(
        "POST",
        "/auth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )?;
    if status != 200 {
        bail!("token: {status} {body}");
    }
    let token: Value = serde_json::from_str(&body)?;
    Ok((
        id,
        token["access_token"]
            .as_str()
            .context("access_token")?
            .to_owned(),
    ))
}

fn instant(days_ago: i64) -> String {
    fhir_model::clock::format_instant(fhir_model::clock::now_micros() - days_ago * DAY)
}

/// The patient's record: `count` resources of the kinds a long-treated patient has.
fn record(patient: &str, count: usize) -> Vec<Value> {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let mut out = Vec::with_capacity(count);
    let labs = [
        ("http://loinc.org", "718-7", "Hemoglobin", "g/dL", 13.5),
        ("http://loinc.org", "2345-7", "Glucose", "mmol/L", 6.1),
        (
            "http://loinc.org",
            "33914-3",
            "eGFR",
            "mL/min/{1.73_m2}",
            58.0,
        ),
        ("http://loinc.org", "4548-4", "HbA1c", "%", 7.2),
        ("http://loinc.org", "2160-0", "Creatinine", "umol/L", 98.0),
        (
            "http://loinc.org",
            "8480-6",
            "Systolic blood pressure",
            "mm[Hg]",
            142.0,
        ),
    ];
    for n in 0..count {
        let days = (n as i64 * 7) % 1800;
        let resource = match n % 100 {
            0 => json!({"resourceType": "Condition", "subject": subject,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": if n % 300 == 0 {"resolved"} else {"active"}}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": CONDITIONS[n / 100 % 5]}]},
                "recordedDate": instant(days)}),
            1 => {
                json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": MEDICATIONS[n / 100 % 4]}]},
                "authoredOn": instant(days)})
            }
            2 => json!({"resourceType": "DiagnosticReport", "status": "final", "subject": subject,
                "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC panel"}]},
                "effectiveDateTime": instant(days + 30), "performer": [{"reference": "Organization/bench-county"}],
                "conclusion": "Within normal limits."}),
            3 => {
                json!({"resourceType": "ServiceRequest", "status": "completed", "intent": "order", "subject": subject,
                "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5", "display": "XR Chest 2 Views"}]},
                "authoredOn": instant(days + 30)})
            }
            4 if n % 500 == 4 => json!({"resourceType": "AllergyIntolerance", "patient": subject,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}], "text": "Penicillin allergy"}}),
            _ => {
                let (system, code, name, unit, value) = labs[n % labs.len()];
                json!({"resourceType": "Observation", "status": "final", "subject": subject,
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                    "code": {"coding": [{"system": system, "code": code, "display": name}]},
                    "effectiveDateTime": instant(days + 1),
                    "valueQuantity": {"value": value + (n % 7) as f64 * 0.1, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
            }
        };
        out.push(resource);
    }
    // The prior CT the order should be offered, and the obstruction the barium meal should meet.
    out.push(json!({"resourceType": "DiagnosticReport", "status": "final", "subject": subject,
        "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]},
        "effectiveDateTime": instant(10), "performer": [{"reference": "Organization/bench-county"}],
        "conclusion": "No acute findings."}));
    out.push(json!({"resourceType": "Condition", "subject": subject,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "K56.6"}]}, "recordedDate": instant(2)}));
    out
}

fn catalogue() -> Vec<Value> {
    let entry = |id: &str, title: &str, code: &str, days: u32, level: &str, price: u32| {
        json!({"resourceType": "ActivityDefinition", "id": id, "status": "active", "kind": "ServiceRequest", "title": title,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "timingDuration": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
            "extension": [
                {"url": "https://meridian.example/fhir/StructureDefinition/recognition-minimum-level", "valueCoding": {"system": LEVEL, "code": level}},
                {"url": "https://meridian.example/fhir/StructureDefinition/recognition-price", "valueMoney": {"value": price, "currency": "CNY"}}]})
    };
    vec![
        entry(
            "ct-chest",
            "CT chest",
            "24627-2",
            90,
            "county-hospital",
            320,
        ),
        entry(
            "xr-chest",
            "Chest X-ray",
            "36643-5",
            30,
            "township-health-center",
            60,
        ),
        entry(
            "cbc",
            "Blood count",
            "58410-2",
            7,
            "township-health-center",
            25,
        ),
        entry(
            "mri-brain",
            "MRI brain",
            "24590-2",
            180,
            "city-hospital",
            600,
        ),
        entry(
            "us-abdomen",
            "Abdominal ultrasound",
            "24558-9",
            30,
            "county-hospital",
            120,
        ),
        entry("hba1c", "HbA1c", "4548-4", 90, "township-health-center", 50),
        entry(
            "lipids",
            "Lipid panel",
            "57698-3",
            30,
            "township-health-center",
            45,
        ),
        entry("ecg", "ECG", "11524-6", 30, "township-health-center", 30),
    ]
}

fn drafts(patient: &str, kind: &str) -> Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let service = |id: &str, code: Value, text: &str| {
        json!({"resource": {"resourceType": "ServiceRequest", "id": id,
        "status": "draft", "intent": "order", "code": {"coding": [code], "text": text}, "subject": subject}})
    };
    let medication = |id: &str, code: &str, text: &str| {
        json!({"resource": {"resourceType": "MedicationRequest", "id": id,
        "status": "draft", "intent": "order", "subject": subject,
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code}], "text": text}}})
    };
    if kind == "laboratory" {
        return json!({"resourceType": "Bundle", "type": "collection", "entry": [
            service("d-cbc", json!({"system": "http://loinc.org", "code": "58410-2"}), "Blood count"),
            service("d-lipids", json!({"system": "http://loinc.org", "code": "57698-3"}), "Lipid panel"),
            service("d-hba1c", json!({"system": "http://loinc.org", "code": "4548-4"}), "HbA1c"),
            medication("d-amoxicillin", "723", "amoxicillin"),
            medication("d-ibuprofen", "5640", "ibuprofen"),
        ]});
    }
    json!({"resourceType": "Bundle", "type": "collection", "entry": [
        service("d-ct", json!({"system": "http://loinc.org", "code": "24627-2"}), "CT chest"),
        service("d-barium", json!({"system": "urn:oid:1.2.156.1.bench", "code": "FS0021", "display": "上消化道钡餐造影"}), "钡餐"),
        service("d-cbc", json!({"system": "http://loinc.org", "code": "58410-2"}), "Blood count"),
        medication("d-warfarin", "11289", "warfarin"),
        medication("d-ibuprofen", "5640", "ibuprofen"),
    ]})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let args = args()?;
    let origin = args.origin.as_str();
    for (id, level) in [
        ("bench-county", "county-hospital"),
        ("bench-city", "city-hospital"),
    ] {
        call(
            origin,
            Some(&args.admin),
            "PUT",
            &format!("/fhir/Organization/{id}"),
            &json!({"resourceType": "Organization", "id": id,
            "name": id, "type": [{"coding": [{"system": LEVEL, "code": level}]}]}),
        )?;
    }
    for entry in catalogue() {
        call(
            origin,
            Some(&args.admin),
            "PUT",
            &format!(
                "/fhir/ActivityDefinition/{}",
                entry["id"].as_str().unwrap_or("x")
            ),
            &entry,
        )?;
    }
    let county_key = key("bench-county-1")?;
    let (_, county) = client(
        origin,
        &args.admin,
        &county_key,
        "Organization/bench-county",
        "system/*.cruds",
    )?;
    let city_key = key("bench-city-1")?;
    let (city, _) = client(
        origin,
        &args.admin,
        &city_key,
        "Organization/bench-city",
        "system/*.rs",
    )?;
    let patient = call(
        origin,
        Some(&county),
        "POST",
        "/fhir/Patient",
        &json!({"resourceType": "Patient", "gender": "female", "birthDate": "1956-03-02"}),
    )?["id"]
        .as_str()
        .context("patient id")?
        .to_owned();
    call(
        origin,
        Some(&args.admin),
        "POST",
        "/fhir/Consent",
        &json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit", "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]}, "reference": {"reference": "Organization/bench-city"}}],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}}),
    )?;
    let started = Instant::now();
    let resources = record(&patient, args.resources);
    for chunk in resources.chunks(500) {
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": chunk.iter().map(|r| json!({
            "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})).collect::<Vec<_>>()});
        call(origin, Some(&county), "POST", "/fhir", &bundle)?;
    }
    eprintln!(
        "patient {patient}: {} resources written in {:.1} s",
        resources.len() + 1,
        started.elapsed().as_secs_f64()
    );

    let aud = format!("{origin}/cds-services/order-sign");
    let body = |n: usize| {
        json!({"hook": "order-sign", "hookInstance": uuid::Uuid::new_v4().to_string(),
        "context": {"userId": "Practitioner/bench", "patientId": patient, "draftOrders": drafts(&patient, &args.drafts)},
        "extension": {"meridian.department": format!("dept-{}", n % 3)}}).to_string()
    };
    // Warm-up, and what the answer holds.
    let mut connection = Connection::open(origin)?;
    let bearer = format!("Bearer {}", jwt(&city_key, &city, &aud)?);
    let (status, answer) = connection.send(
        "POST",
        "/cds-services/order-sign",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        &body(0),
    )?;
    if status != 200 {
        bail!("order-sign: {status} {answer}");
    }
    let answer: Value = serde_json::from_str(&answer)?;
    let summaries: Vec<String> = answer["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}: {}",
                c["indicator"].as_str().unwrap_or("?"),
                c["summary"].as_str().unwrap_or("?")
            )
        })
        .collect();
    eprintln!("{} cards:\n  {}", summaries.len(), summaries.join("\n  "));

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let interval =
        (args.rate > 0.0).then(|| Duration::from_secs_f64(args.clients as f64 / args.rate));
    let threads: Vec<_> = (0..args.clients)
        .map(|t| {
            let (origin, city, aud) = (origin.to_owned(), city.clone(), aud.clone());
            let key = Key {
                kid: city_key.kid.clone(),
                encoding: city_key.encoding.clone(),
                jwk: Value::Null,
            };
            let body = body(t);
            std::thread::spawn(move || -> Result<(Vec<Duration>, usize)> {
                let mut connection = Connection::open(&origin)?;
                let mut latencies = Vec::new();
                let mut failures = 0;
                let mut next = Instant::now();
                while Instant::now() < deadline {
                    if let Some(interval) = interval {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += interval;
                    }
                    let bearer = format!("Bearer {}", jwt(&key, &city, &aud)?);
                    let headers = [
                        ("Content-Type", "application/json"),
                        ("Authorization", bearer.as_str()),
                    ];
                    let sent = Instant::now();
                    let (status, _) =
                        connection.send("POST", "/cds-services/order-sign", &headers, &body)?;
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        failures += 1;
                    }
                }
                Ok((latencies, failures))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = 0;
    for thread in threads {
        let (latencies, failed) = thread
            .join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
        all.extend(latencies);
        failures += failed;
    }
    all.sort();
    println!(
        "order-sign, 5 {} drafts, patient of {} resources, {} clients{}: {} requests in {} s ({:.1}/s), {} failed; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
        args.drafts,
        resources.len() + 1,
        args.clients,
        if args.rate > 0.0 {
            format!(" at {} req/s", args.rate)
        } else {
            String::new()
        },
        all.len(),
        args.seconds,
        all.len() as f64 / args.seconds as f64,
        failures,
        percentile(&all, 0.5),
        percentile(&all, 0.9),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
    );
    Ok(())
}
