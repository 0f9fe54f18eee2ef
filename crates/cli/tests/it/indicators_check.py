"""Every catalogue indicator recomputed straight from the region's NDJSON files, without
Meridian's views or SQL: the resources' own elements, read here with plain Python.

    indicators_check.py NDJSON_DIR PERIOD_START PERIOD_END

Prints one JSON object: for each indicator, its populations' counts, each stratifier's strata
with their counts, the median observation (continuous variables) and the members of the
numerator (or of the initial population for counts).
"""

import datetime
import json
import os
import statistics
import sys
from collections import defaultdict

NDJSON, PS, PE = sys.argv[1], sys.argv[2], sys.argv[3]
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LEVEL = "https://meridian.example/CodeSystem/institution-level"
PROGRAMME = "https://meridian.example/CodeSystem/chronic-disease-program"
DIRECTION = "https://meridian.example/CodeSystem/referral-direction"
WORKFLOW = "https://meridian.example/CodeSystem/workflow"
RECORD = "https://meridian.example/sid/health-record-number"
HEALTH_CARD = "https://meridian.example/sid/e-health-card"
USCC = "https://meridian.example/sid/uscc"
GRASSROOTS = {"village-clinic", "township-health-center"}


def load(kind):
    path = os.path.join(NDJSON, kind + ".ndjson")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ref(reference, kind):
    text = (reference or {}).get("reference", "")
    return text.split("/", 1)[1] if text.startswith(kind + "/") else None


def first_code(concepts, system):
    if isinstance(concepts, dict):
        concepts = [concepts]
    for concept in concepts or []:
        for coding in concept.get("coding", []):
            if coding.get("system") == system:
                return coding.get("code")
    return None


def identifier(resource, system):
    for ident in resource.get("identifier", []):
        if ident.get("system") == system:
            return ident.get("value")
    return None


def in_period(text):
    return text is not None and PS <= text[:10] <= PE


def months():
    (y1, m1), (y2, m2) = (int(PS[:4]), int(PS[5:7])), (int(PE[:4]), int(PE[5:7]))
    return (y2 * 12 + m2) - (y1 * 12 + m1) + 1


def age(birth, on):
    if not birth or not on:
        return None
    b, o = birth[:10].split("-"), on[:10].split("-")
    years = int(o[0]) - int(b[0])
    if len(b) > 1 and len(o) > 1:
        bm, om = int(b[1]), int(o[1])
        if om < bm or (om == bm and len(b) > 2 and len(o) > 2 and int(o[2]) < int(b[2])):
            years -= 1
    return years if years >= 0 else None


def band(years):
    if years is None:
        return None
    return "0-14" if years < 15 else "15-44" if years < 45 else "45-64" if years < 65 else "65+"


def utc_days(text):
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() / 86400.0


organizations = {}
for org in load("Organization"):
    uscc = identifier(org, USCC)
    organizations[org["id"]] = {
        "level": first_code(org.get("type"), LEVEL),
        "county_code": uscc[2:8] if uscc else None,
    }

patients = {}
for p in load("Patient"):
    home = [a for a in p.get("address", []) if a.get("use") == "home"]
    record = identifier(p, RECORD)
    patients[p["id"]] = {
        "sex": p.get("gender"),
        "birth": p.get("birthDate"),
        "county": home[0].get("district") if home else None,
        "county_code": record[:6] if record else None,
        "keeper": ref(p.get("managingOrganization"), "Organization"),
        "record": record is not None,
        "card": identifier(p, HEALTH_CARD) is not None,
        "deceased": p.get("deceasedBoolean") is True or "deceasedDateTime" in p,
    }

encounters = {}
for e in load("Encounter"):
    based_on = [ref(r, "ServiceRequest") for r in e.get("basedOn", [])]
    encounters[e["id"]] = {
        "patient": ref(e.get("subject"), "Patient"),
        "institution": ref(e.get("serviceProvider"), "Organization"),
        "status": e.get("status"),
        "class": (e.get("class") or {}).get("code"),
        "type": first_code(e.get("type"), SNOMED),
        "start": (e.get("period") or {}).get("start"),
        "referral": next((r for r in based_on if r), None),
    }

