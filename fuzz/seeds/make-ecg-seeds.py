#!/usr/bin/env python3
"""Writes the seeds cut from the vendored 12-lead ECG (crates/imaging/tests/dicom/waveform_ecg.dcm,
Mortara ELI 250, 12 leads of 10 s at 1000 Hz, in microvolts at 1.25 uV a unit):

- ecg_sampled_data/: FHIR Observations whose SampledData hold 2 to 3 s of one to three of its
  leads: periods 1, 2 and 4 ms, origins in uV and mV, E/L/U values, dimensions 2;
- ecg_samples/: the same leads in the form fuzz_targets/ecg_samples.rs reads (three header
  bytes, then little-endian i16 samples interleaved by lead);
- dicom_part10/: the recording cut to 3 s at 500 Hz as a 12-lead ECG instance, and three of
  its leads at 1000 Hz for 2.5 s, in millivolts, as a General ECG instance (the whole file is
  291 KB, past the target's 64 KiB max_len);

and copies the vendored files the other seeds are (JPEG-LS codestreams for jpegls/, DICOM files
for dicom_part10/). Needs pydicom and numpy; run by hand, the seeds are committed.
"""

import copy
import io
import json
import os
import shutil
import struct

import numpy as np
import pydicom

here = os.path.dirname(os.path.abspath(__file__))
imaging = os.path.join(here, "..", "..", "crates", "imaging", "tests")
source = pydicom.dcmread(os.path.join(imaging, "dicom", "waveform_ecg.dcm"))
NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
MDC = {name: str(131329 + i) for i, name in enumerate(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"])}
MDC.update({"III": "131389", "aVR": "131390", "aVL": "131391", "aVF": "131392"})

rhythm = source.WaveformSequence[0]
channels = int(rhythm.NumberOfWaveformChannels)
raw = np.frombuffer(rhythm.WaveformData, dtype="<i2").reshape(-1, channels)
microvolts = raw.astype(float) * float(rhythm.ChannelDefinitionSequence[0].ChannelSensitivity)
lead = {name: microvolts[:, i] for i, name in enumerate(NAMES)}


def write(target, name, data):
    os.makedirs(os.path.join(here, target), exist_ok=True)
    with open(os.path.join(here, target, name), "wb") as f:
        f.write(data)
    assert len(data) < 64 * 1024, (target, name, len(data))


def cut(name, period_ms, seconds, start=0.3):
    """Lead `name` resampled to `period_ms` (every n-th sample of the 1 ms recording)."""
    step = int(period_ms)
    first = int(start * 1000)
    return lead[name][first : first + int(seconds * 1000) : step]


def code(name):
    return {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.24", "code": MDC[name],
                        "display": "MDC_ECG_ELEC_POTL_" + name.upper()}]}


def sampled(values, period, unit="uV", factor=1.0, origin=0.0, dimensions=1, specials=()):
    tokens = [f"{round((v / (1000.0 if unit == 'mV' else 1.0) - origin) / factor):g}" for v in values]
    for at, token in specials:
        tokens[at] = token
    return {"origin": {"value": origin, "unit": unit, "system": "http://unitsofmeasure.org",
                       "code": unit},
            "period": period, "factor": factor, "dimensions": dimensions, "data": " ".join(tokens)}


def observation(**fields):
    resource = {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "11524-6"}], "text": "ECG"},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-12-04T08:00:00Z"}
    resource.update(fields)
    return json.dumps(resource, separators=(",", ":")).encode()


# ecg_sampled_data: one lead at 2 ms in uV; three leads at 4 ms in mV; two leads as one
# SampledData of dimensions 2 at 1 ms with E/L/U values; one lead at 1 ms with an origin.
write("ecg_sampled_data", "lead_II_2ms_uV.json",
      observation(code=code("II"), valueSampledData=sampled(cut("II", 2, 3), 2)))
write("ecg_sampled_data", "three_leads_4ms_mV.json", observation(component=[
    {"code": code(n), "valueSampledData": sampled(cut(n, 4, 3), 4, "mV", 0.005)}
    for n in ["I", "II", "V5"]]))
