"""The bodies of our Pub/Sub messages. Attributes carry job_id and routing hints too, so
subscribers can filter without parsing the body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from common.jobs import Priority


class TranscriptionRequested(BaseModel):
    """Published to ``topics.transcription_requests`` when a job is QUEUED."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    priority: Priority = Priority.NORMAL


class TranscriptReady(BaseModel):
    """Published to ``topics.transcripts_ready`` when a job is TRANSCRIBED."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