episodes = []
for ep in load("EpisodeOfCare"):
    programme = first_code(ep.get("type"), PROGRAMME)
    if programme:
        episodes.append({
            "patient": ref(ep.get("patient"), "Patient"),
            "programme": programme,
            "status": ep.get("status"),
            "start": (ep.get("period") or {}).get("start"),
            "end": (ep.get("period") or {}).get("end"),
        })

results = {}


def tally(name, members, stratifiers, flags, observation=None):
    """members: dicts with the flags, the strata and 'subject'."""
    populations = {flag: sum(1 for m in members if m[flag]) for flag in flags}
    strata = {}
    for stratifier in stratifiers:
        counts = defaultdict(lambda: {flag: 0 for flag in flags})
        for m in members:
            value = m[stratifier]
            key = "unknown" if value is None else str(value)
            for flag in flags:
                counts[key][flag] += 1 if m[flag] else 0
        strata[stratifier] = dict(counts)
    listed = flags[-1]
    out = {
        "populations": populations,
        "strata": strata,
        "members": sorted(m["subject"] for m in members if m[listed]),
    }
    if observation:
        values = [m[observation] for m in members if m[observation] is not None]
        out["observations"] = len(values)
        out["median"] = statistics.median(values) if values else None
    results[name] = out


PROPORTION = ["initial-population", "denominator", "numerator"]


def proportion(rows):
    for r in rows:
        r["initial-population"] = True
        r["denominator"] = True
    return rows


def visit_strata(p, start):
    return {"county": p["county"], "month": start[:7], "sex": p["sex"],
            "age band": band(age(p["birth"], start[:10]))}


# Grassroots first diagnosis.
rows = []
for eid, e in encounters.items():
    p = patients.get(e["patient"])
    if (p is None or not in_period(e["start"]) or e["status"] in ("cancelled", "entered-in-error")
            or e["class"] not in ("AMB", "EMER") or e["referral"]
            or (e["type"] or "") in ("390906007", "162673000")):
        continue
    level = organizations.get(e["institution"], {}).get("level")
    rows.append({"subject": "Encounter/" + eid, "numerator": level in GRASSROOTS,
                 **visit_strata(p, e["start"])})
tally("grassroots-first-diagnosis", proportion(rows), ["county", "month", "sex", "age band"], PROPORTION)

# In-county diagnosis.
rows = []
for eid, e in encounters.items():
    p = patients.get(e["patient"])
    if (p is None or p["county_code"] is None or not in_period(e["start"])
            or e["status"] in ("cancelled", "entered-in-error")):
        continue
    org = organizations.get(e["institution"], {})
    rows.append({"subject": "Encounter/" + eid,
                 "numerator": org.get("county_code") == p["county_code"],
                 **visit_strata(p, e["start"])})
tally("in-county-diagnosis", proportion(rows), ["county", "month", "sex", "age band"], PROPORTION)

# Referrals up and down.
rows = []
for sr in load("ServiceRequest"):
    direction = first_code(sr.get("category"), DIRECTION)
    if direction is None or not in_period(sr.get("authoredOn")):
        continue
    if sr.get("status") in ("revoked", "entered-in-error"):
        continue
    visit = encounters.get(ref(sr.get("encounter"), "Encounter"))
    source = visit["institution"] if visit else None
    target = next((ref(r, "Organization") for r in sr.get("performer", [])
                   if ref(r, "Organization")), None)
    p = patients.get(ref(sr.get("subject"), "Patient"), {})
    rows.append({
        "subject": "ServiceRequest/" + sr["id"], "initial-population": True,
        "direction": direction, "from institution": source,
        "from level": organizations.get(source, {}).get("level"),
        "to institution": target, "to level": organizations.get(target, {}).get("level"),
        "county": p.get("county"), "month": sr["authoredOn"][:7],
    })
tally("referrals", rows, ["county", "month", "direction", "from institution", "from level",
                          "to institution", "to level"], ["initial-population"])


