#!/usr/bin/env python3
"""An independent check of the chronic-disease service against a generated region.

Given the NDJSON export of a synthetic region (`meridian seed --out DIR`) and a server holding
the same region, this recomputes from the NDJSON alone, following the definitions written in
crates/chronic/src/lib.rs ("Definitions") and nothing of the service's code:

1. the registries: per programme, the patients that must have an active EpisodeOfCare (a
   qualifying Condition of an existing Patient), and that none has two;
2. the alerts: the Observations that are critical readings, each of which must have exactly
   one `Communication` (identifier, category, status, priority, recipients, meta.source);
3. for the date asked about, each active programme episode's follow-ups, last follow-up,
   next-due date, state (overdue / due / ok), uncontrolled flag and referral suggestion;

then asks the server (searches paged through the Bundle's `next` links; the
`EpisodeOfCare/$worklist` operation for the whole region, and for a few practitioners and
organisations) and compares set for set and field for field. Every difference is printed, one
line each, and the exit status is 1 when there is any (2 when the server cannot be asked).
The last line gives the counts compared.

    chronic_region_check.py --ndjson DIR --base http://127.0.0.1:PORT/fhir --date 2026-06-15
    chronic_region_check.py --ndjson DIR --expected-alerts     # the number of alerts expected

Python 3.11, standard library only.
"""

import argparse
import calendar
import collections
import datetime
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# ---------------------------------------------------------------------------------------------
# The definitions, transcribed (crates/chronic/src/lib.rs, "Definitions").

PROGRAM_SYSTEM = "https://meridian.example/CodeSystem/chronic-disease-program"
ALERT_SYSTEM = "https://meridian.example/CodeSystem/chronic-alert"
ALERT_CODE = "critical-reading"
ALERT_IDENTIFIER = "https://meridian.example/sid/chronic-alert"
HYPERTENSION = "hypertension"
DIABETES = "type-2-diabetes"
PROGRAMS = (HYPERTENSION, DIABETES)

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10_OID = "urn:oid:2.16.156.10011.2.3.3.11"
ICD10_PREFIXES = {
    HYPERTENSION: ("I10", "I11", "I12", "I13", "I14", "I15"),
    DIABETES: ("E11",),
}
SNOMED_CODES = {HYPERTENSION: {"38341003", "59621000"}, DIABETES: {"44054006"}}
CLINICAL_ACTIVE = {"active", "recurrence", "relapse"}
VERIFICATION_EXCLUDED = {"refuted", "entered-in-error"}

READING_STATUSES = {"preliminary", "final", "amended", "corrected"}
BP_PANEL = {"85354-9", "55284-4"}
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
GLUCOSE_KIND = {
    "1558-6": "fasting",
    "14771-0": "fasting",
    "14743-9": "capillary",
    "41653-7": "capillary",
    "2339-0": "random",
    "2345-7": "random",
    "15074-8": "random",
}
PRESSURE_UNITS = {"mm[Hg]": 1.0, "mmHg": 1.0, "kPa": 7.50062}
# mg/dL is divided by 18; mmol/L as it is.
GLUCOSE_UNITS = {"mmol/L": None, "mg/dL": 18.0}

CRITICAL_SYSTOLIC = 180
CRITICAL_DIASTOLIC = 110
CRITICAL_GLUCOSE_HIGH = 16.7
CRITICAL_GLUCOSE_LOW = 3.9
TARGET_SYSTOLIC = 140
TARGET_SYSTOLIC_OLDER = 150
OLDER_FROM_AGE = 65
TARGET_DIASTOLIC = 90
TARGET_GLUCOSE = 7.0

FOLLOW_UP_TYPE = "390906007"
INTERVAL_MONTHS = 3
RECALL_DAYS = 14

CRITICAL, UNCONTROLLED, CONTROLLED, NOT_ASSESSED = "critical", "uncontrolled", "controlled", None
STATE_ORDER = {"overdue": 0, "due": 1, "ok": 2}


# ---------------------------------------------------------------------------------------------
# Dates.


def day_of(text):
    """A `date`/`dateTime`'s calendar day: its first ten characters; partial dates are none."""
    if not isinstance(text, str) or len(text) < 10:
        return None
    head = text[:10]
    if head[4] != "-" or head[7] != "-":
        return None
    try:
        return datetime.date(int(head[:4]), int(head[5:7]), int(head[8:10]))
    except ValueError:
        return None


