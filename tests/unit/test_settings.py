from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from web.settings import Settings, parse_log_levels


def test_ice_servers_from_urls_with_turn_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SEOULBRIDGE_ICE_SERVERS", "stun:stun.example.org:3478, turn:user:pw@turn.example.org:3478"
    )
    settings = Settings()
    assert [s.urls for s in settings.ice_servers] == [
        ["stun:stun.example.org:3478"],
        ["turn:turn.example.org:3478"],
    ]
    assert settings.ice_servers[1].username == "user" and settings.ice_servers[1].credential == "pw"


def test_ice_servers_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SEOULBRIDGE_ICE_SERVERS",
        '[{"urls": ["turns:t.example.org:5349"], "username": "u", "credential": "c"}]',
    )
    assert Settings().ice_servers[0].urls == ["turns:t.example.org:5349"]


def test_bad_ice_server_says_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOULBRIDGE_ICE_SERVERS", "http://example.org")
    with pytest.raises(ValidationError, match="must start with stun:"):
        Settings()


def test_redis_url_from_plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    assert Settings().redis_url == "redis://127.0.0.1:6390/2"


def test_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).resolved_secret()
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path).resolved_secret() == first
    assert (tmp_path / "token-secret").stat().st_mode & 0o077 == 0
    assert Settings(data_dir=tmp_path, token_secret="given" * 8).resolved_secret() == "given" * 8


def test_base_url() -> None:
    assert Settings(host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(public_url="https://sb.example.kr/").base_url == "https://sb.example.kr"


def test_video_codec(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().video_codec == "VP8"
    monkeypatch.setenv("SEOULBRIDGE_VIDEO_CODEC", "H264")
    assert Settings().video_codec == "H264"
    monkeypatch.setenv("SEOULBRIDGE_VIDEO_CODEC", "AV1")
    with pytest.raises(ValidationError, match="VP8"):
        Settings()


def test_node_urls_give_the_deployment_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SEOULBRIDGE_NODE_URLS", "https://sb1.example.org/, https://sb2.example.org:8443"
    )
    settings = Settings(public_url="https://sb1.example.org")
    assert settings.node_urls == ["https://sb1.example.org", "https://sb2.example.org:8443"]
    assert settings.deployment_origins == [
        "https://sb1.example.org",
        "https://sb2.example.org:8443",
    ]


def test_a_bad_node_url_says_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOULBRIDGE_NODE_URLS", "sb2.example.org")
    with pytest.raises(ValidationError, match="must look like https://host"):
        Settings()


def test_the_csp_lets_pages_connect_to_every_node() -> None:
    from web.app import security_headers_for

    settings = Settings(port=8080, node_urls=["http://10.0.0.2:8080", "https://sb.example.org"])
    csp = security_headers_for(settings)["Content-Security-Policy"]
    connect = next(p for p in csp.split("; ") if p.startswith("connect-src"))
    assert connect.split()[1:] == [
        "'self'",
        "http://127.0.0.1:8080", "http://10.0.0.2:8080", "https://sb.example.org",
        "ws://127.0.0.1:8080", "ws://10.0.0.2:8080", "wss://sb.example.org",
    ]  # fmt: skip


def test_tls_settings_make_https_links_and_refuse_half_a_pair(tmp_path: Path) -> None:
    assert Settings(tls_self_signed=True, port=8443).base_url == "https://127.0.0.1:8443"
    pem = tmp_path / "c.pem"
    assert Settings(tls_cert=pem, tls_key=pem).base_url.startswith("https://")
    with pytest.raises(ValidationError, match="both tls_cert and tls_key"):
        Settings(tls_cert=pem)
    with pytest.raises(ValidationError, match="either a certificate"):
        Settings(tls_cert=pem, tls_key=pem, tls_self_signed=True)
    # Other commands link to the server running on the same data directory.
    running = Settings(data_dir=tmp_path, port=9123)
    running.write_serving_url()
    assert Settings(data_dir=tmp_path).links_base_url() == "http://127.0.0.1:9123"
    assert Settings(data_dir=tmp_path, public_url="https://x.test/").links_base_url() == (
        "https://x.test"
    )


def test_log_level_with_per_logger_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOULBRIDGE_LOG_LEVEL", "warning, media.linktrace=debug")
    assert parse_log_levels(Settings().log_level) == ("WARNING", {"media.linktrace": "DEBUG"})
    assert parse_log_levels("media.linktrace=DEBUG") == ("INFO", {"media.linktrace": "DEBUG"})


def test_a_bad_log_level_says_what_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEOULBRIDGE_LOG_LEVEL", "INFO,media.linktrace=LOUD")
    with pytest.raises(ValidationError, match=r"'LOUD'.*use one of CRITICAL, ERROR"):
        Settings()


def test_padding_probes_setting_reaches_each_rooms_forwarder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from media.codecs import RoomCodecs
    from web.services import rtp_forwarder

    codecs = RoomCodecs(video="VP8")
    default = rtp_forwarder(Settings(data_dir=tmp_path), codecs)
    assert default.adaptation.config.padding_probes is True
    monkeypatch.setenv("SEOULBRIDGE_PADDING_PROBES", "false")
    monkeypatch.setenv("SEOULBRIDGE_ADAPTATION", "true")
    forwarder = rtp_forwarder(Settings(data_dir=tmp_path), codecs)
    assert forwarder.adaptation.config.padding_probes is False
    assert forwarder.adaptation.config.enabled is True
    monkeypatch.setenv("SEOULBRIDGE_PADDING_PROBES", "sometimes")
    with pytest.raises(ValueError, match="padding_probes"):
        Settings(data_dir=tmp_path)
