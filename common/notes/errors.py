"""How a provider call failed, which decides retry, key rotation and the breaker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.domain.errors import AudionotesError

if TYPE_CHECKING:
    from common.domain.notes import Usage


class ProviderError(AudionotesError):
    """One failed call. ``outcome`` names it in ``Attempt`` records."""

    outcome = "error"
    retryable = False  # worth another try on the same provider
    trips_breaker = False  # evidence that the provider is down

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=f"llm_{self.outcome}")
        self.status = status
        self.retry_after = retry_after


class ProviderRateLimited(ProviderError):
    outcome = "rate_limited"
    retryable = True


class AuthFailed(ProviderError):
    """401/403: this key is no good; the next key may be."""

    outcome = "auth"


class ServerError(ProviderError):
    outcome = "server_error"
    retryable = True
    trips_breaker = True


class Timeout(ProviderError):
    outcome = "timeout"
    retryable = True
    trips_breaker = True


class Unreachable(ProviderError):
    outcome = "unreachable"
    retryable = True
    trips_breaker = True


class BadOutput(ProviderError):
    """Invalid, truncated or refused output: the provider is up, the answer is unusable.

    ``usage`` and ``model``: what the provider billed for it, when its answer says."""

    outcome = "bad_output"

    def __init__(self, message: str, *, usage: Usage | None = None, model: str = "") -> None:
        super().__init__(message)
        self.usage = usage
        self.model = model


class ProviderRejected(ProviderError):
    """A 4xx other than auth and rate limits (context too long, unknown model...)."""

    outcome = "bad_request"


class ProviderUnavailable(AudionotesError):
    """This provider will not produce these notes now; the chain moves to the next one."""

    code = "provider_unavailable"

    def __init__(self, provider: str, reason: str, *, outage: bool = True) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        # An outage (down, overloaded, breaker open) may pass, so a job can wait for it; bad
        # output, a refused request or no usable key will not.
        self.outage = outage


class ProvidersDown(AudionotesError):
    """Every model provider is out and the caller asked to wait rather than fall back to the
    extractive engine: transient, the job's message is redelivered."""

    code = "providers_down"
