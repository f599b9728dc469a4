"""The ``seoulbridge`` command: serve, staff, tokens and rooms."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import ssl
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from pydantic import ValidationError

from kernel.private_files import replace_file
from kernel.roles import STAFF_ROLES
from scheduler.errors import SchedulerError
from scheduler.join_links import join_url
from scheduler.staff import StaffMember, StaffStore
from signaling.node_registry import read_registry
from signaling.protocol import LANGUAGES, Role
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService
from web import cli_models, cli_privacy, cli_recording, tls
from web.redis_store import open_redis
from web.settings import Settings, parse_log_levels

DEMO_COUNSELOR = "demo-counselor"
DEMO_INTERPRETER = "demo-interpreter"
DEMO_ADMIN = "demo-admin"
DEMO_CREDENTIALS = "demo-credentials.txt"
DEMO_PASSWORD_KEY = "sb:demo:password"
#: How long a stop waits for open HTTP connections after every socket was told and closed.
SHUTDOWN_TIMEOUT_S = 0.5


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in (
        "host", "port", "public_url", "data_dir", "redis_url", "tls_cert", "tls_key",
        "tls_self_signed",
    ):  # fmt: skip
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"seoulbridge: bad configuration: {exc}") from None


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    parser.add_argument("--redis-url", help="Redis URL (default: embedded Redis in the data dir)")
    parser.add_argument("--public-url", help="base URL used in join links")


async def _with_stores(
    settings: Settings, work: Callable[[StaffStore, RoomDirectory, TokenService], Awaitable[int]]
) -> int:
    handle = await open_redis(settings.redis_url, settings.data_dir)
    try:
        tokens = TokenService(settings.resolved_secret())
        return await work(StaffStore(handle.client), RoomDirectory(handle.client), tokens)
    finally:
        await handle.aclose()


# ------------------------------------------------------------------- serve
async def _demo_password(redis: aioredis.Redis, data_dir: Path) -> str:
    """The demo accounts' one password, shared by every node of this Redis.

    The first node to start puts it in Redis (``SET NX``); the others take it from
    there, so a second node (another data directory) prints the password that works.
    It is also kept in the data directory, for the operator.
    """
    path = data_dir / DEMO_CREDENTIALS
    local = await asyncio.to_thread(_read_text, path)
    await redis.set(DEMO_PASSWORD_KEY, local or secrets.token_urlsafe(9), nx=True)
    raw = await redis.get(DEMO_PASSWORD_KEY)
    password = raw.decode() if isinstance(raw, bytes) else str(raw)
    if password != local:
        await asyncio.to_thread(_write_private, path, password + "\n")
    return password


def _read_text(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def _write_private(path: Path, text: str) -> None:
    replace_file(path, text.encode("utf-8"))  # 0600 from the start, whole or not at all


async def _ensure_demo_staff(staff: StaffStore, redis: aioredis.Redis, data_dir: Path) -> str:
    """Create the demo counselor, interpreter and admin once; their password is
    ``_demo_password``."""
    password = await _demo_password(redis, data_dir)
    demo = [
        StaffMember(
            username=DEMO_COUNSELOR,
            display_name="상담사 김민지 (Counselor Kim)",
            role=Role.COUNSELOR,
            languages=["ko", "en"],
            topics=["nationality", "military_service", "family_registry", "general"],
        ),
        StaffMember(
            username=DEMO_INTERPRETER,
            display_name="통역사 사토 (Interpreter Sato)",
            role=Role.INTERPRETER,
            languages=["ja", "ko"],
        ),
        StaffMember(
            username=DEMO_ADMIN,
            display_name="관리자 (Demo admin)",
            role=Role.ADMIN,
            languages=["ko", "en"],
        ),
    ]
    for member in demo:
        if await staff.get(member.username) is None:
            await staff.add(member, password)
    return password


def _demo_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    from web.appkeys import REDIS, ROOMS, STAFF, TOKENS

    async def demo(app: web.Application) -> AsyncIterator[None]:
        password = await _ensure_demo_staff(app[STAFF], app[REDIS], settings.data_dir)
        record = await app[ROOMS].create(
            title="데모 상담 · Demo consultation (국적 / nationality)",
            topic="nationality",
            created_by=DEMO_COUNSELOR,
        )
        tokens = app[TOKENS]
        ttl = settings.join_token_ttl_s
        people = [
            ("Resident (Japanese)", Role.RESIDENT, "김유이 (Kim Yui)", "ja"),
            ("Counselor", Role.COUNSELOR, "상담사 김민지 (Counselor Kim)", "ko"),
            ("Interpreter (ja-ko)", Role.INTERPRETER, "통역사 사토 (Interpreter Sato)", "ja"),
        ]
        print("\nDemo consultation ready. Open each link in its own browser tab:\n", flush=True)
        for label, role, name, language in people:
            token = tokens.issue_join(
                room_id=record.id, role=role, name=name, language=language, ttl_s=ttl
            )
            print(f"  {label:<22} {join_url(settings.base_url, record.id, token)}", flush=True)
        base = settings.base_url
        print(
            f"\nStaff sign-in ({base}/dashboard, admins {base}/admin):\n"
            f"  {DEMO_COUNSELOR}, {DEMO_INTERPRETER}, {DEMO_ADMIN}: password {password}\n"
            f"  (kept in {settings.data_dir / DEMO_CREDENTIALS})\n",
            flush=True,
        )
        yield

    return demo


async def _freeze_startup(app: web.Application) -> None:
    """What startup made stays for the process's life: out of every later collection
    (``web.gc_watch``). Here, not in the app: a test process runs many apps."""
    from web.gc_watch import freeze_startup

    freeze_startup()


def cmd_serve(args: argparse.Namespace) -> int:
    from web.app import build_app

    settings = _settings(args)
    root, loggers = parse_log_levels(settings.log_level)
    logging.basicConfig(level=root, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)
    if args.workers is not None:
        from web.workers import run_workers

        return run_workers(settings, args.workers, demo=args.demo)
    context = _tls_context(settings)
    app = build_app(settings)
    if args.demo:
        app.cleanup_ctx.append(_demo_ctx(settings))
    app.on_startup.append(_freeze_startup)  # after every service is up (cleanup_ctx first)
    settings.write_serving_url()
    print(f"Seoulbridge serving on {settings.base_url} (data in {settings.data_dir})", flush=True)
    loop = _new_event_loop(args.event_loop)
    logging.getLogger(__name__).info("event loop: %s", type(loop).__name__)
    # on_shutdown closes every socket first, so aiohttp need not wait long for connections.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        loop=loop,
        ssl_context=context,
    )
    _exit_now_if_threads_linger()
    return 0


# ------------------------------------------------------------------- nodes
def cmd_nodes(args: argparse.Namespace) -> int:
    """The node registry: each live node's URL, rooms against its limit, load, heartbeat."""
    settings = _settings(args)

    async def work() -> int:
        handle = await open_redis(settings.redis_url, settings.data_dir)
        try:
            nodes = await read_registry(handle.client)
        finally:
            await handle.aclose()
        if args.json:
            print(json.dumps([n.model_dump(mode="json") for n in nodes], indent=2))
            return 0
        if not nodes:
            print("no live nodes: start one with 'seoulbridge serve'")
            return 0
        now = time.time()
        header = ("NODE", "URL", "ROOMS", "PEOPLE", "PEERS", "STREAMS", "CPU%", "BEAT", "STATE")
        rows = [header]
        for n in nodes:
            i = n.info
            rows.append((
                i.node_id, i.base_url, f"{n.claimed}/{i.room_limit}", str(i.participants),
                str(i.peers), str(i.streams), f"{i.cpu_percent:.0f}",
                f"{max(0.0, now - i.heartbeat_at):.1f}s ago",
                "accepting" if i.accepting and n.claimed < i.room_limit
                else ("full" if i.accepting else "draining"),
            ))  # fmt: skip
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return 0

    return asyncio.run(work())


