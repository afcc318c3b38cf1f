"""``decide``: what the chain does after each kind of failed call, as a table."""

from __future__ import annotations

import pytest

from common.domain.retry import Backoff
from common.notes.errors import (
    AuthFailed,
    BadOutput,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ServerError,
    Timeout,
)
from common.notes.retry_rule import Decision, RetryPolicy, Step, Tries, decide

POLICY = RetryPolicy(
    max_attempts=3, backoff=Backoff(1.0, 8.0), max_retry_after_s=60.0, bad_output_retries=1
)


@pytest.mark.parametrize(
    ("error", "tries", "other_key_ready", "expected"),
    [
        # a refused key: retired, the next one at once
        (AuthFailed("401"), Tries(), False, Decision(Step.RETRY_NOW, retire_key=True)),
        # bad output: once more at once, then the provider is given up (not an outage)
        (BadOutput("bad"), Tries(bad_outputs=1), False, Decision(Step.RETRY_NOW)),
        (
            BadOutput("bad"),
            Tries(bad_outputs=2),
            False,
            Decision(Step.GIVE_UP, reason="bad_output", outage=False),
        ),
        # a refused request: no retry, not an outage
        (
            ProviderRejected("400"),
            Tries(),
            True,
            Decision(Step.GIVE_UP, reason="bad_request", outage=False),
        ),
        # retryable: backoff 0.5 * base * 2**(n-1), until max_attempts
        (ServerError("500"), Tries(failures=1), False, Decision(Step.BACK_OFF, wait_s=0.5)),
        (Timeout("slow"), Tries(failures=2), True, Decision(Step.BACK_OFF, wait_s=1.0)),
        (
            ServerError("500"),
            Tries(failures=3),
            False,
            Decision(Step.GIVE_UP, reason="server_error after 3 attempts"),
        ),
        # Retry-After floors the wait (and rests the key as long)
        (
            ProviderRateLimited("429", retry_after=3.0),
            Tries(failures=1),
            False,
            Decision(Step.BACK_OFF, wait_s=3.0, rest_key_s=3.0),
        ),
        # another key ready: rest this one, try that one at once
        (
            ProviderRateLimited("429", retry_after=3.0),
            Tries(failures=1),
            True,
            Decision(Step.RETRY_NOW, rest_key_s=3.0),
        ),
        (
            ProviderRateLimited("429", retry_after=600.0),
            Tries(failures=1),
            True,
            Decision(Step.RETRY_NOW, rest_key_s=600.0),
        ),
        # a Retry-After too long with no other key: the provider is given up, the key rests
        (
            ProviderRateLimited("429", retry_after=600.0),
            Tries(failures=1),
            False,
            Decision(
                Step.GIVE_UP, rest_key_s=600.0, reason="rate_limited: Retry-After 600s too long"
            ),
        ),
        (
            ServerError("503", retry_after=120.0),
            Tries(failures=1),
            True,
            Decision(Step.GIVE_UP, reason="server_error: Retry-After 120s too long"),
        ),
        # the attempt budget comes before any key rotation
        (
            ProviderRateLimited("429"),
            Tries(failures=3),
            True,
            Decision(Step.GIVE_UP, reason="rate_limited after 3 attempts"),
        ),
    ],
)
def test_decide(
    error: ProviderError, tries: Tries, other_key_ready: bool, expected: Decision
) -> None:
    decision = decide(error, tries, POLICY, other_key_ready=other_key_ready, rand=lambda: 0.5)
    assert decision == expected


def test_a_key_rested_for_no_time_is_tried_again_at_once() -> None:
    decision = decide(
        ProviderRateLimited("429"),
        Tries(failures=1),
        POLICY,
        other_key_ready=False,
        rand=lambda: 0.0,
    )
    assert decision == Decision(Step.RETRY_NOW, rest_key_s=0.0)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (BadOutput("bad"), Tries(failures=1, bad_outputs=2)),
        (ServerError("500"), Tries(failures=2, bad_outputs=1)),
        (ProviderRateLimited("429"), Tries(failures=2, bad_outputs=1)),
        (AuthFailed("401"), Tries(failures=1, bad_outputs=1)),
        (ProviderRejected("400"), Tries(failures=1, bad_outputs=1)),
    ],
)
def test_tries_count_what_the_policy_limits(error: ProviderError, expected: Tries) -> None:
    assert Tries(failures=1, bad_outputs=1).counting(error) == expected
