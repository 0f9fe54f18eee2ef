"""DICOMweb side by side: Meridian and Orthanc (with its DICOMweb plugin) on the same instances,
the same machine, in one run (BENCHMARKS.md, "Imaging"). Stores N instances made from the
vendored test files under new UIDs (STOW-RS, 10 instances a request, 4 client threads), then
times QIDO (patient and date queries), WADO-RS retrieval of whole studies and rendered frames.

    bench.py --meridian URL --token TOKEN --orthanc URL --instances N --corpus DIR
"""

import argparse
import concurrent.futures
import io
import random
import statistics
import time
import uuid

import pydicom
import requests
from pydicom.uid import generate_uid

# JPEG 2000 is left out: Debian's Orthanc decodes it only with the GDCM plugin, which crashed
# Orthanc under concurrent STOW here.
SOURCES = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "SC_rgb_small_odd_jpeg.dcm"]
PER_STUDY = 10
PER_REQUEST = 10


def make_instances(corpus, count, seed=7):
    """`count` instances, PER_STUDY to a study, each patient with two studies a year apart."""
    rng = random.Random(seed)
    templates = [pydicom.dcmread(f"{corpus}/{name}") for name in SOURCES]
    studies = []
    for s in range(count // PER_STUDY):
        patient = f"BENCH{s // 2:06d}"
        date = f"{2015 + s % 10}{1 + rng.randrange(12):02d}{1 + rng.randrange(28):02d}"
        study, series = generate_uid(), generate_uid()
        files = []
        template = templates[s % len(templates)]
        for i in range(PER_STUDY):
            ds = template.copy()
            ds.PatientID, ds.PatientName = patient, f"BENCH^PATIENT{s // 2}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.StudyDate, ds.InstanceNumber = date, i + 1
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
            files.append(out.getvalue())
        studies.append({"uid": study, "series": series, "patient": patient, "date": date, "files": files,
                        "instances": [pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID for f in files]})
    return studies


class Server:
    def __init__(self, name, root, headers):
        self.name, self.root, self.headers = name, root.rstrip("/"), headers
        self.local = __import__("threading").local()

    def session(self):
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return self.local.session

    def stow(self, files):
        boundary = uuid.uuid4().hex
        body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n" for f in files)
        body += b"--" + boundary.encode() + b"--\r\n"
        answer = self.session().post(self.root + "/studies", data=body, headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})
        if answer.status_code != 200:
            raise RuntimeError(f"{self.name} STOW {answer.status_code}: {answer.text[:300]}")

    def get(self, path, accept):
        answer = self.session().get(self.root + path, headers={"Accept": accept})
        if answer.status_code != 200:
            raise RuntimeError(f"{self.name} GET {path} {answer.status_code}: {answer.text[:300]}")
        return answer.content


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def timed(calls, threads=1):
    times = []

    def one(call):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
        return result

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(one, calls))
    return time.perf_counter() - started, times, results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--meridian", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--orthanc", required=True)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    studies = make_instances(args.corpus, args.instances)
    megabytes = sum(len(f) for s in studies for f in s["files"]) / 1e6
    print(f"made {len(studies) * PER_STUDY} instances in {len(studies)} studies ({megabytes:.1f} MB) "
          f"in {time.perf_counter() - started:.0f} s")
    servers = [Server("meridian", args.meridian, {"Authorization": "Bearer " + args.token}),
               Server("orthanc", args.orthanc, {})]
    rng = random.Random(11)
    rows = {}
    for server in servers:
        batches = [s["files"][i:i + PER_REQUEST] for s in studies for i in range(0, PER_STUDY, PER_REQUEST)]
        seconds, _, _ = timed([lambda b=b: server.stow(b) for b in batches], threads=4)
        stow = len(studies) * PER_STUDY / seconds
        patients = [rng.choice(studies)["patient"] for _ in range(args.queries)]
        _, patient_times, answers = timed([lambda p=p: server.get(f"/studies?PatientID={p}", "application/dicom+json") for p in patients])
        if any(len(__import__("json").loads(a)) != 2 for a in answers):
            raise RuntimeError(f"{server.name}: a patient query did not find the patient's two studies")
        years = [2015 + rng.randrange(10) for _ in range(args.queries)]
        _, date_times, _ = timed([lambda y=y: server.get(f"/studies?StudyDate={y}0301-{y}0331&limit=100", "application/dicom+json") for y in years])
        picked = [rng.choice(studies) for _ in range(min(200, len(studies)))]
        seconds, _, bodies = timed([lambda s=s: server.get(f"/studies/{s['uid']}", 'multipart/related; type="application/dicom"; transfer-syntax=*') for s in picked], threads=4)
        wado = sum(len(b) for b in bodies) / 1e6 / seconds
        frames = [(s, rng.randrange(PER_STUDY)) for s in picked]
        seconds, _, _ = timed([lambda s=s, i=i: server.get(f"/studies/{s['uid']}/series/{s['series']}/instances/{s['instances'][i]}/rendered", "image/jpeg") for s, i in frames], threads=4)
        rendered = len(frames) / seconds
        rows[server.name] = (stow, percentile(patient_times, 50) * 1000, percentile(patient_times, 99) * 1000,
                             percentile(date_times, 50) * 1000, percentile(date_times, 99) * 1000, wado, rendered)
        print(server.name, "STOW %.0f inst/s; QIDO patient p50 %.1f p99 %.1f ms; date p50 %.1f p99 %.1f ms; WADO %.1f MB/s; rendered %.0f/s" % rows[server.name], flush=True)
    m, o = rows["meridian"], rows["orthanc"]
    print("ratios (Meridian / Orthanc; latency: Orthanc / Meridian): STOW %.2f, QIDO patient p50 %.2f p99 %.2f, date p50 %.2f p99 %.2f, WADO %.2f, rendered %.2f" % (
        m[0] / o[0], o[1] / m[1], o[2] / m[2], o[3] / m[3], o[4] / m[4], m[5] / o[5], m[6] / o[6]))


if __name__ == "__main__":
    main()
