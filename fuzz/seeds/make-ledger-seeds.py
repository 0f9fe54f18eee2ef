#!/usr/bin/env python3
"""Writes the ledger_note seeds: add-checkpoint requests signed with the target's fixed log key
(Ed25519 seed of 32 bytes 0x01, name fuzz.example/log), so that the fuzzer starts past the
signature check. Needs the `cryptography` package; run by hand, the seeds are committed."""

import base64
import hashlib
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ledger_note")
os.makedirs(here, exist_ok=True)
key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
name = "fuzz.example/log"
key_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def b64(data):
    return base64.b64encode(data).decode()


def note(size, root):
    text = f"{name}\n{size}\n{b64(root)}\n"
    return text + "\n" + f"\u2014 {name} {b64(key_id + key.sign(text.encode()))}\n"


seven = hashlib.sha256(b"\x00seven").digest()
other = hashlib.sha256(b"\x00other").digest()
seeds = {
    "first.txt": "old 0\n\n" + note(7, seven),
    "grown.txt": f"old 7\n{b64(other)}\n{b64(seven)}\n\n" + note(10, other),
    "same-size.txt": "old 7\n\n" + note(7, other),
    "verifier-key.txt": f"{name}+{key_id.hex()}+{b64(bytes([1]) + public)}",
}
for file, text in seeds.items():
    with open(os.path.join(here, file), "w", encoding="utf-8") as out:
        out.write(text)
