"""How every Firestore call is made: a bounded deadline, and an outage as a domain error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry

from common.domain.errors import StoreUnavailable

# Each call gives up after this, well inside an HTTP request's deadline (the client's own
# default retries UNAVAILABLE for 60 s), so an outage is reported as StoreUnavailable.
CALL_DEADLINE_S = 8.0
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Unknown,
    gexc.Aborted,
)
STORE_CALL: dict[str, Any] = {
    "retry": retry.Retry(
        predicate=retry.if_exception_type(*_TRANSIENT),
        initial=0.1,
        maximum=1.0,
        multiplier=2.0,
        timeout=CALL_DEADLINE_S,
    ),
    "timeout": CALL_DEADLINE_S / 2,
}


@contextlib.contextmanager
def unavailable_as_domain_error(what: str) -> Iterator[None]:
    """Translate an outage of the database into the domain's transient error."""
    try:
        yield
    except (gexc.RetryError, *_TRANSIENT) as exc:
        raise StoreUnavailable(
            f"{what}: the database did not answer ({type(exc).__name__})"
        ) from exc
