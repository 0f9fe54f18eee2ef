"""100 simulated village kiosks publish 10,000 readings to a running Meridian over MQTT with
paho-mqtt (an unchanged client library), as docs/intake.md says a kiosk does: uploads signed
as a JWS (HS256, `kid` the Device id) with the secret the platform issued the device, on
`meridian/kiosk/<device>/readings`, answered on `meridian/kiosk/<device>/ack`. Some kiosks
were offline and send hours of readings at once in shuffled order, some uploads are sent
twice, some readings are invalid (impossible values, unknown units, unknown residents), and
some are critical. Then checks, over FHIR: every valid reading is an Observation exactly once
with the time it was measured, every invalid one was refused with a reason, and every
critical one raised an alert (a chronic-alert Communication identified by its Observation).

Usage: intake_mqtt_check.py --broker HOST:PORT --base URL --token TOKEN
Prints `refused=N` (the kept readings the caller checks) and the counts; exits 1 on any
difference.
"""

import argparse
import base64
import hashlib
import hmac
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import http.server

import paho.mqtt.client as mqtt

KIOSKS, READINGS, PER_UPLOAD = 100, 10_000, 10
ALERT_SYSTEM = "https://meridian.example/sid/chronic-alert"
TOPIC = "https://meridian.example/fhir/SubscriptionTopic/chronic-alert"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


