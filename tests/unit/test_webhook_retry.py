"""The webhook sender's retry rule: which answers are final, and how long to wait."""

from __future__ import annotations

import pytest

from common.domain.retry import Backoff
from common.edge.webhooks import delivered, next_wait


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, True),
        (204, True),
        (400, False),
        (404, False),
        (410, False),
        (408, None),
        (425, None),
        (429, None),
        (500, None),
        (503, None),
        (302, None),  # neither 2xx nor 4xx: tried again
    ],
)
def test_which_answers_are_final(status: int, expected: bool | None) -> None:
    assert delivered(status) is expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 0.5),  # full jitter: 0.5 of base 1 s
        (2, None, 1.0),  # doubled
        (3, None, 2.0),
        (1, 5.0, 5.0),  # Retry-After is a floor
        (1, 60.0, 60.0),  # as long as the limit: still waited
        (1, 61.0, None),  # longer: not worth waiting for
        (4, None, None),  # the last try
    ],
)
def test_next_wait(attempt: int, retry_after: float | None, expected: float | None) -> None:
    wait = next_wait(
        attempt,
        attempts=4,
        retry_after=retry_after,
        backoff=Backoff(base_s=1.0, max_s=30.0),
        max_retry_after_s=60.0,
        rand=lambda: 0.5,
    )
    assert wait == expected