def add_months(day, months):
    """The same day of the month `months` later, or that month's last day when it is shorter."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return datetime.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def age_on(birth, day):
    """Whole years of age on `day` (a birthday counts from the day itself)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def selftest():
    """The arithmetic above, on the cases the definitions name; a wrong checker checks nothing."""
    d = datetime.date
    assert add_months(d(2025, 11, 30), 3) == d(2026, 2, 28)
    assert add_months(d(2023, 11, 30), 3) == d(2024, 2, 29)
    assert add_months(d(2025, 10, 31), 3) == d(2026, 1, 31)
    assert add_months(d(2025, 12, 15), 3) == d(2026, 3, 15)
    assert day_of("2025-03-03T23:30:00+08:00") == d(2025, 3, 3)
    assert day_of("2025-03") is None and day_of("2025") is None
    assert age_on(d(1960, 6, 15), d(2025, 6, 14)) == 64
    assert age_on(d(1960, 6, 15), d(2025, 6, 15)) == 65
    bp = {"kind": "bp", "systolic": 145.0, "diastolic": 85.0, "day": d(2025, 1, 1)}
    assert classify(bp, HYPERTENSION, d(1950, 1, 1)) == CONTROLLED  # 75: below 150/90
    assert classify(bp, HYPERTENSION, d(1970, 1, 1)) == UNCONTROLLED
    assert classify(bp, DIABETES, d(1970, 1, 1)) is NOT_ASSESSED
    glucose = {"kind": "glucose", "glucose_kind": "random", "value": 16.7, "day": None}
    assert classify(glucose, DIABETES, None) == CRITICAL
    glucose = {"kind": "glucose", "glucose_kind": "random", "value": 9.0, "day": None}
    assert classify(glucose, DIABETES, None) is NOT_ASSESSED
    glucose = {"kind": "glucose", "glucose_kind": "capillary", "value": 7.0, "day": None}
    assert classify(glucose, DIABETES, None) == UNCONTROLLED


# ---------------------------------------------------------------------------------------------
# Resources.


