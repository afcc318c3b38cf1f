"""The chunk plan: what ``dispatch`` decides and every transcribe task follows.

The dispatcher passes the plan to the Cloud Run execution as one environment variable, so the
tasks of an execution can never disagree about chunk boundaries, model or language. Task ``i``
owns the audio between two cuts: each cut is found by VAD in ``cut_region(k)`` around the
nominal ``boundary(k)``, from the bytes alone, so neighbouring tasks pick the same one without
talking. A task decodes ``cut_window(i, ...)`` (its cuts plus ``overlap_s`` either side); the
merge keeps each word on the side of the recorded cut where its middle lies.
"""

from __future__ import annotations

import hashlib
import math

from pydantic import BaseModel, ConfigDict, Field

from common.config.settings import Settings, Tier
from common.domain.jobs import JobOptions, Priority
from common.domain.speakers import SpeakerSpec
from common.domain.whisper_models import CATALOG, WhisperTask, able, best_able, check_request

# Environment variables of a transcribe execution (set as run_job overrides).
PLAN_ENV = "AUDIONOTES_TRANSCRIBE_PLAN"
JOB_ID_ENV = "JOB_ID"  # for people reading the console; the plan carries it too
TRACEPARENT_ENV = "TRACEPARENT"  # W3C trace context, so the tasks' logs join the job's trace

# A last chunk shorter than this is folded into the one before it: a few seconds of tail are
# not worth a task and a model load of their own.
MIN_TAIL_S = 30.0
# How far from a nominal boundary a cut may move to find silence: half a minute either side
# holds many pauses in speech. Capped at a quarter of a chunk, so neighbouring regions never
# overlap and a chunk keeps at least half its nominal length.
CUT_SEARCH_S = 30.0


def tier_for(priority: Priority, settings: Settings) -> Tier:
    """High priority always runs on the GPU tier; the rest on the batch tier."""
    return Tier.GPU if priority == Priority.HIGH else settings.executions.batch_tier


def resolve_model(options: JobOptions, settings: Settings) -> str:
    """The model a job asks for (or its tier's default), checked when the job is submitted and
    again when it is dispatched: installed, and able to do what the options ask."""
    t = settings.transcription
    if options.model is not None:  # named: it must do what is asked, or the job is refused
        check_request(options.model, options.language, options.task, t.models)
        return options.model
    model = t.default_models[tier_for(options.priority, settings)]
    info = CATALOG.get(model)
    if info is not None and not able(info, options.language, options.task):
        # The tier's default cannot (turbo does not translate; tiny.en hears only English):
        # the best installed model that can, rather than a refusal the caller did not ask for.
        model = best_able(t.models, options.language, options.task) or model
    check_request(model, options.language, options.task, t.models)
    return model


class ChunkPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    model: str
    language: str | None = None
    task: WhisperTask = WhisperTask.TRANSCRIBE
    vocabulary: tuple[str, ...] = ()
    # The speakers option as ``SpeakerSpec`` writes it: "none" runs no diarization.
    speakers: str = "none"
    duration_s: float = Field(ge=0)
    chunk_seconds: float = Field(gt=0)
    overlap_s: float = Field(ge=0)
    chunk_count: int = Field(ge=1)
    # Half-width of the region searched for a silent cut around each boundary (0: cut at the
    # nominal boundary, as before).
    cut_search_s: float = Field(default=CUT_SEARCH_S, ge=0)

    @classmethod
    def for_job(
        cls,
        *,
        job_id: str,
        model: str,
        language: str | None,
        duration_s: float,
        chunk_seconds: float,
        overlap_s: float,
        cut_search_s: float = CUT_SEARCH_S,
        task: WhisperTask = WhisperTask.TRANSCRIBE,
        vocabulary: tuple[str, ...] = (),
        speakers: str = "none",
    ) -> ChunkPlan:
        count = max(1, math.ceil(duration_s / chunk_seconds))
        if count > 1 and duration_s - (count - 1) * chunk_seconds < MIN_TAIL_S:
            count -= 1
        return cls(
            job_id=job_id,
            model=model,
            language=language,
            task=task,
            vocabulary=vocabulary,
            speakers=speakers,
            duration_s=duration_s,
            chunk_seconds=chunk_seconds,
            overlap_s=overlap_s,
            chunk_count=count,
            cut_search_s=cut_search_s,
        )

    def boundary(self, index: int) -> float:
        """Where chunk ``index`` begins on the timeline (before overlap)."""
        return index * self.chunk_seconds

    def window(self, index: int) -> tuple[float, float | None]:
        """Task ``index``'s nominal window: ``(start, end)``, end None meaning the end of the
        file (so a duration that was only estimated loses nothing); ``cut_window`` moves it to
        the cuts actually found."""
        if not 0 <= index < self.chunk_count:
            raise ValueError(f"chunk {index} is outside 0..{self.chunk_count - 1}")
        start = max(0.0, self.boundary(index) - self.overlap_s)
        if index == self.chunk_count - 1:
            return start, None
        return start, self.boundary(index + 1) + self.overlap_s

    def cut_region(self, k: int) -> tuple[float, float]:
        """The seconds searched for the cut between chunks ``k - 1`` and ``k``: the same for
        both neighbours, so they decode the same samples and pick the same cut."""
        if not 0 < k < self.chunk_count:
            raise ValueError(f"boundary {k} is outside 1..{self.chunk_count - 1}")
        radius = min(self.cut_search_s, self.chunk_seconds / 4)
        nominal = self.boundary(k)
        return max(0.0, nominal - radius), min(nominal + radius, max(self.duration_s, nominal))

    def cut_window(
        self, index: int, start_cut: float | None, end_cut: float | None
    ) -> tuple[float, float | None]:
        """``window(index)`` around the cuts found (None: the nominal boundary)."""
        start, end = self.window(index)
        if index > 0 and start_cut is not None:
            start = max(0.0, start_cut - self.overlap_s)
        if end is not None and end_cut is not None:
            end = end_cut + self.overlap_s
        return start, end

    @property
    def key(self) -> str:
        """Names this plan's chunk results, so a relaunch with another plan never mixes them."""
        raw = self.model_dump_json(exclude={"job_id"})
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def cache_variant(self) -> str:
        """What besides the audio and model decides the words: the language asked for, and a
        translation or vocabulary (so a job with other terms never reuses another's words),
        and the speakers asked for (labels are part of the transcript)."""
        variant = self.language or "auto"
        if self.task is not WhisperTask.TRANSCRIBE:
            variant += f"-{self.task}"
        if self.vocabulary:
            terms = "\n".join(self.vocabulary).encode()
            variant += f"-v{hashlib.sha256(terms).hexdigest()[:12]}"
        if self.speaker_spec.enabled:
            variant += f"-s{self.speakers}"
        return variant

    @property
    def speaker_spec(self) -> SpeakerSpec:
        return SpeakerSpec.parse(self.speakers)

    def to_env(self) -> dict[str, str]:
        return {PLAN_ENV: self.model_dump_json(), JOB_ID_ENV: self.job_id}

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> ChunkPlan:
        raw = environ.get(PLAN_ENV)
        if not raw:
            raise KeyError(f"{PLAN_ENV} is not set: this task was not launched by dispatch")
        return cls.model_validate_json(raw)


def work_prefix(settings: Settings, plan: ChunkPlan) -> str:
    """``gs://<results>/jobs/{job_id}/work/{plan.key}/``: per-chunk results and markers."""
    s = settings.buckets
    return f"gs://{s.results}/{s.results_prefix}{plan.job_id}/work/{plan.key}/"


def cache_prefix(settings: Settings, sha256: str, model: str, variant: str) -> str:
    """The content cache: the same audio, model and ``ChunkPlan.cache_variant`` give the same
    transcript."""
    s = settings.buckets
    return f"gs://{s.results}/{s.cache_prefix}{sha256}/{model}/{variant}/"
