#!/usr/bin/env python3
"""Independent check of atrest envelope v1 against docs/FORMAT.md.

A from-the-spec reimplementation of opening an envelope (header parse, local key unwrap, key
commitment, header tag, body key, STREAM v1 body) with the Python `cryptography` package
(OpenSSL's AES-GCM and HKDF), run over the frozen vectors in tests/vectors/envelope_v1.json.
It shares no code with the Rust implementation.

Usage: python tests/vectors/envelope_v1_check.py [tests/vectors/envelope_v1.json] [--explain NAME]
"""
import hmac
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = bytes([0x89]) + b"ate"
STREAM_MAGIC = bytes([0x89]) + b"atr"


def hkdf(salt: bytes, ikm: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(ikm)


class Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("truncated header")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")


def parse(header: bytes) -> dict:
    r = Reader(header)
    if r.take(4) != MAGIC or r.u(1) != 1 or r.u(1) != 1:
        raise ValueError("bad magic, version or suite")
    seg = r.u(4)
    if not 4096 <= seg <= 16 << 20:
        raise ValueError("segment size")
    blob_id = r.take(32)
    ctx_len = r.u(2)
    if ctx_len > 4096:
        raise ValueError("context cap")
    ctx, c, prev = [], Reader(r.take(ctx_len)), None
    while c.at < len(c.data):
        k = c.take(c.u(1))
        v = c.take(c.u(2))
        if not k or (prev is not None and prev >= k):
            raise ValueError("context not canonical")
        prev = k
        ctx.append((k, v))
    scope = r.u(8)
    if len(ctx) < 64 and scope >> len(ctx):
        raise ValueError("wrap scope names missing context entries")
    commitment = r.take(32)
    binding = header[:r.at]
    bound = [(k, v) for i, (k, v) in enumerate(ctx) if scope >> i & 1]
    enc = b"".join(bytes([len(k)]) + k + struct.pack(">H", len(v)) + v for k, v in bound)
    wrap_aad = MAGIC + b"\x01\x01" + struct.pack(">H", len(enc)) + enc
    n = r.u(1)
    if not 1 <= n <= 8:
        raise ValueError("wrapped key count")
    wrapped = []
    for _ in range(n):
        key_id = r.take(r.u(1))
        version = r.u(4)
        ln = r.u(2)
        if not 1 <= ln <= 1024:
            raise ValueError("wrapped key length")
        wrapped.append((key_id, version, r.take(ln)))
    tag = r.take(32)
    if r.at != len(header):
        raise ValueError("trailing bytes")
    return dict(seg=seg, blob_id=blob_id, ctx=ctx, commitment=commitment, binding=binding,
                wrap_aad=wrap_aad, wrapped=wrapped, tag=tag)


def wrapped_spans(header: bytes) -> list:
    """The byte ranges of each wrapped-key entry, in header order."""
    h = parse(header)
    at = len(h["binding"]) + 1
    spans = []
    for key_id, _version, wrapped in h["wrapped"]:
        end = at + 1 + len(key_id) + 4 + 2 + len(wrapped)
        spans.append(range(at, end))
        at = end
    return spans


def local_unwrap(kek: bytes, key_id: bytes, version: int, wrapped: bytes, aad: bytes) -> bytes:
    if len(wrapped) != 80:
        raise ValueError("wrapped length")
    info = b"atrest envelope v1 local wrap" + bytes([len(key_id)]) + key_id \
        + struct.pack(">I", version) + aad
    wrap_key = hkdf(wrapped[:32], kek, info)
    return AESGCM(wrap_key).decrypt(bytes(12), wrapped[32:], b"")


def stream_decrypt(key: bytes, aad: bytes, stream: bytes) -> bytes:
    header = stream[:42]
    if len(header) < 42 or header[:4] != STREAM_MAGIC or header[4] != 1 or header[5] != 1:
        raise ValueError("bad stream header")
    (seg,) = struct.unpack(">I", header[6:10])
    stream_key = hkdf(header[10:42], key, b"atrest STREAM v1 AES-256-GCM" + header + aad)
    body, full = stream[42:], seg + 16
    chunks = [body[i:i + full] for i in range(0, len(body), full)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        last = b"\x01" if i == len(chunks) - 1 else b"\x00"
        out.append(AESGCM(stream_key).decrypt(struct.pack(">Q", i) + b"\x00\x00\x00" + last, chunk, b""))
    return b"".join(out)


def open_envelope(keks: dict, context: list, header: bytes, body: bytes, explain=False) -> bytes:
    h = parse(header)
    stored = sorted(context)
    if [(k, v) for k, v in h["ctx"]] != stored:
        # The caller's context must equal the stored one (checked cryptographically by the tag).
        raise ValueError("context differs")
    data_key = None
    for key_id, version, wrapped in h["wrapped"]:
        kek = keks.get((key_id, version))
        if kek is not None:
            data_key = local_unwrap(kek, key_id, version, wrapped, h["wrap_aad"])
            break
    if data_key is None:
        raise ValueError("no usable wrapped key")
    salt = h["blob_id"]
    commitment = hkdf(salt, data_key, b"atrest envelope v1 key commitment")
    if not hmac.compare_digest(commitment, h["commitment"]):
        raise ValueError("commitment mismatch")
    tag = hkdf(salt, data_key, b"atrest envelope v1 header tag" + h["binding"])
    if not hmac.compare_digest(tag, h["tag"]):
        raise ValueError("header authentication")
    body_key = hkdf(salt, data_key, b"atrest envelope v1 body key")
    if explain:
        print(f"  binding    = {h['binding'].hex()}\n  data_key   = {data_key.hex()}\n"
              f"  commitment = {commitment.hex()}\n  header_tag = {tag.hex()}\n"
              f"  body_key   = {body_key.hex()}")
    if struct.unpack(">I", body[6:10])[0] != h["seg"]:
        raise ValueError("body segment size differs from the header's")
    return stream_decrypt(body_key, h["binding"], body)


def main() -> int:
    argv = sys.argv[1:]
    explain = None
    if "--explain" in argv:
        at = argv.index("--explain")
        explain = argv[at + 1]
        del argv[at:at + 2]
    path = argv[0] if argv else "tests/vectors/envelope_v1.json"
    with open(path) as f:
        vectors = json.load(f)["vectors"]
    passed = failed = 0
    for v in vectors:
        header, body = bytes.fromhex(v["header"]), bytes.fromhex(v["body"])
        context = [(bytes.fromhex(k), bytes.fromhex(val)) for k, val in v["context"]]
        pt = bytes.fromhex(v["plaintext"])
        ok = True
        if explain == v["name"]:
            print(v["name"])
        try:
            for k in v["keys"]:
                keks = {(k["key_id"].encode(), k["version"]): bytes.fromhex(k["kek"])}
                ok &= open_envelope(keks, context, header, body, explain == v["name"]) == pt
            keks = {(k["key_id"].encode(), k["version"]): bytes.fromhex(k["kek"]) for k in v["keys"]}
            # For each key holder: every modified byte of the binding, of the holder's own
            # wrapped key and of the header tag must be rejected. (Another holder's wrapped key
            # is authenticated by that holder's KEK, not by the header tag: FORMAT.md 4.)
            spans = wrapped_spans(header)
            for j, k in enumerate(v["keys"]):
                own = {(k["key_id"].encode(), k["version"]): bytes.fromhex(k["kek"])}
                others = {i for n, span in enumerate(spans) if n != j for i in span}
                for i in range(len(header)):
                    if i in others:
                        continue
                    bad = bytearray(header)
                    bad[i] ^= 1
                    try:
                        open_envelope(own, context, bytes(bad), body)
                        print(f"{v['name']}: header byte {i} modified, still opens")
                        ok = False
                    except Exception:  # noqa: BLE001 - any rejection is right
                        pass
            bad = bytearray(body)
            bad[-1] ^= 1
            try:
                open_envelope(keks, context, header, bytes(bad))
                ok = False
            except Exception:  # noqa: BLE001
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
