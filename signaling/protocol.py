"""The wire protocol: typed messages on the socket.io event ``message``.

Every message is a JSON object with a ``type`` tag. Incoming payloads are parsed
once, here, into one of the ``ClientMessage`` models; nothing past this module
handles raw dicts. See PROTOCOL.md for the sequence of a call.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kernel.languages import LANGUAGES, Language
from kernel.media_types import LinkQuality, VideoState
from kernel.roles import Role
from signaling.errors import SignalingError

__all__ = ["LANGUAGES", "Language", "Role"]  # re-exported: the wire speaks these

EVENT = "message"


class RoomState(StrEnum):
    CREATED = "created"
    LOBBY = "lobby"
    LIVE = "live"
    ENDED = "ended"


class ErrorCode(StrEnum):
    """Every refusal's code: in ``error`` messages and in a refused connection's ``data``.

    The page chooses its words by the code; the English ``message`` is for logs.
    """

    BAD_MESSAGE = "bad_message"
    NOT_ALLOWED = "not_allowed"
    NOT_IN_ROOM = "not_in_room"
    UNKNOWN_PARTICIPANT = "unknown_participant"
    ROOM_ENDED = "room_ended"
    NEGOTIATION_FAILED = "negotiation_failed"
    MEDIA_UNAVAILABLE = "media_unavailable"
    CODEC_UNSUPPORTED = "codec_unsupported"
    # a refused connection (socket.io connect_error data)
    TOKEN_MISSING = "token_missing"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    TOKEN_INVALID = "token_invalid"
    WRONG_ROOM = "wrong_room"
    UNKNOWN_ROOM = "unknown_room"
    REMOVED = "removed"
    #: the same link connected again (another tab or device): this connection is closed
    REPLACED = "replaced"
    ROOM_ELSEWHERE = "room_elsewhere"
    SERVER_RESTARTING = "server_restarting"
    SERVER_ERROR = "server_error"


class RequestError(SignalingError):
    """A refused request or connection; becomes an ``error`` message (or refusal) on the wire."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConnectRefusal(BaseModel):
    """The ``data`` of a refused socket.io connection: ``connect_error`` on the page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ErrorCode
    message: str


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParticipantInfo(_Msg):
    id: str
    name: str
    role: Role
    language: Language
    audio_muted: bool = False
    video_muted: bool = False


class RoomInfo(_Msg):
    id: str
    title: str
    state: RoomState


class IceServerInfo(_Msg):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class TrackInfo(_Msg):
    """Which participant's media a server-side transceiver (by ``mid``) carries."""

    mid: str
    participant_id: str
    kind: Literal["audio", "video"]


# ---------------------------------------------------------------- client -> server


class Join(_Msg):
    """Ask to enter the room (after the device check). Residents go to the lobby."""

    type: Literal["join"] = "join"


class Admit(_Msg):
    type: Literal["admit"] = "admit"
    participant_id: str


class Deny(_Msg):
    type: Literal["deny"] = "deny"
    participant_id: str
    reason: str = Field(default="", max_length=200)


class Remove(_Msg):
    type: Literal["remove"] = "remove"
    participant_id: str
    reason: str = Field(default="", max_length=200)


class Leave(_Msg):
    type: Literal["leave"] = "leave"


class EndRoom(_Msg):
    """The counselor closes the consultation for everyone."""

    type: Literal["end"] = "end"


class Answer(_Msg):
    """The client's answer to the server's latest ``offer``."""

    type: Literal["answer"] = "answer"
    sdp: str = Field(min_length=10, max_length=200_000)


class IceCandidate(_Msg):
    """A trickled candidate gathered after the answer was sent; null ends them."""

    type: Literal["ice_candidate"] = "ice_candidate"
    candidate: str | None = Field(default=None, max_length=2_000)
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


class Mute(_Msg):
    type: Literal["mute"] = "mute"
    audio_muted: bool
    video_muted: bool


class ChatSend(_Msg):
    type: Literal["chat"] = "chat"
    text: str = Field(min_length=1, max_length=2_000)


class SetCaptionLanguage(_Msg):
    """Show me translated captions in ``language`` (independent of the spoken language)."""

    type: Literal["caption_language"] = "caption_language"
    language: Language


InterpretationModeName = Literal["consecutive", "channel"]


class SetInterpretationMode(_Msg):
    """Interpreter: speak to the room (``consecutive``) or on a language channel.

    In ``channel`` mode ``into`` is the language the interpreter speaks now: their
    voice goes to the listeners of that language (the original speaker ducked in
    their browsers), and their captions are labelled as interpretation.
    """

    type: Literal["interpretation_mode"] = "interpretation_mode"
    mode: InterpretationModeName
    into: Language | None = None


class RecordStart(_Msg):
    """Counselor/admin: ask everyone to consent to recording."""

    type: Literal["record_start"] = "record_start"


class RecordStop(_Msg):
    type: Literal["record_stop"] = "record_stop"