def receiver():
    """A rest-hook endpoint: records (arrival time, Bundle) of every notification posted."""
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((time.time(), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def notified(bundle):
    """(notification type, the focus references) of a notification Bundle (id-only: the
    focus of each `notification-event` of its status)."""
    status = bundle["entry"][0]["resource"]
    parameters = status.get("parameter", [])
    kind = next((p["valueCode"] for p in parameters if p["name"] == "type"), "")
    focus = [
        part["valueReference"]["reference"]
        for p in parameters if p["name"] == "notification-event"
        for part in p.get("part", []) if part["name"] == "focus"
    ]
    return kind, focus


def call(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={
            "Authorization": "Bearer " + token,
            "Accept": "application/fhir+json",
            "Content-Type": "application/fhir+json",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(device, secret, payload):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": device}).encode())
    body = b64(json.dumps(payload, ensure_ascii=False).encode())
    signature = hmac.new(secret, (header + "." + body).encode(), hashlib.sha256).digest()
    return header + "." + body + "." + b64(signature)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--run", default=str(random.randrange(1 << 30)))
    args = parser.parse_args()
    rng = random.Random(7)
    failures = []

    # The region's village clinics and residents, as the platform lists them.
    clinics = [
        e["resource"]["owner"]["reference"]
        for e in call(args.base, args.token, "GET", "/Device?_count=200").get("entry", [])
        if "owner" in e["resource"]
    ]
    residents = []
    page = call(args.base, args.token, "GET", "/Patient?_count=500&_elements=identifier")
    for entry in page.get("entry", []):
        for identifier in entry["resource"].get("identifier", []):
            if identifier["system"] == "urn:oid:2.16.156.10011.1.3":
                residents.append((entry["resource"]["id"], identifier["value"]))
    assert clinics and len(residents) >= 100, (clinics, len(residents))

    # 100 kiosks registered as Devices, each issued its own secret.
    kiosks = []
    for n in range(KIOSKS):
        device = "kiosk-test-%s-%03d" % (args.run, n)
        call(args.base, args.token, "PUT", "/Device/" + device, {
            "resourceType": "Device", "id": device, "status": "active",
            "owner": {"reference": clinics[n % len(clinics)]},
            "deviceName": [{"name": "simulated kiosk %d" % n, "type": "user-friendly-name"}],
        })
        answer = call(args.base, args.token, "POST", "/Device/%s/$issue-secret" % device, {
            "resourceType": "Parameters"})
        secret = base64.urlsafe_b64decode(answer["parameter"][0]["valueString"] + "==")
        kiosks.append((device, secret))

    # The family doctors' system subscribes to the chronic-alert topic (rest-hook).
    hook, notifications = receiver()
    call(args.base, args.token, "PUT", "/Subscription/alerts-" + args.run, {
        "resourceType": "Subscription", "id": "alerts-" + args.run, "status": "requested",
        "reason": "critical readings", "criteria": TOPIC,
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:%d/hook" % hook.server_port,
                    "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": "id-only"}]}},
    })
    deadline = time.time() + 30
    while not any(notified(b)[0] == "handshake" for _, b in notifications) and time.time() < deadline:
        time.sleep(0.2)
    if not any(notified(b)[0] == "handshake" for _, b in notifications):
        failures.append("the alert subscription got no handshake")

    # The readings: per kiosk 100, some invalid, some critical, offline kiosks' hours old.
    now = time.time()
    expected = {}  # (device, reading id) -> "valid" | "invalid" | "critical"
    uploads = []
    for index, (device, secret) in enumerate(kiosks):
        offline = index % 5 == 0
        readings = []
        for r in range(READINGS // KIOSKS):
            patient, number = residents[rng.randrange(len(residents))]
            hours_ago = rng.uniform(2, 30) if offline else rng.uniform(0, 0.5)
            measured = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(now - hours_ago * 3600 + 8 * 3600))
            reading = {"id": "r%03d" % r, "resident": {"idNumber": number}, "measured": measured}
            roll = rng.random()
            if roll < 0.01:
                reading.update(type="blood-pressure", systolic=30, diastolic=200)  # impossible
                kind = "invalid"
            elif roll < 0.02:
                reading.update(type="glucose", value=5.5, unit="mg%")  # unknown unit
                kind = "invalid"
            elif roll < 0.03:
                reading["resident"] = {"idNumber": "110101190001010015"}  # no such resident
                reading.update(type="heart-rate", value=70)
                kind = "invalid"
            elif roll < 0.045:
                reading.update(type="blood-pressure", systolic=rng.randint(180, 210), diastolic=rng.randint(95, 125))
                kind = "critical"
            elif roll < 0.055:
                reading.update(type="glucose", value=round(rng.uniform(16.8, 25.0), 1), unit="mmol/L")
                kind = "critical"
            elif roll < 0.5:
                reading.update(type="blood-pressure", systolic=rng.randint(105, 165), diastolic=rng.randint(65, 99))
                kind = "valid"
            elif roll < 0.7:
                reading.update(type="glucose", value=round(rng.uniform(4.2, 12.0), 1), unit="mmol/L")
                kind = "valid"
            elif roll < 0.8:
                reading.update(type="spo2", value=rng.randint(92, 100), unit="%")
                kind = "valid"
            elif roll < 0.9:
                reading.update(type="weight", value=round(rng.uniform(40, 90), 1), unit="kg")
                kind = "valid"
            else:
                reading.update(type="heart-rate", value=rng.randint(55, 110), unit="/min")
                kind = "valid"
            expected[(device, reading["id"])] = (kind, measured)
            readings.append(reading)
        if offline:
            # Hours offline: everything at once, in no particular order.
            rng.shuffle(readings)
            uploads.append((device, secret, readings))
        else:
            for i in range(0, len(readings), PER_UPLOAD):
                uploads.append((device, secret, readings[i:i + PER_UPLOAD]))
    # Some uploads sent again (a lost acknowledgement), after everything else.
    resent = [uploads[i] for i in rng.sample(range(len(uploads)), len(uploads) // 20)]

    acks, lock, all_acked = [], threading.Lock(), threading.Event()
    total = len(uploads) + len(resent)

    def on_message(client, userdata, message):
        with lock:
            acks.append((message.topic.split("/")[2], json.loads(message.payload)))
            if len(acks) >= total:
                all_acked.set()

    host, port = args.broker.rsplit(":", 1)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kiosks-%s" % args.run)
    client.on_message = on_message
    client.connect(host, int(port))
    for device, _ in kiosks:
        client.subscribe("meridian/kiosk/%s/ack" % device, qos=1)
    client.loop_start()
    time.sleep(1)
    started = time.time()
    published = {}  # (device, reading id) -> when its upload was published
    for device, secret, readings in uploads + resent:
        payload = {"device": device, "readings": readings}
        for reading in readings:
            published.setdefault((device, reading["id"]), time.time())
        client.publish("meridian/kiosk/%s/readings" % device, sign(device, secret, payload), qos=1).wait_for_publish()
    if not all_acked.wait(300):
        failures.append("%d of %d uploads acknowledged" % (len(acks), total))
    elapsed = time.time() - started
    client.loop_stop()

    # A kiosk without MQTT posts the same kind of upload over HTTP(S).
    device, secret = kiosks[1]
    patient, number = residents[0]
    upload = {"device": device, "readings": [
        {"id": "https-1", "resident": {"idNumber": number}, "measured": "2026-12-01T09:00:00+08:00",
         "type": "blood-pressure", "systolic": 128, "diastolic": 82, "unit": "mm[Hg]"},
        {"id": "https-2", "resident": {"idNumber": number}, "measured": "2026-12-01T09:01:00+08:00",
         "type": "temperature", "value": 52, "unit": "Cel"},
    ]}
    def post(body):
        request = urllib.request.Request(args.base.rsplit("/fhir", 1)[0] + "/intake/readings", data=body.encode(),
                                         method="POST", headers={"Content-Type": "application/jose"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
    status, answer = post(sign(device, secret, upload))
    statuses = [r["status"] for r in answer.get("readings", [])]
    if status != 200 or statuses != ["accepted", "refused"]:
        failures.append("HTTPS upload: %s %s" % (status, answer))
    forged = sign(device, b"not the secret", upload)
    if post(forged)[0] != 401:
        failures.append("a forged upload was not refused with 401")
    if post("not a jws")[0] not in (400, 401):
        failures.append("a malformed upload was not refused")
    expected[(device, "https-1")] = ("valid", upload["readings"][0]["measured"])
    expected[(device, "https-2")] = ("invalid", "")
    over_https = (device, answer.get("readings", []))

    # Every reading's answer: the valid ones accepted once (duplicates only when resent), the
    # invalid ones refused with a reason.
    accepted, duplicate, refused = {}, 0, set()
    for device, answer in acks:
        if answer.get("status") != "ok":
            failures.append("%s: upload refused: %s" % (device, answer))
            continue
        for reading in answer["readings"]:
            kind, _ = expected[(device, reading["id"])]
            status = reading["status"]
            if kind == "invalid":
                if status != "refused" or not reading.get("reason"):
                    failures.append("%s/%s: invalid but %s" % (device, reading["id"], reading))
                refused.add((device, reading["id"]))
            elif status == "accepted":
                if (device, reading["id"]) in accepted:
                    failures.append("%s/%s accepted twice" % (device, reading["id"]))
                accepted[(device, reading["id"])] = reading["observation"]
            elif status == "duplicate":
                duplicate += 1
                if accepted.get((device, reading["id"]), reading["observation"]) != reading["observation"]:
                    failures.append("%s/%s: a duplicate names another Observation" % (device, reading["id"]))
            else:
                failures.append("%s/%s: valid but %s" % (device, reading["id"], reading))
    for reading in over_https[1]:
        if reading["status"] == "accepted":
            accepted[(over_https[0], reading["id"])] = reading["observation"]
        elif reading["status"] == "refused":
            refused.add((over_https[0], reading["id"]))
    valid = {key for key, (kind, _) in expected.items() if kind != "invalid"}
    invalid = set(expected) - valid
    if refused != invalid:
        failures.append("%d invalid readings, %d refused" % (len(invalid), len(refused)))
    missing = valid - set(accepted)
    if missing:
        failures.append("%d valid readings never accepted, e.g. %s" % (len(missing), sorted(missing)[:3]))

    # Over FHIR: exactly one Observation per valid reading, per kiosk, at its measured time.
    stored = 0
    for device, _ in kiosks:
        found = call(args.base, args.token, "GET", "/Observation?device=Device/%s&_summary=count" % device)["total"]
        wanted = sum(1 for (d, _) in valid if d == device)
        stored += found
        if found != wanted:
            failures.append("%s: %d Observations for %d valid readings" % (device, found, wanted))
    for key in rng.sample(sorted(accepted), 50):
        observation = call(args.base, args.token, "GET", "/" + accepted[key])
        if observation.get("effectiveDateTime") != expected[key][1]:
            failures.append("%s: effective %s, measured %s" % (accepted[key], observation.get("effectiveDateTime"), expected[key][1]))

    # Every critical reading raised one alert to the resident's family doctor (or their
    # institution), within the wait.
    critical = [accepted[key] for key, (kind, _) in expected.items() if kind == "critical" and key in accepted]
    deadline, alerted = time.time() + 120, {}
    while time.time() < deadline:
        for observation in critical:
            if observation in alerted:
                continue
            identifier = "%s|%s" % (ALERT_SYSTEM, observation.split("/")[1])
            bundle = call(args.base, args.token, "GET", "/Communication?identifier=" + urllib.parse.quote(identifier))
            if bundle.get("total", len(bundle.get("entry", []))) >= 1:
                alerted[observation] = len(bundle.get("entry", []))
        if len(alerted) == len(critical):
            break
        time.sleep(1)
    if len(alerted) != len(critical):
        failures.append("%d of %d critical readings raised an alert" % (len(alerted), len(critical)))

    # Each alert reached the subscriber through the chronic-alert topic: the time from the
    # upload's publication to the notification's arrival.
    alert_of = {}
    for key, (kind, _) in expected.items():
        if kind == "critical" and key in accepted:
            identifier = "%s|%s" % (ALERT_SYSTEM, accepted[key].split("/")[1])
            bundle = call(args.base, args.token, "GET", "/Communication?identifier=" + urllib.parse.quote(identifier))
            for entry in bundle.get("entry", []):
                alert_of["Communication/" + entry["resource"]["id"]] = key
    deadline = time.time() + 60
    arrived = {}
    while time.time() < deadline:
        for at, bundle in list(notifications):
            kind, focus = notified(bundle)
            if kind != "event-notification":
                continue
            for url in focus:
                reference = "/".join(url.split("/")[-2:])
                if reference in alert_of and reference not in arrived:
                    arrived[reference] = at - published[alert_of[reference]]
        if len(arrived) >= len(alert_of):
            break
        time.sleep(0.5)
    hook.shutdown()
    if len(arrived) != len(alert_of) or not alert_of:
        failures.append("%d of %d alerts were notified to the subscriber" % (len(arrived), len(alert_of)))
    delays = sorted(arrived.values()) or [float("nan")]
    if any(n != 1 for n in alerted.values()):
        failures.append("a critical reading raised more than one alert")

    print("readings=%d uploads=%d resent=%d accepted=%d duplicates=%d refused=%d stored=%d critical=%d alerts=%d notified=%d seconds=%.1f"
          % (len(expected), len(uploads), len(resent), len(accepted), duplicate, len(refused), stored, len(critical), len(alerted), len(arrived), elapsed))
    print("upload published -> alert notified: median %.2f s, max %.2f s" % (delays[len(delays) // 2], delays[-1]))
    for failure in failures[:40]:
        print("FAIL " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