def ref_id(reference, resource_type):
    """`id` of a reference `{"reference": "Type/id"}` of `resource_type`, else None."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    parts = text.split("/")
    if len(parts) == 2 and parts[0] == resource_type and parts[1]:
        return parts[1]
    return None


def codings(concept):
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def has_code(concept, codes):
    return any(c.get("code") in codes for c in codings(concept))


def condition_programs(condition, patients):
    """The programmes a Condition enrols its patient in (an empty set when it enrols nobody)."""
    clinical = condition.get("clinicalStatus")
    if clinical is not None and not has_code(clinical, CLINICAL_ACTIVE):
        return set()
    if has_code(condition.get("verificationStatus"), VERIFICATION_EXCLUDED):
        return set()
    patient = ref_id(condition.get("subject"), "Patient")
    if patient is None or patient not in patients:
        return set()
    programs = set()
    for coding in codings(condition.get("code")):
        system, code = coding.get("system") or "", coding.get("code")
        if not isinstance(code, str):
            continue
        for program in PROGRAMS:
            if system == SNOMED and code in SNOMED_CODES[program]:
                programs.add(program)
            if "icd-10" in system or "icd10" in system or system == ICD10_OID:
                normal = code.upper().replace(".", "")
                if normal.startswith(ICD10_PREFIXES[program]):
                    programs.add(program)
    return programs


def quantity_value(quantity, units):
    """A valueQuantity in the unit its `code` names, else its `unit`; None when unknown.

    `units` maps a unit to a factor (multiply) or, for glucose in mg/dL, a divisor; pressure
    without any unit is mm[Hg]."""
    if not isinstance(quantity, dict):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    unit = quantity.get("code")
    if unit is None:
        unit = quantity.get("unit")
    if units is PRESSURE_UNITS:
        if unit is None:
            return float(value)
        factor = PRESSURE_UNITS.get(unit)
        return None if factor is None else float(value) * factor
    if unit not in GLUCOSE_UNITS:
        return None
    divisor = GLUCOSE_UNITS[unit]
    return float(value) if divisor is None else float(value) / divisor


def reading_of(observation):
    """An Observation read as a blood pressure or a glucose, or None."""
    if observation.get("status") not in READING_STATUSES:
        return None
    patient = ref_id(observation.get("subject"), "Patient")
    if patient is None:
        return None
    loinc = {c.get("code") for c in codings(observation.get("code")) if c.get("system") == LOINC}
    reading = {
        "id": observation.get("id"),
        "patient": patient,
        "encounter": ref_id(observation.get("encounter"), "Encounter"),
        "day": None,
    }
    for key in ("effectiveDateTime", "effectiveInstant"):
        if key in observation:
            reading["day"] = day_of(observation[key])
            break
    else:
        period = observation.get("effectivePeriod")
        if isinstance(period, dict):
            reading["day"] = day_of(period.get("start"))
    if loinc & BP_PANEL:
        systolic = diastolic = None
        for component in observation.get("component") or []:
            if not isinstance(component, dict):
                continue
            codes = {c.get("code") for c in codings(component.get("code")) if c.get("system") == LOINC}
            value = quantity_value(component.get("valueQuantity"), PRESSURE_UNITS)
            if SYSTOLIC in codes and systolic is None:
                systolic = value
            if DIASTOLIC in codes and diastolic is None:
                diastolic = value
        if systolic is None and diastolic is None:
            return None
        return dict(reading, kind="bp", systolic=systolic, diastolic=diastolic)
    if SYSTOLIC in loinc or DIASTOLIC in loinc:
        value = quantity_value(observation.get("valueQuantity"), PRESSURE_UNITS)
        if value is None:
            return None
        which = "systolic" if SYSTOLIC in loinc else "diastolic"
        other = "diastolic" if which == "systolic" else "systolic"
        return dict(reading, kind="bp", **{which: value, other: None})
    kinds = [GLUCOSE_KIND[code] for code in loinc if code in GLUCOSE_KIND]
    if kinds:
        value = quantity_value(observation.get("valueQuantity"), GLUCOSE_UNITS)
        if value is None:
            return None
        return dict(reading, kind="glucose", glucose_kind=sorted(kinds)[0], value=value)
    return None


def critical(reading):
    if reading["kind"] == "bp":
        systolic, diastolic = reading["systolic"], reading["diastolic"]
        return (systolic is not None and systolic >= CRITICAL_SYSTOLIC) or (
            diastolic is not None and diastolic >= CRITICAL_DIASTOLIC
        )
    return reading["value"] >= CRITICAL_GLUCOSE_HIGH or reading["value"] <= CRITICAL_GLUCOSE_LOW


def classify(reading, program, birth):
    """A reading's class for `program`: CRITICAL, UNCONTROLLED, CONTROLLED or NOT_ASSESSED.

    A reading of the other programme's measure is not assessed, critical or not."""
    if program == HYPERTENSION:
        if reading["kind"] != "bp":
            return NOT_ASSESSED
        if critical(reading):
            return CRITICAL
        older = (
            birth is not None
            and reading["day"] is not None
            and age_on(birth, reading["day"]) >= OLDER_FROM_AGE
        )
        systolic_limit = TARGET_SYSTOLIC_OLDER if older else TARGET_SYSTOLIC
        systolic, diastolic = reading["systolic"], reading["diastolic"]
        if (systolic is not None and systolic >= systolic_limit) or (
            diastolic is not None and diastolic >= TARGET_DIASTOLIC
        ):
            return UNCONTROLLED
        return CONTROLLED
    if reading["kind"] != "glucose":
        return NOT_ASSESSED
    if critical(reading):
        return CRITICAL
    if reading["glucose_kind"] not in ("fasting", "capillary"):
        return NOT_ASSESSED
    return UNCONTROLLED if reading["value"] >= TARGET_GLUCOSE else CONTROLLED


def out_of_control(klass):
    return klass in (CRITICAL, UNCONTROLLED)


def episode_program(episode):
    """The programme an EpisodeOfCare is of (its `type` in PROGRAM_SYSTEM), or None."""
    for concept in episode.get("type") or []:
        for coding in codings(concept):
            if coding.get("system") == PROGRAM_SYSTEM and coding.get("code") in PROGRAMS:
                return coding["code"]
    return None


