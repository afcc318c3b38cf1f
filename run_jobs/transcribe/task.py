"""One Cloud Run task: transcribe chunk ``CLOUD_RUN_TASK_INDEX`` of a job's plan, and, if it
is the last chunk to finish, merge them all into the transcript.

Resumable and idempotent: a chunk whose result is already in Cloud Storage is not run again
(a retried task skips straight to the merge check), the merge writes the same files each
time, the state only moves forward, and the ready message is published once
(``results.publish_ready_once``). The content cache means the same audio bytes with the same
model and language are transcribed once, whatever the job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
from opentelemetry import trace

from common.audio.decode import decode_window
from common.config.settings import Settings
from common.domain.errors import InvalidInput, InvalidTransition, JobNotFound
from common.domain.jobs import (
    PIPELINE,
    Job,
    JobError,
    JobState,
    transcribed,
    with_source_digest,
)
from common.domain.ports import BlobStore, JobStore, Publisher
from common.domain.transcript_files import write_outputs
from common.domain.transcription_plan import ChunkPlan, work_prefix
from common.domain.transcripts import Transcript, summarize, with_speakers
from common.obs import metrics
from common.obs.logs import bind, get_logger
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.cuts import task_cuts
from run_jobs.transcribe.merge import ChunkResult, merge, shift, shift_dropped
from run_jobs.transcribe.model_store import model_path
from run_jobs.transcribe.results import (
    cache_uri,
    publish_ready_once,
    read_cached,
    write_cached,
)
from run_jobs.transcribe.speakers.diarize import turns_from
from run_jobs.transcribe.speakers.embedder import SpeakerWindows, embed_chunk
from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions, model_loads

log = get_logger(__name__)
_tracer = trace.get_tracer(__name__)

# Transcription fills the job's progress up to here; notes take it the rest of the way.
TRANSCRIPTION_SHARE = 0.9


class TaskOutcome(StrEnum):
    CHUNK_DONE = "chunk_done"  # our chunk is stored; another task will merge
    TRANSCRIBED = "transcribed"  # we merged (or found it merged) and the job is TRANSCRIBED
    CACHE_HIT = "cache_hit"  # the same audio + model + language was transcribed before
    SKIPPED = "skipped"  # the job is gone, final, or owned by another execution
    FAILED = "failed"  # a permanent problem: the job is FAILED with a clear error


@dataclass(frozen=True)
class TaskEnv:
    plan: ChunkPlan
    index: int
    attempt: int
    execution: str | None  # Cloud Run's short execution name (CLOUD_RUN_EXECUTION)

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> TaskEnv:
        return cls(
            plan=ChunkPlan.from_env(environ),
            index=int(environ.get("CLOUD_RUN_TASK_INDEX", "0")),
            attempt=int(environ.get("CLOUD_RUN_TASK_ATTEMPT", "0")),
            execution=environ.get("CLOUD_RUN_EXECUTION"),
        )


@dataclass(frozen=True)
class TranscribeServices:
    settings: Settings
    jobs: JobStore
    blobs: BlobStore
    publisher: Publisher
    audio: AudioCache


def run_task(env: TaskEnv, w: TranscribeServices) -> TaskOutcome:
    """Do this task's share; raises on transient trouble (Cloud Run retries the task)."""
    plan = env.plan
    with bind(job_id=plan.job_id):
        try:
            return _run(env, w)
        except InvalidInput as exc:
            _fail(plan.job_id, JobError(code=exc.code, message=exc.message), w)
            return TaskOutcome.FAILED
        except (JobNotFound, InvalidTransition) as exc:
            log.info("nothing to do: %s", exc)
            return TaskOutcome.SKIPPED


def fail_for_good(env: TaskEnv, w: TranscribeServices, exc: BaseException) -> None:
    """The last attempt crashed: say so on the job rather than leave it TRANSCRIBING."""
    message = f"transcription failed after {env.attempt + 1} attempts: {exc}"
    _fail(env.plan.job_id, JobError(code="transcription_failed", message=message), w)


