"""``serve`` over https, and the other commands' links pointing at the running server.

Issue 15: browsers give camera and microphone only to https pages (and localhost), so
a pilot on a local network needs ``--tls-self-signed`` (or ``--tls-cert/--tls-key``);
and ``seoulbridge token`` printed ``:8080`` links while the server ran on another port.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from tests.browser.conftest import REPO, _free_port
from web import tls

pytestmark = pytest.mark.timeout(90)


def test_self_signed_certificate_covers_the_host_and_is_kept(tmp_path: Path) -> None:
    names = tls.HostNames(("localhost", "pilot-box"), (ipaddress.ip_address("192.168.1.20"),))
    cert_path, key_path = tls.self_signed(tmp_path, names)
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "pilot-box"}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
    # Kept: the same files again, until a name is missing or it nearly expires.
    before = cert_path.read_bytes()
    assert tls.self_signed(tmp_path, names)[0].read_bytes() == before
    more = tls.HostNames(names.dns, (*names.ips, ipaddress.ip_address("10.0.0.7")))
    assert tls.self_signed(tmp_path, more)[0].read_bytes() != before
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=tls.VALID_DAYS - 10)
    renewed = tls.self_signed(tmp_path, more, now=later)[0].read_bytes()
    assert x509.load_pem_x509_certificate(renewed).not_valid_after_utc > later
    assert tls.server_context(cert_path, key_path) is not None
    with pytest.raises(ValueError, match="cannot use TLS certificate"):
        tls.server_context(cert_path, tmp_path / "missing.key")


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args, "--data-dir", str(data_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_serve_https_and_links_of_the_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--tls-self-signed",
         "--data-dir", str(data_dir)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        cert = data_dir / tls.TLS_DIR / tls.CERT_FILE
        context = ssl.create_default_context()
        deadline = time.monotonic() + 40
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if cert.exists():
                    context = ssl.create_default_context(cafile=str(cert))
                    url = f"https://127.0.0.1:{port}/healthz"
                    with urllib.request.urlopen(url, timeout=2, context=context) as r:
                        assert r.status == 200
                        break
            except (OSError, ssl.SSLError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        # The certificate verifies for 127.0.0.1 (and so for this host's other addresses).
        # Commands run beside it make links to it: its scheme and port, not :8080.
        created = _cli(data_dir, "room", "create", "--participant", "resident:Kim Yui:ja")
        assert created.returncode == 0, created.stderr
        room_id = created.stdout.split()[1]
        assert f"https://127.0.0.1:{port}/join/{room_id}?t=" in created.stdout
        token = _cli(data_dir, "token", "--room", room_id, "--role", "resident", "--name", "K")
        assert token.returncode == 0, token.stderr
        assert token.stdout.startswith(f"https://127.0.0.1:{port}/join/{room_id}?t=")
        explicit = _cli(
            data_dir, "token", "--room", room_id, "--role", "resident", "--name", "K",
            "--public-url", "https://pilot.example:9443",
        )  # fmt: skip
        assert explicit.stdout.startswith("https://pilot.example:9443/join/")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
