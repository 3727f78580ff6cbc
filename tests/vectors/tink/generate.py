#!/usr/bin/env python3
"""Generate Tink-produced AES256_GCM_HKDF streaming AEAD vectors for atrest-stream.

Output: tests/vectors/tink/aes256_gcm_hkdf.json (next to this script).

Regenerate (from the repository root):

    python3 -m venv /tmp/tinkvenv
    /tmp/tinkvenv/bin/pip install tink==1.16.1
    /tmp/tinkvenv/bin/python tests/vectors/tink/generate.py

The committed file was made with tink-py 1.16.1 (pip package `tink`, which wraps
tink-cc) on CPython 3.11; the exact versions and date are in the JSON "generator"
field. Tink picks the 32-byte HKDF salt and the 7-byte nonce prefix at random, so
every run produces different ciphertexts; keys, AADs and plaintexts are
deterministic. Every ciphertext is decrypted back with Tink before the file is
written, and its layout (header byte, segment count, length) is checked. If the
`cryptography` package happens to be installed, each vector is additionally
decrypted with an independent from-scratch implementation of the format.

Keyset: one AesGcmHkdfStreamingKey proto (key_value = the vector's 32-byte key,
params = {ciphertext_segment_size = C, derived_key_size = 32, hkdf_hash_type =
SHA256}), loaded with tink.proto_keyset_format.parse(..., secret_key_access.TOKEN).
"""

import datetime
import hashlib
import hmac
import importlib.metadata
import io
import json
import pathlib
import platform
import struct
import sys

import tink
from tink import secret_key_access
from tink import streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2
from tink.proto import common_pb2
from tink.proto import tink_pb2

EXPECTED_TINK_VERSION = "1.16.1"
OUT = pathlib.Path(__file__).resolve().parent / "aes256_gcm_hkdf.json"

TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
DERIVED_KEY_SIZE = 32
NONCE_PREFIX_LEN = 7
HEADER_LEN = 1 + DERIVED_KEY_SIZE + NONCE_PREFIX_LEN  # 40
TAG_LEN = 16
# tink-cc AesGcmHkdfStreamingKeyManager::ValidateParams rejects
# ciphertext_segment_size <= header_size + tag_size, i.e. C must be > 1 + 32 + 7 + 16 = 56.
TINK_MIN_SEGMENT_SIZE = HEADER_LEN + TAG_LEN + 1  # 57

# Segment sizes: 4 KiB template, small power of two, odd non-power-of-two, Tink's minimum.
SEGMENT_SIZES = [4096, 512, 1000, TINK_MIN_SEGMENT_SIZE]
SEGMENT_SIZE_1MB = 1 << 20  # AES256_GCM_HKDF_1MB template; small plaintexts only.

NONEMPTY_AAD = b"atrest/tink-interop aad \x00\x01\xfe\xff"

streaming_aead.register()


# --------------------------------------------------------------------------- Tink helpers


def keyset_handle(key_value: bytes, ciphertext_segment_size: int) -> tink.KeysetHandle:
  key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
      version=0,
      key_value=key_value,
      params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
          ciphertext_segment_size=ciphertext_segment_size,
          derived_key_size=DERIVED_KEY_SIZE,
          hkdf_hash_type=common_pb2.SHA256,
      ),
  )
  keyset = tink_pb2.Keyset(
      primary_key_id=1,
      key=[
          tink_pb2.Keyset.Key(
              key_data=tink_pb2.KeyData(
                  type_url=TYPE_URL,
                  value=key.SerializeToString(),
                  key_material_type=tink_pb2.KeyData.SYMMETRIC,
              ),
              status=tink_pb2.ENABLED,
              key_id=1,
              output_prefix_type=tink_pb2.RAW,  # what Tink's templates use
          )
      ],
  )
  return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)


def primitive(key_value: bytes, ciphertext_segment_size: int):
  return keyset_handle(key_value, ciphertext_segment_size).primitive(streaming_aead.StreamingAead)


class _KeepOpen(io.BytesIO):
  """BytesIO that survives the encrypting stream closing it."""

  def close(self):
    pass


def tink_encrypt(prim, plaintext: bytes, aad: bytes) -> bytes:
  out = _KeepOpen()
  with prim.new_encrypting_stream(out, aad) as enc:
    enc.write(plaintext)
  return out.getvalue()


def tink_decrypt(prim, ciphertext: bytes, aad: bytes) -> bytes:
  with prim.new_decrypting_stream(io.BytesIO(ciphertext), aad) as dec:
    return dec.read()


# --------------------------------------------------------------------------- format checks


