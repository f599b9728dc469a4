"""Booking requests and records: the pydantic models that validate the API and feed OpenAPI."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from kernel.languages import Language
from scheduler.errors import IllegalTransition
from scheduler.timezones import check_timezone

_COUNTRY = re.compile(r"^[A-Z]{2}$")


class BookingState(StrEnum):
    CONFIRMED = "confirmed"
    IN_SESSION = "in_session"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


#: Allowed booking state transitions; anything else raises IllegalTransition.
BOOKING_TRANSITIONS: dict[BookingState, frozenset[BookingState]] = {
    BookingState.CONFIRMED: frozenset(
        {BookingState.IN_SESSION, BookingState.CANCELLED, BookingState.NO_SHOW}
    ),
    BookingState.IN_SESSION: frozenset({BookingState.COMPLETED}),
    BookingState.COMPLETED: frozenset(),
    BookingState.CANCELLED: frozenset(),
    BookingState.NO_SHOW: frozenset(),
}


def check_booking_transition(booking_id: str, old: BookingState, new: BookingState) -> None:
    if new not in BOOKING_TRANSITIONS[old]:
        raise IllegalTransition(
            f"booking {booking_id} is {old.value} and cannot become {new.value}"
        )


def normalize_contact(value: str, country: str | None) -> str:
    """An e-mail address (normalized) or a phone number in E.164; ValueError otherwise."""
    text = value.strip()
    if "@" in text:
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"{text!r} is not a valid e-mail address: {exc}") from None
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else country)
    except phonenumbers.NumberParseException:
        raise ValueError(
            f"{text!r} is neither an e-mail address nor a phone number; give an e-mail "
            "address or a phone number with its country code, such as +81 90 1234 5678"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"{text!r} is not a valid phone number; include the country code, e.g. +81 90 1234 5678"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class ResidentDetails(BaseModel):
    """Who the resident is and how to reach them; shared by bookings and the walk-in queue."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=80, description="the resident's full name")
    country: str = Field(
        description="ISO 3166 two-letter code of the country of residence, e.g. 'JP'",
        examples=["JP"],
    )
    # after country: a phone number without country code is read in that country
    contact: str = Field(
        min_length=3,
        max_length=120,
        description="e-mail address, or phone number with country code (+81 90 1234 5678)",
    )
    timezone: str = Field(description="IANA time zone, e.g. 'Asia/Tokyo'", examples=["Asia/Tokyo"])
    language: Language = Field(description="the language the resident speaks")

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: object) -> object:
        if isinstance(value, str):
            code = value.strip().upper()
            if not _COUNTRY.match(code) or code not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown country {value!r}; use a two-letter code such as 'JP'")
            return code
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        if not isinstance(country, str) and "@" not in value and not value.startswith("+"):
            return value  # the country is refused already; a local number cannot be read
        return normalize_contact(value, country if isinstance(country, str) else None)


class BookingRequest(ResidentDetails):
    """``POST /api/bookings``."""

    topic: str = Field(description="topic id from GET /api/topics", examples=["nationality"])
    slot_start: datetime = Field(
        description="start of the chosen slot (ISO 8601); without an offset it is read "
        "in the resident's time zone",
        examples=["2026-12-01T09:00:00+09:00"],
    )
    needs_interpreter: bool | None = Field(
        default=None, description="default: true unless the resident speaks Korean"
    )

    @property
    def interpreter_needed(self) -> bool:
        if self.needs_interpreter is None:
            return self.language != "ko"
        return self.needs_interpreter


class RescheduleRequest(BaseModel):
    """``POST /api/bookings/{id}/reschedule``."""

    model_config = ConfigDict(extra="forbid")

    slot_start: datetime = Field(
        description="start of the new slot; without an offset it is read in the resident's zone"
    )


class IdentityCheck(BaseModel):
    """How the resident's identity was checked in the call: the method, who, when.

    ``check`` is at most the last four characters of the document's number, noted
    as a cross-check; the number itself is never taken or kept.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    participant_id: str
    method: str
    verified_by: str = Field(description="the staff member's username or participant id")
    verified_by_name: str
    verified_at: datetime
    check: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{2,4}$")


class Booking(BaseModel):
    """A booking as stored (one Redis hash) and returned to staff."""

    id: str
    state: BookingState
    resident: ResidentDetails
    topic: str
    needs_interpreter: bool
    start: datetime
    end: datetime
    counselor: str
    interpreter: str | None = None
    room_id: str | None = None
    created_at: datetime
    identity_checks: list[IdentityCheck] = Field(default_factory=list)
    #: when the retention purge erased the resident's name and contact
    contact_erased_at: datetime | None = None


class JoinLink(BaseModel):
    role: Literal["resident", "counselor", "interpreter"]
    name: str
    url: str
    valid_from: datetime
    valid_until: datetime


class BookingView(BaseModel):
    """What the booking API answers: the booking, in UTC and in the resident's zone, with links."""

    id: str
    state: BookingState
    topic: str
    start: datetime = Field(description="slot start, UTC")
    end: datetime
    timezone: str = Field(description="the resident's time zone")
    local_start: datetime = Field(description="slot start in the resident's time zone")
    local_end: datetime
    seoul_start: datetime = Field(description="slot start in Seoul time")
    counselor: str
    interpreter: str | None
    resident_name: str
    language: Language
    join_url: str | None = Field(
        description="the resident's link, valid from 15 minutes before the slot to its end"
    )
    ics_url: str
    manage_key: str | None = Field(
        default=None,
        description="returned once on creation; send it as ?key= to read, cancel or reschedule",
    )
    staff_links: list[JoinLink] | None = Field(
        default=None, description="join links of the staff (staff callers only)"
    )
