"""Tracing in one process, captured by the SDK's InMemorySpanExporter: stages continue the
job's trace from a traceparent (or the job's stored one), logs carry the current span's ids,
the transcribe task and the notes chain make their child spans, and the JSON lines exporter
writes what the integration test reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from common.config.settings import Tracing
from common.domain.jobs import JobState, NotesTemplate
from common.domain.ports import Publisher
from common.domain.transcription_plan import ChunkPlan
from common.notes.errors import ServerError
from common.obs.logs import JsonFormatter, bind, current_traceparent
from common.obs.tracing import (
    JsonLinesExporter,
    configure_tracing,
    is_traceparent,
    parent_context,
    stage,
)
from functions.bootstrap import Services
from functions.main import _job_trace
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices, run_task
from tests.data.speech import make_speech
from tests.fakes import MemoryBlobStore, MemoryJobStore, RecordingPublisher, new_job, settings
from tests.unit.test_llm_resilience import TEXT, ScriptedProvider, engine

_EXPORTER = InMemorySpanExporter()
PARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (the first configure wins, as in an entry point), with
    the in-memory exporter attached once."""
    provider: TracerProvider = configure_tracing(Tracing(), "unit-tests")
    if not getattr(provider, "_audionotes_memory", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._audionotes_memory = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    ctx = span.get_span_context()
    assert ctx is not None
    parent = format(span.parent.span_id, "016x") if span.parent else None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), parent


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def test_stages_hand_one_trace_on_through_traceparents(spans: InMemorySpanExporter) -> None:
    # on_upload starts the trace; what it stores on the job and publishes is its own span.
    with stage("on_upload", parents=[None], job_id="j-1"):
        stored = current_traceparent()
    # dispatch continues from the message attribute and hands its span to the tasks' env.
    with stage("dispatch", parents=[stored], job_id="j-1"):
        task_env = current_traceparent()
    with stage("transcribe.task", parents=[task_env], job_id="j-1"):
        published = current_traceparent()
    with stage("notes", parents=[published], job_id="j-1"):
        pass

    named = {s.name: _ids(s) for s in spans.get_finished_spans()}
    assert set(named) == {"on_upload", "dispatch", "transcribe.task", "notes"}
    assert len({trace_id for trace_id, _, _ in named.values()}) == 1
    assert named["on_upload"][2] is None  # the root
    assert named["dispatch"][2] == named["on_upload"][1]
    assert named["transcribe.task"][2] == named["dispatch"][1]
    assert named["notes"][2] == named["transcribe.task"][1]
    assert stored is not None
    assert stored.startswith(f"00-{named['on_upload'][0]}-{named['on_upload'][1]}-")
    attrs = {s.name: dict(s.attributes or {}) for s in spans.get_finished_spans()}
    assert all(a["job_id"] == "j-1" for a in attrs.values())


def test_a_bad_or_missing_traceparent_falls_back_or_starts_a_trace(
    spans: InMemorySpanExporter,
) -> None:
    assert is_traceparent(PARENT) and not is_traceparent("00-garbage") and not is_traceparent("")
    with stage("dispatch", parents=["00-garbage", PARENT]):
        pass
    with stage("notes", parents=["not-a-traceparent", None]):
        pass
    dispatch, notes = spans.get_finished_spans()
    assert _ids(dispatch)[0] == "a" * 32 and _ids(dispatch)[2] == "b" * 16
    assert _ids(notes)[0] != "a" * 32 and _ids(notes)[2] is None


def test_functions_fall_back_to_the_jobs_stored_traceparent() -> None:
    job = new_job("j-7").model_copy(update={"traceparent": PARENT})
    svc = cast(Services, _Svc(MemoryJobStore(job)))
    other = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    assert _job_trace({"traceparent": other}, "j-7", svc) == [other]
    assert _job_trace({}, "j-7", svc) == [PARENT]
    assert _job_trace({"traceparent": "junk"}, "j-7", svc) == [PARENT]
    assert _job_trace({}, "no-such-job", svc) == []


class _Svc:
    def __init__(self, jobs: MemoryJobStore) -> None:
        self.jobs = jobs


def test_logs_carry_the_current_spans_ids_and_bind_still_works(
    spans: InMemorySpanExporter,
) -> None:
    formatter = JsonFormatter(project="audionotes-test")

    def line() -> dict[str, Any]:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", (), None)
        return cast(dict[str, Any], json.loads(formatter.format(record)))

    with stage("dispatch", parents=[PARENT], job_id="j-2") as span:
        inside = line()
        ctx = span.get_span_context()
    assert inside["logging.googleapis.com/trace"] == "projects/audionotes-test/traces/" + "a" * 32
    assert inside["logging.googleapis.com/spanId"] == format(ctx.span_id, "016x")
    assert inside["logging.googleapis.com/spanId"] != "b" * 16  # the stage's span, not its parent
    assert inside["logging.googleapis.com/trace_sampled"] is True
    assert inside["job_id"] == "j-2"
    with bind(traceparent=PARENT):  # no span: the bound context, as before
        bound = line()
    assert bound["logging.googleapis.com/spanId"] == "b" * 16
    assert "logging.googleapis.com/trace" not in line()