pairs = np.column_stack([cut("I", 1, 2), cut("II", 1, 2)]).ravel()
write("ecg_sampled_data", "two_dimensions_1ms_ELU.json", observation(component=[
    {"code": {"text": "limb leads"},
     "valueSampledData": sampled(pairs, 1, factor=2.5, dimensions=2,
                                 specials=[(100, "E"), (101, "E"), (900, "L"), (1801, "U")])}]))
write("ecg_sampled_data", "lead_V2_1ms_origin.json",
      observation(code={"text": "Lead V2"},
                  valueSampledData=sampled(cut("V2", 1, 2.2), 1, origin=-500.0, factor=1.25)))


# ecg_samples (see fuzz_targets/ecg_samples.rs): byte 0 picks the period (low 3 bits), the
# arrangement (bits 3-4) and mV (bit 5); byte 1 the number of leads less one; byte 2 the factor;
# then i16 samples, interleaved by lead.
PERIODS = [1, 2, 4, 2.5, 8, 10, 0.5, 0.05]
FACTORS = [1.0, 1.25, 2.5, 5.0, 0.5, 10.0, 0.005, 100.0]


def samples_seed(names, period, arrangement, factor, millivolts=False, seconds=2.5):
    header = bytes([PERIODS.index(period) | arrangement << 3 | (0x20 if millivolts else 0),
                    len(names) - 1, FACTORS.index(factor)])
    scale = factor * (1000.0 if millivolts else 1.0)
    columns = [np.round(cut(n, period, seconds) / scale) for n in names]
    body = b"".join(struct.pack("<h", int(np.clip(v, -32000, 32000)))
                    for row in zip(*columns) for v in row)
    return header + body


write("ecg_samples", "II_2ms", samples_seed(["II"], 2, 0, 1.25))
write("ecg_samples", "I_II_V5_4ms_components", samples_seed(["I", "II", "V5"], 4, 1, 2.5, seconds=3))
write("ecg_samples", "I_II_1ms_dimensions", samples_seed(["I", "II"], 1, 2, 0.005, True, seconds=2))
write("ecg_samples", "twelve_10ms_components", samples_seed(NAMES, 10, 1, 1.25, seconds=4))


# dicom_part10: the recording as smaller instances.
def instance(names, step, seconds, sop_class, units=None):
    ds = copy.deepcopy(source)
    for tag in [0x0040B020, 0x00400555]:  # annotations, acquisition context
        if tag in ds:
            del ds[tag]
    ds.remove_private_tags()
    group = ds.WaveformSequence[0]
    ds.WaveformSequence = pydicom.Sequence([group])
    index = [NAMES.index(n) for n in names]
    samples = raw[300 : 300 + int(seconds * 1000) : step][:, index]
    group.NumberOfWaveformChannels = len(names)
    group.NumberOfWaveformSamples = len(samples)
    group.SamplingFrequency = str(1000 // step)
    group.ChannelDefinitionSequence = pydicom.Sequence(
        [group.ChannelDefinitionSequence[i] for i in index])
    if units == "mV":
        for definition in group.ChannelDefinitionSequence:
            definition.ChannelSensitivity = "0.00125"
            definition.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
    group.WaveformData = np.ascontiguousarray(samples).astype("<i2").tobytes()
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


write("dicom_part10", "waveform_ecg_3s_500Hz.dcm",
      instance(NAMES, 2, 3, "1.2.840.10008.5.1.4.1.1.9.1.1"))
write("dicom_part10", "waveform_ecg_3_leads_mV.dcm",
      instance(["I", "II", "V5"], 1, 2.5, "1.2.840.10008.5.1.4.1.1.9.1.2", "mV"))

for name in ["MR_small_jpeg_ls_lossless.dcm", "JPEGLSNearLossless_08.dcm", "liver_deflate.dcm",
             "liver_rle.dcm", "liver_j2k.dcm", "rtdose_rle_1frame.dcm",
             "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_rle_32bit_2frame.dcm"]:
    shutil.copy(os.path.join(imaging, "dicom", name), os.path.join(here, "dicom_part10", name))
os.makedirs(os.path.join(here, "jpegls"), exist_ok=True)
for name in sorted(os.listdir(os.path.join(imaging, "jpegls"))):
    if name.endswith(".jls"):
        shutil.copy(os.path.join(imaging, "jpegls", name), os.path.join(here, "jpegls", name))
