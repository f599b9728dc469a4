"""Consultation topics: data an admin edits (names per UI language, slot length)."""

from __future__ import annotations

import re

import redis.asyncio as aioredis
from pydantic import BaseModel, Field, field_validator

from kernel.languages import check_languages
from scheduler.errors import UnknownTopicError

_ID = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
_KEY = "sb:topics"


class Topic(BaseModel):
    id: str = Field(description="stable identifier, e.g. 'nationality'")
    names: dict[str, str] = Field(description="display name per UI language (ko, en, ja, zh, ru)")
    slot_minutes: int = Field(default=30, ge=10, le=180, description="length of one appointment")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                "topic id must be 2-32 lower-case letters, digits, '_' or '-', "
                "starting with a letter"
            )
        return value

    @field_validator("names")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        check_languages(list(value))
        if "ko" not in value or "en" not in value:
            raise ValueError("give at least the Korean (ko) and English (en) names")
        if any(not name.strip() for name in value.values()):
            raise ValueError("topic names must not be empty")
        return value

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]


DEFAULT_TOPICS = (
    Topic(
        id="nationality",
        names={"ko": "국적", "en": "Nationality", "ja": "国籍", "zh": "国籍", "ru": "Гражданство"},
        slot_minutes=30,
    ),
    Topic(
        id="military_service",
        names={
            "ko": "병역",
            "en": "Military service",
            "ja": "兵役",
            "zh": "兵役",
            "ru": "Воинская служба",
        },
        slot_minutes=30,
    ),
    Topic(
        id="family_registry",
        names={
            "ko": "가족관계",
            "en": "Family relations registry",
            "ja": "家族関係登録",
            "zh": "家庭关系登记",
            "ru": "Семейный реестр",
        },
        slot_minutes=30,
    ),
    Topic(
        id="general",
        names={
            "ko": "일반 민원",
            "en": "General civil affairs",
            "ja": "一般の行政手続き",
            "zh": "一般行政事务",
            "ru": "Общие вопросы",
        },
        slot_minutes=20,
    ),
)


class TopicStore:
    """Topics in one Redis hash; the defaults are written once when the hash is empty."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def ensure_defaults(self) -> None:
        if await self._redis.exists(_KEY):
            return
        await self._redis.hsetnx(_KEY, "__seeded__", "1")
        for topic in DEFAULT_TOPICS:
            await self._redis.hsetnx(_KEY, topic.id, topic.model_dump_json())

    async def list(self) -> list[Topic]:
        raw = await self._redis.hgetall(_KEY)
        topics = [
            Topic.model_validate_json(value)
            for field, value in raw.items()
            if (field.decode() if isinstance(field, bytes) else field) != "__seeded__"
        ]
        return sorted(topics, key=lambda t: t.id)

    async def get(self, topic_id: str) -> Topic | None:
        raw = await self._redis.hget(_KEY, topic_id)
        if raw is None or topic_id == "__seeded__":
            return None
        return Topic.model_validate_json(raw)

    async def require(self, topic_id: str) -> Topic:
        topic = await self.get(topic_id)
        if topic is None:
            known = ", ".join(t.id for t in await self.list()) or "none configured"
            raise UnknownTopicError(f"unknown topic {topic_id!r}; choose one of: {known}")
        return topic

    async def put(self, topic: Topic) -> Topic:
        await self._redis.hset(_KEY, topic.id, topic.model_dump_json())
        return topic

    async def remove(self, topic_id: str) -> None:
        if not await self._redis.hdel(_KEY, topic_id):
            raise UnknownTopicError(f"unknown topic {topic_id!r}")
