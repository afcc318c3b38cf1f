"""The transcript contract: what the transcribe job writes and the notes function reads.

``jobs/{job_id}/transcript.json`` in the results bucket is ``Transcript.model_dump_json()``;
``.txt``, ``.srt`` and ``.vtt`` are renderings of it. Result paths are built here only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.config.settings import Settings

TRANSCRIPT_FORMATS = ("json", "txt", "srt", "vtt")
NOTES_FORMATS = ("json", "md")


class Word(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    word: str
    probability: float | None = None


class Segment(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    words: list[Word] = Field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class Transcript(BaseModel):
    job_id: str
    language: str
    language_probability: float | None = None
    duration_s: float = Field(ge=0)
    model: str
    segments: list[Segment]
    # What produced it, so a result can be reproduced (beam size, VAD, compute type, ...).
    options: dict[str, object] = Field(default_factory=dict)

    @property
    def pieces(self) -> list[str]:
        """The segments' texts that hold words (what notes are made from)."""
        return [s.text for s in self.segments if s.text.strip()]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def result_uri(settings: Settings, job_id: str, name: str) -> str:
    """``gs://<results>/jobs/{job_id}/{name}``, e.g. name='transcript.json'."""
    return f"gs://{settings.buckets.results}/{settings.buckets.results_prefix}{job_id}/{name}"
