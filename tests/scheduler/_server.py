"""Test-only server: the REST routes plus the AppKeys the scheduler needs, on 127.0.0.1.

``python tests/scheduler/_server.py REDIS_URL SECRET`` prints ``PORT <n>`` once listening and
exits by itself when its parent dies or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis.asyncio as aioredis
from aiohttp import web

from scheduler.staff import StaffStore
from signaling.rooms import RoomDirectory
from signaling.tokens import TokenService
from web import api_scheduler, routes
from web.app import languages_js
from web.appkeys import REDIS, ROOMS, SETTINGS, STAFF, TOKENS
from web.settings import Settings


def build_app(redis_url: str, secret: str, base_url: str = "http://sb.test") -> web.Application:
    app = web.Application()
    app[SETTINGS] = Settings(public_url=base_url, redis_url=redis_url, token_secret=secret)

    async def services(app: web.Application) -> AsyncIterator[None]:
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64)
        client = aioredis.Redis.from_pool(pool)  # closes the pool on aclose()
        app[REDIS] = client
        app[TOKENS] = TokenService(secret)
        app[STAFF] = StaffStore(client)
        app[ROOMS] = RoomDirectory(client)
        try:
            yield
        finally:
            await client.aclose()

    app.cleanup_ctx.append(services)
    app.cleanup_ctx.append(api_scheduler.scheduler_ctx)
    app.router.add_get("/languages.js", languages_js)
    routes.add_routes(app)  # transcript routes are there too, but there are no captions
    app.router.add_static("/static/", api_scheduler.STATIC_DIR)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("secret")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    parent = os.getppid()
    runner = web.AppRunner(build_app(args.redis_url, args.secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.max_seconds
    try:
        while os.getppid() == parent and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
