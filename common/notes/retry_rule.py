"""What the chain does after a failed provider call: a pure function of the failure, the
tries so far, the retry policy and whether another key is ready.

- a refused key (401/403): retire it and try again at once (the next key);
- bad output: try again at once, ``bad_output_retries`` times, then give the provider up;
- any other non-retryable failure (a refused request): give the provider up;
- a retryable failure: back off (full jitter, floored by Retry-After), ``max_attempts`` tries in
  all; a 429 also rests the key, and another key that is ready is tried at once instead; a
  Retry-After longer than ``max_retry_after_s`` gives the provider up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from common.domain.retry import Backoff
from common.notes.errors import AuthFailed, BadOutput, ProviderError, ProviderRateLimited


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    max_retry_after_s: float = 60.0
    bad_output_retries: int = 1


@dataclass(frozen=True)
class Tries:
    """The failures of one call on one provider so far, counted as the policy limits them."""

    failures: int = 0  # retryable ones
    bad_outputs: int = 0

    def counting(self, error: ProviderError) -> Tries:
        if isinstance(error, BadOutput):
            return replace(self, bad_outputs=self.bad_outputs + 1)
        if error.retryable:
            return replace(self, failures=self.failures + 1)
        return self


class Step(StrEnum):
    RETRY_NOW = "retry_now"  # the next key, or the same one after bad output
    BACK_OFF = "back_off"  # wait ``wait_s``, then the same provider again
    GIVE_UP = "give_up"  # this provider will not answer this call: the chain moves on


@dataclass(frozen=True)
class Decision:
    step: Step
    wait_s: float = 0.0
    retire_key: bool = False
    rest_key_s: float | None = None  # rest the failed key this long (whatever the step)
    reason: str = ""  # why the provider was given up
    outage: bool = True  # a give-up that may pass, so a job may wait for it


def decide(
    error: ProviderError,
    tries: Tries,
    policy: RetryPolicy,
    *,
    other_key_ready: bool,
    rand: Callable[[], float],
) -> Decision:
    """``tries`` already counts ``error``; ``other_key_ready``: a key other than the failed
    one is usable now; ``rand`` draws the backoff's jitter."""
    if isinstance(error, AuthFailed):
        return Decision(Step.RETRY_NOW, retire_key=True)
    if isinstance(error, BadOutput):
        if tries.bad_outputs > policy.bad_output_retries:
            return Decision(Step.GIVE_UP, reason="bad_output", outage=False)
        return Decision(Step.RETRY_NOW)
    if not error.retryable:
        return Decision(Step.GIVE_UP, reason=error.outcome, outage=False)
    if tries.failures >= policy.max_attempts:
        return Decision(Step.GIVE_UP, reason=f"{error.outcome} after {tries.failures} attempts")
    delay = policy.backoff.delay(tries.failures, retry_after=error.retry_after, rand=rand)
    rest: float | None = None
    if isinstance(error, ProviderRateLimited):
        # Rest this key however long it was told to wait; another one may be usable at once
        # (and a key rested for no time is usable again at once).
        rest = max(delay, error.retry_after or 0.0)
        if other_key_ready or rest <= 0:
            return Decision(Step.RETRY_NOW, rest_key_s=rest)
    if error.retry_after is not None and error.retry_after > policy.max_retry_after_s:
        reason = f"{error.outcome}: Retry-After {error.retry_after:.0f}s too long"
        return Decision(Step.GIVE_UP, rest_key_s=rest, reason=reason)
    return Decision(Step.BACK_OFF, wait_s=delay, rest_key_s=rest)