def resident_strata(pid):
    p = patients[pid]
    return {"county": p["county"], "institution": p["keeper"], "sex": p["sex"],
            "age band": band(age(p["birth"], PE))}


def enrolled(programmes, whole_period=False):
    out = set()
    for ep in episodes:
        if ep["programme"] not in programmes or ep["status"] == "entered-in-error":
            continue
        start, end = ep["start"], ep["end"]
        if whole_period:
            if start and start[:10] <= PS and (end is None or end[:10] >= PE):
                out.add(ep["patient"])
        elif start and start[:10] <= PE and (end is None or end[:10] >= PS):
            out.add(ep["patient"])
    return out


conditions = load("Condition")
PEOPLE = ["county", "institution", "sex", "age band"]
for name, low, high, programme in [("hypertension", "I10", "I15", "hypertension"),
                                   ("diabetes", "E11", "E11", "type-2-diabetes")]:
    diagnosed = set()
    for c in conditions:
        code = first_code(c.get("code"), ICD10)
        if code is None or not (low <= code.replace(".", "").upper()[:3] <= high):
            continue
        status = next((cd.get("code") for cd in (c.get("clinicalStatus") or {}).get("coding", [])), None)
        if (status or "active") not in ("active", "recurrence", "relapse"):
            continue
        if (c.get("onsetDateTime") or c.get("recordedDate") or "")[:10] > PE:
            continue
        diagnosed.add(ref(c.get("subject"), "Patient"))
    members = enrolled({programme})
    rows = [{"subject": "Patient/" + pid, "numerator": pid in members, **resident_strata(pid)}
            for pid in diagnosed if pid in patients]
    tally(name + "-management", proportion(rows), PEOPLE, PROPORTION)

observations = load("Observation")


def component(obs, code):
    for comp in obs.get("component", []):
        if first_code(comp.get("code"), LOINC) == code and "valueQuantity" in comp:
            return comp["valueQuantity"].get("value")
    return None


def last_readings(programme, reading):
    """For each resident enrolled in `programme` during the period, the last of their
    Observations in the period that `reading` makes a value of (None: not a reading), as
    ((when, id), value)."""
    members = enrolled({programme})
    last = {}
    for obs in observations:
        value = reading(obs)
        if value is None:
            continue
        pid, when = ref(obs.get("subject"), "Patient"), obs.get("effectiveDateTime")
        if pid not in members or not in_period(when):
            continue
        key = (when, obs["id"])
        if pid not in last or key > last[pid][0]:
            last[pid] = (key, value)
    return last


def blood_pressure(obs):
    codes = [(c.get("system"), c.get("code")) for c in (obs.get("code") or {}).get("coding", [])]
    return obs if (LOINC, "85354-9") in codes else None


def glucose_mmol(obs):
    if first_code(obs.get("code"), LOINC) not in ("14771-0", "14743-9"):
        return None
    quantity = obs.get("valueQuantity") or {}
    value, unit = quantity.get("value"), quantity.get("code")
    if value is None or (unit or "mmol/L") not in ("mmol/L", "mg/dL"):
        return None
    return value / 18.0 if unit == "mg/dL" else value


# Hypertension control: the last reading in the period of those enrolled.
rows = []
for pid, ((when, _), obs) in last_readings("hypertension", blood_pressure).items():
    if pid not in patients:
        continue
    years = age(patients[pid]["birth"], when[:10])
    limit = 150 if years is not None and years >= 65 else 140
    controlled = (component(obs, "8480-6") or 0) < limit and (component(obs, "8462-4") or 0) < 90
    rows.append({"subject": "Patient/" + pid, "numerator": controlled, **resident_strata(pid)})
tally("hypertension-control", proportion(rows), PEOPLE, PROPORTION)

# Diabetes control.
rows = [{"subject": "Patient/" + pid, "numerator": 3.9 < mmol < 7.0, **resident_strata(pid)}
        for pid, (_, mmol) in last_readings("type-2-diabetes", glucose_mmol).items()
        if pid in patients]
tally("diabetes-control", proportion(rows), PEOPLE, PROPORTION)

