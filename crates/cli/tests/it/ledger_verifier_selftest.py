#!/usr/bin/env python3
"""Self-test for ledger_verifier.py (standard library only, no Meridian server).

It checks the verifier's own building blocks against independent references:

  * Merkle trees of sizes 1..40 built with a straightforward recursive MTH, with
    inclusion proofs from PATH (RFC 9162 2.1.3.1) and consistency proofs from
    SUBPROOF (RFC 9162 2.1.4.1) written here from the RFC text; every genuine
    proof must verify and tampered ones (flipped byte, wrong index, wrong size,
    truncated, extended, wrong roots) must not. Tampered cases are judged by an
    oracle: a proof is accepted only if it equals the reference proof for the
    claimed parameters.
  * Known answers: the published 8-leaf RFC 6962 test tree root and the
    labelled 7-leaf example of C2SP merkle-tree.
  * Ed25519: RFC 8032 section 7.1 TEST 1, 2, 3, tampered messages and
    signatures; a small signer written here (for building test notes) must
    reproduce the RFC signatures.
  * Signed notes: the golang.org/x/mod sumdb/note "PeterNeumann" published
    example (key id, signature), and checkpoints with log signatures and
    tlog-cosignature witness cosignatures constructed here.
  * The command line, end to end, against an in-process stub HTTP server on
    127.0.0.1 that serves a small honest log and can be told to misbehave.

Usage: python3 crates/cli/tests/ledger_verifier_selftest.py [-v]
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
VERIFIER_PATH = os.path.join(HERE, "ledger_verifier.py")
sys.path.insert(0, HERE)
import ledger_verifier as v  # noqa: E402


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def flip(data: bytes, pos: int = 0, bit: int = 1) -> bytes:
    out = bytearray(data)
    out[pos % len(out)] ^= bit
    return bytes(out)


def rejects(fn, *args) -> bool:
    try:
        fn(*args)
    except v.VerifyError:
        return True
    return False


# ---------------------------------------------------------------------------
# Reference Merkle tree, written directly from RFC 9162 2.1.1, 2.1.3.1, 2.1.4.1


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = ref_k(n)
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


MAX_N = 40
DATA = [f"leaf number {i}".encode() for i in range(MAX_N + 2)]
LEAF_HASHES = [sha256(b"\x00" + x) for x in DATA]
ROOTS = {n: ref_mth(DATA[:n]) for n in range(0, MAX_N + 2)}
PATHS = {(m, n): ref_path(m, DATA[:n]) for n in range(1, MAX_N + 2) for m in range(n)}
PROOFS = {(m, n): (ref_proof(m, DATA[:n]) if 0 < m < n else [])
          for n in range(0, MAX_N + 2) for m in range(0, n + 1)}


def inclusion_expected(leaf, index, size, path, root) -> bool:
    return (0 <= index < size <= MAX_N + 1 and leaf == LEAF_HASHES[index]
            and path == PATHS[(index, size)] and root == ROOTS[size])


def consistency_expected(m, n, path, r1, r2) -> bool:
    # Every tree extends the empty tree: with m == 0 the second root is unconstrained.
    return (0 <= m <= n <= MAX_N + 1 and r1 == ROOTS[m] and (m == 0 or r2 == ROOTS[n])
            and path == PROOFS[(m, n)])


def inclusion_accepts(*args) -> bool:
    return not rejects(v.verify_inclusion, *args)


def consistency_accepts(*args) -> bool:
    return not rejects(v.verify_consistency, *args)


# ---------------------------------------------------------------------------
# A small Ed25519 signer (RFC 8032 5.1.5/5.1.6) for building test notes. It uses
# the verifier's point arithmetic; the RFC vectors check both sides.


def ed25519_expand(seed: bytes) -> tuple[int, bytes]:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public(seed: bytes) -> bytes:
    a, _ = ed25519_expand(seed)
    return v._encode_point(v._scalar_mult(a, v._B))


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    a, prefix = ed25519_expand(seed)
    pub = v._encode_point(v._scalar_mult(a, v._B))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % v._L
    r_enc = v._encode_point(v._scalar_mult(r, v._B))
    k = int.from_bytes(hashlib.sha512(r_enc + pub + msg).digest(), "little") % v._L
    s = (r + k * a) % v._L
    return r_enc + s.to_bytes(32, "little")


class TestKey:
    def __init__(self, name: str, label: str, alg: int):
        self.name, self.alg = name, alg
        self.seed = sha256(label.encode())
        self.public = ed25519_public(self.seed)
        self.key_id = sha256(name.encode() + b"\n" + bytes([alg]) + self.public)[:4]
        self.vkey = f"{name}+{self.key_id.hex()}+{b64(bytes([alg]) + self.public)}"

    def sign_line(self, text: str, timestamp: int | None = None) -> str:
        if self.alg == 0x01:
            sig = ed25519_sign(self.seed, text.encode())
            return f"\u2014 {self.name} {b64(self.key_id + sig)}\n"
        msg = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
        sig = ed25519_sign(self.seed, msg)
        return f"\u2014 {self.name} {b64(self.key_id + timestamp.to_bytes(8, 'big') + sig)}\n"


ORIGIN = "meridian.example/ledger"
LOG_KEY = TestKey(ORIGIN, "log key 2", 0x01)
OLD_LOG_KEY = TestKey(ORIGIN, "log key 1", 0x01)
WITNESS = TestKey("witness.example/w1", "witness 1", 0x04)
OTHER = TestKey("stranger.example", "stranger", 0x01)


def checkpoint_text(size: int, root: bytes, origin: str = ORIGIN) -> str:
    return f"{origin}\n{size}\n{b64(root)}\n"


def make_note(text: str, signers=(LOG_KEY,), witnesses=((WITNESS, 1700000000),)) -> str:
    lines = "".join(k.sign_line(text) for k in signers)
    lines += "".join(w.sign_line(text, ts) for w, ts in witnesses)
    return text + "\n" + lines


# ---------------------------------------------------------------------------


class MerkleTests(unittest.TestCase):
    def test_reference_known_answers(self):
        # RFC 6962 reference test tree (8 leaves), root published with the CT code.
        leaves = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
                  bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
        root = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        self.assertEqual(ref_mth(leaves).hex(), root)
        self.assertEqual(v.mth_from_leaf_hashes([v.leaf_hash(x) for x in leaves]).hex(), root)
        self.assertEqual(v.mth_from_leaf_hashes([]), sha256(b""))
        # C2SP merkle-tree labelled 7-leaf example.
        d = [bytes([i]) for i in range(7)]
        a, b, c, dd, e, f, g = (sha256(b"\x00" + x) for x in d)
        node = lambda l, r: sha256(b"\x01" + l + r)  # noqa: E731
        h, i, j = node(a, b), node(c, dd), node(e, f)
        k, l_ = node(h, i), node(j, g)
        root7 = node(k, l_)
        self.assertEqual(ref_mth(d), root7)
        for m, want in [(0, [b, i, l_]), (3, [c, h, l_]), (4, [f, g, k]), (6, [j, k])]:
            self.assertEqual(ref_path(m, d), want)
            v.verify_inclusion(sha256(b"\x00" + d[m]), m, 7, want, root7)
        for m, want in [(3, [c, dd, h, l_]), (4, [l_]), (6, [j, g, k])]:
            self.assertEqual(ref_proof(m, d), want)
            v.verify_consistency(m, 7, want, ref_mth(d[:m]), root7)

    def test_mth_matches_reference(self):
        for n in range(0, MAX_N + 2):
            self.assertEqual(v.mth_from_leaf_hashes(LEAF_HASHES[:n]), ROOTS[n], n)

    def test_inclusion_sizes_1_to_40(self):
        accepted = tampered = 0
        for n in range(1, MAX_N + 1):
            root = ROOTS[n]
            for m in range(n):
                leaf, path = LEAF_HASHES[m], PATHS[(m, n)]
                v.verify_inclusion(leaf, m, n, path, root)
                accepted += 1
                cases = []
                for j in range(len(path)):  # flipped byte in each proof hash
                    bad = list(path)
                    bad[j] = flip(bad[j], j)
                    cases.append((leaf, m, n, bad, root))
                cases.append((flip(leaf, 5), m, n, path, root))            # wrong leaf
                cases.append((leaf, m, n, path, flip(root, 31)))           # wrong root
                for m2 in (m - 1, m + 1, n, n + 5):                        # wrong index
                    if m2 >= 0:
                        cases.append((leaf, m2, n, path, root))
                        if m2 < n:
                            cases.append((LEAF_HASHES[m2], m2, n, path, root))
                for n2 in (n - 1, n + 1):                                  # wrong size
                    if n2 >= 1:
                        cases.append((leaf, m, n2, path, ROOTS[n2]))
                if path:
                    cases.append((leaf, m, n, path[:-1], root))            # truncated
                    cases.append((leaf, m, n, path[1:], root))
                    cases.append((leaf, m, n, [], root))
                cases.append((leaf, m, n, path + [root], root))            # extended
                cases.append((leaf, m, n, path + [LEAF_HASHES[0]], root))
                for case in cases:
                    self.assertEqual(inclusion_accepts(*case), inclusion_expected(*case),
                                     f"inclusion n={n} m={m} case={case[1:3]} len={len(case[3])}")
                    tampered += 1
        self.assertEqual(accepted, MAX_N * (MAX_N + 1) // 2)
        print(f"\n    inclusion: {accepted} genuine proofs accepted, {tampered} variants judged",
              file=sys.stderr)

    def test_consistency_sizes_1_to_40(self):
        accepted = tampered = 0
        for n in range(1, MAX_N + 1):
            for m in range(0, n + 1):
                proof, r1, r2 = PROOFS[(m, n)], ROOTS[m], ROOTS[n]
                v.verify_consistency(m, n, proof, r1, r2)
                accepted += 1
                cases = []
                for j in range(len(proof)):
                    bad = list(proof)
                    bad[j] = flip(bad[j], j)
                    cases.append((m, n, bad, r1, r2))
                cases.append((m, n, proof, flip(r1, 3), r2))
                cases.append((m, n, proof, r1, flip(r2, 3)))
                if m != n:
                    cases.append((m, n, proof, r2, r1))
                for m2 in (m - 1, m + 1):
                    if m2 >= 0:
                        cases.append((m2, n, proof, ROOTS[m2], r2))
                        cases.append((m2, n, proof, r1, r2))
                for n2 in (n - 1, n + 1):
                    if n2 >= 0:
                        cases.append((m, n2, proof, r1, ROOTS[n2]))
                cases.append((n, m, proof, r2, r1))                          # swapped sizes
                if proof:
                    cases.append((m, n, proof[:-1], r1, r2))
                    cases.append((m, n, proof[1:], r1, r2))
                    cases.append((m, n, [], r1, r2))
                cases.append((m, n, proof + [r2], r1, r2))
                cases.append((m, n, [r1] + proof, r1, r2))
                for case in cases:
                    self.assertEqual(consistency_accepts(*case), consistency_expected(*case),
                                     f"consistency m={m} n={n} case={case[:2]} len={len(case[2])}")
                    tampered += 1
        print(f"\n    consistency: {accepted} genuine proofs accepted, {tampered} variants judged",
              file=sys.stderr)


RFC8032_VECTORS = [
    # (secret key, public key, message, signature) -- RFC 8032 section 7.1
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


class Ed25519Tests(unittest.TestCase):
    def test_base_point(self):
        self.assertEqual(v._B[0], 15112221349535400772501151409588531511454012693041857206046113283949847762202)
        self.assertEqual(v._B[1], 46316835694926478169428394003475163141307993866256225615783033603165251855960)

    def test_rfc8032_vectors(self):
        for n, (sk, pk, msg, sig) in enumerate(RFC8032_VECTORS, 1):
            sk, pk, msg, sig = (bytes.fromhex(x) for x in (sk, pk, msg, sig))
            self.assertTrue(v.ed25519_verify(pk, msg, sig), f"TEST {n}")
            # the test signer reproduces the RFC (validates the shared arithmetic)
            self.assertEqual(ed25519_public(sk), pk, f"TEST {n} public key")
            self.assertEqual(ed25519_sign(sk, msg), sig, f"TEST {n} signature")

    def test_tampering_rejected(self):
        for n, (_, pk, msg, sig) in enumerate(RFC8032_VECTORS, 1):
            pk, msg, sig = (bytes.fromhex(x) for x in (pk, msg, sig))
            self.assertFalse(v.ed25519_verify(pk, msg + b"\x00", sig), f"TEST {n} longer message")
            if msg:
                self.assertFalse(v.ed25519_verify(pk, flip(msg, 0), sig), f"TEST {n} flipped message")
            self.assertFalse(v.ed25519_verify(pk, msg, flip(sig, 0)), f"TEST {n} flipped R")
            self.assertFalse(v.ed25519_verify(pk, msg, flip(sig, 40)), f"TEST {n} flipped S")
            self.assertFalse(v.ed25519_verify(flip(pk, 1), msg, sig), f"TEST {n} other key")
            s = int.from_bytes(sig[32:], "little") + v._L  # non-canonical S
            self.assertFalse(v.ed25519_verify(pk, msg, sig[:32] + s.to_bytes(32, "little")))
            self.assertFalse(v.ed25519_verify(pk, msg, sig[:63]))
            self.assertFalse(v.ed25519_verify(pk[:31], msg, sig))
        other_pk = bytes.fromhex(RFC8032_VECTORS[1][1])
        self.assertFalse(v.ed25519_verify(other_pk, b"", bytes.fromhex(RFC8032_VECTORS[0][3])))
        # non-canonical point encoding (y >= p) is rejected by decoding
        self.assertIsNone(v._decode_point((2 ** 255 - 19).to_bytes(32, "little")))


GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


class NoteTests(unittest.TestCase):
    def test_published_go_note(self):
        key = v.parse_verifier_key(GO_VKEY, 0x01)
        self.assertEqual(key.name, "PeterNeumann")
        self.assertEqual(key.key_id.hex(), "c74f20a3")
        note = v.parse_signed_note(GO_NOTE)
        self.assertEqual(note.text, GO_TEXT)
        self.assertEqual(len(note.signatures), 1)
        sig = note.signatures[0]
        self.assertEqual((sig.name, sig.key_id), ("PeterNeumann", key.key_id))
        self.assertTrue(v.ed25519_verify(key.public_key, GO_TEXT.encode(), sig.signature))
        self.assertFalse(v.ed25519_verify(key.public_key, GO_TEXT.replace("cryptography", "Cryptography").encode(), sig.signature))
        seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]
        self.assertEqual(ed25519_public(seed), key.public_key)
        self.assertEqual(ed25519_sign(seed, GO_TEXT.encode()), sig.signature)

    def test_key_id_and_verifier_keys(self):
        for k in (LOG_KEY, OLD_LOG_KEY, WITNESS):
            self.assertEqual(v.key_id(k.name, k.alg, k.public), k.key_id)
            parsed = v.parse_verifier_key(k.vkey, k.alg)
            self.assertEqual((parsed.name, parsed.key_id, parsed.public_key), (k.name, k.key_id, k.public))
        name, hex_id, key_b64 = LOG_KEY.vkey.split("+", 2)
        bad_id = f"{int(hex_id, 16) ^ 1:08x}"
        for bad in [f"{name}+{bad_id}+{key_b64}", f"{name}+{hex_id.upper()}+{key_b64}",
                    f"{name}+{hex_id}", f"{name}+{hex_id}+{key_b64[:-1]}",
                    f"other.example+{hex_id}+{key_b64}", f"+{hex_id}+{key_b64}",
                    f"a b+{hex_id}+{key_b64}", WITNESS.vkey.replace(WITNESS.name, LOG_KEY.name)]:
            self.assertRaises(v.VerifyError, v.parse_verifier_key, bad, 0x01)
        self.assertRaises(v.VerifyError, v.parse_verifier_key, WITNESS.vkey, 0x01)  # wrong type
        self.assertRaises(v.VerifyError, v.parse_verifier_key, LOG_KEY.vkey, 0x04)

    def test_cosignature_message_matches_spec_example(self):
        body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        self.assertEqual(v.cosignature_message(1679315147, body),
                         b"cosignature/v1\ntime 1679315147\n" + body.encode())

    def test_checkpoint_notes(self):
        text = checkpoint_text(12, ROOTS[12])
        logs, wits = [v.parse_verifier_key(OLD_LOG_KEY.vkey), v.parse_verifier_key(LOG_KEY.vkey)], \
            [v.parse_verifier_key(WITNESS.vkey)]
        note = make_note(text) + OTHER.sign_line(text)
        r = v.verify_checkpoint_note(note, logs, wits, True)
        self.assertEqual(r["checkpoint"].size, 12)
        self.assertEqual(r["checkpoint"].root, ROOTS[12])
        self.assertEqual(r["checkpoint"].origin, ORIGIN)
        self.assertEqual(r["log_signatures"], [f"{ORIGIN}+{LOG_KEY.key_id.hex()}"])
        self.assertEqual(r["witness_cosignatures"][0]["timestamp"], 1700000000)
        self.assertEqual(r["unknown_signatures"], 1)
        # signed by a historical log key only
        v.verify_checkpoint_note(make_note(text, (OLD_LOG_KEY,), ()), logs, wits, False)
        # no witness: fine unless required
        plain = make_note(text, witnesses=())
        v.verify_checkpoint_note(plain, logs, wits, False)
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note, plain, logs, wits, True)
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note, note, logs, [], True)
        # tampered body, signature, cosignature, timestamp
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note,
                          note.replace("\n12\n", "\n13\n", 1), logs, wits, False)
        lines = note.split("\n")
        for idx in (4, 5):  # log signature line, witness line
            name, sig = lines[idx].rsplit(" ", 1)
            raw = base64.b64decode(sig)
            for pos in (len(raw) - 1, 6):  # inside the Ed25519 signature / timestamp
                bad = list(lines)
                bad[idx] = name + " " + b64(flip(raw, pos))
                self.assertRaises(v.VerifyError, v.verify_checkpoint_note, "\n".join(bad), logs, wits, False)
        # only unknown or witness signatures: no log signature
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note,
                          text + "\n" + OTHER.sign_line(text), logs, wits, False)
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note,
                          make_note(text, ()), logs, wits, False)
        # log key whose name is not the origin does not count
        other_origin = checkpoint_text(12, ROOTS[12], "elsewhere.example/log")
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note,
                          make_note(other_origin), logs, wits, False)
        # size 0 must carry the empty root
        v.verify_checkpoint_note(make_note(checkpoint_text(0, ROOTS[0])), logs, wits, True)
        self.assertRaises(v.VerifyError, v.verify_checkpoint_note,
                          make_note(checkpoint_text(0, ROOTS[1])), logs, wits, False)
        # extension lines are allowed and signed
        ext = text + "extension line\n"
        v.verify_checkpoint_note(make_note(ext), logs, wits, True)

    def test_note_parsing_errors(self):
        text = checkpoint_text(3, ROOTS[3])
        good = make_note(text)
        parsed = v.parse_signed_note(good)
        self.assertEqual(parsed.text, text)
        self.assertEqual(len(parsed.signatures), 2)
        sig_line = LOG_KEY.sign_line(text)
        bad_notes = [
            good.rstrip("\n"),                                  # no final newline
            text + sig_line,                                    # no blank line
            text + "\n",                                        # no signatures
            good.replace("\n", "\r\n"),                         # CR
            text + "\n" + sig_line.replace("\u2014", "--"),     # not an em dash
            text + "\n" + sig_line.replace(ORIGIN, ORIGIN + "+x"),
            text + "\n" + sig_line.replace(" ", "  ", 1),
            text + "\n" + sig_line.replace("=\n", "\n"),        # bad base64
            text + "\n\u2014 " + ORIGIN + " AAAA\n",            # too short
            "\n\n" + sig_line,                                  # empty text
        ]
        for bad in bad_notes:
            self.assertRaises(v.VerifyError, v.parse_signed_note, bad)
        for bad_text in ["o\n012\n" + b64(ROOTS[3]) + "\n", "o\n-1\n" + b64(ROOTS[3]) + "\n",
                         "o\n3\n" + b64(ROOTS[3][:31]) + "\n", "o\n3\n",
                         "o\n3\n" + b64(ROOTS[3]) + "\n\next\n", "\n3\n" + b64(ROOTS[3]) + "\n",
                         "o\n3\n" + b64(ROOTS[3])]:
            self.assertRaises(v.VerifyError, v.parse_checkpoint_text, bad_text)


class LeafTests(unittest.TestCase):
    GOOD = {"id": "p1", "org": "org-a", "sha256": "ab" * 32, "time": "2024-01-01T00:00:00Z",
            "type": "Patient", "version": "1"}

    def test_leaf_input(self):
        canon = json.dumps(self.GOOD, sort_keys=True, separators=(",", ":"))
        self.assertEqual(v.parse_leaf_input(canon)["id"], "p1")
        self.assertEqual(v.parse_leaf_input(canon.replace('"1"', "1"))["version"], 1)
        unsorted = dict(reversed(list(self.GOOD.items())))
        bad = [json.dumps(self.GOOD), json.dumps(unsorted, separators=(",", ":")),
               canon.replace('"id":"p1"', '"id":"p1","id":"p2"'),
               canon.replace('"org":"org-a",', ""), canon[:-1] + ',"zz":1}',
               canon.replace("ab" * 32, "AB" * 32), "[]", "not json", canon + " ",
               canon.replace('"1"', "NaN"), canon.replace('"p1"', "7")]
        for b in bad:
            self.assertRaises(v.VerifyError, v.parse_leaf_input, b)

    def test_resource_argument(self):
        self.assertEqual(v.parse_resource("Patient/p-1.x/_history/3"), ("Patient", "p-1.x", "3"))
        for bad in ["Patient/p1", "Patient/p1/_history/", "Patient/p 1/_history/1", "/p/_history/1",
                    "Patient/p1/history/1", "Patient/p1/_history/1/x"]:
            self.assertRaises(v.UsageError, v.parse_resource, bad)


# ---------------------------------------------------------------------------
# End-to-end: the command line against an in-process stub server

TOKEN = "test-token-123"


class StubLog:
    def __init__(self):
        self.entries = []   # leaf_input strings
        self.index = {}     # "TYPE/ID/_history/V" -> leaf index
        self.bodies = {}    # "/TYPE/ID/_history/V" -> bytes or None (deleted)
        seq = [("Patient", "p1", "1"), ("Patient", "p1", "2"), ("Observation", "o1", "1"),
               ("Patient", "p2", "1"), ("Patient", "p2", "2", "deleted"), ("Observation", "o1", "2"),
               ("Patient", "p3", "1"), ("Patient", "p1", "3"), ("Encounter", "e1", "1"),
               ("Observation", "o2", "1"), ("Patient", "p3", "2"), ("Encounter", "e1", "2")]
        for n, item in enumerate(seq):
            rtype, rid, ver = item[:3]
            deleted = len(item) > 3
            body = None if deleted else json.dumps(
                {"resourceType": rtype, "id": rid, "meta": {"versionId": ver}, "n": n, "text": "é"},
                ensure_ascii=False).encode()
            leaf = {"id": rid, "org": "org-a", "sha256": hashlib.sha256(body or b"").hexdigest(),
                    "time": f"2024-01-01T00:00:{n:02d}Z", "type": rtype, "version": ver}
            self.index[f"{rtype}/{rid}/_history/{ver}"] = len(self.entries)
            self.entries.append(json.dumps(leaf, sort_keys=True, separators=(",", ":")))
            self.bodies[f"/{rtype}/{rid}/_history/{ver}"] = body
        self.size = len(self.entries)
        self.flags: set[str] = set()

    def view(self) -> list[bytes]:
        entries = list(self.entries)
        if "fork" in self.flags:
            entries[2] = entries[2].replace("00:00:02", "00:00:59")
        return [e.encode() for e in entries]

    def note(self) -> str:
        leaves = self.view()[:self.size]
        text = checkpoint_text(self.size, ref_mth(leaves))
        witnesses = () if "no_witness" in self.flags else ((WITNESS, 1700000123),)
        note = make_note(text, (LOG_KEY,), witnesses)
        if "bad_log_sig" in self.flags:
            head, sig_line = note.split("\n\n", 1)
            name, rest = sig_line.split("\n", 1)
            prefix, sig = name.rsplit(" ", 1)
            note = head + "\n\n" + prefix + " " + b64(flip(base64.b64decode(sig), 30)) + "\n" + rest
        return note


def make_handler(log: StubLog):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status: int, body: bytes, ctype: str = "application/json"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, obj):
            self.send(200, json.dumps(obj).encode())

        def authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                return True
            self.send(401, b'{"error":"unauthorized"}')
            return False

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = {k: v_[0] for k, v_ in urllib.parse.parse_qs(url.query).items()}
            leaves = log.view()
            path = url.path
            if path == "/ledger/checkpoint":
                return self.send(200, log.note().encode(), "text/plain; charset=utf-8")
            if path == "/ledger/keys":
                logs = [OLD_LOG_KEY.vkey, LOG_KEY.vkey]
                if "bad_key_id" in log.flags:
                    logs[0] = logs[0].replace(OLD_LOG_KEY.key_id.hex(), "00000000")
                return self.send_json({"log": logs, "witnesses": [WITNESS.vkey]})
            if path == "/ledger/leaf":
                if not self.authorized():
                    return
                if "malformed_leaf" in log.flags:
                    return self.send(200, b"{not json")
                resource = q.get("resource", "")
                if "swap" in log.flags and resource == "Patient/p1/_history/2":
                    resource = "Patient/p1/_history/1"  # another version's (valid) leaf
                i = log.index.get(resource)
                if i is None:
                    return self.send(404, b'{"error":"no such leaf"}')
                return self.send_json({"index": i, "leaf_input": log.entries[i]})
            if path == "/ledger/proof/inclusion":
                i, size = int(q["index"]), int(q["tree_size"])
                proof = ref_path(i, leaves[:size])
                if "bad_inclusion" in log.flags:
                    proof[0] = flip(proof[0], 7)
                return self.send_json({"leaf_index": i, "tree_size": size,
                                       "audit_path": [b64(h) for h in proof]})
            if path == "/ledger/proof/consistency":
                m, n = int(q["first"]), int(q["second"])
                proof = ref_proof(m, leaves[:n]) if 0 < m < n else []
                return self.send_json({"first": m, "second": n,
                                       "consistency_path": [b64(h) for h in proof]})
            if path == "/ledger/entries":
                start, end = int(q["start"]), int(q["end"])
                end = min(end, start + 4, log.size)  # short pages
                out = [{"index": i, "leaf_input": leaves[i].decode()} for i in range(start, end)]
                if "bad_entries" in log.flags and start <= 3 < end:
                    out[3 - start]["leaf_input"] = out[3 - start]["leaf_input"].replace("org-a", "org-b")
                return self.send_json({"entries": out})
            if path in log.bodies:
                if not self.authorized():
                    return
                if "swap" in log.flags and path == "/Patient/p1/_history/2":
                    path = "/Patient/p1/_history/1"
                body = log.bodies[path]
                if body is None:
                    return self.send(410, b'{"resourceType":"OperationOutcome"}')
                if "bad_body" in log.flags:
                    body = body.replace(b'"n"', b'"N"')
                return self.send(200, body, "application/fhir+json")
            return self.send(404, b'{"error":"not found"}')

    return Handler


class CommandLineTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.log = StubLog()
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(cls.log))
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.tmp.cleanup()

    def setUp(self):
        self.log.flags = set()
        self.log.size = len(self.log.entries)

    def run_cli(self, *args, base=None, token=TOKEN, pre=()):
        cmd = [sys.executable, VERIFIER_PATH, "--base", base or self.base, *pre]
        if token:
            cmd += ["--token", token]
        proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=120)
        records = []
        for line in proc.stdout.splitlines():
            records.append(json.loads(line))  # every stdout line is one JSON object
        for rec in records:
            self.assertIn("check", rec)
            self.assertIn("ok", rec)
            self.assertNotEqual(rec["check"], "internal", rec)
            self.assertNotIn(TOKEN, json.dumps(rec))
        if proc.returncode == 0:
            self.assertTrue(records and all(r["ok"] for r in records), proc.stdout)
        return proc.returncode, records

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def save(self, name, size=None):
        if size is not None:
            self.log.size = size
        rc, recs = self.run_cli("checkpoint", "--save", self.path(name))
        self.assertEqual(rc, 0, recs)
        self.log.size = len(self.log.entries)
        return recs

    def test_checkpoint(self):
        recs = self.save("cp.note")
        with open(self.path("cp.note"), encoding="utf-8") as fh:
            self.assertEqual(fh.read(), self.log.note())
        cp = [r for r in recs if r["check"] == "checkpoint"][0]
        self.assertEqual(cp["tree_size"], 12)
        self.assertEqual(cp["witness_cosignatures"][0]["timestamp"], 1700000123)
        rc, _ = self.run_cli("checkpoint", "--save", self.path("w.note"), pre=["--witness-keys-required"])
        self.assertEqual(rc, 0)
        self.log.flags = {"no_witness"}
        self.assertEqual(self.run_cli("checkpoint", "--save", self.path("nw.note"))[0], 0)
        rc, recs = self.run_cli("checkpoint", "--save", self.path("nw2.note"), pre=["--witness-keys-required"])
        self.assertEqual(rc, 1)
        self.assertFalse(os.path.exists(self.path("nw2.note")))
        self.log.flags = {"bad_log_sig"}
        rc, recs = self.run_cli("checkpoint", "--save", self.path("bad.note"))
        self.assertEqual(rc, 1)
        self.assertFalse(os.path.exists(self.path("bad.note")))
        self.log.flags = {"bad_key_id"}
        self.assertEqual(self.run_cli("checkpoint", "--save", self.path("bk.note"))[0], 1)
        # pinned keys that do not include the log key
        self.log.flags = set()
        with open(self.path("keys.json"), "w") as fh:
            json.dump({"log": [OTHER.vkey], "witnesses": []}, fh)
        rc, _ = self.run_cli("checkpoint", "--save", self.path("pk.note"),
                             pre=["--keys-file", self.path("keys.json")])
        self.assertEqual(rc, 1)

    def test_inclusion(self):
        self.save("inc-old.note", 5)
        self.save("inc-new.note")
        resources = sorted(self.log.index)
        rc, recs = self.run_cli("inclusion", *resources, "--checkpoint", self.path("inc-new.note"))
        self.assertEqual(rc, 0, recs)
        inc = [r for r in recs if r["check"] == "inclusion"]
        self.assertEqual(len(inc), len(resources))
        self.assertTrue(any(r["deleted"] for r in inc))
        self.assertEqual(self.run_cli("inclusion", "Patient/p1/_history/1")[0], 0)
        # a leaf beyond the old checkpoint is not covered by it
        rc, recs = self.run_cli("inclusion", "Patient/p1/_history/1", "Patient/p1/_history/3",
                                "--checkpoint", self.path("inc-old.note"))
        self.assertEqual(rc, 1)
        self.assertEqual([r["ok"] for r in recs if r["check"] == "inclusion"], [True, False])
        for flag in ("bad_body", "bad_inclusion", "malformed_leaf", "swap"):
            self.log.flags = {flag}
            rc, recs = self.run_cli("inclusion", "Patient/p1/_history/2")
            self.assertEqual(rc, 1, flag)
            self.assertFalse([r for r in recs if r["check"] == "inclusion"][0]["ok"])
        self.log.flags = set()
        self.assertEqual(self.run_cli("inclusion", "Patient/p1/_history/2", token="wrong")[0], 1)
        self.assertEqual(self.run_cli("inclusion", "Patient/p9/_history/1")[0], 1)
        self.assertEqual(self.run_cli("inclusion", "Patient/p1")[0], 2)
        self.assertEqual(self.run_cli("inclusion", "Patient/p1/_history/1", "--checkpoint",
                                      self.path("missing.note"))[0], 2)

    def test_consistency(self):
        self.save("c-zero.note", 0)
        self.save("c-old.note", 5)
        self.save("c-new.note")
        for args in [("c-old.note", "c-new.note"), ("c-old.note",), ("c-old.note", "c-old.note"),
                     ("c-zero.note", "c-new.note"), ("c-new.note",)]:
            rc, recs = self.run_cli("consistency", *(self.path(a) for a in args))
            self.assertEqual(rc, 0, (args, recs))
        rc, _ = self.run_cli("consistency", self.path("c-new.note"), self.path("c-old.note"))
        self.assertEqual(rc, 1)
        self.log.flags = {"fork"}  # the log signs a tree that rewrites entry 2
        rc, recs = self.run_cli("consistency", self.path("c-old.note"))
        self.assertEqual(rc, 1, recs)
        self.assertTrue([r for r in recs if r["check"] == "checkpoint"][-1]["ok"])
        self.assertFalse([r for r in recs if r["check"] == "consistency"][0]["ok"])
        with open(self.path("garbage.note"), "w") as fh:
            fh.write("not a note\n")
        self.log.flags = set()
        self.assertEqual(self.run_cli("consistency", self.path("garbage.note"))[0], 1)

    def test_entries(self):
        for extra in ((), ("--upto", "7"), ("--upto", "0"), ("--upto", "12"), ("--upto", "1")):
            rc, recs = self.run_cli("entries", *extra)
            self.assertEqual(rc, 0, (extra, recs))
        self.save("e-old.note", 6)
        self.assertEqual(self.run_cli("entries", "--checkpoint", self.path("e-old.note"))[0], 0)
        self.assertEqual(self.run_cli("entries", "--upto", "99")[0], 2)
        self.log.flags = {"bad_entries"}
        rc, recs = self.run_cli("entries")
        self.assertEqual(rc, 1)
        self.assertEqual(self.run_cli("entries", "--upto", "5")[0], 1)
        self.assertEqual(self.run_cli("entries", "--upto", "3")[0], 0)  # before the bad entry

    def test_usage_and_network_errors(self):
        self.assertEqual(self.run_cli("entries", base="http://127.0.0.1:1")[0], 2)
        proc = subprocess.run([sys.executable, VERIFIER_PATH, "entries"], capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(self.run_cli("frobnicate")[0], 2)
        self.assertEqual(self.run_cli("entries", base="ftp://x")[0], 2)


if __name__ == "__main__":
    unittest.main(verbosity=2 if "-v" in sys.argv else 1)
