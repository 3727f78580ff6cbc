#!/usr/bin/env python3
"""Verifies hashes that atrest-password produced (JSON from tests/interop_export.rs) with
argon2-cffi, i.e. with the reference C implementation. Exits non-zero on any failure.

Usage: verify_atrest.py PATH/atrest-password.json
"""
import base64
import json
import sys

import argon2
from argon2.low_level import ffi, lib


def b64decode(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def verify_with_pepper(phc: str, password: bytes, pepper: bytes) -> bool:
    """argon2-cffi's PHC decoder has no keyid; compute with the raw context API instead."""
    _, alg, version, params, salt, digest = phc.split("$")
    assert alg == "argon2id" and version == "v=19", phc
    p = dict(kv.split("=", 1) for kv in params.split(","))
    salt, digest = b64decode(salt), b64decode(digest)
    out = ffi.new("uint8_t[]", len(digest))
    pwd, slt, sec = (ffi.new("uint8_t[]", b) for b in (password or b"\0", salt, pepper))
    ctx = ffi.new("argon2_context *", dict(
        version=0x13, out=out, outlen=len(digest), pwd=pwd, pwdlen=len(password), salt=slt,
        saltlen=len(salt), secret=sec, secretlen=len(pepper), ad=ffi.NULL, adlen=0,
        t_cost=int(p["t"]), m_cost=int(p["m"]), lanes=int(p["p"]), threads=int(p["p"]),
        allocate_cbk=ffi.NULL, free_cbk=ffi.NULL, flags=lib.ARGON2_DEFAULT_FLAGS,
    ))
    assert lib.argon2_ctx(ctx, lib.Argon2_id) == lib.ARGON2_OK
    return bytes(ffi.buffer(out, len(digest))) == digest


def main() -> int:
    entries = json.load(open(sys.argv[1], encoding="utf-8"))
    hasher = argon2.PasswordHasher()
    passed = failed = 0
    for e in entries:
        phc, password = e["hash"], e["password"].encode()
        if "pepper_hex" in e:
            pepper = bytes.fromhex(e["pepper_hex"])
            ok = verify_with_pepper(phc, password, pepper) and not verify_with_pepper(phc, password + b"x", pepper)
        else:
            try:
                ok = hasher.verify(phc, password)
            except argon2.exceptions.VerificationError:
                ok = False
            try:
                hasher.verify(phc, password + b"x")
                ok = False  # a wrong password must not verify
            except argon2.exceptions.VerifyMismatchError:
                pass
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAILED: {phc}", file=sys.stderr)
    print(f"argon2-cffi verified atrest-password hashes: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