class RecordConsent(_Msg):
    type: Literal["record_consent"] = "record_consent"


class RecordDecline(_Msg):
    type: Literal["record_decline"] = "record_decline"


class IdentityMethod(StrEnum):
    """How a counselor checked who the resident is (never the document's number)."""

    MOBILE_ID_CAMERA = "mobile_id_camera"  # 모바일 신분증, shown on camera
    MOBILE_ID_ABROAD = "mobile_id_abroad"  # 재외국민 모바일 신분증 (residents abroad)
    FINANCIAL_CERTIFICATE = "financial_certificate"  # 금융인증서 (issued at embassies too)
    PASSPORT_CAMERA = "passport_camera"  # passport, shown on camera
    OTHER = "other"


class IdentityVerify(_Msg):
    """Counselor/admin: the resident ``participant_id`` is who they say, checked by ``method``.

    ``check``: optionally the last 2-4 letters or digits of the document's number,
    as a cross-check; never the number itself.
    """

    type: Literal["identity_verify"] = "identity_verify"
    participant_id: str = Field(min_length=1, max_length=64)
    method: IdentityMethod
    check: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{2,4}$")


ClientMessage = Annotated[
    Join
    | Admit
    | Deny
    | Remove
    | Leave
    | EndRoom
    | Answer
    | IceCandidate
    | Mute
    | ChatSend
    | SetCaptionLanguage
    | SetInterpretationMode
    | RecordStart
    | RecordStop
    | RecordConsent
    | RecordDecline
    | IdentityVerify,
    Field(discriminator="type"),
]
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class ProtocolError(SignalingError):
    """A payload that is not a valid message; ``str()`` says what is wrong."""


def parse_client_message(payload: object) -> ClientMessage:
    try:
        return _client_adapter.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError(f"{where}: {first['msg']}") from None


# ---------------------------------------------------------------- server -> client


class Welcome(_Msg):
    """Sent once on connect, before ``join``."""

    type: Literal["welcome"] = "welcome"
    you: ParticipantInfo
    room: RoomInfo
    ice_servers: list[IceServerInfo]


class InLobby(_Msg):
    """The resident waits in the lobby until a counselor admits them."""

    type: Literal["lobby"] = "lobby"


class Knock(_Msg):
    """To staff in the room: someone is waiting in the lobby."""

    type: Literal["knock"] = "knock"
    participant: ParticipantInfo


class LobbyChanged(_Msg):
    """To staff in the room: everyone now waiting in the lobby."""

    type: Literal["lobby_changed"] = "lobby_changed"
    waiting: list[ParticipantInfo]


class Joined(_Msg):
    """You are in the room; ``participants`` are the others already in it."""

    type: Literal["joined"] = "joined"
    you: ParticipantInfo
    room: RoomInfo
    participants: list[ParticipantInfo]
    chat: list[ChatMessage] = Field(
        default_factory=list, description="the room's chat so far (bounded, redacted)"
    )


class Denied(_Msg):
    type: Literal["denied"] = "denied"
    reason: str


class Removed(_Msg):
    type: Literal["removed"] = "removed"
    reason: str


class ParticipantJoined(_Msg):
    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


LeaveReason = Literal["left", "removed", "disconnected"]


class ParticipantLeft(_Msg):
    type: Literal["participant_left"] = "participant_left"
    participant_id: str
    reason: LeaveReason


class Offer(_Msg):
    """A (re)negotiation offer from the server. ``publish`` names the mids on
    which the client sends its own microphone and camera; ``tracks`` says whose
    media every other mid carries."""

    type: Literal["offer"] = "offer"
    sdp: str
    publish: dict[Literal["audio", "video"], str]
    tracks: list[TrackInfo]


class ParticipantLink(_Msg):
    """Another participant's connection, and what you receive of their camera."""

    participant_id: str
    link: LinkQuality
    #: ``full``, ``reduced`` (a lower layer for your connection) or ``paused``; null: no camera.
    video: VideoState | None


class LinkQualityMessage(_Msg):
    """Connection quality as the server measures it (sent when it changes)."""

    type: Literal["link_quality"] = "link_quality"
    you: LinkQuality
    participants: list[ParticipantLink]


class MuteChanged(_Msg):
    type: Literal["mute_changed"] = "mute_changed"
    participant_id: str
    audio_muted: bool
    video_muted: bool


class ChatMessage(_Msg):
    type: Literal["chat"] = "chat"
    participant_id: str
    name: str
    text: str
    ts: float


class RoomStateChanged(_Msg):
    type: Literal["room_state"] = "room_state"
    state: RoomState


class Ended(_Msg):
    type: Literal["ended"] = "ended"
    reason: str


RecordingStateName = Literal["idle", "asking", "recording", "paused", "stopped"]


