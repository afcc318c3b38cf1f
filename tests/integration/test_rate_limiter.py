"""RateLimiter under a burst from one client, against the Firestore emulator.

A read-then-write transaction on the client's window document queued on its lock and failed
most of 16 concurrent calls after ~50 s (found by bench/load.py); the limiter must admit exactly
the limit, refuse the rest with RateLimited, and never error.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from google.cloud import firestore

from common.domain.errors import RateLimited
from common.gcp.rate_limit import RateLimiter, Window


def test_a_burst_admits_exactly_the_limit(clean_stack, unique):  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    collection = f"rate-{unique}"
    limiter = RateLimiter(s.project, collection, [Window("minute", 60, 10)], clock=lambda: 600.0)

    def call(_: int) -> str:
        try:
            limiter.hit([f"ip:{unique}"])
        except RateLimited:
            return "refused"
        return "admitted"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(call, range(16)))
    assert outcomes.count("admitted") == 10
    assert outcomes.count("refused") == 6
    [doc] = list(firestore.Client(project=s.project).collection(collection).stream())
    assert doc.to_dict()["count"] == 10  # refused requests took their increments back


def test_every_key_must_be_under_its_limit(clean_stack, unique):  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    limiter = RateLimiter(
        s.project, f"rate-{unique}", [Window("minute", 60, 2)], clock=lambda: 600.0
    )
    limiter.hit(["ip:a", "sub:x"])
    limiter.hit(["ip:b", "sub:x"])
    try:
        limiter.hit(["ip:c", "sub:x"])  # a fresh address, but the subject is spent
    except RateLimited as exc:
        assert "per sub" in exc.message and exc.retry_after_s == 60
    else:
        raise AssertionError("the third call of sub:x was admitted")
    limiter.hit(["ip:c", "sub:y"])  # ip:c was not counted by the refused call
    limiter.hit(["ip:c", "sub:z"])
