"""Join links: the one place that turns a room, a person and a signed token into a URL.

Bookings, the walk-in queue, ad-hoc rooms (``POST /api/rooms``) and the CLI all build
their links here, so the link format and the seat a staff member takes (role and
caption language) cannot drift apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kernel.languages import Language
from kernel.roles import Role
from scheduler.staff import StaffMember
from signaling.tokens import TokenService


def join_url(base_url: str, room_id: str, token: str) -> str:
    """The page a participant opens: ``{base}/join/{room}?t={token}``."""
    return f"{base_url.rstrip('/')}/join/{room_id}?t={token}"


def stable_participant_id(*parts: str) -> str:
    """One person's participant id for one booking or ticket, the same on every view.

    A link opened on a phone and again on a laptop is then one participant: the second
    connection replaces the first (as a reconnect does) instead of knocking a second time.
    Derived by hash so that the id does not reveal the booking or ticket id it stands for.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return "p-" + digest[:16]


@dataclass(frozen=True)
class Seat:
    """How a staff member joins a resident's consultation."""

    role: Role
    language: Language


def staff_seat(member: StaffMember, resident_language: Language) -> Seat:
    """Interpreters join as interpreters in the resident's language, everyone else as the
    counselor in Korean; a person who does not speak that language uses their first one."""
    role = Role.INTERPRETER if member.role is Role.INTERPRETER else Role.COUNSELOR
    language: Language = resident_language if role is Role.INTERPRETER else "ko"
    if language not in member.languages:
        language = member.languages[0]
    return Seat(role, language)


class JoinLinks:
    """Signs join tokens and wraps them in links to this server."""

    def __init__(self, tokens: TokenService, base_url: str) -> None:
        self._tokens = tokens
        self._base_url = base_url.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._base_url

    def link(
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
        token = self._tokens.issue_join(
            room_id=room_id,
            role=role,
            name=name,
            language=language,
            ttl_s=ttl_s,
            participant_id=participant_id,
            not_before=not_before,
            expires_at=expires_at,
        )
        return join_url(self._base_url, room_id, token)

    def staff_link(
        self,
        member: StaffMember,
        *,
        room_id: str,
        resident_language: Language,
        ttl_s: float,
        participant_id: str | None = None,
        not_before: float | None = None,
        expires_at: float | None = None,
    ) -> tuple[Seat, str]:
        seat = staff_seat(member, resident_language)
        url = self.link(
            room_id=room_id,
            role=seat.role,
            name=member.display_name,
            language=seat.language,
            ttl_s=ttl_s,
            participant_id=participant_id,
            not_before=not_before,
            expires_at=expires_at,
        )
        return seat, url
