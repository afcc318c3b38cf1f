"""The transcript contract: what the transcribe job writes and the notes function reads.

``jobs/{job_id}/transcript.json`` in the results bucket is ``Transcript.model_dump_json()``;
``.txt``, ``.srt``, ``.vtt`` and ``.tsv`` are renderings of it (common/domain/subtitles.py).
Result paths are built here only.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.config.settings import Settings
from common.domain.speakers import SpeakerTalk, Turn, speaker_at, talk_time

TRANSCRIPT_FORMATS = ("json", "txt", "srt", "vtt", "tsv", "rttm")
NOTES_FORMATS = ("json", "md")
# What each rendering is served and stored as (RTTM has no registered type: it is plain text).
MEDIA_TYPES = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "rttm": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}


class Word(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    word: str
    probability: float | None = None
    speaker: str | None = None


class Segment(BaseModel):
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    words: list[Word] = Field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    speaker: str | None = None


class DroppedSegment(BaseModel):
    """A segment the hallucination guard took out, and why (kept for review, never shown)."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    reason: str


# A word the decoder gave less than this probability counts as low-confidence.
LOW_CONFIDENCE = 0.5


class TranscriptQuality(BaseModel):
    words: int = Field(ge=0)
    low_confidence_words: int = Field(ge=0)
    low_confidence_share: float = Field(ge=0, le=1)
    segments: int = Field(ge=0)
    segments_redecoded: int = Field(ge=0)
    segments_dropped: int = Field(ge=0)


class TranscriptionSummary(BaseModel):
    """What the job document says of its transcript (``Job.transcription``)."""

    model: str
    task: str
    language: str
    language_probability: float | None = None
    quality: TranscriptQuality
    # Talk time per speaker, most first (empty: no speakers were asked for).
    speakers: list[SpeakerTalk] = Field(default_factory=list)

    def with_names(self, names: dict[str, str]) -> TranscriptionSummary:
        """The summary as the job shows it: each speaker with the name given to its label."""
        named = [t.model_copy(update={"name": names.get(t.speaker)}) for t in self.speakers]
        return self.model_copy(update={"speakers": named})


class Transcript(BaseModel):
    job_id: str
    language: str
    language_probability: float | None = None
    duration_s: float = Field(ge=0)
    model: str
    segments: list[Segment]
    # What produced it, so a result can be reproduced (beam size, VAD, compute type, ...).
    options: dict[str, object] = Field(default_factory=dict)
    task: str = "transcribe"
    dropped_segments: list[DroppedSegment] = Field(default_factory=list)
    # Who spoke when (empty: the job asked for speakers "none"), and the names given to the
    # labels since (PUT /v1/jobs/{id}/speakers): every rendering shows a name for its label.
    turns: list[Turn] = Field(default_factory=list)
    speaker_names: dict[str, str] = Field(default_factory=dict)

    @property
    def speakers(self) -> list[SpeakerTalk]:
        return talk_time(self.turns, self.speaker_names)

    @property
    def pieces(self) -> list[str]:
        """The segments' texts that hold words (what notes are made from)."""
        return [s.text for s in self.segments if s.text.strip()]

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def with_speakers(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Every word given the speaker whose turns overlap it most, and every segment split where
    the speaker changes between its words (WhisperX's idea: words carry the speaker)."""
    if not turns:
        return segments
    out: list[Segment] = []
    for seg in segments:
        if not seg.words:
            out.append(seg.model_copy(update={"speaker": speaker_at(seg.start, seg.end, turns)}))
            continue
        words = [
            w.model_copy(update={"speaker": speaker_at(w.start, w.end, turns)}) for w in seg.words
        ]
        run: list[Word] = []
        for word in words:
            if run and word.speaker != run[-1].speaker:
                out.append(_piece(seg, run))
                run = []
            run.append(word)
        out.append(_piece(seg, run, whole=len(run) == len(words)))
    return out


def _piece(seg: Segment, words: list[Word], *, whole: bool = False) -> Segment:
    if whole:
        return seg.model_copy(update={"words": words, "speaker": words[0].speaker})
    text = "".join(w.word for w in words)
    return seg.model_copy(
        update={
            "start": words[0].start,
            "end": max(w.end for w in words),
            "text": text if text.startswith(" ") else " " + text,
            "words": words,
            "speaker": words[0].speaker,
        }
    )


def summarize(transcript: Transcript) -> TranscriptionSummary:
    words = [w for s in transcript.segments for w in s.words]
    low = sum(1 for w in words if w.probability is not None and w.probability < LOW_CONFIDENCE)
    redecoded = transcript.options.get("redecoded_windows", 0)
    return TranscriptionSummary(
        model=transcript.model,
        task=transcript.task,
        language=transcript.language,
        language_probability=transcript.language_probability,
        quality=TranscriptQuality(
            words=len(words),
            low_confidence_words=low,
            low_confidence_share=round(low / len(words), 4) if words else 0.0,
            segments=len(transcript.segments),
            segments_redecoded=redecoded if isinstance(redecoded, int) else 0,
            segments_dropped=len(transcript.dropped_segments),
        ),
        speakers=transcript.speakers,
    )


def result_uri(settings: Settings, job_id: str, name: str) -> str:
    """``gs://<results>/jobs/{job_id}/{name}``, e.g. name='transcript.json'."""
    return f"gs://{settings.buckets.results}/{settings.buckets.results_prefix}{job_id}/{name}"
