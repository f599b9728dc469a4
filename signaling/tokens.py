"""Signed tokens: join tokens (one person, one room) and staff session tokens.

Both are HS256 JWTs (PyJWT) told apart by their audience so that neither can be
used in place of the other. Time is injectable for tests.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from kernel.languages import LANGUAGES, Language
from signaling.errors import SignalingError
from signaling.protocol import Role

JOIN_AUDIENCE = "seoulbridge:join"
STAFF_AUDIENCE = "seoulbridge:staff"
_ALGORITHM = "HS256"


class TokenErrorCode(StrEnum):
    MISSING = "token_missing"
    EXPIRED = "token_expired"
    NOT_YET_VALID = "token_not_yet_valid"
    INVALID = "token_invalid"
    WRONG_ROOM = "wrong_room"


class TokenError(SignalingError):
    """A token that cannot be used; ``message`` is meant for the person holding it."""

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class JoinClaims:
    participant_id: str
    room_id: str
    role: Role
    name: str
    language: Language
    expires_at: float
    not_before: float | None = None


@dataclass(frozen=True)
class StaffClaims:
    username: str
    role: Role
    name: str
    expires_at: float


def new_participant_id() -> str:
    return "p-" + secrets.token_urlsafe(9)


class TokenService:
    """Issues and verifies tokens with one secret."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 characters")
        self._secret = secret
        self._clock = clock

    # ------------------------------------------------------------------ join
    def issue_join(
        self,
        *,
        room_id: str,
        role: Role,
        name: str,
        language: str,
        ttl_s: float,
        participant_id: str | None = None,
        not_before: float | None = None,
        expires_at: float | None = None,
    ) -> str:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; use one of {', '.join(LANGUAGES)}")
        if not name.strip():
            raise ValueError("a display name is needed")
        now = self._clock()
        claims: dict[str, object] = {
            "aud": JOIN_AUDIENCE,
            "sub": participant_id or new_participant_id(),
            "room": room_id,
            "role": role.value,
            "name": name.strip()[:80],
            "lang": language,
            "iat": int(now),
            "exp": int(expires_at if expires_at is not None else now + ttl_s),
            "jti": secrets.token_urlsafe(8),
        }
        if not_before is not None:
            claims["nbf"] = int(not_before)
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify_join(self, token: str | None, *, room_id: str | None = None) -> JoinClaims:
        payload = self._decode(token, JOIN_AUDIENCE)
        language = payload.get("lang")
        name = payload.get("name")
        if language not in LANGUAGES or not isinstance(name, str) or not name.strip():
            # Signed by us but not usable: refuse it here, before anyone is registered.
            raise TokenError(TokenErrorCode.INVALID, "This link is not valid.")
        try:
            claims = JoinClaims(
                participant_id=str(payload["sub"]),
                room_id=str(payload["room"]),
                role=Role(payload["role"]),
                name=name,
                language=language,
                expires_at=float(payload["exp"]),
                not_before=float(payload["nbf"]) if "nbf" in payload else None,
            )
        except (KeyError, ValueError):
            raise TokenError(TokenErrorCode.INVALID, "This link is not valid.") from None
        if room_id is not None and claims.room_id != room_id:
            raise TokenError(
                TokenErrorCode.WRONG_ROOM,
                "This link belongs to a different consultation. Open the link you were sent.",
            )
        return claims

    # ----------------------------------------------------------------- staff
    def issue_staff(self, *, username: str, role: Role, name: str, ttl_s: float) -> str:
        now = self._clock()
        claims = {
            "aud": STAFF_AUDIENCE,
            "sub": username,
            "role": role.value,
            "name": name,
            "iat": int(now),
            "exp": int(now + ttl_s),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify_staff(self, token: str | None) -> StaffClaims:
        payload = self._decode(token, STAFF_AUDIENCE)
        try:
            role = Role(payload["role"])
            if not role.is_staff:
                raise ValueError(role)
            return StaffClaims(
                username=str(payload["sub"]),
                role=role,
                name=str(payload["name"]),
                expires_at=float(payload["exp"]),
            )
        except (KeyError, ValueError):
            raise TokenError(TokenErrorCode.INVALID, "This sign-in is not valid.") from None

    # -------------------------------------------------------------- internal
    def _decode(self, token: str | None, audience: str) -> dict[str, Any]:
        """Verify the signature and audience with PyJWT, the times with our clock."""
        if not token:
            raise TokenError(
                TokenErrorCode.MISSING,
                "No access token was given. Open the full link you were sent.",
            )
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=audience,
                options={
                    "require": ["exp", "sub", "aud"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            raise TokenError(TokenErrorCode.INVALID, "This link is not valid.") from None
        now = self._clock()
        exp = payload.get("exp")
        if not isinstance(exp, int | float) or now >= float(exp):
            raise TokenError(
                TokenErrorCode.EXPIRED,
                "This link has expired. Ask the service center for a new one.",
            )
        nbf = payload.get("nbf")
        if isinstance(nbf, int | float) and now < float(nbf):
            raise TokenError(
                TokenErrorCode.NOT_YET_VALID,
                "This link is not valid yet. It opens 15 minutes before your appointment.",
            )
        return payload
