"""A staff member's day: today's bookings, the queue, walk-ins assigned to them, lobby knocks.

Read with a fixed number of Redis round trips however many rows there are (pages
poll this every few seconds).
"""

from __future__ import annotations

from kernel.roles import Role
from scheduler.booking_links import opens_at
from scheduler.bookings import BookingService
from scheduler.models import Booking
from scheduler.queue import DISCONNECTED_AFTER_S, WalkInQueue
from scheduler.queue_models import Ticket
from scheduler.staff import StaffMember, StaffStore
from scheduler.timezones import SEOUL
from scheduler.wire import Dashboard, DashboardBooking, QueueEntry
from signaling.protocol import RoomState
from signaling.rooms import RoomDirectory, RoomRecord


class DashboardReader:
    """Builds ``Dashboard`` views from the scheduler's stores and the room directory."""

    def __init__(
        self,
        *,
        bookings: BookingService,
        queue: WalkInQueue,
        staff: StaffStore,
        rooms: RoomDirectory,
    ) -> None:
        self._bookings = bookings
        self._queue = queue
        self._staff = staff
        self._rooms = rooms

    async def for_staff(self, username: str, role: Role) -> Dashboard:
        """Admins see every booking and walk-in of the day; others only their own."""
        member = await self._staff.get(username)
        mine_only = role is not Role.ADMIN
        bookings = await self._bookings.today(username if mine_only else None)
        walk_ins = [
            t
            for t in await self._queue.matched()
            if not mine_only or username in (t.counselor, t.interpreter)
        ]
        rooms = await self._rooms.get_many(
            [r for r in [b.room_id for b in bookings] + [t.room_id for t in walk_ins] if r]
        )
        at = self._bookings.now()
        now = at.timestamp()
        return Dashboard(
            username=username,
            role=role.value,
            presence=await self._queue.presence(username),
            now_seoul=at.astimezone(SEOUL),
            bookings=[self._booking_row(b, member, rooms.get(b.room_id or "")) for b in bookings],
            queue=[_entry(t, now) for t in await self._queue.waiting()],
            walk_ins=[
                self._walk_in_row(t, member, rooms.get(t.room_id or ""), now) for t in walk_ins
            ],
        )

    def _booking_row(
        self, b: Booking, member: StaffMember | None, room: RoomRecord | None
    ) -> DashboardBooking:
        link = self._bookings.links.staff(b, member) if member else None
        return DashboardBooking(
            id=b.id, state=b.state, seoul_start=b.start.astimezone(SEOUL),
            seoul_end=b.end.astimezone(SEOUL), resident_name=b.resident.name,
            language=b.resident.language, country=b.resident.country, topic=b.topic,
            counselor=b.counselor, interpreter=b.interpreter, room_id=b.room_id,
            room_state=room.state if room else None, knocking=_knocking(room),
            join_url=link.url if link else None, opens_at=opens_at(b).astimezone(SEOUL),
        )  # fmt: skip

    def _walk_in_row(
        self, t: Ticket, member: StaffMember | None, room: RoomRecord | None, now: float
    ) -> QueueEntry:
        return _entry(t, now).model_copy(
            update={
                "room_state": room.state if room else None,
                "knocking": _knocking(room),
                "join_url": self._queue.staff_join_url(t, member) if member else None,
            }
        )


def _knocking(room: RoomRecord | None) -> bool:
    """Someone waits in the lobby to be admitted."""
    return room is not None and room.state is RoomState.LOBBY


def _entry(t: Ticket, now: float) -> QueueEntry:
    return QueueEntry(
        id=t.id, state=t.state, name=t.name, topic=t.topic, language=t.language,
        needs_interpreter=t.needs_interpreter, waited_s=int(now - t.joined_at),
        connected=now - t.last_seen <= DISCONNECTED_AFTER_S, counselor=t.counselor,
        interpreter=t.interpreter,
    )  # fmt: skip
