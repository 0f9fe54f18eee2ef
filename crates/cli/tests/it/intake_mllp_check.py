"""Sends every corpus HL7 v2 message to a running Meridian over MLLP with python-hl7's
MLLPClient (an unchanged client library, as a hospital's interface engine would), and checks
each acknowledgement and the FHIR resources the accepted ones produced; sends one again and
checks nothing was applied twice.

Usage: intake_mllp_check.py --mllp HOST:PORT --base URL --token TOKEN --corpus DIR
                            --expected FILE

The expected file (the intake's mapping test's, one line per message: `<file>[#n] AA|AE|AR
...` or `<file> unreadable: ...`) says which acknowledgement each message should get. Prints
the counts; exits 1 on any difference.
"""

import argparse
import json
import socket
import sys
import urllib.parse
import urllib.request

import hl7
from hl7.client import MLLPClient

START, END = b"\x0b", b"\x1c\x0d"


def fhir(base, token, path):
    request = urllib.request.Request(
        base + path, headers={"Authorization": "Bearer " + token, "Accept": "application/fhir+json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def count(base, token, resource_type, **params):
    query = urllib.parse.urlencode(dict(params, _summary="count"))
    return fhir(base, token, "/%s?%s" % (resource_type, query))["total"]


def frames_of(sock, wanted, timeout=30):
    """Reads `wanted` MLLP frames from the socket."""
    sock.settimeout(timeout)
    data, frames = b"", []
    while len(frames) < wanted:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while END in data:
            frame, data = data.split(END, 1)
            frames.append(frame.lstrip(START))
    return frames


def ack_of(frame):
    """(MSA-1, the ERR texts) of an acknowledgement."""
    text = frame.decode("utf-8", "replace").replace("\r\n", "\r").replace("\n", "\r")
    message = hl7.parse(text)
    msa = message.segment("MSA")
    errors = []
    for segment in message:
        if str(segment[0]) == "ERR":
            fields = [str(f) for f in segment]
            # v2.5+: ERR-8 the user's text; before: MSA-3 carries it.
            errors.append(fields[8] if len(fields) > 8 and fields[8] else "|".join(fields[1:]))
    if not errors and len(msa) > 3 and str(msa[3]):
        errors.append(str(msa[3]))
    return str(msa[1]), errors


def enhanced(message):
    """MSH-15 and MSH-16 (accept and application acknowledgement conditions), or None."""
    accept, application = field(message, "MSH", 15), field(message, "MSH", 16)
    if not accept and not application:
        return None
    return (accept or "AL", application or "AL")


def wants(condition, success):
    return condition == "AL" or (condition == "ER" and not success) or (condition == "SU" and success)


def answers_wanted(conditions, code):
    """How many acknowledgements a message asking `conditions` gets (the commit one, the
    application one; the application one alone when it asks for neither)."""
    if conditions is None:
        return 1
    commit = wants(conditions[0], code != "AR")
    application = wants(conditions[1], code == "AA")
    return max(1, int(commit) + int(application))


def application_or_commit(frames):
    """The application acknowledgement among those received, else the commit one."""
    for frame in frames:
        if ack_of(frame)[0] in ("AA", "AE", "AR"):
            return frame
    return frames[0]


def field(message, segment, number, component=1):
    """A field's component as text, or '' (python-hl7 indexes from 1, MSH fields as sent)."""
    try:
        found = message.segment(segment)
    except KeyError:
        return ""
    try:
        value = found[number]
    except IndexError:
        return ""
    text = str(value)
    parts = text.split("~")[0].split("^")
    return parts[component - 1] if len(parts) >= component else ""


def parsed(raw):
    text = raw.decode("utf-8", "replace").lstrip("\ufeff").replace("\r\n", "\r").replace("\n", "\r")
    return hl7.parse(text.strip("\r"))


def check_resources(base, token, raw, event, failures, name):
    """What an accepted message must have produced, found by its own identifiers."""
    message = parsed(raw)
    kind = event.split("^")[0]
    mrn = field(message, "PID", 3)
    if kind in ("ADT", "ORU", "ORM", "OML", "VXU", "SIU", "MDM", "OUL") and mrn:
        if count(base, token, "Patient", identifier=mrn) < 1:
            failures.append("%s: no Patient with identifier %s" % (name, mrn))
    checks = {
        "ORU": ("DiagnosticReport", field(message, "OBR", 3) or field(message, "OBR", 2)),
        "MDM": ("DocumentReference", field(message, "TXA", 12)),
        "SIU": ("Appointment", field(message, "SCH", 2) or field(message, "SCH", 1)),
        "ORM": ("ServiceRequest", field(message, "ORC", 2) or field(message, "OBR", 2)),
        "OML": ("ServiceRequest", field(message, "ORC", 2) or field(message, "OBR", 2)),
    }
    if kind in checks:
        resource_type, identifier = checks[kind]
        if identifier and count(base, token, resource_type, identifier=identifier) < 1:
            failures.append("%s: no %s with identifier %s" % (name, resource_type, identifier))
    if kind == "VXU" and count(base, token, "Immunization") < 1:
        failures.append("%s: no Immunization" % name)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mllp", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--expected", required=True)
    args = parser.parse_args()
    host, port = args.mllp.rsplit(":", 1)
    port = int(port)

    expected = {}
    for line in open(args.expected, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        name, rest = line.split(" ", 1)
        code = "AE" if rest.startswith("unreadable") else rest.split(" ", 1)[0]
        event = rest.split(" ")[1] if code == "AA" else ""
        expected.setdefault(name.split("#")[0], []).append((code, event))

    failures, tally = [], {}
    resend = None
    for name in sorted(expected):
        raw = open("%s/%s" % (args.corpus, name), "rb").read()
        wanted = expected[name]
        if len(wanted) == 1:
            # One message per frame: python-hl7's client sends it; the acknowledgements it
            # asked for (MSH-15/16) come back on the same connection.
            conditions = enhanced(parsed(raw))
            with MLLPClient(host, port) as client:
                client.socket.settimeout(30)
                client.socket.sendall(START + raw + END)
                frames = frames_of(client.socket, answers_wanted(conditions, wanted[0][0]))
            frames = [application_or_commit(frames)] if frames else []
        else:
            # A batch or file envelope: one acknowledgement per message inside.
            with socket.create_connection((host, port)) as sock:
                sock.sendall(START + raw + END)
                frames = frames_of(sock, len(wanted))
        if len(frames) != len(wanted):
            failures.append("%s: %d acknowledgements for %d messages" % (name, len(frames), len(wanted)))
            continue
        for (code, event), frame in zip(wanted, frames):
            got, errors = ack_of(frame)
            tally[got] = tally.get(got, 0) + 1
            # Only a commit acknowledgement asked for: CA says applied or kept, CR refused.
            commit = {"CA": ("AA", "AE"), "CR": ("AR",)}
            if got in commit and code in commit[got]:
                got = code
            if got != code:
                failures.append("%s: %s expected, %s received (%s)" % (name, code, got, errors))
            elif code in ("AE", "AR") and not any(e.strip() for e in errors):
                failures.append("%s: %s without a reason" % (name, code))
            elif code == "AA" and len(wanted) == 1:
                check_resources(args.base, args.token, raw, event, failures, name)
                if resend is None and event.startswith("ADT^A01"):
                    resend = (name, raw)

    # Sent again: acknowledged, and nothing new written.
    if resend is None:
        failures.append("no ADT^A01 was accepted, so none was sent again")
    else:
        name, raw = resend
        mrn = field(parsed(raw), "PID", 3)
        before = fhir(args.base, args.token, "/Patient?identifier=%s" % urllib.parse.quote(mrn))
        patients_before = [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in before.get("entry", [])]
        encounters_before = count(args.base, args.token, "Encounter")
        with MLLPClient(host, port) as client:
            client.socket.settimeout(30)
            got, errors = ack_of(client.send_message(raw).strip(START).split(END)[0])
        after = fhir(args.base, args.token, "/Patient?identifier=%s" % urllib.parse.quote(mrn))
        patients_after = [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in after.get("entry", [])]
        if got != "AA":
            failures.append("the resend of %s got %s (%s)" % (name, got, errors))
        if patients_after != patients_before:
            failures.append("the resend of %s changed its Patients: %s -> %s" % (name, patients_before, patients_after))
        if count(args.base, args.token, "Encounter") != encounters_before:
            failures.append("the resend of %s wrote another Encounter" % name)
        print("resent %s: %s, Patients %s unchanged" % (name, got, patients_after))

    print("acknowledgements: " + " ".join("%s=%d" % kv for kv in sorted(tally.items())))
    for failure in failures:
        print("FAIL " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
