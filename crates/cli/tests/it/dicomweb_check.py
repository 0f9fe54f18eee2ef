"""The DICOMweb archive checked from outside with the standard clients (dicomweb-client,
pydicom): every file of a corpus stored over STOW-RS, found by QIDO as pydicom's own reading of
the file says it should, retrieved with identical attributes, its metadata read; each study's
ImagingStudy and Patient in the FHIR record; the audit trail; malformed requests; another
institution's clinician finding nothing. Exits non-zero with the differences."""

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
import uuid

import io
from xml.etree import ElementTree

import pydicom
from dicomweb_client.api import DICOMwebClient
from PIL import Image

REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
problems = []


def problem(text):
    problems.append(text)
    print("PROBLEM:", text)


def http(method, url, token, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def stow_raw(base, token, parts, study=None, boundary=None, content_type=None):
    boundary = boundary or uuid.uuid4().hex
    body = b""
    for part in parts:
        body += b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    url = base + "/dicomweb/studies" + ("/" + study if study else "")
    content_type = content_type or 'multipart/related; type="application/dicom"; boundary=' + boundary
    return http("POST", url, token, body, {"Content-Type": content_type})


def truncated(path):
    """Whether some element of the file's data set declares more bytes than follow it (pydicom
    reads such a value cut short without complaint)."""
    from pydicom.filereader import data_element_generator, read_preamble, _read_file_meta_info
    with open(path, "rb") as fp:
        try:
            read_preamble(fp, force=True)
            meta = _read_file_meta_info(fp)
            syntax = meta.get("TransferSyntaxUID")
            if syntax is None or syntax == "1.2.840.10008.1.2.1.99":
                return False
            implicit = syntax == "1.2.840.10008.1.2"
            little = syntax != "1.2.840.10008.1.2.2"
            size = os.fstat(fp.fileno()).st_size
            for raw in data_element_generator(fp, implicit, little, defer_size=None):
                if raw.length != 0xFFFFFFFF and raw.value is not None and len(raw.value) < raw.length:
                    return True
                if fp.tell() > size:
                    return True
        except Exception:  # noqa: BLE001 - what pydicom cannot walk, dcmread judges below
            return False
    return False


def storable(path):
    """What pydicom says of a file: its data set when it is a whole instance with its UIDs
    (values pydicom cannot convert, an IS of "1A", do not make an instance unstorable: an
    archive keeps what it is sent)."""
    try:
        ds = pydicom.dcmread(path, force=True)
        for element in ds.iterall():
            pass
    except Exception as error:  # noqa: BLE001 - any reading failure makes the file unstorable
        return None, f"pydicom cannot read it: {error}"
    missing = [k for k in REQUIRED if not str(ds.get(k, "")).strip()]
    if missing:
        return None, "it has no " + ", ".join(missing)
    if truncated(path):
        return None, "an element declares more bytes than the file has"
    return ds, None


rendered = {"ok": 0, "failed": 0, "known": 0}
frames_checked = {"explicit": 0, "jpeg": 0}
UNRENDERABLE = set()


def render(base, token, name, ds, study, series, sop):
    """A frame of the image as a decodable JPEG of the image's size, and a thumbnail."""
    instance = f"{base}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    status, headers, body = http("GET", instance + "/rendered", token, headers={"Accept": "image/jpeg"})
    try:
        image = Image.open(io.BytesIO(body))
        image.load()
        size_ok = image.format == "JPEG" and image.size == (int(ds.Columns), int(ds.Rows))
    except Exception as error:  # noqa: BLE001
        size_ok, image = False, error
    if name in UNRENDERABLE:
        # A known gap: refused as not acceptable, with the reason; never a broken image.
        if status != 406 or not body:
            problem(f"{name} is listed as not renderable but answered {status}: remove it from the list?")
        rendered["known"] += 1
        return
    if status != 200 or not size_ok:
        rendered["failed"] += 1
        syntax = ds.file_meta.get("TransferSyntaxUID", "?")
        problem(f"{name} ({syntax}): rendered {status} {getattr(image, 'size', image)} {body[:120]!r}")
        return
    rendered["ok"] += 1
    status, _, body = http("GET", instance + "/thumbnail", token, headers={"Accept": "image/png"})
    thumbnail = Image.open(io.BytesIO(body)) if status == 200 else None
    if thumbnail is None or thumbnail.format != "PNG" or max(thumbnail.size) > 128:
        problem(f"{name}: thumbnail {status} {getattr(thumbnail, 'size', None)}")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if ds.BitsAllocated >= 8:
        # Frames asked for without a transfer syntax come in explicit VR little endian (PS3.18's
        # default): a compressed frame transcoded, an uncompressed one as it is.
        status, headers, body = http("GET", instance + "/frames/1", token,
                                     headers={"Accept": "multipart/related; type=application/octet-stream"})
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
        if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
            size = size * 2 // 3
        if status != 200 or "transfer-syntax=1.2.840.10008.1.2.1\r" not in body.decode("latin-1")[:400] \
                or len(body) < size:
            problem(f"{name} ({syntax}): frame 1 {status}, {len(body)} bytes for a frame of {size}: {body[:200]!r}")
        else:
            frames_checked["explicit"] += 1
        # A syntax the archive neither stores nor transcodes to is not acceptable.
        if syntax != "1.2.840.10008.1.2.4.80":
            status, _, body = http("GET", instance + "/frames/1", token, headers={
                "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.80"})
            if status != 406 or not body:
                problem(f"{name}: frame 1 in JPEG-LS it does not transcode to: {status}")
        # In the stored syntax when asked with `*`.
        status, _, body = http("GET", instance + "/frames/1", token, headers={
            "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
        # (A bare data set has no syntax of its own for pydicom to tell: the archive names one.)
        label = f"transfer-syntax={syntax}" if syntax else "transfer-syntax="
        if status != 200 or label not in body.decode("latin-1")[:400]:
            problem(f"{name}: frame 1 in its stored syntax {status}")
    # As a JPEG image when asked so.
    status, _, body = http("GET", instance + "/frames/1", token, headers={"Accept": 'multipart/related; type="image/jpeg"'})
    if status != 200 or b"Content-Type: image/jpeg" not in body[:300] or b"\xff\xd8\xff" not in body[:600]:
        problem(f"{name}: frame 1 as JPEG {status} {body[:200]!r}")
    else:
        frames_checked["jpeg"] += 1


ECG_CLASSES = {"1.2.840.10008.5.1.4.1.1.9.1.1", "1.2.840.10008.5.1.4.1.1.9.1.2", "1.2.840.10008.5.1.4.1.1.9.1.3"}
ecgs = {"measured": 0}
bulk = {"followed": 0}


def annotated(ds):
    """The recording device's own measurements from the Waveform Annotation Sequence."""
    out = {}
    for item in ds.get("WaveformAnnotationSequence", []):
        if "NumericValue" in item and "ConceptNameCodeSequence" in item:
            out[item.ConceptNameCodeSequence[0].CodeMeaning.strip()] = float(item.NumericValue)
    return out


def ecg(base, token, name, ds, study, series, sop):
    """An ECG: its tracing drawn as SVG (with its measurements) and PNG, and its measurements
    recorded as an Observation, within tolerance of the device's annotations when it has
    them."""
    instance = f"{base}/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    status, headers, body = http("GET", instance + "/rendered", token, headers={"Accept": "image/svg+xml"})
    try:
        svg = ElementTree.fromstring(body)
        drawn = svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("width", "").endswith("mm")
    except ElementTree.ParseError as error:
        drawn, svg = False, error
    if status != 200 or headers.get("content-type") != "image/svg+xml" or not drawn:
        problem(f"{name}: ECG rendered as SVG {status} {headers.get('content-type')} {svg}")
        return
    status, _, body = http("GET", instance + "/rendered", token, headers={"Accept": "image/png"})
    if status != 200 or Image.open(io.BytesIO(body)).format != "PNG":
        problem(f"{name}: ECG rendered as PNG {status}")
    status, _, body = http("GET", base + f"/fhir/Observation?identifier=urn:dicom:uid|urn:oid:{sop}", token)
    entries = json.loads(body).get("entry", []) if status == 200 else []
    if len(entries) != 1:
        problem(f"{name}: {len(entries)} measurement Observations ({status})")
        return
    values = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in entries[0]["resource"]["component"]}
    device = annotated(ds)
    for code, annotation, within in [("8625-6", "PR Interval", 15), ("8633-0", "QRS Duration", 12),
                                     ("8634-8", "QT Interval", 20), ("rr", "RR Interval", 10)]:
        if annotation in device and abs(values.get(code, -1e9) - device[annotation]) > within:
            problem(f"{name}: {annotation} measured {values.get(code)}, the device says {device[annotation]}")
    if str(svg.get("data-qrs")) != f"{values['8633-0']:.0f}" and abs(float(svg.get("data-qrs", 0)) - values["8633-0"]) > 1:
        problem(f"{name}: the drawing's QRS {svg.get('data-qrs')} is not the record's {values['8633-0']}")
    ecgs["measured"] += 1
    kiosk_ecg(base, token, name, ds, entries[0]["resource"]["subject"]["reference"])


def kiosk_ecg(base, token, name, ds, subject):
    """The same recording as a kiosk would send it: leads I, II and V5 as FHIR SampledData in
    millivolts at 500 Hz (from pydicom's own reading of the waveform), measured by
    $ecg-measure and drawn by $ecg-tracing."""
    leads = {"I": "131329", "II": "131330", "V5": "131335"}
    array = ds.waveform_array(0)
    names = [str(c.ChannelSourceSequence[0].CodeMeaning) for c in ds.WaveformSequence[0].ChannelDefinitionSequence]
    components = []
    for lead, code in leads.items():
        column = next(i for i, n in enumerate(names) if n.replace("Lead ", "").split(" ")[0] == lead)
        samples = array[::2, column]
        components.append({
            "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": code,
                                 "display": "MDC_ECG_ELEC_POTL_" + lead.upper()}]},
            "valueSampledData": {"origin": {"value": 0, "system": "http://unitsofmeasure.org", "code": "uV", "unit": "uV"},
                                 "period": 2, "factor": 1, "dimensions": 1,
                                 "data": " ".join(f"{v:.2f}" for v in samples)}})
    observation = {"resourceType": "Observation", "status": "final",
                   "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": "131328",
                                        "display": "MDC_ECG_ELEC_POTL"}], "text": "Kiosk ECG"},
                   "subject": {"reference": subject}, "effectiveDateTime": "2026-12-01T09:30:00+08:00",
                   "component": components}
    status, _, body = http("POST", base + "/fhir/Observation", token, json.dumps(observation).encode(),
                           {"Content-Type": "application/fhir+json"})
    if status != 201:
        problem(f"{name}: the kiosk's recording was not created: {status} {body[:300]!r}")
        return
    recording = json.loads(body)["id"]
    status, _, body = http("POST", base + f"/fhir/Observation/{recording}/$ecg-measure", token)
    if status != 200:
        problem(f"{name}: $ecg-measure {status} {body[:300]!r}")
        return
    measured = json.loads(body)
    values = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in measured["component"]}
    device = annotated(ds)
    # Three leads see less of the QRS than twelve (its earliest onset and latest offset are in
    # leads a kiosk does not record): QRS within 20 ms of the 12-lead device's.
    if abs(values.get("8633-0", -1e9) - device.get("QRS Duration", 75)) > 20 or \
            abs(values.get("rr", -1e9) - device.get("RR Interval", 982)) > 10 or \
            measured.get("derivedFrom", [{}])[0].get("reference") != f"Observation/{recording}":
        problem(f"{name}: the kiosk recording measured {values} {measured.get('derivedFrom')}")
    status, headers, body = http("GET", base + f"/fhir/Observation/{recording}/$ecg-tracing", token)
    try:
        svg = ElementTree.fromstring(body)
        strips = [e for e in svg.iter() if e.get("class") == "lead"]
    except ElementTree.ParseError:
        strips = []
    if status != 200 or headers.get("content-type") != "image/svg+xml" or len(strips) != 3:
        problem(f"{name}: $ecg-tracing {status} {headers.get('content-type')} with {len(strips)} leads")
    status, headers, body = http("GET", base + f"/fhir/Observation/{recording}/$ecg-tracing?_format=png", token)
    if status != 200 or Image.open(io.BytesIO(body)).format != "PNG":
        problem(f"{name}: $ecg-tracing as PNG {status}")
    # An Observation without a tracing is refused with an OperationOutcome, not drawn.
    status, _, body = http("GET", base + f"/fhir/Observation/{measured['id']}/$ecg-tracing", token)
    if status != 422 or json.loads(body).get("resourceType") != "OperationOutcome":
        problem(f"{name}: $ecg-tracing of a measurement: {status} {body[:200]!r}")
    ecgs["kiosk"] = recording


