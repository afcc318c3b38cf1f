"""Writing a finished transcript: the content cache and the one ``TranscriptReady`` message
(its renderings: ``common/domain/transcript_files.write_outputs``).

Every step may run twice (a retried task, two tasks finishing together): the files are
deterministic and simply rewritten, the cache entry is created only if absent, and the
message is published under a lease kept in Cloud Storage (``published.json``, created only if
absent and replaced only at the generation seen), so it goes out once unless its publisher dies
mid-way.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from common.config.settings import Settings
from common.domain.errors import BlobChanged, BlobExists
from common.domain.jobs import utcnow
from common.domain.lease import Lease, take
from common.domain.messages import TranscriptReady
from common.domain.ports import BlobStore, Publisher
from common.domain.transcription_plan import cache_prefix
from common.domain.transcripts import Transcript
from common.obs.logs import get_logger

log = get_logger(__name__)

# How long a publish lease protects its holder; past it, another task takes over.
PUBLISH_LEASE_S = 120.0


class PublishMarker(BaseModel):
    """``published.json``: the publisher's lease while it publishes, then the message's id."""

    lease: Lease | None = None
    message_id: str | None = None
    published_at: datetime | None = None


def cache_uri(settings: Settings, sha256: str, model: str, language: str) -> str:
    return cache_prefix(settings, sha256, model, language) + "transcript.json"


def read_cached(uri: str, blobs: BlobStore) -> Transcript | None:
    if blobs.stat(uri) is None:
        return None
    return Transcript.model_validate_json(blobs.read_bytes(uri))


def write_cached(uri: str, transcript: Transcript, blobs: BlobStore) -> None:
    # Absent only: the same content may have been cached by another task or job first.
    with contextlib.suppress(BlobExists):
        blobs.create(uri, transcript.model_dump_json().encode(), content_type="application/json")


def publish_ready_once(
    job_id: str, marker_uri: str, settings: Settings, blobs: BlobStore, publisher: Publisher
) -> bool:
    """Publish ``TranscriptReady`` unless already published; returns whether we published."""
    deadline = time.monotonic() + PUBLISH_LEASE_S
    me = uuid.uuid4().hex
    while True:
        claim = _claim(marker_uri, me, blobs)
        if claim == "published":
            return False
        if claim == "ours":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{marker_uri}: the publish claim was never released")
        time.sleep(1.0)  # another task is publishing; see whether it finishes
    message_id = publisher.publish(
        settings.topics.transcripts_ready, TranscriptReady(job_id=job_id), job_id=job_id
    )
    blobs.write_bytes(
        marker_uri,
        PublishMarker(message_id=message_id, published_at=utcnow()).model_dump_json().encode(),
        content_type="application/json",
    )
    log.info("transcripts-ready published as %s", message_id, extra={"event": "ready"})
    return True


def _claim(marker_uri: str, me: str, blobs: BlobStore) -> Literal["published", "ours", "theirs"]:
    info = blobs.stat(marker_uri)
    current: Lease | None = None
    if info is not None:
        try:
            marker = PublishMarker.model_validate_json(blobs.read_bytes(marker_uri))
        except ValueError:  # a marker cut short: treat it as an expired lease
            marker = PublishMarker()
        if marker.message_id:
            return "published"
        current = marker.lease
    lease = take(current, me, utcnow(), PUBLISH_LEASE_S)
    if lease is None:
        return "theirs"
    body = PublishMarker(lease=lease).model_dump_json().encode()
    try:
        if info is None:
            blobs.create(marker_uri, body, content_type="application/json")
        else:
            blobs.replace(
                marker_uri, body, content_type="application/json", generation=info.generation
            )
    except (BlobExists, BlobChanged):
        return "theirs"
    return "ours"