def _exit_now_if_threads_linger() -> None:
    """After an orderly stop, do not wait on worker threads still in library code.

    Every service is closed by now (Redis flushed, recordings finished); what can
    still run is a call that cannot be interrupted (a speech model still loading,
    a stuck recognition), which Python would wait for at exit. Say which, then exit.
    """
    lingering = [
        t.name
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive() and not t.daemon
    ]
    if not lingering:
        return
    logging.getLogger(__name__).warning(
        "exiting without waiting for %d worker thread(s): %s", len(lingering), ", ".join(lingering)
    )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """uvloop when installed (it drains each socket per wake-up and sends from C: the media
    path's latency under load), else the standard loop; ``--event-loop asyncio`` forces it."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            logging.getLogger(__name__).warning("uvloop is not installed; using asyncio's loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The SSL context of ``serve``: given files, a kept self-signed certificate, or none."""
    if settings.tls_self_signed:
        names = tls.local_names(settings.host)
        cert, key = tls.self_signed(settings.data_dir, names)
        print(f"TLS: self-signed certificate {cert}", flush=True)
        others = tls.lan_urls(names, settings.port) if settings.host in ("0.0.0.0", "::") else []
        if others:
            print(
                "  other devices on your network can open "
                + " or ".join(others)
                + " (each browser asks once to accept the certificate; give that address "
                "as --public-url so that join links use it)",
                flush=True,
            )
        return tls.server_context(cert, key)
    if settings.tls_cert is not None and settings.tls_key is not None:
        return tls.server_context(settings.tls_cert, settings.tls_key)
    return None


# ------------------------------------------------------------------- staff
def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("SEOULBRIDGE_STAFF_PASSWORD")
    if env:
        return env
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("seoulbridge: the passwords differ; nothing was saved")
    return first


