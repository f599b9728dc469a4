"""The walk-in queue: residents wait per topic and language; free counselors get the next one.

Like a call center: counselors (and interpreters) set themselves available or away; the
dispatcher offers the longest-waiting connected resident to the longest-idle matching
counselor, plus an interpreter when the resident needs one. The state lives in Redis
(``scheduler.queue_store``), so several server processes may dispatch at once.

A resident's page polls its ticket; each poll is a heartbeat. A resident who stops polling
is skipped by the dispatcher but keeps their place for ``GRACE_S`` (2 minutes); after that
the ticket expires. Meanwhile the others move past: an absent resident does not count in
anyone's position or wait, and gets their place back on returning within the grace.

The wait is honest: with no interpreter for the resident's language (or no counselor for
the topic) on duty, there is no estimate but the reason (``TicketView.unavailable``), and
the resident may go on without an interpreter (``drop_interpreter``) keeping their place.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from typing import Literal

import redis.asyncio as aioredis

from kernel.roles import Role
from kernel.taskset import TaskSet, raise_if_cancelling
from scheduler.errors import BookingKeyError, IllegalTransition, UnknownTicketError
from scheduler.join_links import JoinLinks, stable_participant_id
from scheduler.queue_models import (
    PRESENCE_TRANSITIONS,
    TICKET_TRANSITIONS,
    Presence,
    QueueJoinRequest,
    Ticket,
    TicketState,
    TicketView,
)
from scheduler.queue_store import QueueStore
from scheduler.staff import StaffMember, StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

log = logging.getLogger(__name__)

GRACE_S = 120.0
DISCONNECTED_AFTER_S = 15.0
DISPATCH_INTERVAL_S = 1.0


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class WalkInQueue:
    """Tickets, presence and the dispatcher task (``start()`` .. ``aclose()``)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        staff: StaffStore,
        topics: TopicStore,
        rooms: RoomDirectory,
        tokens: TokenService,
        base_url: str,
        clock: Callable[[], float] = time.time,
        join_ttl_s: float = 2 * 3600,
    ) -> None:
        self._store = QueueStore(redis)
        self._staff = staff
        self._topics = topics
        self._rooms = rooms
        self._links = JoinLinks(tokens, base_url)
        self._clock = clock
        self._join_ttl_s = join_ttl_s
        self._tasks = TaskSet("walk-in queue")
        self._dispatcher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------- presence
    async def presence(self, username: str) -> Presence:
        return await self._store.presence(username) or Presence.AWAY

    async def presences(self) -> dict[str, Presence]:
        return await self._store.presences()

    async def set_presence(self, username: str, new: Presence) -> Presence:
        """Staff set themselves available or away; ``busy`` is only set by the dispatcher."""
        if new is Presence.BUSY:
            raise IllegalTransition("busy is set by the queue when a resident is assigned")
        while True:
            stored = await self._store.presence(username)
            old = stored or Presence.AWAY
            if new not in PRESENCE_TRANSITIONS[old]:
                raise IllegalTransition(f"{username}: cannot go from {old.value} to {new.value}")
            if await self._store.swap_presence(username, stored, new, self._clock()):
                log.info("presence %s: %s -> %s", username, old.value, new.value)
                self._wake.set()
                return new

    # --------------------------------------------------------------- tickets
    async def join(self, request: QueueJoinRequest) -> tuple[Ticket, str]:
        topic = await self._topics.require(request.topic)
        now = self._clock()
        need = (
            request.language != "ko"
            if request.needs_interpreter is None
            else request.needs_interpreter
        )
        ticket = Ticket(
            id="q-" + secrets.token_urlsafe(9),
            state=TicketState.WAITING,
            name=request.name,
            language=request.language,
            topic=topic.id,
            needs_interpreter=need,
            joined_at=now,
            last_seen=now,
        )
        key = secrets.token_urlsafe(18)
        await self._store.add(ticket, _hash_key(key))
        log.info(
            "queue %s: %s joined for %s (%s)", ticket.id, ticket.name, topic.id, ticket.language
        )
        self._wake.set()
        return ticket, key

    async def get(self, ticket_id: str) -> Ticket:
        ticket = await self._store.get(ticket_id)
        if ticket is None:
            raise UnknownTicketError(
                f"there is no queue ticket {ticket_id!r}; join the queue again"
            )
        return ticket

    async def authorize(self, ticket_id: str, key: str | None) -> Ticket:
        key_hash = await self._store.key_hash(ticket_id)
        if key_hash is None:
            raise UnknownTicketError(
                f"there is no queue ticket {ticket_id!r}; join the queue again"
            )
        if not key or not hmac.compare_digest(_hash_key(key), key_hash):
            raise BookingKeyError("this queue ticket needs its key; reopen the queue page")
        return await self.get(ticket_id)

    async def heartbeat(self, ticket: Ticket) -> Ticket:
        """The resident's page is still there (each poll)."""
        if ticket.state in (TicketState.WAITING, TicketState.MATCHED):
            now = self._clock()
            await self._store.touch(ticket.id, now)
            ticket = ticket.model_copy(update={"last_seen": now})
        return ticket

    async def transition(self, ticket: Ticket, new: TicketState) -> Ticket:
        while True:
            if new not in TICKET_TRANSITIONS[ticket.state]:
                raise IllegalTransition(
                    f"queue ticket {ticket.id} is {ticket.state.value}; "
                    f"it cannot become {new.value}"
                )
            now = self._clock()
            duration = None
            if new is TicketState.DONE and ticket.matched_at is not None:
                duration = int(max(0.0, now - ticket.matched_at))
            result = await self._store.transition(ticket, new, now=now, duration_s=duration)
            if result == 1:
                log.info("queue %s: %s -> %s", ticket.id, ticket.state.value, new.value)
                self._wake.set()
                return ticket.model_copy(update={"state": new})
            ticket = await self.get(ticket.id)

    async def waiting(self) -> list[Ticket]:
        """Waiting tickets, longest-waiting first."""
        return await self._store.waiting()

    async def matched(self) -> list[Ticket]:
        return await self._store.matched()

    # ---------------------------------------------------------- where am I
    async def recent_session_s(self, topic: str) -> float:
        values = await self._store.durations(topic)
        if values:
            return sum(values) / len(values)
        known = await self._topics.get(topic)
        return float(known.slot_minutes * 60 if known else 20 * 60)

    async def view(self, ticket: Ticket, *, key: str | None = None) -> TicketView:
        position: int | None = None
        wait: int | None = None
        unavailable: Literal["no_interpreter", "no_counselor"] | None = None
        join_url: str | None = None
        if ticket.state is TicketState.WAITING:
            now = self._clock()
            queue = await self.waiting()
            # Only those still there count: an absent resident does not hold others back.
            ahead = sum(
                1
                for t in queue
                if t.topic == ticket.topic
                and t.joined_at < ticket.joined_at
                and now - t.last_seen <= DISCONNECTED_AFTER_S
            )
            position = ahead + 1
            staff = await self._staff.list()
            presences = await self.presences()

            def on_duty(people: list[StaffMember]) -> list[str]:
                return [
                    m.username
                    for m in people
                    if presences.get(m.username, Presence.AWAY) is not Presence.AWAY
                ]

            counselors = on_duty([m for m in staff if m.counsels(ticket.topic)])
            interpreters = on_duty([m for m in staff if m.interprets(ticket.language)])
            free = [u for u in counselors if presences.get(u) is Presence.AVAILABLE]
            if not counselors:
                unavailable = "no_counselor"
            elif ticket.needs_interpreter and not interpreters:
                unavailable = "no_interpreter"
            else:
                servers = len(counselors)
                if ticket.needs_interpreter:
                    servers = min(servers, len(interpreters))
                rounds = max(0, ahead + 1 - len(free)) / servers
                wait = int(rounds * await self.recent_session_s(ticket.topic))
        elif ticket.state is TicketState.MATCHED and ticket.room_id:
            join_url = self._links.link(
                room_id=ticket.room_id, role=Role.RESIDENT, name=ticket.name,
                language=ticket.language, ttl_s=self._join_ttl_s,
                participant_id=stable_participant_id("ticket", ticket.id, "resident"),
            )  # fmt: skip
        return TicketView(
            id=ticket.id, state=ticket.state, topic=ticket.topic, language=ticket.language,
            position=position, estimated_wait_s=wait, join_url=join_url, ticket_key=key,
            needs_interpreter=ticket.needs_interpreter, unavailable=unavailable,
        )  # fmt: skip

    async def drop_interpreter(self, ticket: Ticket) -> Ticket:
        """The resident goes on in Korean or English with captions, keeping their place."""
        if not await self._store.drop_interpreter(ticket.id):
            raise IllegalTransition(
                f"queue ticket {ticket.id} is {ticket.state.value}; only a waiting resident "
                "can go on without an interpreter"
            )
        log.info("queue %s: goes on without an interpreter", ticket.id)
        self._wake.set()
        return await self.get(ticket.id)

    def staff_join_url(self, ticket: Ticket, member: StaffMember) -> str | None:
        if ticket.room_id is None:
            return None
        _, url = self._links.staff_link(
            member, room_id=ticket.room_id, resident_language=ticket.language,
            ttl_s=self._join_ttl_s,
            participant_id=stable_participant_id("ticket", ticket.id, "staff", member.username),
        )  # fmt: skip
        return url

    # ------------------------------------------------------------- dispatch
    async def expire_stale(self) -> list[str]:
        """Tickets whose resident has been gone longer than the grace period expire."""
        now = self._clock()
        expired = []
        for ticket in await self.waiting():
            if now - ticket.last_seen > GRACE_S:
                with contextlib.suppress(IllegalTransition):
                    await self.transition(ticket, TicketState.EXPIRED)
                    expired.append(ticket.id)
        return expired

    async def dispatch_once(self) -> list[Ticket]:
        """Offer waiting, connected residents (oldest first) to free matching staff."""
        queue = await self.waiting()
        if not queue:
            return []
        staff = await self._staff.list()
        presences = await self.presences()
        now = self._clock()
        matched = []
        for ticket in queue:
            if now - ticket.last_seen > DISCONNECTED_AFTER_S:
                continue  # keeps its place, but cannot answer an offer now
            free = [m for m in staff if presences.get(m.username) is Presence.AVAILABLE]
            counselors = [m.username for m in free if m.counsels(ticket.topic)]
            interpreters = [m.username for m in free if m.interprets(ticket.language)]
            if not counselors or (ticket.needs_interpreter and not interpreters):
                continue
            chosen = await self._store.assign(
                ticket, now=now, counselors=counselors, interpreters=interpreters
            )
            if chosen is None:
                continue
            counselor, interpreter = chosen
            presences[counselor] = Presence.BUSY
            if interpreter:
                presences[interpreter] = Presence.BUSY
            ticket = ticket.model_copy(
                update={
                    "state": TicketState.MATCHED, "counselor": counselor,
                    "interpreter": interpreter, "matched_at": now,
                }
            )  # fmt: skip
            ticket = await self._open_room(ticket)
            matched.append(ticket)
        return matched

    async def _open_room(self, ticket: Ticket) -> Ticket:
        try:
            room = await self._rooms.create(
                title=f"Walk-in · {ticket.name}", topic=ticket.topic, created_by=ticket.counselor
            )
            await self._store.set_room(ticket.id, room.id)
        except Exception:
            log.exception("queue %s: could not open a room; releasing staff", ticket.id)
            await self.transition(ticket, TicketState.LEFT)
            raise
        log.info(
            "queue %s: matched with %s%s in room %s", ticket.id, ticket.counselor,
            f" and {ticket.interpreter}" if ticket.interpreter else "", room.id,
        )  # fmt: skip
        return ticket.model_copy(update={"room_id": room.id})

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Run expiry and dispatch in the background until ``aclose()``."""
        if self._dispatcher is None:
            self._dispatcher = self._tasks.spawn(self._run(), name="dispatch")

    async def _run(self) -> None:
        while True:
            # redis-py may absorb a cancellation and return normally: check each turn.
            raise_if_cancelling()
            try:
                await self.expire_stale()
                await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue dispatch failed; retrying")
            raise_if_cancelling()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DISPATCH_INTERVAL_S):
                    await self._wake.wait()

    async def aclose(self) -> None:
        self._dispatcher = None
        await self._tasks.aclose()
