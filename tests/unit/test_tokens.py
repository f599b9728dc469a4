from __future__ import annotations

import jwt
import pytest

from signaling.protocol import Role
from signaling.tokens import TokenError, TokenErrorCode, TokenService

SECRET = "s" * 40


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issue(service: TokenService, **kw: object) -> str:
    args: dict[str, object] = {
        "room_id": "r-1",
        "role": Role.RESIDENT,
        "name": "Kim",
        "language": "ja",
        "ttl_s": 60,
    }
    args.update(kw)
    return service.issue_join(**args)  # type: ignore[arg-type]


def test_round_trip_carries_every_claim() -> None:
    service = TokenService(SECRET, clock=Clock())
    claims = service.verify_join(issue(service), room_id="r-1")
    assert (claims.room_id, claims.role, claims.name, claims.language) == (
        "r-1",
        Role.RESIDENT,
        "Kim",
        "ja",
    )
    assert claims.participant_id.startswith("p-")


def test_expired_token_says_so() -> None:
    clock = Clock()
    service = TokenService(SECRET, clock=clock)
    token = issue(service)
    clock.now += 61
    with pytest.raises(TokenError) as info:
        service.verify_join(token)
    assert info.value.code is TokenErrorCode.EXPIRED
    assert "expired" in info.value.message


def test_not_yet_valid_before_nbf() -> None:
    clock = Clock()
    service = TokenService(SECRET, clock=clock)
    token = issue(service, not_before=clock.now + 900, expires_at=clock.now + 3600)
    with pytest.raises(TokenError) as info:
        service.verify_join(token)
    assert info.value.code is TokenErrorCode.NOT_YET_VALID
    clock.now += 900
    assert service.verify_join(token).room_id == "r-1"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
        lambda t: jwt.encode(
            jwt.decode(t, options={"verify_signature": False}), "x" * 40, algorithm="HS256"
        ),
        lambda t: jwt.encode(
            jwt.decode(t, options={"verify_signature": False}), "", algorithm="none"
        ),
        lambda t: "not-a-jwt",
    ],
    ids=["bad-signature", "other-secret", "alg-none", "garbage"],
)
def test_forged_tokens_are_refused(mangle: object) -> None:
    service = TokenService(SECRET, clock=Clock())
    forged = mangle(issue(service))  # type: ignore[operator]
    with pytest.raises(TokenError) as info:
        service.verify_join(forged)
    assert info.value.code is TokenErrorCode.INVALID


def test_other_room_is_refused() -> None:
    service = TokenService(SECRET, clock=Clock())
    with pytest.raises(TokenError) as info:
        service.verify_join(issue(service), room_id="r-2")
    assert info.value.code is TokenErrorCode.WRONG_ROOM


def test_missing_token() -> None:
    with pytest.raises(TokenError) as info:
        TokenService(SECRET).verify_join(None)
    assert info.value.code is TokenErrorCode.MISSING


def test_join_and_staff_tokens_are_not_interchangeable() -> None:
    service = TokenService(SECRET, clock=Clock())
    staff = service.issue_staff(username="kim", role=Role.COUNSELOR, name="Kim", ttl_s=60)
    with pytest.raises(TokenError):
        service.verify_join(staff)
    with pytest.raises(TokenError):
        service.verify_staff(issue(service, role=Role.COUNSELOR))
    assert service.verify_staff(staff).username == "kim"


def test_bad_issue_arguments() -> None:
    service = TokenService(SECRET)
    with pytest.raises(ValueError, match="unknown language"):
        issue(service, language="fr")
    with pytest.raises(ValueError, match="display name"):
        issue(service, name="  ")
    with pytest.raises(ValueError, match="at least 32"):
        TokenService("short")
