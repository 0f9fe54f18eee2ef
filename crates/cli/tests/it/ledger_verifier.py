#!/usr/bin/env python3
"""Independent third-party verifier for the Meridian FHIR server's transparency log.

This program checks what the server publishes under /ledger/ without trusting
it: signed checkpoints, inclusion of individual resource versions, consistency
between two checkpoints (the log is append-only), and the root recomputed from
all entries.

It was written from the public specifications only, without reading or reusing
the server's code or any other implementation:

  * RFC 9162 (Certificate Transparency 2.0), section 2.1: Merkle tree hash,
    inclusion proof verification (2.1.3.2), consistency proof verification
    (2.1.4.2);
  * RFC 8032 (EdDSA), section 5.1: Ed25519 point decoding and signature
    verification (5.1.7), implemented here with plain Python integers;
  * C2SP signed-note (note format, key IDs, verifier keys),
    C2SP tlog-checkpoint (checkpoint body), C2SP tlog-cosignature
    (Ed25519 witness cosignatures, signature type 0x04).

It uses the Python 3.11 standard library only.

Usage:
  python3 ledger_verifier.py --base URL [--token TOKEN] [--witness-keys-required]
                             [--keys-file FILE] [--timeout SECONDS] COMMAND ...

  COMMAND is one of:
    checkpoint --save FILE
        Fetch the current checkpoint, verify its signatures and save the note.
    inclusion RESOURCE... [--checkpoint FILE]
        For each TYPE/ID/_history/VERSION: fetch its leaf and its version body,
        check that the leaf describes that body, and verify the leaf's inclusion
        proof against the checkpoint (the saved one, or a fresh verified one).
    consistency OLD_FILE [NEW_FILE]
        Verify that the checkpoint in NEW_FILE (or a fresh one) extends the one
        in OLD_FILE.
    entries [--upto SIZE] [--checkpoint FILE]
        Download every leaf, recompute the Merkle tree hash and compare it with
        the checkpoint root (with --upto SIZE < checkpoint size: prove the
        recomputed prefix root consistent with the checkpoint).

  Global options:
    --base URL                 server base URL (the ledger is under URL/ledger/)
    --token TOKEN              bearer token, sent only to /ledger/leaf and to
                               the resource version reads
    --fhir-prefix PATH         where versions are read: URL + PATH + /TYPE/ID/...
                               (default: none)
    --witness-keys-required    a checkpoint also needs at least one valid
                               witness cosignature
    --keys-file FILE           trust the keys in FILE (same JSON shape as
                               /ledger/keys) instead of fetching them from the
                               server (pinning; recommended for real audits)
    --timeout SECONDS          per-request timeout (default 30)

Output: one JSON object per check on stdout, {"check": ..., "ok": ..., ...}.
Exit status: 0 only if at least one check ran and every check passed;
1 if any check failed (including malformed server responses);
2 on usage errors or when the server could not be reached.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NamedTuple


# ---------------------------------------------------------------------------
# Errors


class VerifyError(Exception):
    """Something did not verify, or the server sent something malformed."""


class UsageError(Exception):
    """The command line (or a local file it names) is unusable."""


class NetworkError(Exception):
    """The server could not be reached."""


# ---------------------------------------------------------------------------
# Small helpers


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(text: Any, what: str) -> bytes:
    """Standard base64 with padding (RFC 4648 section 4), canonical form only."""
    if not isinstance(text, str):
        raise VerifyError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise VerifyError(f"{what}: invalid base64 ({exc})") from None
    if b64encode(raw) != text:
        raise VerifyError(f"{what}: non-canonical base64")
    return raw


def _require_uint(obj: Any, key: str, what: str) -> int:
    if not isinstance(obj, dict) or key not in obj:
        raise VerifyError(f"{what}: missing field {key!r}")
    value = obj[key]
    if type(value) is not int or value < 0:
        raise VerifyError(f"{what}: field {key!r} is not a non-negative integer: {value!r}")
    return value


def _require_hash_list(obj: Any, key: str, what: str) -> list[bytes]:
    if not isinstance(obj, dict) or key not in obj:
        raise VerifyError(f"{what}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, list):
        raise VerifyError(f"{what}: field {key!r} is not a list")
    if len(value) > 128:
        raise VerifyError(f"{what}: field {key!r} has an absurd length {len(value)}")
    hashes = []
    for i, item in enumerate(value):
        h = b64decode_strict(item, f"{what}: {key}[{i}]")
        if len(h) != 32:
            raise VerifyError(f"{what}: {key}[{i}] is {len(h)} bytes, not 32")
        hashes.append(h)
    return hashes


# ---------------------------------------------------------------------------
# RFC 9162 section 2.1: Merkle tree hashing and proof verification

EMPTY_ROOT = sha256(b"")  # MTH({}) = HASH()
EMPTY_SHA256_HEX = EMPTY_ROOT.hex()


def leaf_hash(leaf_input: bytes) -> bytes:
    """MTH({d}) = HASH(0x00 || d)."""
    return sha256(b"\x00" + leaf_input)


def node_hash(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right)."""
    return sha256(b"\x01" + left + right)


def largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two smaller than n (n > 1)."""
    if n < 2:
        raise ValueError("n must be at least 2")
    return 1 << ((n - 1).bit_length() - 1)


def mth_from_leaf_hashes(hashes: list[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """MTH(D[lo:hi]) per the recursive definition, given the leaf hashes."""
    if hi is None:
        hi = len(hashes)
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[lo]
    k = largest_power_of_two_below(n)
    return node_hash(mth_from_leaf_hashes(hashes, lo, lo + k),
                     mth_from_leaf_hashes(hashes, lo + k, hi))


def _check_hashes(path: list[bytes], what: str) -> None:
    for i, h in enumerate(path):
        if not isinstance(h, (bytes, bytearray)) or len(h) != 32:
            raise VerifyError(f"{what}[{i}] is not a 32-byte hash")


def verify_inclusion(leaf: bytes, index: int, tree_size: int,
                     path: list[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2. Raises VerifyError unless the proof verifies."""
    if type(index) is not int or type(tree_size) is not int or index < 0 or tree_size < 0:
        raise VerifyError("inclusion: index and tree size must be non-negative integers")
    _check_hashes(path, "inclusion path")
    if len(leaf) != 32 or len(root) != 32:
        raise VerifyError("inclusion: leaf hash and root must be 32 bytes")
    # 1. leaf_index must be below tree_size.
    if index >= tree_size:
        raise VerifyError(f"inclusion: leaf index {index} is not below tree size {tree_size}")
    # 2./3.
    fn, sn = index, tree_size - 1
    r = leaf
    # 4.
    for p in path:
        if sn == 0:
            raise VerifyError("inclusion: proof has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # 5.
    if sn != 0:
        raise VerifyError("inclusion: proof has too few hashes")
    if r != root:
        raise VerifyError("inclusion: computed root does not match the tree root")


def verify_consistency(first: int, second: int, path: list[bytes],
                       first_root: bytes, second_root: bytes) -> None:
    """RFC 9162 section 2.1.4.2 (plus the trivial cases first == second and
    first == 0). Raises VerifyError unless the proof verifies."""
    if type(first) is not int or type(second) is not int or first < 0 or second < 0:
        raise VerifyError("consistency: sizes must be non-negative integers")
    _check_hashes(path, "consistency path")
    if len(first_root) != 32 or len(second_root) != 32:
        raise VerifyError("consistency: roots must be 32 bytes")
    if first > second:
        raise VerifyError(f"consistency: first size {first} exceeds second size {second}")
    if first == second:
        if path:
            raise VerifyError("consistency: proof must be empty for equal sizes")
        if first_root != second_root:
            raise VerifyError("consistency: equal sizes but different roots")
        return
    if first == 0:
        if path:
            raise VerifyError("consistency: proof must be empty when the first tree is empty")
        if first_root != EMPTY_ROOT:
            raise VerifyError("consistency: root of the empty tree is not HASH()")
        return
    # 1. An empty consistency_path fails.
    if not path:
        raise VerifyError("consistency: empty proof")
    # 2. If first is an exact power of 2, prepend first_hash.
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # 3.
    fn, sn = first - 1, second - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            raise VerifyError("consistency: proof has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise VerifyError("consistency: proof has too few hashes")
    if fr != first_root:
        raise VerifyError("consistency: proof does not lead to the first root")
    if sr != second_root:
        raise VerifyError("consistency: proof does not lead to the second root")


# ---------------------------------------------------------------------------
# RFC 8032 section 5.1: Ed25519 verification with plain integers
#
# Points are kept in extended homogeneous coordinates (X, Y, Z, T) with
# x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 section 5.1.4).

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_IDENTITY = (0, 1, 1, 0)


def _point_add(p1: tuple, p2: tuple) -> tuple:
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = 2 * _D * t1 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _point_double(p1: tuple) -> tuple:
    x1, y1, z1, _ = p1
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _scalar_mult(s: int, point: tuple) -> tuple:
    q = _IDENTITY
    for bit in bin(s)[2:]:
        q = _point_double(q)
        if bit == "1":
            q = _point_add(q, point)
    return q


def _point_equal(p1: tuple, p2: tuple) -> bool:
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


def _encode_point(point: tuple) -> bytes:
    x, y, z, _ = point
    zinv = pow(z, _P - 2, _P)
    x, y = x * zinv % _P, y * zinv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode_point(data: bytes) -> tuple | None:
    """RFC 8032 section 5.1.3; None if the encoding is invalid."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    x_0 = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= _P:
        return None
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == u:
        pass
    elif vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    else:
        return None
    if x == 0 and x_0 == 1:
        return None
    if x & 1 != x_0:
        x = _P - x
    return (x, y, 1, x * y % _P)


# Base point B: y = 4/5, x even.
_B = _decode_point(((4 * pow(5, _P - 2, _P)) % _P).to_bytes(32, "little"))


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 section 5.1.7 (with the cofactored group equation)."""
    if not isinstance(public_key, (bytes, bytearray)) or len(public_key) != 32:
        return False
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
        return False
    public_key, signature, message = bytes(public_key), bytes(signature), bytes(message)
    # 1. Decode R, S and A; S must be below L.
    a_point = _decode_point(public_key)
    r_point = _decode_point(signature[:32])
    if a_point is None or r_point is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    # 2. k = SHA-512(R || A || M) interpreted little-endian, mod L.
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(),
                       "little") % _L
    # 3. [8][S]B == [8]R + [8][k]A.
    left = _scalar_mult(s, _B)
    right = _point_add(r_point, _scalar_mult(k, a_point))
    for _ in range(3):
        left = _point_double(left)
        right = _point_double(right)
    return _point_equal(left, right)


# ---------------------------------------------------------------------------
# C2SP signed-note, tlog-checkpoint, tlog-cosignature

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 64
MAX_NOTE_BYTES = 1 << 20


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    return sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key)[:4]


