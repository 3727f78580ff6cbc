#!/usr/bin/env python3
"""Regenerates vectors.json: password hashes made by peer implementations, which
crates/atrest-password/tests/peer_vectors.rs verifies.

- Argon2: argon2-cffi (wraps the reference C implementation, phc-winner-argon2).
- bcrypt: pyca/bcrypt (OpenBSD's bcrypt).
- scrypt: passlib's scrypt (PHC-style `$scrypt$`), computed by hashlib.scrypt (OpenSSL).
- PBKDF2-HMAC-SHA256: Django's PBKDF2PasswordHasher, passlib's pbkdf2_sha256, and the PHC
  form computed with hashlib (OpenSSL).

Usage (pinned versions, any Python >= 3.9):
    python3 -m venv /tmp/pwvenv
    /tmp/pwvenv/bin/pip install argon2-cffi==25.1.0 bcrypt==4.3.0 'Django==5.2.*' passlib==1.7.4
    /tmp/pwvenv/bin/python tests/vectors/argon2-cffi/generate.py
Salts are random: every run writes different (equally valid) vectors.
"""
import base64
import hashlib
import json
import os
import pathlib
from importlib.metadata import version as pkg_version

import argon2
import bcrypt
from argon2.low_level import Type, hash_secret
from django.conf import settings

settings.configure()  # Django hashers need a configured settings module; defaults suffice.
from django.contrib.auth.hashers import PBKDF2PasswordHasher  # noqa: E402
from passlib.hash import pbkdf2_sha256, scrypt as passlib_scrypt  # noqa: E402

PASSWORDS = ["correct horse battery staple", "pässwörd ✓", ""]
WRONG = "Correct horse battery staple"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


vectors = []


def add(kind, params, password, phc, **extra):
    vectors.append({"kind": kind, "params": params, "password": password, "hash": phc, **extra})


# Argon2 through argon2-cffi's high-level API: several parameter sets, incl. non-default
# lanes, salt and hash lengths.
ARGON2_SETS = [
    dict(time_cost=1, memory_cost=64, parallelism=1, hash_len=32, salt_len=16),
    dict(time_cost=2, memory_cost=256, parallelism=2, hash_len=16, salt_len=8),
    dict(time_cost=3, memory_cost=512, parallelism=4, hash_len=64, salt_len=32),
    dict(time_cost=1, memory_cost=1024, parallelism=3, hash_len=24, salt_len=48),
    dict(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16),  # OWASP
]
for params in ARGON2_SETS:
    for password in PASSWORDS:
        add("argon2id", params, password, argon2.PasswordHasher(**params, type=Type.ID).hash(password))
for type_, name in [(Type.I, "argon2i"), (Type.D, "argon2d")]:
    params = dict(time_cost=2, memory_cost=128, parallelism=1, hash_len=32, salt_len=16)
    add(name, params, PASSWORDS[0], argon2.PasswordHasher(**params, type=type_).hash(PASSWORDS[0]))

# The low-level API: Argon2 version 0x10, and a secret (pepper). The reference PHC encoder has
# no keyid; peer_vectors.rs inserts `keyid=` naming this pepper before verifying.
PEPPER = bytes(range(32))
for version in (0x10, 0x13):
    raw = hash_secret(
        PASSWORDS[0].encode(), os.urandom(16), time_cost=2, memory_cost=128, parallelism=1,
        hash_len=32, type=Type.ID, version=version,
    ).decode()
    add("argon2id", {"version": version}, PASSWORDS[0], raw)
from argon2.low_level import ffi, lib  # noqa: E402


def hash_with_secret(password: bytes, salt: bytes, secret: bytes) -> str:
    """argon2_ctx with a secret, then encode; argon2-cffi exposes the raw context API only."""
    out = ffi.new("uint8_t[]", 32)
    pwd, slt, sec = ffi.new("uint8_t[]", password), ffi.new("uint8_t[]", salt), ffi.new("uint8_t[]", secret)
    ctx = ffi.new("argon2_context *", dict(
        version=0x13, out=out, outlen=32, pwd=pwd, pwdlen=len(password), salt=slt,
        saltlen=len(salt), secret=sec, secretlen=len(secret), ad=ffi.NULL, adlen=0,
        t_cost=2, m_cost=128, lanes=1, threads=1, allocate_cbk=ffi.NULL, free_cbk=ffi.NULL,
        flags=lib.ARGON2_DEFAULT_FLAGS,
    ))
    assert lib.argon2_ctx(ctx, lib.Argon2_id) == lib.ARGON2_OK
    return f"$argon2id$v=19$m=128,t=2,p=1${b64(salt)}${b64(bytes(ffi.buffer(out, 32)))}"


add("argon2id", {"pepper_hex": PEPPER.hex(), "keyid": "cur"}, PASSWORDS[1],
    hash_with_secret(PASSWORDS[1].encode(), os.urandom(16), PEPPER))

# bcrypt (pyca/bcrypt), $2b$ and its $2a$ spelling.
for password in PASSWORDS:
    h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    add("bcrypt", {"cost": 4}, password, h)
h = bcrypt.hashpw(PASSWORDS[0].encode(), bcrypt.gensalt(rounds=5, prefix=b"2a")).decode()
add("bcrypt", {"cost": 5}, PASSWORDS[0], h)

# scrypt: passlib's PHC-style format, and the same computed directly with hashlib.
for password in PASSWORDS:
    add("scrypt", {"ln": 6, "r": 8, "p": 1}, password, passlib_scrypt.using(rounds=6).hash(password))
salt = os.urandom(16)
dk = hashlib.scrypt(PASSWORDS[1].encode(), salt=salt, n=2**5, r=4, p=2, dklen=32)
add("scrypt", {"ln": 5, "r": 4, "p": 2}, PASSWORDS[1], f"$scrypt$ln=5,r=4,p=2${b64(salt)}${b64(dk)}")


# PBKDF2-HMAC-SHA256: Django, passlib and PHC forms.
class FastDjango(PBKDF2PasswordHasher):
    iterations = 1000


for password in PASSWORDS:
    add("pbkdf2-sha256", {"form": "django", "i": 1000}, password, FastDjango().encode(password, FastDjango().salt()))
    add("pbkdf2-sha256", {"form": "passlib", "i": 1000}, password, pbkdf2_sha256.using(rounds=1000).hash(password))
salt = os.urandom(16)
dk = hashlib.pbkdf2_hmac("sha256", PASSWORDS[0].encode(), salt, 1500, 32)
add("pbkdf2-sha256", {"form": "phc", "i": 1500}, PASSWORDS[0], f"$pbkdf2-sha256$i=1500,l=32${b64(salt)}${b64(dk)}")

out = pathlib.Path(__file__).with_name("vectors.json")
out.write_text(json.dumps({
    "generator": "tests/vectors/argon2-cffi/generate.py",
    "versions": {"argon2-cffi": pkg_version("argon2-cffi"), "bcrypt": pkg_version("bcrypt"), "passlib": pkg_version("passlib"),
                 "django": pkg_version("django")},
    "wrong_password": WRONG,
    "vectors": vectors,
}, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {len(vectors)} vectors to {out}")