def cmd_staff_add(args: argparse.Namespace) -> int:
    try:
        member = StaffMember(
            username=args.username,
            display_name=args.name,
            role=Role(args.role),
            languages=[c.strip() for c in args.languages.split(",") if c.strip()],
            topics=[t.strip() for t in (args.topics or "").split(",") if t.strip()],
        )
    except ValidationError as exc:
        raise SystemExit(
            f"seoulbridge: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
        ) from None
    password = _read_password(args)

    async def work(staff: StaffStore, rooms: RoomDirectory, tokens: TokenService) -> int:
        try:
            await staff.add(member, password)
        except (SchedulerError, ValueError) as exc:
            print(f"seoulbridge: {exc}", file=sys.stderr)
            return 1
        await cli_privacy.audit_staff_added(settings, member.username, member.role.value)
        print(f"added {member.role.value} {member.username} ({member.display_name})")
        return 0

    settings = _settings(args)
    return asyncio.run(_with_stores(settings, work))


def cmd_staff_list(args: argparse.Namespace) -> int:
    async def work(staff: StaffStore, rooms: RoomDirectory, tokens: TokenService) -> int:
        members = await staff.list()
        if not members:
            print("no staff yet: add one with 'seoulbridge staff add'")
        for m in members:
            print(
                f"{m.username:<20} {m.role.value:<12} {','.join(m.languages):<12} {m.display_name}"
            )
        return 0

    return asyncio.run(_with_stores(_settings(args), work))


# ------------------------------------------------------------ token / room
def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(staff: StaffStore, rooms: RoomDirectory, tokens: TokenService) -> int:
        if await rooms.get(args.room) is None:
            print(
                f"seoulbridge: there is no room {args.room!r}; create one with 'room create'",
                file=sys.stderr,
            )
            return 1
        token = tokens.issue_join(
            room_id=args.room,
            role=Role(args.role),
            name=args.name,
            language=args.lang,
            ttl_s=args.ttl,
        )
        print(token if args.bare else join_url(settings.links_base_url(), args.room, token))
        return 0

    return asyncio.run(_with_stores(settings, work))


def cmd_room_create(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def work(staff: StaffStore, rooms: RoomDirectory, tokens: TokenService) -> int:
        record = await rooms.create(title=args.title, topic=args.topic)
        print(f"room {record.id}")
        for spec in args.participant or []:
            role, _, rest = spec.partition(":")
            name, _, language = rest.rpartition(":")
            token = tokens.issue_join(
                room_id=record.id,
                role=Role(role),
                name=name,
                language=language,
                ttl_s=settings.join_token_ttl_s,
            )
            print(f"{role} {join_url(settings.links_base_url(), record.id, token)}")
        return 0

    return asyncio.run(_with_stores(settings, work))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seoulbridge", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="create demo staff (counselor, interpreter, admin) and a consultation; print links",
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: serve https")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-self-signed",
        action="store_true",
        default=None,
        help="serve https with a self-signed certificate for this host, kept in DATA_DIR/tls",
    )
    serve.add_argument(
        "--event-loop",
        choices=["uvloop", "asyncio"],
        default=os.environ.get("SEOULBRIDGE_EVENT_LOOP", "uvloop"),
        help="event loop (default $SEOULBRIDGE_EVENT_LOOP, else uvloop when installed)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N nodes on consecutive ports from --port, sharing one Redis and one secret",
    )
    _add_common(serve)
    serve.set_defaults(func=cmd_serve)

    nodes = sub.add_parser("nodes", help="list the live nodes, their rooms and load")
    nodes.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_common(nodes)
    nodes.set_defaults(func=cmd_nodes)

    staff = sub.add_parser("staff", help="manage staff accounts").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser("add", help="add a staff member (password from stdin, env or prompt)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--role", required=True, choices=[r.value for r in STAFF_ROLES])
    add.add_argument("--languages", default="ko", help="comma-separated, e.g. ko,ja")
    add.add_argument("--topics", help="comma-separated topic ids")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _add_common(add)
    add.set_defaults(func=cmd_staff_add)
    lst = staff.add_parser("list", help="list staff")
    _add_common(lst)
    lst.set_defaults(func=cmd_staff_list)

    token = sub.add_parser("token", help="issue a join token for a room")
    token.add_argument("--room", required=True)
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--name", required=True)
    token.add_argument("--lang", default="ko", choices=list(LANGUAGES))
    token.add_argument("--ttl", type=int, default=4 * 3600, help="seconds the token stays valid")
    token.add_argument("--bare", action="store_true", help="print only the token, not the link")
    _add_common(token)
    token.set_defaults(func=cmd_token)

    room = sub.add_parser("room", help="consultation rooms").add_subparsers(
        dest="room_command", required=True
    )
    create = room.add_parser("create", help="create a room and print join links")
    create.add_argument("--title", default="Consultation")
    create.add_argument("--topic")
    create.add_argument(
        "--participant",
        action="append",
        metavar="ROLE:NAME:LANG",
        help="issue a link, e.g. resident:Kim Yui:ja (repeatable)",
    )
    _add_common(create)
    create.set_defaults(func=cmd_room_create)
    cli_models.register(sub)
    cli_recording.register(sub)
    cli_privacy.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        return int(args.func(args))
    except ValueError as exc:
        print(f"seoulbridge: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