class Region:
    """The NDJSON export, indexed for the definitions."""

    def __init__(self, directory):
        self.by_type = collections.defaultdict(dict)
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".ndjson"):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as lines:
                for line in lines:
                    if line.strip():
                        resource = json.loads(line)
                        self.by_type[resource["resourceType"]][resource["id"]] = resource
        self.patients = self.by_type["Patient"]
        self.roles = self.by_type["PractitionerRole"]
        self.encounters_of = collections.defaultdict(list)
        for encounter in self.by_type["Encounter"].values():
            patient = ref_id(encounter.get("subject"), "Patient")
            if patient is not None:
                self.encounters_of[patient].append(encounter)
        self.readings_of = collections.defaultdict(list)
        self.readings = {}
        for observation in self.by_type["Observation"].values():
            reading = reading_of(observation)
            if reading is not None:
                self.readings[reading["id"]] = reading
                self.readings_of[reading["patient"]].append(reading)

    def birth(self, patient):
        resource = self.patients.get(patient) or {}
        text = resource.get("birthDate")
        return day_of(text) if isinstance(text, str) and len(text) == 10 else None

    def registries(self):
        """{programme: set of patient ids that a Condition enrols}."""
        enrolled = {program: set() for program in PROGRAMS}
        for condition in self.by_type["Condition"].values():
            for program in condition_programs(condition, self.patients):
                enrolled[program].add(ref_id(condition["subject"], "Patient"))
        return enrolled

    def critical_readings(self):
        return {id for id, reading in self.readings.items() if critical(reading)}

    def family_doctor(self, patient):
        """The first Practitioner of `generalPractitioner` (or a PractitionerRole's)."""
        for reference in (self.patients.get(patient) or {}).get("generalPractitioner") or []:
            practitioner = ref_id(reference, "Practitioner")
            if practitioner is not None:
                return practitioner
            role = ref_id(reference, "PractitionerRole")
            if role is not None and role in self.roles:
                practitioner = ref_id(self.roles[role].get("practitioner"), "Practitioner")
                if practitioner is not None:
                    return practitioner
        return None

    def recipients(self, patient):
        """An alert's recipients as references, and the organisation its meta.source names."""
        doctor = self.family_doctor(patient)
        if doctor is None:
            organization = ref_id(
                (self.patients.get(patient) or {}).get("managingOrganization"), "Organization"
            )
            if organization is None:
                return [], None
            return [f"Organization/{organization}"], f"Organization/{organization}"
        for id in sorted(self.roles):
            role = self.roles[id]
            if role.get("active") is True and ref_id(role.get("practitioner"), "Practitioner") == doctor:
                organization = ref_id(role.get("organization"), "Organization")
                if organization is not None:
                    return (
                        [f"Practitioner/{doctor}", f"Organization/{organization}"],
                        f"Organization/{organization}",
                    )
        return [f"Practitioner/{doctor}"], None

    def works_at(self, practitioner, organization):
        return any(
            ref_id(role.get("practitioner"), "Practitioner") == practitioner
            and ref_id(role.get("organization"), "Organization") == organization
            for role in self.roles.values()
        )

    def status(self, episode, as_of):
        """An episode's follow-up status on `as_of`, by the definitions."""
        program = episode_program(episode)
        patient = ref_id(episode.get("patient"), "Patient")
        start = day_of((episode.get("period") or {}).get("start"))
        birth = self.birth(patient)
        me = f"EpisodeOfCare/{episode['id']}"
        follow_ups = []
        for encounter in self.encounters_of.get(patient, []):
            if encounter.get("status") != "finished":
                continue
            named = [e.get("reference") for e in encounter.get("episodeOfCare") or [] if isinstance(e, dict)]
            if named:
                if me not in named:
                    continue
            elif not any(
                c.get("system") == SNOMED and c.get("code") == FOLLOW_UP_TYPE
                for t in encounter.get("type") or []
                for c in codings(t)
            ):
                continue
            period = encounter.get("period") or {}
            day = day_of(period.get("start"))
            if day is None:
                day = day_of(period.get("end"))
            if day is None or (start is not None and day < start) or day > as_of:
                continue
            follow_ups.append(
                {
                    "id": encounter["id"],
                    "day": day,
                    "start": period.get("start") if isinstance(period.get("start"), str) else "",
                }
            )
        follow_up_ids = {f["id"] for f in follow_ups}
        readings = self.readings_of.get(patient, [])
        for follow_up in follow_ups:
            classes = [
                classify(r, program, birth) for r in readings if r["encounter"] == follow_up["id"]
            ]
            follow_up["uncontrolled"] = any(out_of_control(k) for k in classes)
        follow_ups.sort(key=lambda f: (f["day"], f["start"], f["id"]))
        last = follow_ups[-1] if follow_ups else None

        candidates = {}  # reason -> day
        if last is not None:
            candidates["interval"] = add_months(last["day"], INTERVAL_MONTHS)
            if last["uncontrolled"]:
                candidates["uncontrolled-follow-up"] = last["day"] + datetime.timedelta(days=RECALL_DAYS)
        elif start is not None:
            candidates["interval"] = add_months(start, INTERVAL_MONTHS)
        bad = []
        for reading in readings:
            day = reading["day"]
            if day is None or day > as_of or reading["encounter"] in follow_up_ids:
                continue
            if last is not None and day <= last["day"]:
                continue
            if last is None and start is not None and day < start:
                continue
            if out_of_control(classify(reading, program, birth)):
                bad.append(reading)
        first_bad_day = min((r["day"] for r in bad), default=None)
        if first_bad_day is not None:
            candidates["uncontrolled-reading"] = first_bad_day + datetime.timedelta(days=RECALL_DAYS)
        next_due = min(candidates.values()) if candidates else as_of
        reasons = {r for r, day in candidates.items() if day == next_due} or {"no-date"}
        if next_due < as_of:
            state = "overdue"
        elif next_due <= as_of + datetime.timedelta(days=RECALL_DAYS):
            state = "due"
        else:
            state = "ok"
        return {
            "episode": me,
            "patient": f"Patient/{patient}",
            "program": program,
            "careManager": (episode.get("careManager") or {}).get("reference"),
            "managingOrganization": (episode.get("managingOrganization") or {}).get("reference"),
            "lastFollowUp": f"Encounter/{last['id']}" if last else None,
            "lastFollowUpDate": last["day"].isoformat() if last else None,
            "followUps": len(follow_ups),
            "nextDue": next_due.isoformat(),
            "dueReasons": reasons,
            "state": state,
            "uncontrolled": "uncontrolled-follow-up" in candidates or "uncontrolled-reading" in candidates,
            "uncontrolledReadings": {f"Observation/{r['id']}" for r in bad if r["day"] == first_bad_day},
            "referralSuggested": len(follow_ups) >= 2
            and follow_ups[-1]["uncontrolled"]
            and follow_ups[-2]["uncontrolled"],
        }


