"""One trace per job across processes: a real gsutil upload goes through on_upload, dispatch,
the transcribe task and notes (each its own process), and every span they export (the local
stack's JSON lines file, common.obs.tracing.JsonLinesExporter) is in the one trace the job's
document names, parented hop by hop; the functions' log lines carry the same ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from common.domain.jobs import Job, JobState
from common.edge.auth import issue_hs256
from common.gcp.job_store import FirestoreJobStore
from tests.data.speech import make_speech
from tests.integration.helpers import gsutil_upload, wait_for
from tests.integration.test_api import AudioServer, _secret
from tests.integration.test_api import audio_server as audio_server  # the fixtures
from tests.integration.test_api import speech_bytes as speech_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = "We decided to move the launch to June. Sarah will update the budget by Friday."


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _finished(store: FirestoreJobStore, job_id: str) -> Job:
    def check() -> Job | None:
        try:
            job = store.get(job_id)
        except Exception:
            return None
        return job if job.state.is_final else None

    return wait_for(check, timeout_s=280, what="the job to finish")


def _trace_with(path: Path, trace_id: str, name: str) -> list[dict[str, Any]]:
    """The trace's spans once one called ``name`` is among them (spans end after the state
    they lead to is written)."""

    def check() -> list[dict[str, Any]] | None:
        spans = [x for x in _spans(path) if x["trace_id"] == trace_id]
        return spans if any(x["name"] == name for x in spans) else None

    return wait_for(check, timeout_s=30, what=f"the {name} span in {path}")


def _log_lines(path: Path, job_id: str) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("job_id") == job_id:
                out.append(entry)
    return out


def test_an_uploaded_job_is_one_trace_with_every_stage(
    clean_stack: Any, tmp_path: Path, unique: str
) -> None:
    s = clean_stack.local.settings
    spans_file = clean_stack.local.spans_file
    audio = make_speech(tmp_path / "meeting.wav", TEXT)
    job_id = gsutil_upload(s, audio, f"{unique}/meeting.wav")
    job = _finished(FirestoreJobStore(s.project, s.collections.jobs), job_id)
    assert job.state is JobState.COMPLETED, job.error
    assert job.traceparent is not None
    _, trace_id, root_span_id, _ = job.traceparent.split("-")

    trace = _trace_with(spans_file, trace_id, "notes")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in trace:
        by_name.setdefault(span["name"], []).append(span)
    assert {
        "on_upload",
        "dispatch",
        "transcribe.task",
        "transcribe.chunk",
        "transcribe.merge",
        "notes",
        "llm.call",
    } <= set(by_name), sorted(by_name)

    # One trace per job: every span that names the job is in the job's trace (an on_upload
    # of a duplicate event may begin its own, and finds the job there already).
    for span in _spans(spans_file):
        if span["attributes"].get("job_id") == job_id and span["trace_id"] != trace_id:
            assert span["name"] == "on_upload" and span["attributes"]["outcome"] != "queued"

    # Parented hop by hop, each hop in its own process.
    (upload,) = [x for x in by_name["on_upload"] if x["attributes"].get("outcome") == "queued"]
    assert upload["span_id"] == root_span_id and upload["parent_span_id"] is None
    assert upload["service"] == "on_upload" and upload["attributes"]["job_id"] == job_id
    dispatches = {x["span_id"]: x for x in by_name["dispatch"]}
    assert all(x["parent_span_id"] == root_span_id for x in dispatches.values())
    # The chunks go to the work queue; each chunk message carries the dispatch's span.
    assert any(x["attributes"].get("outcome") == "queued" for x in dispatches.values())
    tasks = {x["span_id"]: x for x in by_name["transcribe.task"]}
    assert all(x["parent_span_id"] in dispatches for x in tasks.values())
    assert all(x["service"] == "transcribe" for x in tasks.values())
    for child in by_name["transcribe.chunk"] + by_name["transcribe.merge"]:
        assert child["parent_span_id"] in tasks
    merges = {x["span_id"] for x in by_name["transcribe.merge"]}
    notes = {x["span_id"]: x for x in by_name["notes"]}
    assert all(x["parent_span_id"] in merges for x in notes.values())
    assert any(x["attributes"].get("outcome") == "completed" for x in notes.values())
    assert all(x["parent_span_id"] in notes for x in by_name["llm.call"])
    assert all(x["attributes"]["llm.outcome"] == "ok" for x in by_name["llm.call"])

    # The dispatch function's log lines for the job carry its span's ids.
    log = clean_stack.procs.log_file("function-dispatch")
    launched = [x for x in _log_lines(log, job_id) if x.get("event") == "chunks_queued"]
    assert launched, "no 'chunks_queued' log line for the job"
    for line in launched:
        assert line["logging.googleapis.com/trace"] == f"projects/{s.project}/traces/{trace_id}"
        assert line["logging.googleapis.com/spanId"] in dispatches


def test_a_job_made_through_the_api_continues_the_callers_trace(
    clean_stack: Any, audio_server: AudioServer, unique: str
) -> None:
    s = clean_stack.local.settings
    client_trace, client_span = unique.ljust(32, "0"), "c" * 16
    response = requests.post(
        clean_stack.local.function_url("api") + "/v1/jobs",
        json={"audio_url": f"{audio_server.url}/speech.wav"},
        headers={
            "Authorization": f"Bearer {issue_hs256(_secret(clean_stack), f'tracer-{unique}')}",
            "traceparent": f"00-{client_trace}-{client_span}-01",
        },
        timeout=30,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = _finished(FirestoreJobStore(s.project, s.collections.jobs), job_id)
    assert job.state is JobState.COMPLETED, job.error
    assert job.traceparent is not None
    _, trace_id, root_span_id, _ = job.traceparent.split("-")
    assert trace_id == client_trace

    trace = _trace_with(clean_stack.local.spans_file, trace_id, "notes")
    (api,) = [x for x in trace if x["name"] == "api create_job"]
    assert api["span_id"] == root_span_id and api["parent_span_id"] == client_span
    assert api["service"] == "api" and api["kind"] == "SERVER"
    assert api["attributes"]["job_id"] == job_id
    assert api["attributes"]["http.response.status_code"] == 202
    dispatches = {x["span_id"] for x in trace if x["name"] == "dispatch"}
    assert dispatches and all(
        x["parent_span_id"] == root_span_id for x in trace if x["name"] == "dispatch"
    )
    tasks = [x for x in trace if x["name"] == "transcribe.task"]
    # A task is the child of the dispatch that launched its execution; a short job that a
    # batch lane already open took on (launched for another job) hangs from its own root.
    assert tasks and all(
        x["parent_span_id"] in dispatches
        or (x["attributes"].get("lane") and x["parent_span_id"] == root_span_id)
        for x in tasks
    )
    assert {"transcribe.merge", "notes", "llm.call"} <= {x["name"] for x in trace}