def check_key_name(name: Any, what: str = "key name") -> None:
    if not isinstance(name, str) or not name:
        raise VerifyError(f"{what} is empty")
    if "+" in name or any(ch.isspace() for ch in name):
        raise VerifyError(f"{what} {name!r} contains a space or '+'")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise VerifyError(f"{what} {name!r} contains a control character")


class VerifierKey(NamedTuple):
    name: str
    key_id: bytes
    alg: int
    public_key: bytes
    text: str


def parse_verifier_key(text: Any, expected_alg: int | None = None) -> VerifierKey:
    """Parse "name+hexkeyid+base64(alg || public key)" and check the key ID."""
    if not isinstance(text, str):
        raise VerifyError(f"verifier key is not a string: {text!r}")
    parts = text.split("+", 2)  # the name has no '+'; the base64 part may have some
    if len(parts) != 3:
        raise VerifyError(f"verifier key {text!r} does not have the form name+id+key")
    name, hex_id, key_b64 = parts
    check_key_name(name, "verifier key name")
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise VerifyError(f"verifier key {text!r}: key id is not 8 lowercase hex digits")
    raw = b64decode_strict(key_b64, f"verifier key {name}")
    if len(raw) < 1:
        raise VerifyError(f"verifier key {name}: no key material")
    alg, public_key = raw[0], raw[1:]
    if expected_alg is not None and alg != expected_alg:
        raise VerifyError(f"verifier key {name}: signature type 0x{alg:02x}, "
                          f"expected 0x{expected_alg:02x}")
    if alg in (ALG_ED25519, ALG_COSIGNATURE_V1) and len(public_key) != 32:
        raise VerifyError(f"verifier key {name}: Ed25519 key is {len(public_key)} bytes")
    computed = key_id(name, alg, public_key)
    if computed.hex() != hex_id:
        raise VerifyError(f"verifier key {name}: key id {hex_id} does not match the "
                          f"computed {computed.hex()}")
    return VerifierKey(name, computed, alg, public_key, text)


class NoteSignature(NamedTuple):
    name: str
    key_id: bytes
    signature: bytes  # the bytes after the 4-byte key id


class SignedNote(NamedTuple):
    text: str  # the note text, including its final newline
    signatures: list[NoteSignature]