def _run(env: TaskEnv, w: TranscribeServices) -> TaskOutcome:
    plan = env.plan
    job = w.jobs.get(plan.job_id)
    if job.state.is_final or _owned_elsewhere(job, env.execution):
        log.info("job is %s (execution %s); skipping", job.state, job.execution)
        return TaskOutcome.SKIPPED
    if _at_or_after(job.state, JobState.TRANSCRIBED):
        _announce(plan.job_id, w)
        return TaskOutcome.TRANSCRIBED

    audio = w.audio.get(job.source.uri, job.source.generation)
    if job.source.sha256 != audio.sha256:
        w.jobs.update(plan.job_id, lambda j: with_source_digest(j, audio.sha256, audio.bytes))
    cached_at = cache_uri(w.settings, audio.sha256, plan.model, plan.cache_variant)
    cached = read_cached(cached_at, w.blobs)
    if cached is not None:
        log.info("cache hit %s: no model run", cached_at, extra={"event": "cache_hit"})
        # Another owner's audio may have filled the cache: nothing of that job (not even its
        # id) goes into this one.
        reused = cached.model_copy(
            update={
                "job_id": plan.job_id,
                "options": {**cached.options, "content_cache": True},
                "speaker_names": {},  # names are the job's own, never the cache's
            }
        )
        _finish(reused, w, plan, usage={"transcribe_cache_hits": 1.0}, cache_hit=True)
        return TaskOutcome.CACHE_HIT

    w.jobs.transition(plan.job_id, JobState.TRANSCRIBING)
    prefix = work_prefix(w.settings, plan)
    chunk_uri = f"{prefix}chunk-{env.index:04d}.json"
    if w.blobs.stat(chunk_uri) is None:
        with _tracer.start_as_current_span(
            "transcribe.chunk", attributes={"chunk": env.index, "model": plan.model}
        ):
            result = _transcribe_chunk(env, audio.path, prefix, w)
        # The chunk's result last: its presence says the chunk (voice prints too) is done.
        w.blobs.write_bytes(
            chunk_uri, result.model_dump_json().encode(), content_type="application/json"
        )
    else:
        log.info("chunk %d was finished by an earlier attempt", env.index)

    done = _chunk_uris(prefix, w)
    if len(done) < plan.chunk_count:
        log.info("chunk %d stored; %d of %d done", env.index, len(done), plan.chunk_count)
        return TaskOutcome.CHUNK_DONE
    with _tracer.start_as_current_span("transcribe.merge", attributes={"chunks": len(done)}):
        chunks = [ChunkResult.model_validate_json(w.blobs.read_bytes(u)) for u in done]
        transcript = _with_speakers(merge(plan, chunks), plan, prefix, w)
        write_cached(cached_at, transcript, w.blobs)
        _finish(transcript, w, plan, usage={"transcribed_audio_s": plan.duration_s})
    return TaskOutcome.TRANSCRIBED


def _transcribe_chunk(env: TaskEnv, path: Path, prefix: str, w: TranscribeServices) -> ChunkResult:
    plan = env.plan
    # Cut where the audio is silent: the neighbouring task finds the same cut (cuts.py).
    cut_start, cut_end = task_cuts(path, plan, env.index)
    start, end = plan.cut_window(env.index, cut_start, cut_end)
    samples = decode_window(path, start, end)
    options = replace(
        WhisperOptions.from_settings(plan.model, w.settings),
        task=plan.task.value,
        hotwords=", ".join(plan.vocabulary) or None,  # the decoder's prompt expects these
    )
    transcriber = Transcriber(model_path(plan.model, w.settings, w.blobs), options)
    extra: dict[str, float] = {}
    already = len(_chunk_uris(prefix, w))
    report = _throttled(
        lambda fraction: w.jobs.set_progress(
            plan.job_id, TRANSCRIPTION_SHARE * (already + fraction) / plan.chunk_count
        ),
        w.settings.executions.progress_interval_s,
    )
    loads_before = model_loads()
    started = time.monotonic()
    result = transcriber.transcribe(samples, language=plan.language, on_progress=report)
    seconds = time.monotonic() - started
    audio_s = len(samples) / 16_000
    rtf = seconds / audio_s if audio_s > 0 else None
    trace.get_current_span().set_attributes(
        {"audio_s": round(audio_s, 3), "rtf": round(rtf, 4) if rtf is not None else -1.0}
    )
    log.info(
        "chunk %d: %.1f s of audio in %.1f s (model loads: %d)",
        env.index,
        audio_s,
        seconds,
        model_loads() - loads_before,
        extra=metrics.fields(
            metrics.CHUNK_TRANSCRIBED,
            chunk=env.index,
            model=plan.model,
            audio_s=round(audio_s, 3),
            duration_s=round(seconds, 3),
            rtf=round(rtf, 4) if rtf is not None else None,
        ),
    )
    if plan.speaker_spec.enabled:
        with _tracer.start_as_current_span("transcribe.voice_prints"):
            extra = _embed_speakers(env, samples, start, (cut_start, cut_end), prefix, w)
    return ChunkResult(
        plan_key=plan.key,
        index=env.index,
        window_start_s=start,
        window_end_s=end,
        language=result.language,
        language_probability=result.language_probability,
        segments=shift(result.segments, start),
        options={**result.options, **extra},
        cut_start_s=cut_start,
        cut_end_s=cut_end,
        dropped_segments=shift_dropped(result.dropped, start),
    )


