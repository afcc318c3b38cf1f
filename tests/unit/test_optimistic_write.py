"""The one optimistic read-change-write (common/gcp/optimistic_write.py) against a stand-in
document that other writers change between our read and our write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from google.api_core import exceptions as gexc
from pydantic import BaseModel

from common.domain.errors import StoreContention
from common.gcp import optimistic_write
from common.gcp.optimistic_write import WRITE_ATTEMPTS, Snapshot, write_optimistically


class Counter(BaseModel):
    n: int = 0


@dataclass
class _Snap:
    exists: bool
    update_time: int
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass
class _Doc:
    """One document; ``races`` writes by someone else land just before each of ours."""

    data: dict[str, Any] | None = None
    version: int = 0
    races: int = 0
    writes: list[str] = field(default_factory=list)

    def get(self) -> _Snap:
        return _Snap(self.data is not None, self.version, dict(self.data or {}))

    def _raced(self) -> bool:
        if self.races == 0:
            return False
        self.races -= 1
        self.data, self.version = {"n": (self.data or {"n": 0})["n"] + 10}, self.version + 1
        return True

    def update(self, data: dict[str, Any], *, option: int) -> None:
        if self._raced() or option != self.version:
            raise gexc.FailedPrecondition("changed since read")
        self.data, self.version = data, self.version + 1
        self.writes.append("update")

    def create(self, data: dict[str, Any]) -> None:
        if self._raced() or self.data is not None:
            raise gexc.Conflict("exists")
        self.data, self.version = data, 1
        self.writes.append("create")


class _Client:
    def write_option(self, *, last_update_time: int) -> int:
        return last_update_time


def _parse(snap: Snapshot) -> Counter:
    return Counter.model_validate(snap.to_dict()) if snap.exists else Counter()


def _plus_one(c: Counter) -> Counter:
    return Counter(n=c.n + 1)


def _write(doc: _Doc, change: Any = _plus_one) -> tuple[Counter, Counter | None]:
    return write_optimistically(
        cast(Any, _Client()), cast(Any, doc), _parse, change, what="counter"
    )


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optimistic_write.time, "sleep", lambda _: None)


@pytest.mark.parametrize(
    ("data", "races", "before", "after", "writes"),
    [
        (None, 0, 0, 1, ["create"]),  # absent: created
        ({"n": 5}, 0, 5, 6, ["update"]),
        ({"n": 5}, 1, 15, 16, ["update"]),  # changed under us once: the change runs again
        (None, 2, 20, 21, ["update"]),  # created, then changed, under us
    ],
)
def test_the_change_applies_to_the_version_it_writes_over(
    data: dict[str, Any] | None, races: int, before: int, after: int, writes: list[str]
) -> None:
    doc = _Doc(data=data, version=1 if data else 0, races=races)
    read, new = _write(doc)
    assert (read.n, new.n if new else None) == (before, after)
    assert doc.data == {"n": after} and doc.writes == writes


def test_no_change_writes_nothing() -> None:
    doc = _Doc(data={"n": 5}, version=1)
    assert _write(doc, lambda _: None) == (Counter(n=5), None)
    assert doc.writes == []


def test_endless_contention_gives_up() -> None:
    doc = _Doc(data={"n": 0}, version=1, races=WRITE_ATTEMPTS)
    with pytest.raises(StoreContention):
        _write(doc)
    assert doc.writes == []
