"""Mosquitto's password file format: `username:$7$<iterations>$<salt b64>$<hash b64>`.

`$7$` is PBKDF2-HMAC-SHA512 with a 64-byte derived key, as Mosquitto 2.0 writes and reads it
(`common/password_mosq.c`: `pw__encode_sha512_pbkdf2`, `pw__decode_sha512_pbkdf2`). Mosquitto
2.0 accepts a 12-byte salt only (2.1 also 64), so we write 12 bytes. 101 iterations is
`mosquitto_passwd`'s own default; generated passwords carry 192 bits of entropy, for which
stretching adds nothing, and every CONNECT pays the iterations (a city's devices reconnect
together after a broker restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """One password in Mosquitto's `$7$` encoding.

    Parameters
    ----------
    password
        The clear-text password (UTF-8, as Mosquitto hashes it).
    salt
        12 random bytes; drawn from `secrets` when absent (tests pass one).
    iterations
        PBKDF2 iterations [count].
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"Mosquitto 2.0 reads {SALT_BYTES}-byte salts only, got {len(salt)}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches a `$7$` hash (the tests check generated files with this)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 1_000_000 or len(expected) != HASH_BYTES:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return hmac.compare_digest(digest, expected)


def passwd_text(passwords: Mapping[str, str]) -> str:
    """A whole password file: one `username:hash` line per user, sorted by name."""
    return "".join(f"{name}:{hash_password(passwords[name])}\n" for name in sorted(passwords))


def parse_passwd(text: str) -> dict[str, str]:
    """Username → encoded hash of a password file (comments and blank lines skipped)."""
    users: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, encoded = line.split(":", 1)
            users[name] = encoded
    return users


def generate_password() -> str:
    """A random password of 192 bits, URL-safe base64 (32 characters, no `:` or `,`)."""
    return secrets.token_urlsafe(24)
