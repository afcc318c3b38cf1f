"""The logging contract: every event and jsonPayload field that the Terraform log-based
metrics and alerts (terraform/modules/monitoring) read is one the code emits (common.obs.metrics),
and the code's metric lines really carry the registry's fields."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import hcl2
import pytest

from common.domain.jobs import JobError, JobState, NotesTemplate, advance
from common.domain.ports import Publisher
from common.domain.transcription_plan import ChunkPlan
from common.gcp.job_store import _log_state_change
from common.obs import metrics
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices, run_task
from tests.data.speech import make_speech
from tests.fakes import MemoryBlobStore, MemoryJobStore, RecordingPublisher, new_job, settings
from tests.unit.test_llm_resilience import TEXT, ScriptedProvider, engine

MONITORING = Path(__file__).resolve().parents[2] / "terraform" / "modules" / "monitoring"
STATES = {s.value for s in JobState}
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


def _load(name: str) -> dict[str, Any]:
    with (MONITORING / name).open() as f:
        return cast(dict[str, Any], hcl2.load(f))


def _variable(name: str) -> dict[str, Any]:
    for block in _load("variables.tf")["variable"]:
        if name in block:
            return cast(dict[str, Any], block[name])
    raise AssertionError(f"variables.tf has no variable {name}")


def _log_events() -> dict[str, str]:
    """var.log_events: its keys and their default event names (``optional(string, "x")``)."""
    found = re.findall(
        r'"(\w+)":\s*"\$\{optional\(string,\s*"([^"]+)"\)\}"', _variable("log_events")["type"]
    )
    assert found, "var.log_events has no optional(string, ...) members"
    return dict(found)


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _resolve(text: str, events: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        assert key in events, f"var.log_events.{key} is not declared"
        return events[key]

    return re.sub(r"\$\{var\.log_events\.(\w+)\}", sub, text)


def _local(name: str) -> Any:
    for block in _load("main.tf")["locals"]:
        if name in block:
            return block[name]
    raise AssertionError(f"main.tf has no local {name}")


def _for_each_local(kind: str) -> dict[str, Any]:
    """The entries of the one resource of ``kind``, which is for_each over a local map."""
    resources = {
        name: body
        for block in _load("main.tf")["resource"]
        for name, body in block.get(kind, {}).items()
    }
    assert list(resources) == ["this"], f"one {kind}, for_each over a local: {list(resources)}"
    source = re.fullmatch(r"\$\{local\.(\w+)\}", resources["this"]["for_each"])
    assert source, f"{kind}.this is not for_each over a local"
    entries = _local(source.group(1))
    assert isinstance(entries, dict) and entries, f"local.{source.group(1)} is not a map"
    return entries


def _log_metrics() -> dict[str, dict[str, Any]]:
    return _for_each_local("google_logging_metric")


def test_every_log_based_metric_reads_an_event_and_fields_the_code_emits() -> None:
    events = _log_events()
    for name, metric in _log_metrics().items():
        # A distribution needs buckets, a counter (no value extracted) must have none.
        assert (metric["value_extractor"] is None) == (metric["buckets"] is None), name
        texts = [
            _resolve(t, events)
            for t in [
                metric["filter"],
                metric["value_extractor"] or "",
                *(label["extractor"] for label in metric["labels"].values()),
            ]
        ]
        pinned = re.findall(r'jsonPayload\.event\s*=\s*"([^"]+)"', texts[0])
        assert len(pinned) == 1, f"{name}: the filter must pin exactly one jsonPayload.event"
        event = pinned[0]
        assert event in metrics.EVENTS, f"{name}: no code emits event {event!r}"
        used = {f for t in texts for f in re.findall(r"jsonPayload\.(\w+)", t)} - {"event"}
        unknown = used - metrics.EVENTS[event]
        assert not unknown, f"{name}: event {event!r} lines have no field(s) {sorted(unknown)}"
        for state in re.findall(r'jsonPayload\.state\s*=\s*"([^"]+)"', texts[0]):
            assert state in STATES, f"{name}: {state} is not a job state"


def test_the_event_names_terraform_defaults_to_are_the_codes() -> None:
    assert set(_log_events().values()) <= set(metrics.EVENTS)


def test_jsonpayload_is_read_only_by_log_based_metrics() -> None:
    """Elsewhere (alerts, dashboards) no event could be attributed to the field."""
    doc = _load("main.tf")
    elsewhere = {
        f"local.{name}": value
        for block in doc["locals"]
        for name, value in block.items()
        if name != "log_metrics"
    }
    elsewhere |= {kind: body for block in doc["resource"] for kind, body in block.items()}
    assert "local.alerts" in elsewhere and "local.tiles" in elsewhere, sorted(elsewhere)
    for where, node in elsewhere.items():
        for text in _strings(node):
            assert "jsonPayload." not in text, f"{where} reads {text!r}"


def test_alerts_and_dashboards_name_only_real_job_states() -> None:
    named: set[str] = set()
    for text in _strings(_load("main.tf")):
        named.update(re.findall(r'metric\.label\.state\s*=\s*"(\w+)"', text))
        for group in re.findall(r"metric\.label\.state\s*=\s*one_of\(([^)]*)\)", text):
            named.update(re.findall(r'"(\w+)"', group))
    assert named and named <= STATES, named - STATES
    sla = re.search(
        r'"stage_latency_s":\s*"\$\{optional\(map\(number\),\s*\{(.*?)\}\)\}"',
        _variable("thresholds")["type"],
    )
    assert sla is not None
    assert set(re.findall(r'"(\w+)":', sla.group(1))) <= STATES


def test_fields_refuses_a_field_the_registry_does_not_name() -> None:
    assert metrics.fields(metrics.LLM_USAGE, cost_usd=0.1) == {
        "event": "llm_usage",
        "cost_usd": 0.1,
    }
    with pytest.raises(ValueError, match="costs"):
        metrics.fields(metrics.LLM_USAGE, costs=0.1)
    with pytest.raises(KeyError):
        metrics.fields("no_such_event")


# The code's lines ----------------------------------------------------------------------------


def _lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    out = []
    for record in caplog.records:
        if getattr(record, "event", None) != event:
            continue
        extra = {
            k: v
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_") and v is not None
        }
        extra.pop("event")
        assert set(extra) <= metrics.EVENTS[event], sorted(set(extra) - metrics.EVENTS[event])
        out.append(extra)
    return out


def test_job_state_lines_carry_state_duration_and_failure_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    queued = new_job("j-1")
    dispatched, _ = advance(
        queued, JobState.DISPATCHED, now=queued.created_at + timedelta(seconds=1)
    )
    failed, _ = advance(
        dispatched,
        JobState.FAILED,
        now=dispatched.updated_at + timedelta(seconds=2),
        error=JobError(code="too_long", message="long"),
    )
    _log_state_change(None, queued)
    _log_state_change(queued, dispatched)
    _log_state_change(dispatched, failed)
    created, moved, failure = _lines(caplog, metrics.JOB_STATE)
    assert created["state"] == "QUEUED" and "duration_s" not in created
    assert moved["state"] == "DISPATCHED" and moved["previous_state"] == "QUEUED"
    assert failure["state"] == "FAILED" and failure["code"] == "too_long"
    assert failure["duration_s"] == pytest.approx(2.0)


def test_llm_usage_lines_carry_tokens_and_cost(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    eng = engine(ScriptedProvider([]))
    eng.generate("j-2", [TEXT], NotesTemplate.MEETING)
    (line,) = _lines(caplog, metrics.LLM_USAGE)
    assert (line["prompt_tokens"], line["completion_tokens"], line["tokens"]) == (1000, 500, 1500)
    assert line["cost_usd"] == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert line["provider"] == "openai" and line["model"] == "gpt-4o-mini-2024-07-18"


@pytest.mark.slow
def test_transcribe_lines_carry_audio_seconds_and_real_time_factor(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    job = new_job("j-3")
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
    env = TaskEnv(plan=plan, index=0, attempt=0, execution=None)
    assert run_task(env, worker) == TaskOutcome.TRANSCRIBED
    (chunk,) = _lines(caplog, metrics.CHUNK_TRANSCRIBED)
    assert chunk["model"] == "tiny.en" and chunk["chunk"] == 0
    assert chunk["audio_s"] > 1.0 and chunk["duration_s"] > 0
    assert chunk["rtf"] == pytest.approx(chunk["duration_s"] / chunk["audio_s"], rel=0.01)
    (done,) = _lines(caplog, metrics.TRANSCRIBED)
    assert done == {"audio_s": 3.0, "model": "tiny.en", "chunks": 1, "cache_hit": False}

    # The same audio again is a cache hit: its seconds are counted, and marked so.
    caplog.clear()
    again = new_job("j-4")
    jobs.jobs[again.job_id] = again
    jobs.transition(again.job_id, JobState.DISPATCHED)
    replay = TaskEnv(
        plan=plan.model_copy(update={"job_id": "j-4"}), index=0, attempt=0, execution=None
    )
    assert run_task(replay, worker) == TaskOutcome.CACHE_HIT
    assert not _lines(caplog, metrics.CHUNK_TRANSCRIBED)
    (hit,) = _lines(caplog, metrics.TRANSCRIBED)
    assert hit["cache_hit"] is True and hit["audio_s"] == 3.0


# A filter inside a `for` expression, which hcl2 leaves as text: up to the next attribute.
_FILTER_IN_TEXT = re.compile(r'"(?:denominator_)?filter": "(.*?)", "(?=\w+": )')


def _filters(node: object) -> Iterator[str]:
    """Every ``filter`` / ``denominator_filter`` value under ``node``."""
    if isinstance(node, str):
        yield from _FILTER_IN_TEXT.findall(node)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ("filter", "denominator_filter") and isinstance(value, str):
                yield value
            else:
                yield from _filters(value)
    elif isinstance(node, list):
        for value in node:
            yield from _filters(value)


def test_every_alert_filter_restricts_the_resource_type() -> None:
    """Cloud Monitoring refuses an alert condition whose filter names no resource.type (a 400
    at apply time that validate and the mock tests cannot see)."""
    doc = _load("main.tf")
    strings = {
        name: value
        for block in doc["locals"]
        for name, value in block.items()
        if isinstance(value, str)
    }
    filters = list(_filters(_for_each_local("google_monitoring_alert_policy")))
    assert len(filters) >= 4, filters  # failure rate (2), dead letters, stage latency
    for text in filters:
        resolved = text
        for _ in range(5):  # locals built from locals
            resolved = re.sub(
                r"\$\{local\.(\w+)\}", lambda m: strings.get(m.group(1), ""), resolved
            )
        assert "resource.type" in resolved, text