# ---------------------------------------------------------------------------------------------
# The server.


class Server:
    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.headers = {"Accept": "application/fhir+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        # Straight to the server, whatever proxy the environment names.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.requests = 0

    def get(self, url):
        if not url.startswith("http"):
            url = self.base + url
        self.requests += 1
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with self.opener.open(request, timeout=120) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")[:2000]
            sys.stdout.write(f"the server refused: GET {url}: HTTP {error.code}: {body}\n")
            sys.exit(2)
        except (urllib.error.URLError, OSError) as error:
            sys.stdout.write(f"cannot ask the server: GET {url}: {error}\n")
            sys.exit(2)

    def search_all(self, resource_type):
        """Every resource of a type, following the Bundle's `next` links."""
        found, seen = [], set()
        url = f"/{resource_type}?_count=1000"
        while url:
            if url in seen:
                raise SystemExit(f"paging loops: {url}")
            seen.add(url)
            bundle = self.get(url)
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                if resource.get("resourceType") == resource_type:
                    found.append(resource)
            url = next(
                (l.get("url") for l in bundle.get("link") or [] if l.get("relation") == "next"),
                None,
            )
        return found

    def worklist(self, as_of, practitioner=None, organization=None):
        query = [("date", as_of.isoformat())]
        if practitioner:
            query.append(("practitioner", practitioner))
        if organization:
            query.append(("organization", organization))
        return self.get("/EpisodeOfCare/$worklist?" + urllib.parse.urlencode(query))


def parts_of(parameter):
    """A Parameters entry's parts as {name: value} (references as their text)."""
    out = {}
    for part in parameter.get("part") or []:
        for key, value in part.items():
            if key.startswith("value"):
                out[part["name"]] = value.get("reference") if key == "valueReference" else value
    return out


# ---------------------------------------------------------------------------------------------
# The comparison.


class Differences:
    def __init__(self):
        self.count = 0

    def __call__(self, text):
        self.count += 1
        print(f"DIFF {text}", flush=True)


def check_registries(region, episodes, diff):
    """(1): active programme episodes on the server against the Conditions in the NDJSON."""
    enrolled = region.registries()
    seeded = region.by_type["EpisodeOfCare"]
    seeded_active = {program: set() for program in PROGRAMS}
    for episode in seeded.values():
        program = episode_program(episode)
        if episode.get("status") == "active" and program:
            seeded_active[program].add(ref_id(episode.get("patient"), "Patient"))
    on_server = {e["id"]: e for e in episodes}
    for id, episode in sorted(seeded.items()):
        mine = on_server.get(id)
        if mine is None:
            diff(f"registry: the seeded EpisodeOfCare/{id} is not on the server")
            continue
        for key in ("status", "type", "patient", "managingOrganization", "careManager", "period"):
            if mine.get(key) != episode.get(key):
                diff(f"registry: EpisodeOfCare/{id}.{key} is {mine.get(key)!r} on the server, {episode.get(key)!r} in the NDJSON")
    active = {program: collections.defaultdict(list) for program in PROGRAMS}
    for episode in episodes:
        program = episode_program(episode)
        if episode.get("status") == "active" and program:
            active[program][ref_id(episode.get("patient"), "Patient")].append(episode["id"])
    counts = {}
    for program in PROGRAMS:
        unenrolled_seeded = seeded_active[program] - enrolled[program]
        if unenrolled_seeded:
            # Not the service's doing: the seed wrote an episode no Condition supports. It stays.
            print(f"note: {program}: {len(unenrolled_seeded)} seeded episodes have no qualifying Condition")
        expected = enrolled[program] | seeded_active[program]
        actual = set(active[program])
        for patient in sorted(expected - actual, key=str):
            diff(f"registry {program}: Patient/{patient} has a qualifying Condition but no active episode")
        for patient in sorted(actual - expected, key=str):
            diff(f"registry {program}: Patient/{patient} has active {active[program][patient]} but no qualifying Condition")
        for patient, ids in sorted(active[program].items(), key=lambda kv: str(kv[0])):
            if len(ids) > 1:
                diff(f"registry {program}: Patient/{patient} has {len(ids)} active episodes {sorted(ids)}")
        counts[program] = len(expected)
    return counts


def check_alerts(region, communications, diff):
    """(2): one alert per critical reading, as the definitions describe it."""
    expected = region.critical_readings()
    alerts = {}
    by_observation = collections.defaultdict(list)
    for communication in communications:
        if not any(
            c.get("system") == ALERT_SYSTEM
            for concept in communication.get("category") or []
            for c in codings(concept)
        ):
            continue
        alerts[communication["id"]] = communication
        about = [ref_id(a, "Observation") for a in communication.get("about") or []]
        about = [a for a in about if a]
        if len(about) != 1:
            diff(f"alert Communication/{communication['id']}: `about` names {about}, not one Observation")
            continue
        by_observation[about[0]].append(communication)
    for observation in sorted(expected - set(by_observation)):
        reading = region.readings[observation]
        diff(f"alert: Observation/{observation} is critical ({describe(reading)}) but has no alert")
    for observation in sorted(set(by_observation) - expected):
        reading = region.readings.get(observation)
        why = describe(reading) if reading else "not a reading"
        diff(f"alert: Observation/{observation} has an alert but is not critical ({why})")
    for observation, found in sorted(by_observation.items()):
        if len(found) > 1:
            diff(f"alert: Observation/{observation} has {len(found)} alerts {sorted(c['id'] for c in found)}")
        if observation not in expected:
            continue
        patient = region.readings[observation]["patient"]
        recipients, source = region.recipients(patient)
        for communication in found:
            where = f"alert Communication/{communication['id']} (Observation/{observation})"
            codes = {
                c.get("code")
                for concept in communication.get("category") or []
                for c in codings(concept)
                if c.get("system") == ALERT_SYSTEM
            }
            if codes != {ALERT_CODE}:
                diff(f"{where}: category codes {sorted(codes)}, not [{ALERT_CODE!r}]")
            if communication.get("status") != "in-progress":
                diff(f"{where}: status {communication.get('status')!r}, not 'in-progress'")
            if communication.get("priority") != "urgent":
                diff(f"{where}: priority {communication.get('priority')!r}, not 'urgent'")
            identifiers = {
                (i.get("system"), i.get("value")) for i in communication.get("identifier") or []
            }
            if (ALERT_IDENTIFIER, observation) not in identifiers:
                diff(f"{where}: no identifier {ALERT_IDENTIFIER}|{observation} in {sorted(identifiers)}")
            actual = sorted(r.get("reference") for r in communication.get("recipient") or [])
            if actual != sorted(recipients):
                diff(f"{where}: recipients {actual}, expected {sorted(recipients)}")
            actual_source = (communication.get("meta") or {}).get("source")
            if source is not None and actual_source != source:
                diff(f"{where}: meta.source {actual_source!r}, expected {source!r}")
    return expected, {o: c[0]["id"] for o, c in by_observation.items()}


def describe(reading):
    if reading["kind"] == "bp":
        return f"{reading['systolic']}/{reading['diastolic']} mmHg on {reading['day']}"
    return f"{reading['glucose_kind']} glucose {reading['value']} mmol/L on {reading['day']}"


def check_worklist(name, answer, as_of, expected_episodes, expected_alerts, alert_of, region, diff):
    """One `$worklist` answer against the episodes and alerts expected on it.

    `expected_episodes` maps `EpisodeOfCare/<id>` to its computed status; `expected_alerts`
    is the set of Observation ids whose alert belongs on it; `alert_of` maps an Observation
    id to the id of its Communication on the server."""
    where = f"worklist {name}"
    if answer.get("resourceType") != "Parameters":
        diff(f"{where}: answered a {answer.get('resourceType')}, not Parameters")
        return {}
    dates = [p.get("valueDate") for p in answer.get("parameter") or [] if p.get("name") == "date"]
    if dates != [as_of.isoformat()]:
        diff(f"{where}: date {dates}, expected [{as_of.isoformat()!r}]")
    listed = collections.OrderedDict()
    alerts = []
    for parameter in answer.get("parameter") or []:
        if parameter.get("name") == "episode":
            parts = parts_of(parameter)
            if parts.get("episodeOfCare") in listed:
                diff(f"{where}: {parts.get('episodeOfCare')} is listed twice")
            listed[parts.get("episodeOfCare")] = parts
        elif parameter.get("name") == "alert":
            alerts.append(parts_of(parameter))
    for episode in sorted(set(expected_episodes) - set(listed)):
        diff(f"{where}: {episode} ({expected_episodes[episode]['program']}, {expected_episodes[episode]['patient']}) is missing")
    for episode in sorted(set(listed) - set(expected_episodes), key=str):
        diff(f"{where}: {episode} is listed but does not belong on it")
    plain = (
        "patient",
        "program",
        "careManager",
        "managingOrganization",
        "lastFollowUp",
        "lastFollowUpDate",
        "followUps",
        "nextDue",
        "state",
        "uncontrolled",
        "referralSuggested",
    )
    for episode, parts in listed.items():
        expected = expected_episodes.get(episode)
        if expected is None:
            continue
        actual = dict(parts)
        program = actual.get("program")
        if isinstance(program, dict):
            if program.get("system") != PROGRAM_SYSTEM:
                diff(f"{where}: {episode} program system {program.get('system')!r}")
            actual["program"] = program.get("code")
        for key in plain:
            if actual.get(key) != expected[key]:
                diff(f"{where}: {episode} ({expected['patient']}, {expected['program']}) {key} is {actual.get(key)!r}, expected {expected[key]!r}")
        # Which reason or reading is named when two tie is not defined; any that ties is right.
        if actual.get("dueReason") not in expected["dueReasons"]:
            diff(f"{where}: {episode} dueReason is {actual.get('dueReason')!r}, expected one of {sorted(expected['dueReasons'])}")
        reading = actual.get("uncontrolledReading")
        if expected["uncontrolledReadings"]:
            if reading not in expected["uncontrolledReadings"]:
                diff(f"{where}: {episode} uncontrolledReading is {reading!r}, expected one of {sorted(expected['uncontrolledReadings'])}")
        elif reading is not None:
            diff(f"{where}: {episode} uncontrolledReading is {reading!r}, expected none")
    # Overdue first, then due, then the rest; soonest due first within each (worklist.rs).
    keys = [
        (STATE_ORDER.get(p.get("state"), 9), p.get("nextDue") or "")
        for p in listed.values()
    ]
    if keys != sorted(keys):
        diff(f"{where}: episodes are not in the order overdue, due, ok, soonest due first")
    seen = collections.Counter()
    for alert in alerts:
        observation = ref_id({"reference": alert.get("observation")}, "Observation")
        seen[observation] += 1
        if observation not in expected_alerts:
            diff(f"{where}: alert {alert.get('communication')} (Observation/{observation}) does not belong on it")
            continue
        wanted = f"Communication/{alert_of.get(observation)}"
        if alert.get("communication") != wanted:
            diff(f"{where}: alert of Observation/{observation} is {alert.get('communication')!r}, expected {wanted!r}")
        patient = f"Patient/{region.readings[observation]['patient']}"
        if alert.get("patient") != patient:
            diff(f"{where}: alert of Observation/{observation} names patient {alert.get('patient')!r}, expected {patient!r}")
    for observation in sorted(expected_alerts - set(seen)):
        diff(f"{where}: the alert of Observation/{observation} is missing")
    for observation, times in sorted(seen.items(), key=lambda kv: str(kv[0])):
        if times > 1:
            diff(f"{where}: the alert of Observation/{observation} is listed {times} times")
    return listed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ndjson", required=True, help="the region's NDJSON directory")
    parser.add_argument("--base", help="the server's FHIR base, http://host:port/fhir")
    parser.add_argument("--token", help="a bearer token (none with --auth off)")
    parser.add_argument("--date", help="the date asked about, YYYY-MM-DD")
    parser.add_argument("--practitioner", action="append", default=[], help="also check this practitioner's worklist (id)")
    parser.add_argument("--organization", action="append", default=[], help="also check this organisation's worklist (id)")
    parser.add_argument("--expected-alerts", action="store_true", help="print the number of alerts expected and stop")
    args = parser.parse_args()

    selftest()
    region = Region(args.ndjson)
    if args.expected_alerts:
        print(len(region.critical_readings()))
        return 0
    if not args.base or not args.date:
        parser.error("--base and --date are needed to check a server")
    as_of = day_of(args.date)
    if as_of is None or len(args.date) != 10:
        parser.error(f"--date must be YYYY-MM-DD, not {args.date!r}")

    server = Server(args.base, args.token)
    diff = Differences()

    episodes = server.search_all("EpisodeOfCare")
    registry_counts = check_registries(region, episodes, diff)

    communications = server.search_all("Communication")
    critical_ids, alert_of = check_alerts(region, communications, diff)

    # (3): every active programme episode on the server, computed from the NDJSON.
    statuses = {}
    for episode in episodes:
        if episode.get("status") == "active" and episode_program(episode):
            status = region.status(episode, as_of)
            statuses[status["episode"]] = status

    alert_recipients = {o: set(region.recipients(region.readings[o]["patient"])[0]) for o in critical_ids}

    # The whole region (an administrator is no clinician: everything), then a few of its people.
    listed = check_worklist(
        "region", server.worklist(as_of), as_of, statuses, critical_ids, alert_of, region, diff
    )
    practitioners = list(args.practitioner)
    organizations = list(args.organization)
    if not practitioners:
        # The busiest care manager, the family doctor with the most alerts, and the busiest
        # care manager of another institution than the first's (a village doctor and a
        # township GP, in the generated region).
        managers = collections.Counter(s["careManager"] for s in statuses.values() if s["careManager"])
        doctors = collections.Counter(r for rs in alert_recipients.values() for r in rs if r.startswith("Practitioner/"))

        def institutions(reference):
            id = reference.split("/")[1]
            return {
                ref_id(role.get("organization"), "Organization")
                for role in region.roles.values()
                if ref_id(role.get("practitioner"), "Practitioner") == id
            }

        for counter, fits in (
            (managers, lambda reference: True),
            (doctors, lambda reference: True),
            (managers, lambda reference: not institutions(reference) & institutions(f"Practitioner/{practitioners[0]}")),
        ):
            for reference, _ in counter.most_common():
                if reference.split("/")[1] not in practitioners and fits(reference):
                    practitioners.append(reference.split("/")[1])
                    break
    if not organizations:
        # The institution keeping the most episodes, and the one with the most alerts.
        keepers = collections.Counter(s["managingOrganization"] for s in statuses.values() if s["managingOrganization"])
        receivers = collections.Counter(r for rs in alert_recipients.values() for r in rs if r.startswith("Organization/"))
        for counter in (keepers, receivers):
            for reference, _ in counter.most_common():
                if reference.split("/")[1] not in organizations:
                    organizations.append(reference.split("/")[1])
                    break
    worklists = {"region": f"{len(listed)}+{len(critical_ids)}"}
    for practitioner in practitioners:
        me = f"Practitioner/{practitioner}"
        expected = {k: s for k, s in statuses.items() if s["careManager"] == me}
        alerts = {o for o, rs in alert_recipients.items() if me in rs}
        name = f"practitioner={practitioner}"
        answer = server.worklist(as_of, practitioner=practitioner)
        listed = check_worklist(name, answer, as_of, expected, alerts, alert_of, region, diff)
        worklists[name] = f"{len(listed)}+{len(alerts)}"
    for organization in organizations:
        me = f"Organization/{organization}"
        expected = {
            k: s
            for k, s in statuses.items()
            if s["managingOrganization"] == me
            or (
                ref_id({"reference": s["careManager"]}, "Practitioner")
                and region.works_at(ref_id({"reference": s["careManager"]}, "Practitioner"), organization)
            )
        }
        alerts = {o for o, rs in alert_recipients.items() if me in rs}
        name = f"organization={organization}"
        answer = server.worklist(as_of, organization=organization)
        listed = check_worklist(name, answer, as_of, expected, alerts, alert_of, region, diff)
        worklists[name] = f"{len(listed)}+{len(alerts)}"

    states = collections.Counter(s["state"] for s in statuses.values())
    print(
        "compared"
        f" registries hypertension={registry_counts[HYPERTENSION]}"
        f" diabetes={registry_counts[DIABETES]}"
        f" alerts={len(critical_ids)}"
        f" episodes-on-worklist={len(statuses)}"
        f" due={states['due']} overdue={states['overdue']} ok={states['ok']}"
        f" uncontrolled={sum(s['uncontrolled'] for s in statuses.values())}"
        f" referral={sum(s['referralSuggested'] for s in statuses.values())}"
        f" as-of={as_of.isoformat()} requests={server.requests}"
    )
    print("worklists (episodes+alerts) " + " ".join(f"{k}:{v}" for k, v in worklists.items()))
    if diff.count:
        print(f"FAILED: {diff.count} differences")
        return 1
    print("OK: no differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
