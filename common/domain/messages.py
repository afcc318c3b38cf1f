"""The bodies of our Pub/Sub messages. Attributes carry job_id and routing hints too, so
subscribers can filter without parsing the body."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from common.domain.errors import InvalidInput
from common.domain.jobs import Priority
from common.domain.transcription_plan import ChunkPlan

M = TypeVar("M", bound=BaseModel)


class TranscriptionRequested(BaseModel):
    """Published to ``topics.transcription_requests`` when a job is QUEUED."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    priority: Priority = Priority.NORMAL
    # Set by the sweep: the job has waited too long, so its unfinished chunks are queued again
    # (a dispatch that is only redelivered does not queue twice).
    resend: bool = False


class ChunkWork(BaseModel):
    """One chunk of a job's plan, published to its priority's work topic for a pull worker."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    index: int
    plan: ChunkPlan


class TranscriptReady(BaseModel):
    """Published to ``topics.transcripts_ready`` when a job is TRANSCRIBED."""

    model_config = ConfigDict(extra="ignore")

    job_id: str


def decode_push(data: Mapping[str, Any] | None, model: type[M]) -> tuple[M, dict[str, str]]:
    """The message and attributes in a Pub/Sub push body (``{"message": {...}}``), as
    functions-framework hands it to a CloudEvent function. ``InvalidInput`` (code
    ``bad_message``) for a body that no retry can fix."""
    try:
        message = dict((data or {})["message"])
        raw = base64.b64decode(message.get("data") or "", validate=True)
        body = model.model_validate(json.loads(raw))
    except (KeyError, TypeError, ValueError, binascii.Error, ValidationError) as exc:
        raise InvalidInput(f"not a {model.__name__} message: {exc}", code="bad_message") from exc
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    return body, attributes
