"""One optimistic read-change-write on a Firestore document, retried on contention.

Parallel Cloud Run tasks and duplicate deliveries contend on one document. Read-write
transactions take locks: under 6-16 racing writers the Firestore emulator deadlocked them
until its lock timeout, again and again (tests/integration/test_job_store.py). Writes are
therefore optimistic: read, compute, write only if the document is still the version read
(an update-time precondition; a create if it did not exist), else read again after a short
jittered pause.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import BaseModel

from common.domain.errors import StoreContention

WRITE_ATTEMPTS = 40

M = TypeVar("M", bound=BaseModel)
Snapshot = firestore.DocumentSnapshot[firestore.DocumentReference]


def write_optimistically(
    client: firestore.Client,
    ref: firestore.DocumentReference,
    parse: Callable[[Snapshot], M],
    change: Callable[[M], M | None],
    *,
    what: str,
    call: Mapping[str, Any] | None = None,
) -> tuple[M, M | None]:
    """``(the document as read, what ``change`` made of it and was written, or None)``.

    ``parse`` turns a snapshot (which may not exist) into the model, or raises; ``change``
    returns the new model or None for no change, and may run more than once, so it must be a
    pure function of what it is given. ``call``: keyword arguments for every Firestore call.
    """
    kwargs = dict(call or {})
    for attempt in range(WRITE_ATTEMPTS):
        snap = ref.get(**kwargs)
        before = parse(snap)
        new = change(before)
        if new is None:
            return before, None
        document = new.model_dump(mode="python")  # every field: this replaces it whole
        try:
            if snap.exists:
                option = client.write_option(last_update_time=snap.update_time)
                ref.update(document, option=option, **kwargs)
            else:
                ref.create(document, **kwargs)
        # Written, created or deleted by someone else first: read it again.
        except (gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound):
            time.sleep(random.uniform(0, min(0.2, 0.01 * 2**attempt)))
            continue
        return before, new
    raise StoreContention(f"{what}: still changing after {WRITE_ATTEMPTS} attempts")