def _embed_speakers(
    env: TaskEnv,
    samples: np.ndarray,
    start: float,
    cuts: tuple[float | None, float | None],
    prefix: str,
    w: TranscribeServices,
) -> dict[str, float]:
    """This chunk's voice prints, of the speech between its cuts: neighbours find the same cut
    (cuts.py), so no speech is embedded by two chunks or by none."""
    plan = env.plan
    low = (
        -math.inf
        if env.index == 0
        else (cuts[0] if cuts[0] is not None else plan.boundary(env.index))
    )
    last = env.index == plan.chunk_count - 1
    high = math.inf if last else (cuts[1] if cuts[1] is not None else plan.boundary(env.index + 1))
    started = time.monotonic()
    windows = embed_chunk(samples, start, (low, high), w.settings.speakers)
    w.blobs.write_bytes(
        f"{prefix}speakers-{env.index:04d}.npz",
        windows.to_bytes(),
        content_type="application/octet-stream",
    )
    seconds = time.monotonic() - started
    log.info("chunk %d: %d voice prints in %.1f s", env.index, len(windows.starts), seconds)
    return {"diarize_s": round(seconds, 3), "speaker_windows": float(len(windows.starts))}


def _with_speakers(
    transcript: Transcript, plan: ChunkPlan, prefix: str, w: TranscribeServices
) -> Transcript:
    """The whole file's voice prints clustered at once: one set of speakers for every chunk."""
    spec = plan.speaker_spec
    if not spec.enabled:
        return transcript
    started = time.monotonic()
    parts = [
        SpeakerWindows.from_bytes(w.blobs.read_bytes(f"{prefix}speakers-{i:04d}.npz"))
        for i in range(plan.chunk_count)
    ]
    turns = turns_from(SpeakerWindows.joined(parts), spec, w.settings.speakers)
    seconds = time.monotonic() - started
    speakers = len({t.speaker for t in turns})
    log.info("%d speakers in %d turns (clustered in %.1f s)", speakers, len(turns), seconds)
    return transcript.model_copy(
        update={
            "segments": with_speakers(transcript.segments, turns),
            "turns": turns,
            "options": {
                **transcript.options,
                "speakers": str(spec),
                "speakers_found": speakers,
                "cluster_s": round(seconds, 3),
            },
        }
    )


def _finish(
    transcript: Transcript,
    w: TranscribeServices,
    plan: ChunkPlan,
    *,
    usage: dict[str, float],
    cache_hit: bool = False,
) -> None:
    outputs = write_outputs(transcript, w.settings, w.blobs)
    summary = summarize(transcript)
    moved = [False]  # whether this task's write moved the job (the change may run again)

    def change(job: Job) -> Job | None:
        new = transcribed(job, outputs, usage, summary)
        moved[0] = new is not None
        return new

    w.jobs.update(transcript.job_id, change)
    if moved[0]:
        w.jobs.set_progress(transcript.job_id, TRANSCRIPTION_SHARE)
        # Once per job (only the task that moved it): the audio seconds metric.
        log.info(
            "transcribed %.1f s of audio with %s%s",
            plan.duration_s,
            plan.model,
            " (content cache)" if cache_hit else "",
            extra=metrics.fields(
                metrics.TRANSCRIBED,
                audio_s=round(plan.duration_s, 3),
                model=plan.model,
                chunks=plan.chunk_count,
                cache_hit=cache_hit,
            ),
        )
    _announce(transcript.job_id, w)


def _announce(job_id: str, w: TranscribeServices) -> None:
    marker = f"{work_root(w.settings, job_id)}published.json"
    publish_ready_once(job_id, marker, w.settings, w.blobs, w.publisher)


def work_root(settings: Settings, job_id: str) -> str:
    b = settings.buckets
    return f"gs://{b.results}/{b.results_prefix}{job_id}/work/"


def _chunk_uris(prefix: str, w: TranscribeServices) -> list[str]:
    return sorted(u for u in w.blobs.list(prefix) if u.rsplit("/", 1)[1].startswith("chunk-"))


def _fail(job_id: str, error: JobError, w: TranscribeServices) -> None:
    try:
        w.jobs.transition(job_id, JobState.FAILED, error=error)
    except (InvalidTransition, JobNotFound) as exc:
        log.info("could not mark the job FAILED: %s", exc)
        return
    log.error("job failed: %s", error.message, extra={"code": error.code})


def _owned_elsewhere(job: Job, execution: str | None) -> bool:
    """Another execution was launched for this job (a relaunch): leave the job to it."""
    if not execution or not job.execution:
        return False  # no name yet: dispatch records it just after launching us
    return job.execution.rsplit("/", 1)[1] != execution


def _at_or_after(state: JobState, reference: JobState) -> bool:
    return state in PIPELINE and PIPELINE.index(state) >= PIPELINE.index(reference)


def _throttled(report: Callable[[float], object], interval_s: float) -> Callable[[float], None]:
    last = [float("-inf")]

    def call(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= interval_s:
            last[0] = now
            report(fraction)

    return call