def conformant(uid):
    return bool(re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid))


def comparable(ds):
    """The attributes to compare: every data element but the file meta group, as JSON."""
    out = {}
    for element in ds:
        # The file meta group, and group lengths (retired; pydicom's writer drops them).
        if element.tag.group == 0x0002 or element.tag.element == 0x0000:
            continue
        try:
            if element.VR == "SQ":
                out[str(element.tag)] = [comparable(item) for item in element.value]
            else:
                value = element.value
                if isinstance(value, (bytes, bytearray)):
                    value = value.hex()
                out[str(element.tag)] = str(value)
        except Exception as error:  # noqa: BLE001
            out[str(element.tag)] = f"unreadable: {error}"
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--stranger", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--unrenderable", default="",
                        help="a file listing the files whose frames are known not to render, one per line")
    args = parser.parse_args()
    if args.unrenderable:
        UNRENDERABLE.update(l.split("#")[0].strip() for l in open(args.unrenderable) if l.split("#")[0].strip())
    base, token = args.base, args.token
    client = DICOMwebClient(url=base + "/dicomweb", headers={"Authorization": "Bearer " + token})

    files = sorted(f for f in os.listdir(args.corpus) if f.endswith(".dcm"))
    expected = {}  # SOP Instance UID -> (file, data set) of the last stored
    stored = refused = 0
    for name in files:
        path = os.path.join(args.corpus, name)
        raw = open(path, "rb").read()
        ds, why_not = storable(path)
        status, _, body = stow_raw(base, token, [raw])
        try:
            answer = json.loads(body)
        except ValueError:
            problem(f"{name}: STOW answered {status} with no DICOM JSON: {body[:200]!r}")
            continue
        if ds is None:
            failed = answer.get("00081198", {}).get("Value", [])
            if status != 409 or not failed or "00081197" not in failed[0]:
                problem(f"{name}: pydicom says it cannot be stored ({why_not}) but STOW answered {status} {answer}")
            else:
                refused += 1
                reason = failed[0].get("00000902", {}).get("Value", [""])[0]
                print(f"refused {name}: 0x{failed[0]['00081197']['Value'][0]:04X} {reason}")
            continue
        if status not in (200, 202) or "00081199" not in answer:
            problem(f"{name}: STOW answered {status} {answer}")
            continue
        stored += 1
        expected[str(ds.SOPInstanceUID)] = (name, ds)

    # Storing a file again adds nothing; the standard client's own STOW (a re-encoding) too.
    again_name, again_ds = next(iter(expected.values()))
    before = study_resource(base, token, str(again_ds.StudyInstanceUID))
    status, _, _ = stow_raw(base, token, [open(os.path.join(args.corpus, again_name), "rb").read()])
    after = study_resource(base, token, str(again_ds.StudyInstanceUID))
    if status != 200 or before["meta"]["versionId"] != after["meta"]["versionId"]:
        problem(f"storing {again_name} again: {status}, version {before['meta']['versionId']} -> {after['meta']['versionId']}")
    client.store_instances(datasets=[again_ds])
    if study_resource(base, token, str(again_ds.StudyInstanceUID))["numberOfInstances"] != after["numberOfInstances"]:
        problem("the client's re-encoded STOW of a stored instance added one")

    found = retrieved = 0
    for sop, (name, ds) in expected.items():
        study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        if not all(conformant(u) for u in (study, series, sop)):
            # dicomweb-client refuses to address UIDs that are not digits and dots.
            status, _, body = http("GET", base + f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/metadata", token)
            if status != 200 or json.loads(body)[0].get("00080018", {}).get("Value") != [sop]:
                problem(f"{name}: metadata of its non-conformant UID: {status}")
            else:
                found += 1
            continue
        hits = client.search_for_instances(study_instance_uid=study, search_filters={"SOPInstanceUID": sop})
        if len(hits) != 1:
            problem(f"{name}: QIDO found {len(hits)} instances for its SOP Instance UID")
            continue
        hit = pydicom.Dataset.from_json(hits[0])
        if str(hit.get("SOPClassUID", "")) != str(ds.SOPClassUID) or str(hit.get("Modality", "")) != str(ds.get("Modality", "")):
            problem(f"{name}: QIDO answered class {hit.get('SOPClassUID')} modality {hit.get('Modality')}")
        patient_id = str(ds.get("PatientID", ""))
        if patient_id:
            studies = client.search_for_studies(search_filters={"PatientID": patient_id})
            if study not in [str(pydicom.Dataset.from_json(s).StudyInstanceUID) for s in studies]:
                problem(f"{name}: QIDO by PatientID {patient_id} does not find study {study}")
        found += 1
        instance = client.retrieve_instance(study, series, sop)
        got, want = comparable(instance), comparable(ds)
        differing = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        if differing:
            problem(f"{name}: retrieved attributes differ at {differing[:6]}")
        else:
            retrieved += 1
        if "PixelData" in ds and "Rows" in ds:
            render(base, token, name, ds, study, series, sop)
        if str(ds.SOPClassUID) in ECG_CLASSES:
            ecg(base, token, name, ds, study, series, sop)
        metadata = client.retrieve_instance_metadata(study, series, sop)
        if metadata.get("00080018", {}).get("Value") != [sop]:
            problem(f"{name}: metadata names {metadata.get('00080018')}")
        pixel = metadata.get("7FE00010")
        path = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/bulkdata/7FE00010"
        uri = pixel.get("BulkDataURI", "") if pixel is not None else ""
        if pixel is not None and not (uri.startswith("http") and uri.endswith(path)):
            problem(f"{name}: pixel data is not referenced by an absolute BulkDataURI: {pixel}")
        elif pixel is not None:
            # The reference leads to the pixel data: the frames, as many as the image has.
            # (dicomweb-client sends a Host header without the port, so the server's absolute
            # URI names port 80: it is followed at the base the check was given.)
            uri = base + uri[uri.index("/dicomweb/"):]
            status, headers, body = http("GET", uri, token, headers={
                "Accept": "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*"})
            boundary = headers.get_param("boundary", header="content-type") if status == 200 else None
            frames = body.count(b"--" + boundary.encode()) - 1 if boundary else 0
            if status != 200 or frames != int(ds.get("NumberOfFrames", 1) or 1):
                problem(f"{name}: its BulkDataURI answered {status} with {frames} frames")
            else:
                bulk["followed"] += 1

    # The FHIR record: one ImagingStudy per study, with its instances and a Patient carrying
    # the DICOM Patient ID.
    studies = {}
    for sop, (name, ds) in expected.items():
        studies.setdefault(str(ds.StudyInstanceUID), set()).add(sop)
    for study, sops in studies.items():
        resource = study_resource(base, token, study)
        if resource is None:
            problem(f"no ImagingStudy for study {study}")
            continue
        listed = {i["uid"] for s in resource.get("series", []) for i in s.get("instance", [])}
        if listed != sops or resource.get("numberOfInstances") != len(sops):
            problem(f"ImagingStudy of {study} lists {sorted(listed)}, not {sorted(sops)}")
        patient_id = str(expected[next(iter(sops))][1].get("PatientID", "")).strip()
        status, _, body = http("GET", base + "/fhir/" + resource["subject"]["reference"], token)
        patient = json.loads(body)
        if status != 200 or (patient_id and patient_id not in [i["value"] for i in patient.get("identifier", [])]):
            problem(f"the Patient of study {study} does not carry Patient ID {patient_id}: {status} {patient}")

    # The trail: the radiographer's retrievals are recorded with the patient.
    some_patient = study_resource(base, token, next(iter(studies)))["subject"]["reference"]
    status, _, body = http("GET", base + "/fhir/AuditEvent?patient=" + some_patient + "&_count=100", args.admin)
    events = json.loads(body).get("entry", []) if status == 200 else []
    if not any("ImagingStudy" in json.dumps(e["resource"]) for e in events):
        problem(f"no AuditEvent of an ImagingStudy access for {some_patient} ({status})")

    # Malformed requests, each refused with its reason.
    checks = [
        ("not multipart", http("POST", base + "/dicomweb/studies", token, b"x", {"Content-Type": "application/dicom"}), 415),
        ("no boundary in body", stow_raw(base, token, [b"x"], content_type='multipart/related; type="application/dicom"; boundary=other'), 400),
        ("a part that is not DICOM", stow_raw(base, token, [b"this is not DICOM at all, not even close"]), 409),
        ("another study than the URL's", stow_raw(base, token, [open(os.path.join(args.corpus, again_name), "rb").read()], study="1.2.3.4.5"), 409),
        ("no token", http("GET", base + "/dicomweb/studies", None), 401),
        ("a forged token", http("GET", base + "/dicomweb/studies", "eyJhbGciOiJub25lIn0.e30."), 401),
        ("an unknown QIDO key", http("GET", base + "/dicomweb/studies?NoSuchKey=1", token), 400),
        ("a bad limit", http("GET", base + "/dicomweb/studies?limit=many", token), 400),
        ("an unknown study", http("GET", base + "/dicomweb/studies/1.2.3.4.5.6/metadata", token), 404),
    ]
    for what, (status, _, body), wanted in checks:
        if status != wanted or not body:
            problem(f"{what}: {status} (wanted {wanted}) {body[:200]!r}")
    status, _, body = stow_raw(base, token, [open(os.path.join(args.corpus, again_name), "rb").read()], study="1.2.3.4.5")
    reason = json.loads(body)["00081198"]["Value"][0]["00081197"]["Value"][0]
    if reason != 0xA900:
        problem(f"an instance of another study: failure reason 0x{reason:04X}")

    # A viewer of another origin (OHIF) may call the archive: the preflight a browser sends,
    # then a search with the token, readable across origins.
    status, headers, _ = http("OPTIONS", base + "/dicomweb/studies", None, headers={
        "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, accept"})
    allowed = headers.get("access-control-allow-headers", "").lower()
    if status not in (200, 204) or headers.get("access-control-allow-origin") not in ("*", "https://viewer.example") \
            or "authorization" not in allowed:
        problem(f"a CORS preflight: {status} {headers}")
    status, headers, _ = http("GET", base + "/dicomweb/studies", token, headers={"Origin": "https://viewer.example"})
    if status != 200 or headers.get("access-control-allow-origin") not in ("*", "https://viewer.example"):
        problem(f"a cross-origin search: {status} {headers.get('access-control-allow-origin')}")

    # Another institution's clinician cannot draw the kiosk's recording either.
    if "kiosk" in ecgs:
        status, _, _ = http("GET", base + f"/fhir/Observation/{ecgs['kiosk']}/$ecg-tracing", args.stranger)
        if status != 404:
            problem(f"a clinician of another institution draws the kiosk recording: {status}")

    # Another institution's clinician finds and retrieves nothing.
    stranger = DICOMwebClient(url=base + "/dicomweb", headers={"Authorization": "Bearer " + args.stranger})
    if stranger.search_for_studies():
        problem("a clinician of another institution finds studies")
    status, _, _ = http("GET", base + f"/dicomweb/studies/{next(iter(studies))}/metadata", args.stranger)
    if status != 404:
        problem(f"a clinician of another institution retrieves metadata: {status}")

    # Deletion is the administrators': a clinician is refused, an administrator's removes the
    # study from DICOMweb and from the record.
    doomed = sorted(studies)[-1]
    status, _, _ = http("DELETE", base + f"/dicomweb/studies/{doomed}", token)
    if status != 403:
        problem(f"a clinician deleting a study: {status}")
    status, _, _ = http("DELETE", base + f"/dicomweb/studies/{doomed}", args.admin)
    after_delete = http("GET", base + f"/dicomweb/studies/{doomed}/metadata", token)[0]
    if status != 204 or after_delete != 404 or study_resource(base, token, doomed) is not None:
        problem(f"an administrator deleting study {doomed}: {status}, then {after_delete}")

    print(f"files={len(files)} stored={stored} refused={refused} instances={len(expected)} "
          f"studies={len(studies)} found={found} retrieved_identical={retrieved} "
          f"rendered={rendered['ok']} known_unrenderable={rendered['known']} unrendered={rendered['failed']} "
          f"ecgs_measured={ecgs['measured']} kiosk_ecgs={int('kiosk' in ecgs)} bulk_followed={bulk['followed']} "
          f"frames_explicit={frames_checked['explicit']} frames_jpeg={frames_checked['jpeg']} "
          f"problems={len(problems)}")
    sys.exit(1 if problems else 0)


def study_resource(base, token, study):
    status, _, body = http("GET", base + f"/fhir/ImagingStudy?identifier=urn:dicom:uid|urn:oid:{study}", token)
    entries = json.loads(body).get("entry", []) if status == 200 else []
    return entries[0]["resource"] if entries else None


if __name__ == "__main__":
    main()
