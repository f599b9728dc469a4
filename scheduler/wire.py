"""Request and response models of the scheduler's staff and resident endpoints.

They validate at the HTTP boundary (``web.api_*``) and feed the OpenAPI document.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kernel.languages import Language
from scheduler.models import BookingState
from scheduler.queue_models import Presence, TicketState
from scheduler.staff import StaffMember
from scheduler.timezones import check_timezone
from signaling.protocol import RoomState


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    topic: str
    language: Language = "ko"
    timezone: str = "Asia/Seoul"
    needs_interpreter: bool | None = None
    from_: date | None = Field(default=None, alias="from")
    days: int = Field(default=14, ge=1, le=62)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)


class PresenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["available", "away"]


class PresenceView(BaseModel):
    username: str
    status: Presence


class BookingStateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: BookingState


class TicketStateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["done", "left"]


class DashboardBooking(BaseModel):
    id: str
    state: BookingState
    seoul_start: datetime
    seoul_end: datetime
    resident_name: str
    language: Language
    country: str
    topic: str
    counselor: str
    interpreter: str | None
    room_id: str | None
    room_state: RoomState | None
    knocking: bool = Field(description="someone is waiting in the lobby")
    join_url: str | None = Field(description="the signed-in staff member's own link")
    opens_at: datetime = Field(
        description="when the join links start to work (and the booking can be started)"
    )


class QueueEntry(BaseModel):
    id: str
    state: TicketState
    name: str
    topic: str
    language: Language
    needs_interpreter: bool
    waited_s: int
    connected: bool
    counselor: str | None
    interpreter: str | None
    room_state: RoomState | None = None
    knocking: bool = False
    join_url: str | None = None


class Dashboard(BaseModel):
    username: str
    role: str
    presence: Presence
    now_seoul: datetime
    bookings: list[DashboardBooking]
    queue: list[QueueEntry]
    walk_ins: list[QueueEntry] = Field(description="walk-in residents assigned to you")


class StaffCreate(StaffMember):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=8, max_length=256)


class StaffUpdate(StaffMember):
    model_config = ConfigDict(extra="forbid")


class HolidayView(BaseModel):
    date: date
    name: str


class CenterView(BaseModel):
    opens: str
    closes: str
    timezone: str
    working_days: list[str]
    holidays: list[HolidayView] = Field(description="Korean public holidays this and next year")
