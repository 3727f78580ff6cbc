#!/usr/bin/env python3
"""Independent check of atrest STREAM v1 against docs/FORMAT.md.

A from-the-spec reimplementation of the decryptor in ~40 lines of Python using the
`cryptography` package (OpenSSL's AES-GCM and HKDF), run over the frozen vectors in
tests/vectors/stream_v1.json. It shares no code with the Rust implementation, so if both
agree on the vectors, the spec, the vectors and the code say the same thing.

Usage: python tests/vectors/stream_v1_check.py [tests/vectors/stream_v1.json] [--explain NAME]
`--explain NAME` prints the intermediate values (stream key, nonces) for one vector.
"""
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = bytes([0x89]) + b"atr"
LABEL = b"atrest STREAM v1 AES-256-GCM"
HEADER_LEN = 42
TAG = 16


def decrypt(key: bytes, aad: bytes, stream: bytes, explain: bool = False) -> bytes:
    header = stream[:HEADER_LEN]
    if len(header) < HEADER_LEN:
        raise ValueError("truncated header")
    if header[:4] != MAGIC or header[4] != 1 or header[5] != 1:
        raise ValueError("bad magic, version or suite")
    (seg,) = struct.unpack(">I", header[6:10])
    if not 4096 <= seg <= 16 << 20:
        raise ValueError("segment size out of range")
    salt = header[10:42]
    stream_key = HKDF(hashes.SHA256(), 32, salt, LABEL + header + aad).derive(key)
    if explain:
        print(f"  segment_size = {seg}\n  stream_key   = {stream_key.hex()}")
    aead = AESGCM(stream_key)
    body = stream[HEADER_LEN:]
    full = seg + TAG
    chunks = [body[i:i + full] for i in range(0, len(body), full)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        nonce = struct.pack(">Q", i) + b"\x00\x00\x00" + (b"\x01" if last else b"\x00")
        if explain:
            print(f"  segment {i}: nonce = {nonce.hex()}, {len(chunk)} bytes")
        out.append(aead.decrypt(nonce, chunk, b""))
    return b"".join(out)


def main() -> int:
    argv = sys.argv[1:]
    explain = None
    if "--explain" in argv:
        at = argv.index("--explain")
        explain = argv[at + 1]
        del argv[at:at + 2]
    path = argv[0] if argv else "tests/vectors/stream_v1.json"
    with open(path) as f:
        vectors = json.load(f)["vectors"]
    passed = failed = 0
    for v in vectors:
        key, aad = bytes.fromhex(v["key"]), bytes.fromhex(v["aad"])
        ct, pt = bytes.fromhex(v["ciphertext"]), bytes.fromhex(v["plaintext"])
        if explain == v["name"]:
            print(v["name"])
        try:
            ok = decrypt(key, aad, ct, explain == v["name"]) == pt
            # Tampering must fail.
            bad = bytearray(ct)
            bad[-1] ^= 1
            try:
                decrypt(key, aad, bytes(bad))
                ok = False
            except Exception:
                pass
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            print(f"{v['name']}: {type(e).__name__}: {e}")
            ok = False
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {v['name']}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