# Chronic follow-up: a follow-up visit per three months of the period.
visits = defaultdict(int)
for e in encounters.values():
    if (e["type"] == "390906007" and e["status"] not in ("cancelled", "entered-in-error")
            and in_period(e["start"])):
        visits[e["patient"]] += 1
rows = [{"subject": "Patient/" + pid, "numerator": visits[pid] * 3 >= months(),
         **resident_strata(pid)}
        for pid in enrolled({"hypertension", "type-2-diabetes"}, whole_period=True) if pid in patients]
tally("chronic-follow-up", proportion(rows), PEOPLE, PROPORTION)

# Record coverage and health-code use.
for name, flag in [("record-coverage", "record"), ("health-code-use", "card")]:
    rows = [{"subject": "Patient/" + pid, "numerator": p[flag], **resident_strata(pid)}
            for pid, p in patients.items()
            if not p["deceased"] and (p["birth"] is None or p["birth"][:10] <= PE)]
    tally(name, proportion(rows), PEOPLE, PROPORTION)

# Duplicate exams: the same exam for the same resident in the 30 days before.
orders = []
for sr in load("ServiceRequest"):
    codes = [(c.get("system"), c.get("code")) for concept in sr.get("category", [])
             for c in concept.get("coding", [])]
    if (SNOMED, "363679005") not in codes or sr.get("status") in ("revoked", "entered-in-error"):
        continue
    if not sr.get("authoredOn"):
        continue
    orders.append({
        "id": sr["id"], "patient": ref(sr.get("subject"), "Patient"),
        "code": first_code(sr.get("code"), LOINC), "authored": sr["authoredOn"],
        "day": utc_days(sr["authoredOn"]),
        "performer": next((ref(r, "Organization") for r in sr.get("performer", [])
                           if ref(r, "Organization")), None),
    })
rows = []
for o in orders:
    if not in_period(o["authored"]):
        continue
    repeat = any(e["patient"] is not None and e["patient"] == o["patient"]
                 and e["code"] is not None and e["code"] == o["code"] and e["id"] != o["id"]
                 and o["day"] - 30 <= e["day"] < o["day"] for e in orders)
    rows.append({"subject": "ServiceRequest/" + o["id"], "numerator": repeat,
                 "institution": o["performer"],
                 "level": organizations.get(o["performer"], {}).get("level"),
                 "county": patients.get(o["patient"], {}).get("county"),
                 "month": o["authored"][:7]})
tally("duplicate-exam", proportion(rows), ["institution", "level", "county", "month"], PROPORTION)

# Remote consultations and reads.
tasks = load("Task")
for name, kind in [("remote-consultations", "consultation"), ("remote-reads", "remote-reading")]:
    rows = []
    for t in tasks:
        if first_code(t.get("code"), WORKFLOW) != kind or not in_period(t.get("authoredOn")):
            continue
        if t.get("status") == "entered-in-error":
            continue
        inputs = [i.get("valueReference", {}).get("reference", "") for i in t.get("input", [])]
        modality = ("ecg" if any(r.startswith("Observation/") for r in inputs)
                    else "imaging" if any(r.startswith("ImagingStudy/") for r in inputs) else "other")
        turnaround = None
        if t.get("status") == "completed" and t.get("lastModified"):
            turnaround = round((utc_days(t["lastModified"]) - utc_days(t["authoredOn"])) * 1440, 1)
        recipient = next((ref(r, "Organization") for r in (t.get("restriction") or {}).get("recipient", [])
                          if ref(r, "Organization")), None)
        rows.append({"subject": "Task/" + t["id"], "initial-population": True,
                     "measure-population": True, "turnaround": turnaround,
                     "institution": recipient,
                     "level": organizations.get(recipient, {}).get("level"),
                     "month": t["authoredOn"][:7], "modality": modality,
                     "status": t.get("status")})
    strata = ["institution", "level", "month"] + (["modality"] if kind == "remote-reading" else []) + ["status"]
    tally(name, rows, strata, ["initial-population", "measure-population"], "turnaround")

print(json.dumps(results, ensure_ascii=False))
