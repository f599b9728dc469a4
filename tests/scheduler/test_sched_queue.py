"""Walk-in queue against real Redis: order, matching with interpreters, reconnection grace."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from sched_helpers import SECRET, FakeClock, add_staff

from kernel.roles import Role
from scheduler.errors import IllegalTransition
from scheduler.queue import WalkInQueue
from scheduler.queue_models import Presence, QueueJoinRequest, TicketState
from scheduler.staff import StaffStore
from scheduler.topics import TopicStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def queue(redis: aioredis.Redis, clock: FakeClock) -> WalkInQueue:
    topics = TopicStore(redis)
    await topics.ensure_defaults()
    staff = StaffStore(redis)
    await add_staff(staff, "park", Role.COUNSELOR, topics=["nationality", "family_registry"])
    await add_staff(staff, "lee", Role.COUNSELOR, topics=["nationality"])
    await add_staff(staff, "ivanova", Role.INTERPRETER, languages=["ko", "ru"])
    return WalkInQueue(
        redis, staff=staff, topics=topics, rooms=RoomDirectory(redis, clock=clock),
        tokens=TokenService(SECRET, clock=clock), base_url="http://sb.test", clock=clock,
    )  # fmt: skip


def join(name: str, topic: str = "nationality", language: str = "ko") -> QueueJoinRequest:
    return QueueJoinRequest.model_validate({"name": name, "topic": topic, "language": language})


async def test_fifo_order_positions_and_matching(queue: WalkInQueue, clock: FakeClock) -> None:
    tickets = []
    for name in ("A", "B", "C"):
        ticket, _ = await queue.join(join(name))
        tickets.append(ticket)
        clock.advance(1)
    other, _ = await queue.join(join("F", topic="family_registry"))
    views = [await queue.view(t) for t in tickets]
    assert [v.position for v in views] == [1, 2, 3]
    assert (await queue.view(other)).position == 1  # positions count per topic
    assert views[0].estimated_wait_s is None  # nobody on duty yet
    await queue.set_presence("lee", Presence.AVAILABLE)
    view_c = await queue.view(tickets[2])
    assert view_c.estimated_wait_s == 2 * 30 * 60  # two ahead, one counselor, 30-minute slots
    matched = await queue.dispatch_once()
    assert [t.name for t in matched] == ["A"] and matched[0].counselor == "lee"
    assert await queue.presence("lee") is Presence.BUSY
    a = await queue.get(tickets[0].id)
    view_a = await queue.view(a)
    assert view_a.state is TicketState.MATCHED and view_a.join_url is not None
    assert [(await queue.view(t)).position for t in tickets[1:]] == [1, 2]
    # park serves nationality and family; the longest-waiting connected resident goes first.
    await queue.set_presence("park", Presence.AVAILABLE)
    matched = await queue.dispatch_once()
    assert [t.name for t in matched] == ["B"]
    # Lee finishes after 10 minutes: back to available, and the session length is recorded.
    clock.advance(600)
    for t in (*tickets[1:], other):
        await queue.heartbeat(await queue.get(t.id))
    await queue.transition(a, TicketState.DONE)
    assert await queue.presence("lee") is Presence.AVAILABLE
    assert await queue.recent_session_s("nationality") == 600
    with pytest.raises(IllegalTransition):
        await queue.transition(await queue.get(a.id), TicketState.LEFT)
    assert [t.name for t in await queue.dispatch_once()] == ["C"]


async def test_interpreter_needed_for_russian(queue: WalkInQueue, clock: FakeClock) -> None:
    await queue.join(join("Olga", language="ru"))
    clock.advance(1)
    await queue.join(join("Minji"))
    await queue.set_presence("lee", Presence.AVAILABLE)
    # No interpreter on duty: Olga keeps her place, Minji (Korean) is served.
    assert [t.name for t in await queue.dispatch_once()] == ["Minji"]
    await queue.set_presence("park", Presence.AVAILABLE)
    await queue.set_presence("ivanova", Presence.AVAILABLE)
    matched = await queue.dispatch_once()
    assert [(t.name, t.counselor, t.interpreter) for t in matched] == [("Olga", "park", "ivanova")]
    with pytest.raises(IllegalTransition):
        await queue.set_presence("park", Presence.BUSY)


async def test_reconnection_grace(queue: WalkInQueue, clock: FakeClock) -> None:
    first, _ = await queue.join(join("A"))
    clock.advance(1)
    second, _ = await queue.join(join("B"))
    # A drops; 30 s later a counselor is free: A is skipped but keeps the first place.
    clock.advance(30)
    await queue.heartbeat(second)
    await queue.set_presence("lee", Presence.AVAILABLE)
    assert [t.name for t in await queue.dispatch_once()] == ["B"]
    clock.advance(60)  # A is back within 2 minutes
    a = await queue.heartbeat(await queue.get(first.id))
    assert (await queue.view(a)).position == 1 and a.state is TicketState.WAITING
    third, _ = await queue.join(join("C"))
    clock.advance(119)
    assert await queue.expire_stale() == []
    await queue.heartbeat(await queue.get(third.id))
    clock.advance(2)  # A gone for 121 s now
    assert await queue.expire_stale() == [first.id]
    assert (await queue.get(first.id)).state is TicketState.EXPIRED
    assert (await queue.view(await queue.get(third.id))).position == 1


async def test_no_interpreter_on_duty_is_said_not_estimated(
    queue: WalkInQueue, clock: FakeClock
) -> None:
    """Issue 15 item 3: a Russian walk-in with no Russian interpreter on duty saw "about
    1 min" and was never matched. The view says why instead, and the resident may go
    on without an interpreter, keeping their place."""
    olga, key = await queue.join(join("Olga", language="ru"))
    await queue.set_presence("lee", Presence.AVAILABLE)
    view = await queue.view(olga)
    assert view.unavailable == "no_interpreter" and view.estimated_wait_s is None
    assert view.needs_interpreter
    assert await queue.dispatch_once() == []
    # With Ivanova on duty (even busy) there is an honest estimate again.
    await queue.set_presence("ivanova", Presence.AVAILABLE)
    view = await queue.view(olga)
    assert view.unavailable is None and view.estimated_wait_s == 0
    await queue.set_presence("ivanova", Presence.AWAY)
    # Olga chooses Korean/English with captions: she keeps her place and is matched.
    olga = await queue.drop_interpreter(await queue.authorize(olga.id, key))
    assert not olga.needs_interpreter
    assert (await queue.view(olga)).unavailable is None
    matched = await queue.dispatch_once()
    assert [(t.name, t.interpreter) for t in matched] == [("Olga", None)]
    with pytest.raises(IllegalTransition):
        await queue.drop_interpreter(await queue.get(olga.id))


async def test_no_counselor_on_duty_is_said(queue: WalkInQueue) -> None:
    ticket, _ = await queue.join(join("A"))
    view = await queue.view(ticket)
    assert view.unavailable == "no_counselor" and view.estimated_wait_s is None


async def test_others_move_past_an_absent_resident(queue: WalkInQueue, clock: FakeClock) -> None:
    """A closed tab no longer holds everyone behind it for two minutes; back within the
    grace, its resident is first again."""
    first, _ = await queue.join(join("A"))
    clock.advance(1)
    second, _ = await queue.join(join("B"))
    await queue.set_presence("lee", Presence.AVAILABLE)
    await queue.set_presence("lee", Presence.AWAY)
    await queue.set_presence("park", Presence.AVAILABLE)
    await queue.set_presence("park", Presence.AWAY)
    assert (await queue.view(second)).position == 2
    clock.advance(30)  # A's tab was closed; B keeps polling
    b = await queue.heartbeat(await queue.get(second.id))
    assert (await queue.view(b)).position == 1
    clock.advance(30)  # A comes back within the grace: A is first again, B second
    a = await queue.heartbeat(await queue.get(first.id))
    assert (await queue.view(a)).position == 1
    assert (await queue.view(await queue.heartbeat(b))).position == 2
