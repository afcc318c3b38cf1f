"""One root for every error the domain raises; entry points map them to outcomes."""

from __future__ import annotations


class AudionotesError(Exception):
    """Root of the domain's errors. ``code`` is stable and machine-readable."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class JobNotFound(AudionotesError):
    code = "job_not_found"


class InvalidTransition(AudionotesError):
    """A state change the state machine forbids (a late or duplicate event, usually)."""

    code = "invalid_transition"

    def __init__(self, job_id: str, current: str, requested: str) -> None:
        super().__init__(f"job {job_id}: cannot go from {current} to {requested}")
        self.job_id = job_id
        self.current = current
        self.requested = requested


class InvalidInput(AudionotesError):
    """Bad input from a caller: permanent, never worth a retry."""

    code = "invalid_input"


class BlobNotFound(AudionotesError):
    code = "blob_not_found"


class BlobExists(AudionotesError):
    """A create-if-absent found the object there: another writer was first."""

    code = "blob_exists"


class BlobChanged(AudionotesError):
    """A replace-if-generation found another generation (or none): another writer was first."""

    code = "blob_changed"


class BlobForbidden(AudionotesError):
    """The service's own identity may not read or write the object (permissions, not input)."""

    code = "blob_forbidden"


class PublishFailed(AudionotesError):
    """Pub/Sub did not confirm a publish in time: transient, let the platform retry."""

    code = "publish_failed"


class ExecutorUnavailable(AudionotesError):
    """The service that runs transcribe executions refused or failed a launch, lookup or
    cancel: transient, let the platform retry."""

    code = "executor_unavailable"


class StoreContention(AudionotesError):
    """A transaction lost too many races: transient, let the platform retry."""

    code = "store_contention"


class Busy(AudionotesError):
    """Another worker is doing this very step right now: retry later, do not acknowledge."""

    code = "busy"


class StoreUnavailable(AudionotesError):
    """The database did not answer within the call's deadline: transient, retry later."""

    code = "store_unavailable"


class RateLimited(AudionotesError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
