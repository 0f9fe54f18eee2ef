#!/usr/bin/env python3
"""Rebuilds the seed sets under fuzz/seeds/ from the shared corpora (see seeds/README.md).

Run once by hand when the seeds should change; the seeds themselves are committed, so neither
the fuzz runs nor CI need the corpora. Usage: make-seeds.py CORPORA_DIR UNPACKED_SPEC_JSON_DIR
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

corpora, spec = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(here, target), exist_ok=True)
    with open(os.path.join(here, target, name), "wb") as f:
        f.write(data)


# fhir_json: the small per-type examples of fhir-test-cases, every third one by name, under 6 KB,
# plus a few spec examples chosen for shape (Bundles, contained resources, primitive extensions).
cases = os.path.join(spec, "test-cases-examples")
picked = [n for n in sorted(os.listdir(cases)) if os.path.getsize(os.path.join(cases, n)) < 6000]
for name in picked[::3]:
    write("fhir_json", name, open(os.path.join(cases, name), "rb").read())
for name in ["bundle-transaction.json", "patient-example-b.json", "observation-example-bmd.json",
             "questionnaireresponse-example-f201-lifelines.json", "list-example-empty.json"]:
    path = os.path.join(spec, "spec-examples-json", name)
    if os.path.exists(path):
        write("fhir_json", name, open(path, "rb").read())

# fhirpath: expressions of the official R4 suite, one in twenty (and more of those marked invalid),
# each followed by a NUL byte and the JSON twin of its input file, minified.
suite = os.path.join(corpora, "fhirpath-r4", "official-r4")
inputs = {}
tests = list(ET.parse(os.path.join(suite, "tests-fhir-r4.xml")).getroot().iter("test"))
for i, test in enumerate(tests):
    expression = test.find("expression")
    if expression is None or expression.text is None:
        continue
    if i % 20 != 0 and not (expression.get("invalid") is not None and i % 4 == 0):
        continue
    source = (test.get("inputfile") or "").replace(".xml", ".json")
    if source and source not in inputs:
        path = os.path.join(suite, "input-json", source)
        inputs[source] = (json.dumps(json.load(open(path)), separators=(",", ":")).encode()
                          if os.path.exists(path) else b"")
    write("fhirpath", test.get("name"), expression.text.encode() + b"\0" + inputs.get(source, b""))

# search_query: written for these targets after the search page of the R4 specification, one
# per feature the parser handles. The first byte picks the target (see search_query.rs).
PATIENT, OBSERVATION, ENCOUNTER, MEDICATION_REQUEST, CONDITION, BUNDLE = range(6)
SYSTEM, COMPARTMENT, STRICT = 0x10, 0x18, 0x20
searches = [
    (PATIENT, "name=smith&birthdate=ge1970-01-01&_count=10"),
    (PATIENT, "family:exact=Chalmers&given:contains=pet&_sort=-birthdate,family"),
    (PATIENT, "identifier=http://hl7.org/fhir/sid/us-ssn|444222222&active=true"),
    (PATIENT, "_id=example,other&_lastUpdated=lt2026-12-01T10:00:00Z&_total=accurate"),
    (PATIENT | STRICT, "gender:not=male&address-city=Boston&_summary=count"),
    (PATIENT, "_has:Observation:patient:code=http://loinc.org|1234-5&_elements=name,gender"),
    (PATIENT, "general-practitioner:Practitioner.name=Adam&_revinclude=Observation:subject"),
    (PATIENT, "phone:missing=true&email=a%40b.org&_cursor=42~w0~ssmith"),
    (OBSERVATION, "code=http://loinc.org|29463-7&value-quantity=gt80|http://unitsofmeasure.org|kg"),
    (OBSERVATION, "subject=Patient/example&date=ap2013-04&_include=Observation:subject"),
    (OBSERVATION, "subject:Patient.name=peter&status=final,amended&_sort=date"),
    (OBSERVATION, "code-value-quantity=http://loinc.org|8480-6$gt150&combo-code:text=blood"),
    (OBSERVATION, "value-string:contains=abc&value-concept:in=http://hl7.org/fhir/ValueSet/x"),
    (OBSERVATION, "patient.identifier=urn:oid:1.2.3|99&_include:iterate=Patient:organization"),
    (OBSERVATION, "date=eq2013-04-02T09:30:10%2B01:00&value-quantity=5.4e-3||mg"),
    (OBSERVATION | STRICT, "code:below=http://snomed.info/sct|1234&_count=0"),
    (ENCOUNTER, "subject=http://example.org/fhir/Patient/example&period=sa2020&class=IMP"),
    (ENCOUNTER, "_type=Encounter&length=gt3|http://unitsofmeasure.org|d&_sort=-_lastUpdated"),
    (MEDICATION_REQUEST, "medication.code=1234&intent=order&authoredon=le2020-12-31"),
    (MEDICATION_REQUEST, "_include=MedicationRequest:medication&_include=*&status:not=stopped"),
    (CONDITION, "clinical-status=active&onset-date=ge2000&code:text=diabetes"),
    (CONDITION, "subject:missing=false&_tag=http://example.org/tags|urgent&_profile=http://x/p"),
    (BUNDLE, "composition.subject=Patient/1&message.focus=Patient/2&type=document"),
    (BUNDLE, "identifier=urn:ietf:rfc:3986|urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
    (SYSTEM, "_type=Patient,Observation&_lastUpdated=gt2026-01-01&_count=5"),
    (SYSTEM, "_content=cancer&_text=smith&_security=http://terminology.hl7.org|R"),
    (SYSTEM | OBSERVATION, "_id=a&_list=123&_query=custom&_filter=name eq smith"),
    (COMPARTMENT | OBSERVATION, "code=1234&_sort=-date&_count=3"),
    (COMPARTMENT | CONDITION, "_summary=true&_elements=code,subject"),
    (COMPARTMENT | PATIENT | STRICT, "unknown=1&name=x"),
    (PATIENT, "name=a%5C,b%5C$c%5C|d&birthdate=2020-02-30&_count=1001"),
    (PATIENT, "name=%E5%BC%A0&given=Z%C3%BCrich+Str&_sort=name&_sort=birthdate"),
]
for i, (selector, query) in enumerate(searches):
    write("search_query", f"{i:02}", bytes([selector]) + query.encode())

# cursor: cursor texts in the form Cursor::encode writes (row key, walk, tagged sort values).
cursors = ["42", "42~w0~ssmith", "9~n~i-7~f0.0015~sa%7Eb%25c %E5", "0~w3~i17~f1e300", "-1~sx",
           "7~w1~f-0.0~n", "12~i9223372036854775807~s", "5~finf~fNaN", "3~w0~n~sZ~i0"]
for i, text in enumerate(cursors):
    write("cursor", f"{i:02}", text.encode())
