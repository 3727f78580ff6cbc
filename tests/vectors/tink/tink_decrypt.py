#!/usr/bin/env python3
"""Decrypt atrest-produced AES256_GCM_HKDF streaming ciphertexts with Google Tink.

Usage:  python tink_decrypt.py FILE.json

FILE.json uses the schema of aes256_gcm_hkdf.json in this directory:
  {"vectors": [{"name", "ciphertext_segment_size", "key", "aad", "plaintext",
                "ciphertext"}, ...]}   (byte strings as lowercase hex)

For every vector, three checks:
  * decrypt: Tink decrypts "ciphertext" with "key"/"aad"/"ciphertext_segment_size"
    and the result equals "plaintext";
  * layout:  the ciphertext has the header length byte 0x28 and exactly the length of
    Tink's own encryption of the same plaintext. Tink's decrypter (tink-cc) is lenient:
    it ignores bytes after a full-size final segment and accepts an extra empty final
    segment, neither of which Tink's encrypter ever writes; this check catches both;
  * tamper:  with one byte of the last ciphertext segment flipped, Tink rejects it.
Prints one line per failed check, then "N passed, M failed". Exit status is non-zero
if M > 0 or N == 0.

Needs the `tink` pip package (tested with tink==1.16.1).
"""

import io
import json
import sys

import tink
from tink import secret_key_access
from tink import streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2
from tink.proto import common_pb2
from tink.proto import tink_pb2

TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
HEADER_LEN = 1 + 32 + 7

streaming_aead.register()


def primitive(key_value: bytes, ciphertext_segment_size: int):
  key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
      version=0,
      key_value=key_value,
      params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
          ciphertext_segment_size=ciphertext_segment_size,
          derived_key_size=32,
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
              output_prefix_type=tink_pb2.RAW,
          )
      ],
  )
  handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
  return handle.primitive(streaming_aead.StreamingAead)


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


def last_segment_offset(ciphertext_len: int, c: int) -> int:
  """Start of the last ciphertext segment; segment 0 shares its C bytes with the header."""
  rest = ciphertext_len - c
  if rest <= 0:
    return HEADER_LEN
  return c + ((rest - 1) // c) * c


def one_line(msg: str) -> str:
  return " ".join(str(msg).split())


def check_vector(v) -> list[tuple[str, str | None]]:
  """Returns [(check name, failure message or None)]."""
  name = str(v.get("name", "<unnamed>")) if isinstance(v, dict) else "<not an object>"
  try:
    c = v["ciphertext_segment_size"]
    if not isinstance(c, int) or isinstance(c, bool):
      raise ValueError(f"ciphertext_segment_size is not an integer: {c!r}")
    key, aad, pt, ct = (bytes.fromhex(v[f]) for f in ("key", "aad", "plaintext", "ciphertext"))
  except (KeyError, TypeError, ValueError) as e:
    return [(f"{name} [schema]", f"bad vector: {type(e).__name__}: {e}")]

  results = []
  try:
    prim = primitive(key, c)
  except tink.TinkError as e:
    return [(f"{name} [decrypt]", f"Tink rejected the key/params (C={c}): {e}")]

  try:
    got = tink_decrypt(prim, ct, aad)
    if got == pt:
      results.append((f"{name} [decrypt]", None))
    else:
      diff = next((i for i, (a, b) in enumerate(zip(got, pt)) if a != b), min(len(got), len(pt)))
      results.append((f"{name} [decrypt]", f"plaintext mismatch: got {len(got)} bytes, "
                      f"want {len(pt)}, first difference at byte {diff}"))
  except tink.TinkError as e:
    results.append((f"{name} [decrypt]", f"Tink rejected the ciphertext: {e}"))

  want_len = len(tink_encrypt(prim, pt, aad))
  if len(ct) != want_len or ct[:1] != bytes([HEADER_LEN]):
    results.append((f"{name} [layout]", f"ciphertext is {len(ct)} bytes starting with "
                    f"{ct[:1].hex() or 'nothing'}; Tink writes {want_len} bytes starting with "
                    f"{HEADER_LEN:02x} for this plaintext"))
  else:
    results.append((f"{name} [layout]", None))

  off = last_segment_offset(len(ct), c)
  if off >= len(ct):
    results.append((f"{name} [tamper]",
                    f"ciphertext too short ({len(ct)} bytes) to hold a last segment"))
    return results
  bad = bytearray(ct)
  bad[off] ^= 0x01
  try:
    tink_decrypt(prim, bytes(bad), aad)
    results.append((f"{name} [tamper]",
                    f"Tink accepted the ciphertext with byte {off} (last segment) flipped"))
  except tink.TinkError:
    results.append((f"{name} [tamper]", None))
  return results


def main(argv) -> int:
  if len(argv) != 2:
    print(f"usage: {argv[0]} FILE.json", file=sys.stderr)
    return 2
  passed = failed = 0
  try:
    with open(argv[1], encoding="utf-8") as f:
      doc = json.load(f)
    vectors = doc["vectors"]
    if not isinstance(vectors, list):
      raise TypeError("'vectors' is not a list")
  except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"FAIL {argv[1]}: cannot read vectors: {one_line(f'{type(e).__name__}: {e}')}")
    vectors = []
    failed += 1
  for v in vectors:
    for check, failure in check_vector(v):
      if failure is None:
        passed += 1
      else:
        failed += 1
        print(f"FAIL {check}: {one_line(failure)}")
  print(f"{passed} passed, {failed} failed")
  return 1 if failed or not passed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
