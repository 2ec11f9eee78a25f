"""A stand-in for confluent_kafka.Message, for unit tests of pure bookkeeping (no broker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from confluent_kafka import Message


@dataclass(frozen=True)
class FakeMessage:
    """A consumed record: what the code under test reads of a Message, nothing more."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None = None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return None

    def error(self) -> None:
        return None


def as_messages(fakes: list[FakeMessage]) -> list[Message]:
    """The fakes typed as the Messages the code under test takes."""
    return cast(list[Message], fakes)
