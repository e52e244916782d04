"""Bearer tokens and roles: viewer < operator < admin (DESIGN 3.7).

The configuration holds only argon2 hashes of the tokens (argon2-cffi; `gridcoord api-token`
makes a token and its hash), inline from the environment or from a file such as a container
secret. A request without a usable token gets 401, one whose role is too low 403. A token
verified once is remembered by its SHA-256 for the life of the process, so argon2's deliberate
cost is paid once per token, not once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gridcoord.config import Api, Role

RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
_MAX_TOKEN_CHARS = 512
_CACHE_MAX = 1024


class TokenConfigError(ValueError):
    """A token's hash is missing or not an argon2 hash (names the token, never the hash)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's configured name and role."""

    name: str
    role: Role


def new_token() -> tuple[str, str]:
    """A fresh random token and its argon2 hash (for the config)."""
    token = secrets.token_urlsafe(32)
    return token, PasswordHasher().hash(token)


class TokenRegistry:
    """Verifies bearer tokens against the configured hashes.

    Raises
    ------
        TokenConfigError: a hash file cannot be read or a hash is not argon2.
    """

    def __init__(self, settings: Api) -> None:
        self._hasher = PasswordHasher()
        self._anonymous = settings.anonymous_role
        self._entries: list[tuple[str, Role, str]] = []
        for token in settings.tokens:
            if token.hash_file is not None:
                try:
                    encoded = token.hash_file.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise TokenConfigError(
                        f"api.tokens {token.name!r}: hash_file {token.hash_file}: {exc.strerror}"
                    ) from None
            else:
                assert token.hash is not None
                encoded = token.hash.get_secret_value().strip()
            if not encoded.startswith("$argon2"):
                raise TokenConfigError(f"api.tokens {token.name!r}: not an argon2 hash")
            self._entries.append((token.name, token.role, encoded))
        self._verified: dict[bytes, Principal] = {}
        self._lock = threading.Lock()
        self._verifying = threading.Lock()

    @property
    def anonymous(self) -> Principal | None:
        """Who a request without a token is (None: nobody, 401)."""
        return Principal("anonymous", self._anonymous) if self._anonymous else None

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before (no argon2 work), else None."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        with self._lock:
            return self._verified.get(digest)

    def verify(self, token: str) -> Principal | None:
        """The principal of a token, None if no configured hash matches (argon2: slow)."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        # One argon2 verification at a time: fifty clients connecting with the same new token
        # would otherwise each spend argon2's memory (64 MiB) and time at once.
        with self._verifying:
            known = self.cached(token)
            if known is not None:
                return known
            return self._verify(token)

    def _verify(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        for name, role, encoded in self._entries:
            try:
                self._hasher.verify(encoded, token)
            except (VerificationError, InvalidHashError):
                continue
            principal = Principal(name, role)
            with self._lock:
                if len(self._verified) >= _CACHE_MAX:
                    self._verified.clear()
                self._verified[digest] = principal
            return principal
        return None


_bearer = HTTPBearer(auto_error=False, description="A token from `gridcoord api-token`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def requires(role: Role) -> Any:
    """A FastAPI dependency: the caller's `Principal`, at least ``role``; else 401/403."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        registry: TokenRegistry = request.app.state.tokens
        if credentials is None:
            principal = registry.anonymous
            if principal is None:
                raise _unauthorized("a bearer token is required")
        else:
            token = credentials.credentials
            # argon2 is slow on purpose: never on the event loop.
            found = registry.cached(token) or await asyncio.to_thread(registry.verify, token)
            if found is None:
                raise _unauthorized("unknown token")
            principal = found
        if RANK[principal.role] < RANK[role]:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"needs role {role.value}, token has {principal.role}"
            )
        return principal

    return Depends(check)
