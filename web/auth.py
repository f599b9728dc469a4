"""Staff authentication for REST handlers: ``Authorization: Bearer <staff token>``."""

from __future__ import annotations

from aiohttp import web

from signaling.protocol import Role
from signaling.tokens import StaffClaims, TokenError, TokenErrorCode
from web.appkeys import TOKENS
from web.http_errors import raise_error


def require_staff(request: web.Request, *roles: Role) -> StaffClaims:
    """The signed-in staff member, or a 401/403 JSON error.

    With ``roles`` given, only those roles pass (admins always pass).
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise_error(401, "not_signed_in", "Sign in as staff: send 'Authorization: Bearer <token>'.")
    try:
        claims = request.app[TOKENS].verify_staff(token.strip())
    except TokenError as exc:
        reason = "has expired" if exc.code is TokenErrorCode.EXPIRED else "is not valid"
        raise_error(401, exc.code.value, f"Your staff sign-in {reason}. Sign in again.")
    if roles and claims.role not in roles and claims.role is not Role.ADMIN:
        allowed = ", ".join(r.value for r in roles)
        raise_error(403, "forbidden", f"Only {allowed} staff may do this.")
    return claims