def expected_segment_count(pt_len: int, c: int) -> int:
  p0, p = c - HEADER_LEN - TAG_LEN, c - TAG_LEN
  if pt_len <= p0:
    return 1  # also for pt_len == 0: one empty, last segment
  return 1 + -(-(pt_len - p0) // p)  # a full final segment, never an extra empty one


def check_layout(name: str, ct: bytes, pt_len: int, c: int) -> None:
  if ct[0] != HEADER_LEN:
    raise AssertionError(f"{name}: header length byte {ct[0]} != {HEADER_LEN}")
  want = HEADER_LEN + pt_len + TAG_LEN * expected_segment_count(pt_len, c)
  if len(ct) != want:
    raise AssertionError(f"{name}: ciphertext length {len(ct)} != expected {want}")


def independent_decrypt(key: bytes, aad: bytes, ct: bytes, c: int) -> bytes:
  """From-scratch decryption (needs `cryptography`): checks the format description."""
  from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # pylint: disable=g-import-not-at-top

  salt, prefix = ct[1:1 + DERIVED_KEY_SIZE], ct[1 + DERIVED_KEY_SIZE:HEADER_LEN]
  prk = hmac.new(salt, key, hashlib.sha256).digest()  # HKDF-Extract(salt, ikm)
  okm = hmac.new(prk, aad + b"\x01", hashlib.sha256).digest()  # HKDF-Expand(info=aad, L=32)
  gcm = AESGCM(okm)
  body = ct[HEADER_LEN:]
  segments = [body[:c - HEADER_LEN]]
  body = body[c - HEADER_LEN:]
  while body:
    segments.append(body[:c])
    body = body[c:]
  out = b""
  for i, seg in enumerate(segments):
    last = i == len(segments) - 1
    nonce = prefix + struct.pack(">I", i) + (b"\x01" if last else b"\x00")
    out += gcm.decrypt(nonce, seg, None)
  return out


# --------------------------------------------------------------------------- vectors


def vector_key(c: int) -> bytes:
  return hashlib.sha256(b"atrest tink interop key, segment size %d" % c).digest()


def pattern(n: int) -> bytes:
  # Not periodic in 256, so equal-length segments have different contents.
  return bytes(((i * 31) + (i >> 8) * 7 + 11) & 0xFF for i in range(n))


def lengths_for(c: int) -> list[int]:
  if c == SEGMENT_SIZE_1MB:
    return [0, 1, 1000]
  p0, p = c - HEADER_LEN - TAG_LEN, c - TAG_LEN
  out = []
  for n in [0, 1, p0 - 1, p0, p0 + 1, p0 + p - 1, p0 + p, p0 + p + 1, p0 + 3 * p + 5]:
    if n >= 0 and n not in out:  # for C = 57, P0 = 1: 0 and 1 repeat
      out.append(n)
  return out


def aad_lengths_for(c: int) -> list[int]:
  if c == SEGMENT_SIZE_1MB:
    return [0, 1000]
  p0, p = c - HEADER_LEN - TAG_LEN, c - TAG_LEN
  return [0, p0, p0 + p + 1]


def check_min_segment_size() -> None:
  key = vector_key(0)
  try:
    primitive(key, TINK_MIN_SEGMENT_SIZE - 1)
  except tink.TinkError:
    pass
  else:
    raise AssertionError(f"Tink accepted ciphertext_segment_size {TINK_MIN_SEGMENT_SIZE - 1}")
  prim = primitive(key, TINK_MIN_SEGMENT_SIZE)
  assert tink_decrypt(prim, tink_encrypt(prim, b"x", b""), b"") == b"x"


def check_templates() -> None:
  """Our hand-built params equal the AES256_GCM_HKDF_4KB / _1MB templates' params."""
  templates = streaming_aead.streaming_aead_key_templates
  for template, c in [(templates.AES256_GCM_HKDF_4KB, 4096),
                      (templates.AES256_GCM_HKDF_1MB, SEGMENT_SIZE_1MB)]:
    fmt = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKeyFormat.FromString(template.value)
    assert template.type_url == TYPE_URL, template.type_url
    assert fmt.key_size == 32, fmt
    assert fmt.params.ciphertext_segment_size == c, fmt
    assert fmt.params.derived_key_size == DERIVED_KEY_SIZE, fmt
    assert fmt.params.hkdf_hash_type == common_pb2.SHA256, fmt


def main() -> int:
  tink_version = importlib.metadata.version("tink")
  if tink_version != EXPECTED_TINK_VERSION:
    print(f"warning: tink {tink_version} installed, README documents {EXPECTED_TINK_VERSION}",
          file=sys.stderr)
  try:
    import cryptography  # pylint: disable=g-import-not-at-top,unused-import
    have_cryptography = True
  except ImportError:
    have_cryptography = False

  check_min_segment_size()
  check_templates()

  vectors = []
  for c in SEGMENT_SIZES + [SEGMENT_SIZE_1MB]:
    key = vector_key(c)
    prim = primitive(key, c)
    cases = [(n, b"") for n in lengths_for(c)] + [(n, NONEMPTY_AAD) for n in aad_lengths_for(c)]
    for n, aad in cases:
      name = f"c{c}_len{n}_aad-{'set' if aad else 'empty'}"
      pt = pattern(n)
      ct = tink_encrypt(prim, pt, aad)
      check_layout(name, ct, n, c)
      if tink_decrypt(prim, ct, aad) != pt:
        raise AssertionError(f"{name}: Tink round trip mismatch")
      if have_cryptography and independent_decrypt(key, aad, ct, c) != pt:
        raise AssertionError(f"{name}: independent decryption mismatch")
      vectors.append({
          "name": name,
          "ciphertext_segment_size": c,
          "key": key.hex(),
          "aad": aad.hex(),
          "plaintext": pt.hex(),
          "ciphertext": ct.hex(),
      })

  doc = {
      "generator": (
          f"tests/vectors/tink/generate.py with tink-py {tink_version} "
          f"(pip 'tink', wraps tink-cc), {platform.python_implementation()} "
          f"{platform.python_version()}, "
          f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
      ),
      "format": "tink AES256_GCM_HKDF streaming",
      "tink_min_ciphertext_segment_size": TINK_MIN_SEGMENT_SIZE,
      "vectors": vectors,
  }
  OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="ascii")
  extra = " + independent check" if have_cryptography else ""
  print(f"wrote {len(vectors)} vectors to {OUT} ({OUT.stat().st_size} bytes; "
        f"all decrypted back with Tink{extra})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
