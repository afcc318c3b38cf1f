"""Chunk claims: a worker holds a lease on a chunk while it transcribes it, so a redelivered
copy of the same work (Pub/Sub is at-least-once, and the sweep may queue a chunk again) does not
run the model a second time.

The claim is a small object beside the chunk's result (``claim-NNNN.json``), created only if
absent and renewed only over the generation its holder wrote (Cloud Storage preconditions),
so of two workers exactly one holds it. A holder that dies stops renewing; once its lease is
stale the next delivery takes it over. The result, written last, stays what says a chunk is
done: a claim never hides a result, it only holds off a second run while the first is alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.domain.errors import BlobChanged, BlobExists, BlobNotFound
from common.domain.lease import Lease, fresh, holds
from common.domain.ports import BlobStore

_TYPE = "application/json"


@dataclass(frozen=True)
class ChunkClaim:
    uri: str
    lease: Lease
    generation: str


def claim_uri(prefix: str, index: int) -> str:
    return f"{prefix}claim-{index:04d}.json"


@dataclass(frozen=True)
class HeldElsewhere:
    """Another holder's fresh claim: ``lease`` says until when (None if the claim changed
    or vanished while we looked; the next delivery decides)."""

    lease: Lease | None = None


def take_claim(
    blobs: BlobStore, uri: str, holder: str, now: datetime, ttl_s: float
) -> ChunkClaim | HeldElsewhere:
    """The claim for ``holder``, unless another holder's lease on it is fresh."""
    lease = Lease(holder=holder, taken_at=now, ttl_s=ttl_s)
    data = lease.model_dump_json().encode()
    try:
        return ChunkClaim(uri, lease, blobs.create(uri, data, content_type=_TYPE))
    except BlobExists:
        pass
    info = blobs.stat(uri)
    if info is None:
        return HeldElsewhere()  # deleted since we looked (results withdrawn)
    try:
        current = Lease.model_validate_json(blobs.read_bytes(uri))
    except BlobNotFound:
        return HeldElsewhere()
    if fresh(current, now) and not holds(current, holder):
        return HeldElsewhere(current)
    try:
        generation = blobs.replace(uri, data, content_type=_TYPE, generation=info.generation)
    except (BlobChanged, BlobNotFound):
        return HeldElsewhere()  # another taker was first
    return ChunkClaim(uri, lease, generation)


def renew_claim(blobs: BlobStore, claim: ChunkClaim, now: datetime) -> ChunkClaim | None:
    """The claim with its lease restarted at ``now``; None if it was taken over (we were
    presumed dead: finishing is still harmless, the result is the same)."""
    lease = claim.lease.model_copy(update={"taken_at": now})
    try:
        generation = blobs.replace(
            claim.uri,
            lease.model_dump_json().encode(),
            content_type=_TYPE,
            generation=claim.generation,
        )
    except (BlobChanged, BlobNotFound):
        return None
    return ChunkClaim(claim.uri, lease, generation)