class RecordIndicator(_Msg):
    """To everyone after every recording transition, and to each newcomer."""

    type: Literal["record_indicator"] = "record_indicator"
    state: RecordingStateName
    requested_by: str | None = None
    pending: list[str] = Field(default_factory=list)
    reason: str = ""
    #: set when the recording stopped because it failed (``media_unavailable``: not written)
    error_code: ErrorCode | None = None


class RecordConsentRequest(_Msg):
    """To one participant: do you agree to this consultation being recorded?"""

    type: Literal["record_consent_request"] = "record_consent_request"
    requested_by: str


CaptionKind = Literal["speech", "interpretation"]
UntranslatedReason = Literal["not_installed", "failed", "timed_out"]


class Caption(_Msg):
    """A live caption: an utterance keeps its ``id`` from the first partial to the final.

    A final is sent as soon as it is recognised (``translations`` empty, ``pending``
    the languages it is being translated into) and, when anything was pending, once
    more *settled*: ``pending`` empty, each language in ``translations`` or in
    ``untranslated`` with the reason. Pages replace the caption with that id. All
    text is already redacted.
    """

    type: Literal["caption"] = "caption"
    id: str
    speaker_id: str
    speaker_name: str
    language: Language
    text: str
    final: bool
    start: float = Field(description="seconds since captions began in this room")
    end: float
    ts: float = Field(description="wall-clock time the caption was made, Unix seconds")
    translations: dict[Language, str] = Field(default_factory=dict)
    speaker_role: Role = Role.RESIDENT
    kind: CaptionKind = "speech"
    pending: list[Language] = Field(default_factory=list)
    untranslated: dict[Language, UntranslatedReason] = Field(default_factory=dict)


SpeakerCaptionState = Literal["live", "no_model", "failed", "off"]
RouteName = Literal["direct", "pivot", "none"]


class CaptionSpeaker(_Msg):
    """How one participant's speech is captioned: ``live``, ``no_model`` (no speech
    model for their language on this server), ``failed`` (captions for them stopped),
    ``off`` (not sending audio)."""

    participant_id: str
    language: Language
    state: SpeakerCaptionState


class CaptionRoute(_Msg):
    """Whether captions in ``source`` reach readers of ``target``: one package, by
    pivot through English, or ``none`` (not installed: they read the original)."""

    source: Language
    target: Language
    route: RouteName


class CaptionStatus(_Msg):
    """To everyone in the room after every change: what captions can and cannot do here."""

    type: Literal["caption_status"] = "caption_status"
    speakers: list[CaptionSpeaker]
    routes: list[CaptionRoute]
    #: a pending translation settles (translated or ``timed_out``) within this bound
    translation_bound_s: float


class InterpretationChannel(_Msg):
    """One interpreter's mode; in ``channel`` mode, who gets their voice."""

    interpreter_id: str
    mode: InterpretationModeName
    into: Language | None = None
    #: the listeners of ``into`` (channel mode): they hear the interpreter, the
    #: original ducked, unless they chose the original
    audience: list[str] = Field(default_factory=list)


class InterpretationState(_Msg):
    """To everyone in the room after every change: the language groups and the channels."""

    type: Literal["interpretation"] = "interpretation"
    #: the languages of the people who are not interpreters, in the order offered
    languages: list[Language]
    channels: list[InterpretationChannel]


class ServerRestarting(_Msg):
    """To everyone before this server stops: reconnect (through the join step) shortly."""

    type: Literal["server_restarting"] = "server_restarting"
    retry_after_s: float = 2.0


class RoomMoved(_Msg):
    """To everyone on a node that no longer holds the room (its claim was fenced, e.g.
    after it lost Redis while the room moved): connect again through the join step."""

    type: Literal["room_moved"] = "room_moved"
    retry_after_s: float = 0.5


class Error(_Msg):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


class IdentityVerified(_Msg):
    """To everyone in the room: ``participant_id``'s identity was checked (also on entry).

    ``check`` (the last characters a counselor noted) goes to staff only.
    """

    type: Literal["identity_verified"] = "identity_verified"
    participant_id: str
    method: IdentityMethod
    verified_by: str = Field(description="the counselor's name")
    verified_by_id: str
    at: float = Field(description="Unix seconds")
    check: str | None = None


ServerMessage = Annotated[
    Welcome
    | InLobby
    | Knock
    | LobbyChanged
    | Joined
    | Denied
    | Removed
    | ParticipantJoined
    | ParticipantLeft
    | Offer
    | LinkQualityMessage
    | MuteChanged
    | ChatMessage
    | RoomStateChanged
    | Ended
    | RecordIndicator
    | RecordConsentRequest
    | Caption
    | CaptionStatus
    | InterpretationState
    | ServerRestarting
    | RoomMoved
    | IdentityVerified
    | Error,
    Field(discriminator="type"),
]
_server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def parse_server_message(payload: object) -> ServerMessage:
    """For clients (tests, tools): a server payload as its typed message."""
    try:
        return _server_adapter.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise ProtocolError(f"{where}: {first['msg']}") from None