def parse_signed_note(note: Any) -> SignedNote:
    if not isinstance(note, str):
        raise VerifyError("note is not text")
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise VerifyError("note is too large")
    for ch in note:
        if ord(ch) < 0x20 and ch != "\n":
            raise VerifyError(f"note contains control character U+{ord(ch):04X}")
    if not note.endswith("\n"):
        raise VerifyError("note does not end with a newline")
    sep = note.rfind("\n\n")
    if sep < 0:
        raise VerifyError("note has no blank line before its signatures")
    text, block = note[:sep + 1], note[sep + 2:]
    if not text.strip("\n"):
        raise VerifyError("note text is empty")
    if not block:
        raise VerifyError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerifyError(f"note has more than {MAX_SIGNATURES} signature lines")
    signatures = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise VerifyError(f"malformed signature line {line!r}")
        name, space, sig_b64 = line[2:].partition(" ")
        if not space:
            raise VerifyError(f"malformed signature line {line!r}")
        check_key_name(name, "signature key name")
        raw = b64decode_strict(sig_b64, f"signature by {name}")
        if len(raw) < 5:
            raise VerifyError(f"signature by {name} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return SignedNote(text, signatures)


class Checkpoint(NamedTuple):
    origin: str
    size: int
    root: bytes
    extensions: list[str]
    text: str


def parse_checkpoint_text(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise VerifyError("checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise VerifyError("checkpoint text has fewer than three lines")
    if any(line == "" for line in lines):
        raise VerifyError("checkpoint text contains an empty line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"(?:0|[1-9][0-9]*)", size_text):
        raise VerifyError(f"checkpoint tree size {size_text!r} is not a canonical decimal")
    size = int(size_text)
    if size >= 1 << 63:
        raise VerifyError("checkpoint tree size is too large")
    root = b64decode_strict(root_text, "checkpoint root hash")
    if len(root) != 32:
        raise VerifyError(f"checkpoint root hash is {len(root)} bytes, not 32")
    if size == 0 and root != EMPTY_ROOT:
        raise VerifyError("checkpoint of size 0 does not carry the empty-tree root")
    return Checkpoint(origin, size, root, lines[3:], text)


def cosignature_message(timestamp: int, text: str) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode("ascii") + b"\n" + text.encode("utf-8")


def verify_checkpoint_note(note: str, log_keys: list[VerifierKey],
                           witness_keys: list[VerifierKey],
                           require_witness: bool = False) -> dict:
    """Verify a checkpoint note. Raises VerifyError; on success returns
    {"checkpoint": Checkpoint, "log_signatures": [...], "witness_cosignatures": [...],
     "unknown_signatures": n}.

    Policy: signature lines whose (name, key id) match no listed key are ignored;
    every signature from a listed key must verify; at least one must come from a
    log key (type 0x01) named like the origin; with require_witness, at least one
    from a witness key (type 0x04)."""
    parsed = parse_signed_note(note)
    checkpoint = parse_checkpoint_text(parsed.text)
    text_bytes = parsed.text.encode("utf-8")
    known: dict[tuple[str, bytes], list[VerifierKey]] = {}
    for key in list(log_keys) + list(witness_keys):
        known.setdefault((key.name, key.key_id), []).append(key)
    log_ok, other_log_ok, witness_ok, failures = [], [], [], []
    unknown = 0
    for sig in parsed.signatures:
        candidates = known.get((sig.name, sig.key_id))
        if not candidates:
            unknown += 1
            continue
        label = f"{sig.name}+{sig.key_id.hex()}"
        verified = None
        problems = []
        for key in candidates:
            if key.alg == ALG_ED25519:
                if len(sig.signature) != 64:
                    problems.append(f"Ed25519 signature is {len(sig.signature)} bytes")
                elif ed25519_verify(key.public_key, text_bytes, sig.signature):
                    verified = (key, None)
                    break
                else:
                    problems.append("Ed25519 signature is invalid")
            elif key.alg == ALG_COSIGNATURE_V1:
                if len(sig.signature) != 8 + 64:
                    problems.append(f"cosignature is {len(sig.signature)} bytes, not 72")
                    continue
                timestamp = int.from_bytes(sig.signature[:8], "big")
                if timestamp >= 1 << 63:
                    problems.append("cosignature timestamp exceeds 2^63-1")
                elif ed25519_verify(key.public_key, cosignature_message(timestamp, parsed.text),
                                    sig.signature[8:]):
                    verified = (key, timestamp)
                    break
                else:
                    problems.append("cosignature is invalid")
            else:
                problems.append(f"unsupported signature type 0x{key.alg:02x}")
        if verified is None:
            failures.append(f"signature by listed key {label} does not verify "
                            f"({'; '.join(problems)})")
            continue
        key, timestamp = verified
        if key.alg == ALG_COSIGNATURE_V1:
            witness_ok.append({"name": key.name, "key_id": key.key_id.hex(), "timestamp": timestamp})
        elif key.name == checkpoint.origin:
            log_ok.append(label)
        else:
            other_log_ok.append(label)
    if failures:
        raise VerifyError("; ".join(failures))
    if not log_ok:
        raise VerifyError(f"no valid signature from a listed log key named {checkpoint.origin!r}")
    if require_witness and not witness_ok:
        raise VerifyError("no valid witness cosignature from a listed witness key")
    return {"checkpoint": checkpoint, "log_signatures": log_ok,
            "other_log_signatures": other_log_ok, "witness_cosignatures": witness_ok,
            "unknown_signatures": unknown}


# ---------------------------------------------------------------------------
# Leaf format

LEAF_FIELDS = ("id", "org", "sha256", "time", "type", "version")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def parse_leaf_input(leaf_input: Any) -> dict:
    """Parse a leaf_input string and check it is the canonical JSON of exactly
    the fields {id, org, sha256, time, type, version}."""
    if not isinstance(leaf_input, str):
        raise VerifyError("leaf_input is not a string")

    def no_duplicates(pairs: list) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise VerifyError(f"leaf_input has duplicate key {k!r}")
            out[k] = v
        return out

    def no_constants(name: str) -> Any:
        raise VerifyError(f"leaf_input contains non-JSON constant {name}")

    try:
        obj = json.loads(leaf_input, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except ValueError as exc:
        raise VerifyError(f"leaf_input is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise VerifyError("leaf_input is not a JSON object")
    if set(obj) != set(LEAF_FIELDS):
        raise VerifyError(f"leaf_input fields are {sorted(obj)}, expected {list(LEAF_FIELDS)}")
    if canonical_json(obj) != leaf_input:
        raise VerifyError("leaf_input is not canonical JSON (sorted keys, no spaces)")
    for field in ("id", "type", "sha256"):
        if not isinstance(obj[field], str):
            raise VerifyError(f"leaf_input field {field!r} is not a string")
    if not re.fullmatch(r"[0-9a-f]{64}", obj["sha256"]):
        raise VerifyError("leaf_input sha256 is not 64 lowercase hex digits")
    version = obj["version"]
    if not (isinstance(version, str) or type(version) is int):
        raise VerifyError("leaf_input version is neither a string nor an integer")
    return obj


_RESOURCE_RE = re.compile(r"([A-Za-z][A-Za-z0-9]*)/([A-Za-z0-9\-.]{1,64})/_history/([A-Za-z0-9\-.]{1,64})")


def parse_resource(text: str) -> tuple[str, str, str]:
    m = _RESOURCE_RE.fullmatch(text)
    if not m:
        raise UsageError(f"resource {text!r} is not of the form TYPE/ID/_history/VERSION")
    return m.group(1), m.group(2), m.group(3)


# ---------------------------------------------------------------------------
# HTTP

MAX_RESPONSE_BYTES = 64 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed (they would also carry the bearer token)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None


class Response(NamedTuple):
    status: int
    body: bytes


class Client:
    def __init__(self, base: str, token: str | None, timeout: float):
        parsed = urllib.parse.urlsplit(base)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--base {base!r} is not an http(s) URL")
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def get(self, path: str, query: dict | None = None, auth: bool = False) -> Response:
        url = self.base + path
        if query:
            url += "?" + "&".join(f"{k}={urllib.parse.quote(str(v), safe='/')}"
                                  for k, v in query.items())
        headers = {"User-Agent": "meridian-ledger-verifier/1"}
        if auth and self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with self.opener.open(request, timeout=self.timeout) as resp:
                body = resp.read(MAX_RESPONSE_BYTES + 1)
                status = resp.status
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(MAX_RESPONSE_BYTES + 1)
            except Exception:  # the error body is informational only
                body = b""
            status = exc.code
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise NetworkError(f"GET {url}: {exc}") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise VerifyError(f"GET {url}: response larger than {MAX_RESPONSE_BYTES} bytes")
        return Response(status, body)

    def get_ok(self, path: str, query: dict | None = None, auth: bool = False) -> bytes:
        resp = self.get(path, query, auth)
        if resp.status != 200:
            snippet = resp.body[:200].decode("utf-8", "replace")
            raise VerifyError(f"GET {path}: HTTP {resp.status}: {snippet}")
        return resp.body

    def get_json(self, path: str, query: dict | None = None, auth: bool = False) -> Any:
        body = self.get_ok(path, query, auth)
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise VerifyError(f"GET {path}: malformed JSON ({exc})") from None


# ---------------------------------------------------------------------------
# Commands

ENTRIES_PAGE = 1000


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.client = Client(args.base, args.token, args.timeout)
        self.fhir_prefix = "/" + args.fhir_prefix.strip("/") if args.fhir_prefix.strip("/") else ""
        self.failed = False
        self.checks = 0
        self._keys: tuple[list[VerifierKey], list[VerifierKey]] | None = None

    def emit(self, check: str, ok: bool, **details: Any) -> None:
        record = {"check": check, "ok": bool(ok)}
        record.update(details)
        print(json.dumps(record), flush=True)
        self.checks += 1
        if not ok:
            self.failed = True

    def keys(self) -> tuple[list[VerifierKey], list[VerifierKey]]:
        if self._keys is not None:
            return self._keys
        if self.args.keys_file:
            source = "file:" + self.args.keys_file
            try:
                with open(self.args.keys_file, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise UsageError(f"cannot read --keys-file: {exc}") from None
        else:
            source = "server"
        log_keys: list[VerifierKey] = []
        witness_keys: list[VerifierKey] = []
        try:
            if self.args.keys_file:
                try:
                    data = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    raise VerifyError(f"keys file is not JSON ({exc})") from None
            else:
                data = self.client.get_json("/ledger/keys")
            if not isinstance(data, dict):
                raise VerifyError("keys document is not a JSON object")
            log_list = data.get("log")
            witness_list = data.get("witnesses", [])
            if not isinstance(log_list, list) or not log_list:
                raise VerifyError("keys document has no non-empty 'log' list")
            if not isinstance(witness_list, list):
                raise VerifyError("keys document 'witnesses' is not a list")
            errors = []
            for text in log_list:
                try:
                    log_keys.append(parse_verifier_key(text, ALG_ED25519))
                except VerifyError as exc:
                    errors.append(f"log key: {exc}")
            for text in witness_list:
                try:
                    witness_keys.append(parse_verifier_key(text, ALG_COSIGNATURE_V1))
                except VerifyError as exc:
                    errors.append(f"witness key: {exc}")
            details: dict[str, Any] = {"source": source,
                                       "log_keys": [k.text for k in log_keys],
                                       "witness_keys": [k.text for k in witness_keys]}
            if errors:
                details["error"] = "; ".join(errors)
            self.emit("keys", not errors, **details)
        except VerifyError as exc:
            self.emit("keys", False, source=source, error=str(exc))
        self._keys = (log_keys, witness_keys)
        return self._keys

    def read_local(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_NOTE_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None

    def fetch_checkpoint_bytes(self) -> bytes:
        try:
            return self.client.get_ok("/ledger/checkpoint")
        except VerifyError as exc:
            self.emit("checkpoint", False, source="server", error=str(exc))
            return b""

    def verify_note(self, raw: bytes, source: str) -> Checkpoint | None:
        """Verify a checkpoint note and emit the "checkpoint" check."""
        log_keys, witness_keys = self.keys()
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise VerifyError("note is not valid UTF-8") from None
            result = verify_checkpoint_note(text, log_keys, witness_keys,
                                            self.args.witness_keys_required)
        except VerifyError as exc:
            self.emit("checkpoint", False, source=source, error=str(exc))
            return None
        cp: Checkpoint = result["checkpoint"]
        details = {"source": source, "origin": cp.origin, "tree_size": cp.size,
                   "root": b64encode(cp.root),
                   "log_signatures": result["log_signatures"],
                   "witness_cosignatures": result["witness_cosignatures"],
                   "unknown_signatures": result["unknown_signatures"]}
        if result["other_log_signatures"]:
            details["other_log_signatures"] = result["other_log_signatures"]
        self.emit("checkpoint", True, **details)
        return cp

    def checkpoint_from(self, path: str | None) -> Checkpoint | None:
        if path:
            return self.verify_note(self.read_local(path), "file:" + path)
        raw = self.fetch_checkpoint_bytes()
        return self.verify_note(raw, "server") if raw else None


def cmd_checkpoint(ctx: Context) -> None:
    raw = ctx.fetch_checkpoint_bytes()
    if not raw:
        return
    cp = ctx.verify_note(raw, "server")
    if cp is None:
        return  # never save a note that did not verify
    try:
        with open(ctx.args.save, "wb") as fh:
            fh.write(raw)
    except OSError as exc:
        raise UsageError(f"cannot write {ctx.args.save}: {exc}") from None
    ctx.emit("save", True, file=ctx.args.save, tree_size=cp.size)


def _check_inclusion(ctx: Context, resource: str, parts: tuple[str, str, str],
                     cp: Checkpoint, details: dict) -> None:
    rtype, rid, rversion = parts
    client = ctx.client
    leaf = client.get_json("/ledger/leaf", {"resource": resource}, auth=True)
    index = _require_uint(leaf, "index", "leaf response")
    leaf_input = leaf.get("leaf_input")
    details["index"] = index
    fields = parse_leaf_input(leaf_input)
    details.update({"org": fields["org"], "time": fields["time"], "sha256": fields["sha256"]})
    leaf_version = fields["version"]
    leaf_version = str(leaf_version) if type(leaf_version) is int else leaf_version
    if (fields["type"], fields["id"], leaf_version) != (rtype, rid, rversion):
        raise VerifyError(f"leaf describes {fields['type']}/{fields['id']}/_history/"
                          f"{fields['version']}, not {resource}")
    quote = urllib.parse.quote
    body_path = (ctx.fhir_prefix
                 + f"/{quote(rtype, safe='')}/{quote(rid, safe='')}/_history/{quote(rversion, safe='')}")
    body = client.get(body_path, auth=True)
    if body.status == 200:
        actual = hashlib.sha256(body.body).hexdigest()
        details["deleted"] = False
        if actual != fields["sha256"]:
            raise VerifyError(f"version body sha256 {actual} differs from the leaf's "
                              f"{fields['sha256']}")
    elif body.status in (404, 410):
        details["deleted"] = True
        details["body_status"] = body.status
        if fields["sha256"] != EMPTY_SHA256_HEX:
            raise VerifyError(f"version body is gone (HTTP {body.status}) but the leaf is not "
                              "a deletion (sha256 is not that of the empty string)")
    else:
        raise VerifyError(f"GET {body_path}: HTTP {body.status}")
    details["tree_size"] = cp.size
    if index >= cp.size:
        raise VerifyError(f"leaf index {index} is not covered by the checkpoint "
                          f"(tree size {cp.size})")
    proof = client.get_json("/ledger/proof/inclusion", {"index": index, "tree_size": cp.size})
    if _require_uint(proof, "leaf_index", "inclusion proof") != index:
        raise VerifyError("inclusion proof is for a different leaf index")
    if _require_uint(proof, "tree_size", "inclusion proof") != cp.size:
        raise VerifyError("inclusion proof is for a different tree size")
    path = _require_hash_list(proof, "audit_path", "inclusion proof")
    details["audit_path_length"] = len(path)
    verify_inclusion(leaf_hash(leaf_input.encode("utf-8")), index, cp.size, path, cp.root)


def cmd_inclusion(ctx: Context) -> None:
    resources = [(r, parse_resource(r)) for r in ctx.args.resources]
    if ctx.args.checkpoint:
        ctx.read_local(ctx.args.checkpoint)  # usage errors before any network traffic
    cp = ctx.checkpoint_from(ctx.args.checkpoint)
    for resource, parts in resources:
        if cp is None:
            ctx.emit("inclusion", False, resource=resource, error="no verified checkpoint")
            continue
        details: dict[str, Any] = {"resource": resource}
        try:
            _check_inclusion(ctx, resource, parts, cp, details)
        except VerifyError as exc:
            ctx.emit("inclusion", False, **details, error=str(exc))
        else:
            ctx.emit("inclusion", True, **details)


def cmd_consistency(ctx: Context) -> None:
    old_raw = ctx.read_local(ctx.args.old_file)
    new_raw = ctx.read_local(ctx.args.new_file) if ctx.args.new_file else None
    old = ctx.verify_note(old_raw, "file:" + ctx.args.old_file)
    if new_raw is not None:
        new = ctx.verify_note(new_raw, "file:" + ctx.args.new_file)
    else:
        new = ctx.checkpoint_from(None)
    if old is None or new is None:
        ctx.emit("consistency", False, error="a checkpoint did not verify")
        return
    details: dict[str, Any] = {"old_size": old.size, "new_size": new.size,
                               "old_root": b64encode(old.root), "new_root": b64encode(new.root)}
    try:
        if old.origin != new.origin:
            raise VerifyError(f"origins differ: {old.origin!r} vs {new.origin!r}")
        if old.size > new.size:
            raise VerifyError("the new checkpoint is smaller than the old one")
        if old.size == new.size:
            details["method"] = "equal sizes"
            verify_consistency(old.size, new.size, [], old.root, new.root)
        elif old.size == 0:
            details["method"] = "old tree empty"
            verify_consistency(0, new.size, [], old.root, new.root)
        else:
            proof = ctx.client.get_json("/ledger/proof/consistency",
                                        {"first": old.size, "second": new.size})
            if _require_uint(proof, "first", "consistency proof") != old.size or \
                    _require_uint(proof, "second", "consistency proof") != new.size:
                raise VerifyError("consistency proof is for different sizes")
            path = _require_hash_list(proof, "consistency_path", "consistency proof")
            details["method"] = "proof"
            details["proof_length"] = len(path)
            verify_consistency(old.size, new.size, path, old.root, new.root)
    except VerifyError as exc:
        ctx.emit("consistency", False, **details, error=str(exc))
    else:
        ctx.emit("consistency", True, **details)


def cmd_entries(ctx: Context) -> None:
    upto = ctx.args.upto
    if ctx.args.checkpoint:
        ctx.read_local(ctx.args.checkpoint)
    cp = ctx.checkpoint_from(ctx.args.checkpoint)
    if cp is None:
        ctx.emit("entries", False, error="no verified checkpoint")
        return
    if upto is None:
        upto = cp.size
    if upto > cp.size:
        raise UsageError(f"--upto {upto} exceeds the checkpoint tree size {cp.size}")
    details: dict[str, Any] = {"tree_size": cp.size, "upto": upto}
    hashes: list[bytes] = []
    bad_leaves: list[dict] = []
    try:
        i = 0
        while i < upto:
            end = min(i + ENTRIES_PAGE, upto)
            data = ctx.client.get_json("/ledger/entries", {"start": i, "end": end})
            entries = data.get("entries") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise VerifyError("entries response has no 'entries' list")
            if not entries:
                raise VerifyError(f"server returned no entries for start={i} end={end}")
            for entry in entries:
                if i >= end:
                    raise VerifyError(f"server returned entries beyond end={end}")
                index = _require_uint(entry, "index", "entry")
                if index != i:
                    raise VerifyError(f"expected entry {i}, got entry {index}")
                leaf_input = entry.get("leaf_input")
                if not isinstance(leaf_input, str):
                    raise VerifyError(f"entry {i}: leaf_input is not a string")
                hashes.append(leaf_hash(leaf_input.encode("utf-8")))
                try:
                    parse_leaf_input(leaf_input)
                except VerifyError as exc:
                    bad_leaves.append({"index": i, "error": str(exc)})
                i += 1
        details["fetched"] = len(hashes)
        root = mth_from_leaf_hashes(hashes)
        details["computed_root"] = b64encode(root)
        if upto == cp.size:
            details["method"] = "root equality"
            if root != cp.root:
                raise VerifyError("recomputed root differs from the checkpoint root")
        elif upto == 0:
            details["method"] = "empty prefix"
        else:
            proof = ctx.client.get_json("/ledger/proof/consistency",
                                        {"first": upto, "second": cp.size})
            if _require_uint(proof, "first", "consistency proof") != upto or \
                    _require_uint(proof, "second", "consistency proof") != cp.size:
                raise VerifyError("consistency proof is for different sizes")
            path = _require_hash_list(proof, "consistency_path", "consistency proof")
            details["method"] = "prefix consistency proof"
            verify_consistency(upto, cp.size, path, root, cp.root)
    except VerifyError as exc:
        ctx.emit("entries", False, **details, error=str(exc))
        return
    ctx.emit("entries", True, **details)
    ctx.emit("entries_leaf_format", not bad_leaves, checked=len(hashes),
             bad=len(bad_leaves), first_bad=bad_leaves[:5])


# ---------------------------------------------------------------------------
# Command line


def _non_negative_int(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger_verifier.py",
        description="Independent verifier for the Meridian transparency log.")
    parser.add_argument("--base", required=True, help="server base URL")
    parser.add_argument("--token", help="bearer token for leaf and resource reads")
    parser.add_argument("--fhir-prefix", default="",
                        help="path under URL where resource versions are read (e.g. /fhir)")
    parser.add_argument("--witness-keys-required", action="store_true",
                        help="require at least one valid witness cosignature")
    parser.add_argument("--keys-file", help="pinned keys (JSON like /ledger/keys)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0,
                        help="per-request timeout in seconds")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("checkpoint", help="fetch, verify and save the checkpoint")
    p.add_argument("--save", required=True, metavar="FILE")
    p = sub.add_parser("inclusion", help="verify resource versions are in the log")
    p.add_argument("resources", nargs="+", metavar="RESOURCE")
    p.add_argument("--checkpoint", metavar="FILE")
    p = sub.add_parser("consistency", help="verify two checkpoints are consistent")
    p.add_argument("old_file", metavar="OLD_FILE")
    p.add_argument("new_file", metavar="NEW_FILE", nargs="?")
    p = sub.add_parser("entries", help="recompute the root from all entries")
    p.add_argument("--upto", type=_non_negative_int, metavar="SIZE")
    p.add_argument("--checkpoint", metavar="FILE")
    return parser


COMMANDS = {"checkpoint": cmd_checkpoint, "inclusion": cmd_inclusion,
            "consistency": cmd_consistency, "entries": cmd_entries}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits with status 2 on usage errors
    ctx: Context | None = None
    try:
        ctx = Context(args)
        COMMANDS[args.command](ctx)
    except UsageError as exc:
        print(json.dumps({"check": "usage", "ok": False, "error": str(exc)}), flush=True)
        return 2
    except NetworkError as exc:
        print(json.dumps({"check": "network", "ok": False, "error": str(exc)}), flush=True)
        return 2
    except VerifyError as exc:
        print(json.dumps({"check": args.command, "ok": False, "error": str(exc)}), flush=True)
        return 1
    except Exception as exc:  # never crash silently, never report success
        print(json.dumps({"check": "internal", "ok": False,
                          "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    if ctx.failed or ctx.checks == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