def test_notes_chain_makes_one_span_per_llm_call(spans: InMemorySpanExporter) -> None:
    eng = engine(ScriptedProvider([ServerError("500", status=500)]))
    with stage("notes", parents=[PARENT], job_id="j-3"):
        eng.generate("j-3", [TEXT], NotesTemplate.MEETING)
    named = _by_name(spans)
    calls = named["llm.call"]
    assert len(calls) == 2  # the 500, then the answer
    notes_span_id = _ids(named["notes"][0])[1]
    assert all(_ids(c)[2] == notes_span_id for c in calls)
    failed, ok = (dict(c.attributes or {}) for c in calls)
    assert failed["llm.outcome"] != "ok" and calls[0].status.status_code.name == "ERROR"
    assert ok["llm.outcome"] == "ok" and ok["llm.prompt_tokens"] == 1000
    assert ok["llm.completion_tokens"] == 500 and ok["llm.provider"] == "openai"


@pytest.mark.slow
def test_transcribe_task_spans_chunk_and_merge(spans: InMemorySpanExporter, tmp_path: Path) -> None:
    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    job = new_job("j-4")
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    jobs.transition(job.job_id, JobState.DISPATCHED)
    audio = make_speech(tmp_path / "s.wav", "One two three four five six.")
    blobs.write_bytes(job.source.uri, audio.read_bytes(), content_type="audio/wav")
    worker = TranscribeServices(
        settings=s,
        jobs=jobs,
        blobs=blobs,
        publisher=cast(Publisher, RecordingPublisher()),
        audio=AudioCache(tmp_path / "cache", s, blobs),
    )
    plan = ChunkPlan.for_job(
        job_id=job.job_id,
        model="tiny.en",
        language=None,
        duration_s=3.0,
        chunk_seconds=1200,
        overlap_s=2,
    )
    with stage("transcribe.task", parents=[PARENT], job_id=job.job_id):
        outcome = run_task(TaskEnv(plan=plan, index=0, attempt=0, execution=None), worker)
    assert outcome == TaskOutcome.TRANSCRIBED
    named = _by_name(spans)
    task_id = _ids(named["transcribe.task"][0])[1]
    (chunk,) = named["transcribe.chunk"]
    (merge,) = named["transcribe.merge"]
    assert _ids(chunk)[2] == task_id and _ids(merge)[2] == task_id
    assert {_ids(chunk)[0], _ids(merge)[0]} == {"a" * 32}
    attrs = dict(chunk.attributes or {})
    assert attrs["chunk"] == 0 and cast(float, attrs["audio_s"]) > 0
    assert cast(float, attrs["rtf"]) > 0


def test_jsonl_exporter_writes_one_line_per_span(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(str(path))))
    tracer = provider.get_tracer("t")
    with (
        tracer.start_as_current_span("outer", context=parent_context(PARENT)),
        tracer.start_as_current_span("inner", attributes={"job_id": "j-5"}),
    ):
        pass
    inner, outer = (json.loads(line) for line in path.read_text().splitlines())
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["trace_id"] == outer["trace_id"] == "a" * 32
    assert inner["parent_span_id"] == outer["span_id"]
    assert outer["parent_span_id"] == "b" * 16
    assert inner["attributes"] == {"job_id": "j-5"} and inner["status"] == "UNSET"
    assert inner["start"] <= inner["end"]


def test_tracing_settings() -> None:
    assert Tracing().exporter == "none"
    with pytest.raises(ValidationError, match="jsonl_path"):
        Tracing(exporter="jsonl")
    assert Tracing(exporter="jsonl", jsonl_path="/tmp/s.jsonl").jsonl_path


def test_cloud_trace_exporter_uses_the_runtime_project_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On GCP the exporter takes the runtime's project and credentials (ADC); here both are
    stood in for, and the exporter is built, not called: Cloud Trace is out of reach."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

    from common.obs.tracing import _exporter

    monkeypatch.setattr(
        google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "my-project-1")
    )
    exporter = _exporter(Tracing(exporter="cloud_trace"))  # type: ignore[arg-type]
    assert isinstance(exporter, CloudTraceSpanExporter)
    assert exporter.project_id == "my-project-1"
