"""Server-driven offer/answer for one peer connection.

The server always offers; a peer never has two offers outstanding, and changes
made while one is out are folded into the next. What the field showed a
negotiation must also survive:

* an answer that cannot work (no DTLS fingerprint, no ICE credentials, the
  room's codec missing) is refused *before* it touches the connection, with
  ``negotiation_failed`` (or ``codec_unsupported``), and the offer is sent again
  so a corrected answer is accepted;
* an offer nobody answers (a page that froze, a lost message) is sent again
  after ``answer_timeout_s``; after ``resends`` attempts the negotiator gives up
  and its owner closes the connection instead of keeping it forever.

States: ``idle`` -> ``offering`` (creating the offer) -> ``awaiting`` (sent,
waiting for the answer) -> ``idle``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as sdp_module
from aiortc.exceptions import InvalidStateError

from kernel.media_types import KINDS, OfferToSend
from kernel.taskset import TaskSet, raise_if_cancelling
from media.codecs import RoomCodecs, check_participant
from media.errors import MediaError, NegotiationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NegotiatorConfig:
    #: How long an offer waits for its answer before it is sent again.
    answer_timeout_s: float = 10.0
    #: How many times an unanswered (or badly answered) offer is sent again before giving up.
    resends: int = 2


class NegotiationState(StrEnum):
    IDLE = "idle"
    OFFERING = "offering"
    AWAITING = "awaiting"


class AnswerRefused(NegotiationError):
    """An answer that cannot be used; the connection is untouched and the offer is re-sent."""


class NegotiationBroken(NegotiationError):
    """Applying the answer failed half-way: the connection must be replaced."""


def check_answer(sdp: str, codecs: RoomCodecs | None, who: str) -> None:
    """Refuse an answer that would be accepted but could never carry media."""
    try:
        description = sdp_module.SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError, AssertionError) as exc:
        raise AnswerRefused(f"the answer is not valid SDP: {exc}") from None
    active = [m for m in description.media if m.kind in KINDS and m.port != 0]
    if not active:
        raise AnswerRefused("the answer accepts no audio or video")
    names: set[str] = set()
    for media in active:
        if media.dtls is None or not media.dtls.fingerprints:
            raise AnswerRefused(
                f"the answer has no DTLS fingerprint for mid {media.rtp.muxId!r} (a=fingerprint)"
            )
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise AnswerRefused(
                f"the answer has no ICE credentials for mid {media.rtp.muxId!r} "
                "(a=ice-ufrag, a=ice-pwd)"
            )
        names |= {c.mimeType.split("/")[-1] for c in media.rtp.codecs}
    if codecs is not None:
        check_participant(codecs, who, names)


class Negotiator:
    """Offers for one peer, their answers, re-sends and giving up."""

    def __init__(
        self,
        name: str,
        pc: RTCPeerConnection,
        *,
        tasks: TaskSet,
        describe: Callable[[], OfferToSend],
        deliver: Callable[[OfferToSend], Awaitable[None]],
        on_give_up: Callable[[str], Awaitable[None]],
        config: NegotiatorConfig | None = None,
    ) -> None:
        self._name = name
        self._pc = pc
        self._tasks = tasks
        self._describe = describe
        self._deliver = deliver
        self._on_give_up = on_give_up
        self._config = config or NegotiatorConfig()
        self.state = NegotiationState.IDLE
        self.offers_made = 0
        self.offers_sent = 0
        self._wanted = False
        self._answered = asyncio.Event()
        self._resend_now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def awaiting_answer(self) -> bool:
        return self.state is NegotiationState.AWAITING

    def _set_state(self, new: NegotiationState) -> None:
        if new is not self.state:
            logger.debug("%s: negotiation %s -> %s", self._name, self.state.value, new.value)
            self.state = new

    def request(self) -> None:
        """Something changed: offer now, or right after the outstanding offer is answered."""
        if self._closed:
            return
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = self._tasks.spawn(self._run(), name=f"negotiate {self._name}")

    async def apply_answer(self, sdp: str, codecs: RoomCodecs | None) -> None:
        if self.state is not NegotiationState.AWAITING:
            raise NegotiationError("no offer is waiting for an answer; ignore stale answers")
        try:
            check_answer(sdp, codecs, self._name)
        except AnswerRefused:
            self._resend_now.set()
            raise
        except MediaError:
            raise  # the browser lacks the room's codec: sending the offer again cannot help
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except (ValueError, InvalidStateError) as exc:
            # aiortc validates before it changes anything: the offer still stands.
            self._resend_now.set()
            raise AnswerRefused(f"the answer could not be applied: {exc}") from None
        except Exception as exc:
            logger.exception("%s: applying the answer failed", self._name)
            raise NegotiationBroken(f"the answer broke the connection: {exc}") from None
        self._set_state(NegotiationState.IDLE)
        self._answered.set()

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            await self._tasks.cancel(self._task)

    async def _run(self) -> None:
        while self._wanted and not self._closed:
            raise_if_cancelling()
            self._wanted = False
            if self._pc.connectionState == "closed":
                return
            self._set_state(NegotiationState.OFFERING)
            try:
                await self._pc.setLocalDescription(await self._pc.createOffer())
            except InvalidStateError:
                self._set_state(NegotiationState.IDLE)
                logger.info("%s: connection closed before the offer", self._name)
                return
            self.offers_made += 1
            self._answered.clear()
            self._set_state(NegotiationState.AWAITING)
            if not await self._offer_until_answered():
                return

    async def _offer_until_answered(self) -> bool:
        """Send the current offer, again on timeout or bad answer; False after giving up."""
        for attempt in range(self._config.resends + 1):
            self._resend_now.clear()
            offer = self._describe()
            self.offers_sent += 1
            if attempt:
                logger.info("%s: sending the offer again (%d)", self._name, attempt)
            await self._deliver(offer)
            answered = asyncio.ensure_future(self._answered.wait())
            resend = asyncio.ensure_future(self._resend_now.wait())
            try:
                await asyncio.wait(
                    {answered, resend},
                    timeout=self._config.answer_timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                answered.cancel()
                resend.cancel()
            if self._answered.is_set():
                return True
        self._set_state(NegotiationState.IDLE)
        reason = (
            f"no usable answer to {self._config.resends + 1} offers "
            f"({self._config.answer_timeout_s:g} s each)"
        )
        self._closed = True
        await self._on_give_up(reason)
        return False
