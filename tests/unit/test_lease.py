"""The one lease primitive (common/domain/lease.py): each rule as a table of explicit cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.domain.lease import Lease, expire, fresh, holds, release, take, take_over

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T10 = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
T30 = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
T31 = datetime(2026, 1, 1, 12, 0, 31, tzinfo=UTC)

A = Lease(holder="a", taken_at=T0, ttl_s=30)  # fresh until T30 (excluded)
A_LAPSED = Lease(holder="a", taken_at=T0, ttl_s=0)
B_AT_10 = Lease(holder="b", taken_at=T10, ttl_s=30)
B_AT_31 = Lease(holder="b", taken_at=T31, ttl_s=30)
A_AT_10 = Lease(holder="a", taken_at=T10, ttl_s=30)


@pytest.mark.parametrize(
    ("lease", "now", "expected"),
    [
        (None, T0, False),
        (A, T0, True),
        (A, T10, True),
        (A, T30, False),  # exactly at its end it no longer protects
        (A, T31, False),
        (A_LAPSED, T0, False),
    ],
)
def test_fresh(lease: Lease | None, now: datetime, expected: bool) -> None:
    assert fresh(lease, now) is expected


@pytest.mark.parametrize(
    ("lease", "holder", "expected"),
    [(None, "a", False), (A, "a", True), (A, "b", False), (A_LAPSED, "a", True)],
)
def test_holds(lease: Lease | None, holder: str, expected: bool) -> None:
    assert holds(lease, holder) is expected


@pytest.mark.parametrize(
    ("current", "holder", "now", "expected"),
    [
        (None, "b", T10, B_AT_10),  # free
        (A, "b", T10, None),  # someone else's, fresh
        (A, "b", T30, Lease(holder="b", taken_at=T30, ttl_s=30)),  # someone else's, stale
        (A, "a", T10, A_AT_10),  # our own: renewed
        (A_LAPSED, "b", T0, Lease(holder="b", taken_at=T0, ttl_s=30)),  # expired early
    ],
)
def test_take(current: Lease | None, holder: str, now: datetime, expected: Lease | None) -> None:
    assert take(current, holder, now, ttl_s=30) == expected


@pytest.mark.parametrize(
    ("current", "seen", "now", "expected"),
    [
        (None, None, T10, B_AT_10),  # free, as seen
        (A, A, T31, B_AT_31),  # the stale one we saw
        (A, A, T10, None),  # still fresh: its holder may be alive
        (A_AT_10, A, T31, None),  # renewed since we saw it
        (None, A, T31, None),  # released since we saw it
        (A, None, T31, None),  # taken since we saw it free
    ],
)
def test_take_over(
    current: Lease | None, seen: Lease | None, now: datetime, expected: Lease | None
) -> None:
    assert take_over(current, seen, "b", now, ttl_s=30) == expected


@pytest.mark.parametrize(
    ("current", "holder", "expected"),
    [(None, "a", None), (A, "a", None), (A, "b", A), (A_LAPSED, "a", None)],
)
def test_release(current: Lease | None, holder: str, expected: Lease | None) -> None:
    assert release(current, holder) == expected


@pytest.mark.parametrize(
    ("current", "holder", "expected"),
    [(A, "a", A_LAPSED), (A, "b", A), (A_LAPSED, "a", A_LAPSED)],
)
def test_expire(current: Lease, holder: str, expected: Lease) -> None:
    assert expire(current, holder) == expected


def test_a_lease_is_a_value() -> None:
    with pytest.raises(ValueError):
        A.holder = "b"  # type: ignore[misc]
    assert Lease(holder="a", taken_at=T0, ttl_s=30.0) == A
    assert A.expires_at == T30
