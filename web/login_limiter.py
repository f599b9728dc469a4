"""The sign-in limiter: failed attempts per account and per client address, atomic in Redis.

An attempt *reserves* a place in both counters before the password is checked (one
Lua script: check both limits and count, or refuse), so concurrent wrong passwords
cannot all pass a check that none has counted yet. A correct password clears the
account's counter and gives the address its place back. The two limits differ: many
people can sit behind one address (an office, a proxy), so one account's failures
must not lock out the others there.

The client address is the TCP peer's, or — only when ``trusted_proxy_header`` is set —
the last entry of that header, the one the operator's own proxy appended.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
from aiohttp import web

_PREFIX: Final = "sb:login-fail:"

#: KEYS = account, address; ARGV = account limit, address limit, window (s).
#: Returns 0 when a counter is at its limit (nothing counted), else 1 (both counted).
_RESERVE: Final = """
local account = tonumber(redis.call('GET', KEYS[1]) or '0')
local address = tonumber(redis.call('GET', KEYS[2]) or '0')
if account >= tonumber(ARGV[1]) or address >= tonumber(ARGV[2]) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

#: KEYS = account, address: the attempt succeeded.
_RELEASE: Final = """
redis.call('DEL', KEYS[1])
local left = redis.call('DECR', KEYS[2])
if left <= 0 then redis.call('DEL', KEYS[2]) end
return 1
"""


def client_address(request: web.Request, trusted_header: str | None) -> str:
    """Who is asking: the trusted proxy header's last address, else the TCP peer."""
    if trusted_header:
        value = request.headers.get(trusted_header, "")
        last = value.rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass  # no header, or not an address: the peer is what we know
    return request.remote or "unknown"


@dataclass(frozen=True)
class LoginLimits:
    per_account: int = 10
    per_address: int = 50
    window_s: int = 15 * 60


class LoginLimiter:
    def __init__(self, redis: aioredis.Redis, limits: LoginLimits) -> None:
        self._redis = redis
        self.limits = limits
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def _keys(username: str, address: str) -> list[str]:
        return [f"{_PREFIX}user:{username}", f"{_PREFIX}addr:{address}"]

    async def reserve(self, username: str, address: str) -> bool:
        """Count an attempt, or ``False`` when the account or the address is at its limit."""
        limits = self.limits
        granted = await self._reserve(
            keys=self._keys(username, address),
            args=[limits.per_account, limits.per_address, limits.window_s],
        )
        return bool(granted)

    async def succeeded(self, username: str, address: str) -> None:
        await self._release(keys=self._keys(username, address))
