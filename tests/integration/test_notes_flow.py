"""The ``notes`` function in the running stack: a TRANSCRIBED job, its transcript.json in the
results bucket and a TranscriptReady message published to Pub/Sub, pushed to the real
functions-framework process, which talks to the local OpenAI-compatible server."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from common.config.settings import Settings
from common.domain.errors import InvalidInput
from common.domain.jobs import Job, JobOptions, JobSource, JobState, NotesTemplate
from common.domain.messages import TranscriptReady
from common.domain.notes import NotesDocument, render_markdown
from common.domain.transcripts import Transcript, result_uri
from common.edge.ssrf import UrlPolicy, check_with_policy
from common.edge.webhooks import WebhookReceipt
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from common.gcp.pubsub import PubSubPublisher
from tests.conftest import DATA
from tests.integration.helpers import wait_for
from tests.integration.test_notes_chain import LocalLlm

pytestmark = pytest.mark.integration


class Harness:
    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.s: Settings = stack.local.settings
        self.jobs = FirestoreJobStore(self.s.project, self.s.collections.jobs)
        self.blobs = GcsBlobStore(self.s.project)
        self.publisher = PubSubPublisher(self.s.project)
        self.llm = LocalLlm(stack.local.url(stack.local.ports.openai))
        self.llm.reset()

    def transcribed_job(
        self,
        job_id: str,
        transcript: bytes | None,
        *,
        template: NotesTemplate = NotesTemplate.MEETING,
        webhook_url: str | None = None,
        owner: str = "tests",
    ) -> Job:
        job = Job.new(
            job_id=job_id,
            owner=owner,
            source=JobSource(uri=f"gs://{self.s.buckets.inbox}/uploads/{job_id}.wav"),
            options=JobOptions(notes_template=template, webhook_url=webhook_url),
            retention_days=1,
        )
        self.jobs.create(job)
        if transcript is not None:
            self.blobs.write_bytes(
                result_uri(self.s, job_id, "transcript.json"),
                transcript,
                content_type="application/json",
            )
        return self.jobs.transition(job_id, JobState.TRANSCRIBED).job

    def publish(self, job_id: str) -> str:
        return self.publisher.publish(
            self.s.topics.transcripts_ready, TranscriptReady(job_id=job_id)
        )

    def final(self, job_id: str) -> Job:
        return wait_for(
            lambda: (j := self.jobs.get(job_id)).state.is_final and j,
            timeout_s=60,
            what=f"job {job_id} to finish",
        )

    def notes(self, job_id: str) -> NotesDocument:
        return NotesDocument.model_validate_json(
            self.blobs.read_bytes(result_uri(self.s, job_id, "notes.json"))
        )

    def log_lines(self, needle: str) -> int:
        log = Path(self.stack.procs.log_file("function-notes"))
        return sum(needle in line for line in log.read_text(errors="replace").splitlines())


@pytest.fixture
def h(clean_stack) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(clean_stack)


def real_transcript(job_id: str) -> bytes:
    t = Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())
    return t.model_copy(update={"job_id": job_id}).model_dump_json().encode()


def test_transcript_ready_makes_both_notes_files_and_completes_the_job(
    h: Harness, unique: str
) -> None:
    job_id = f"n-{unique}"
    h.transcribed_job(job_id, real_transcript(job_id), template=NotesTemplate.MEETING)
    h.publish(job_id)
    job = h.final(job_id)

    assert job.state is JobState.COMPLETED, job.error
    assert JobState.SUMMARIZING in job.state_times
    assert job.outputs == {
        "notes.json": result_uri(h.s, job_id, "notes.json"),
        "notes.md": result_uri(h.s, job_id, "notes.md"),
    }
    doc = h.notes(job_id)
    assert (doc.provenance.provider, doc.provenance.model) == ("openai", "local-extractive")
    assert doc.template is NotesTemplate.MEETING and doc.language == "en"
    assert any(a.owner == "David" and a.due == "Friday" for a in doc.notes.action_items)
    md = h.blobs.read_bytes(result_uri(h.s, job_id, "notes.md")).decode()
    assert md == render_markdown(doc)
    requests = h.llm.requests()
    assert [r["status"] for r in requests] == [200] and doc.provenance.calls == 1
    assert job.cost_usd == pytest.approx(doc.provenance.cost_usd) and job.cost_usd > 0
    assert job.usage["llm_calls"] == 1
    assert job.usage["llm_prompt_tokens"] == requests[0]["usage"]["prompt_tokens"]


def test_three_deliveries_make_one_result(h: Harness, unique: str) -> None:
    job_id = f"d-{unique}"
    h.transcribed_job(job_id, real_transcript(job_id))
    already = h.log_lines("notes: already_completed")
    h.publish(job_id)
    job = h.final(job_id)
    generation = h.blobs.stat(result_uri(h.s, job_id, "notes.json"))
    assert generation is not None
    h.publish(job_id)
    h.publish(job_id)
    wait_for(
        lambda: h.log_lines("notes: already_completed") >= already + 2,
        what="both duplicates to be handled",
    )
    again = h.jobs.get(job_id)
    assert again.state is JobState.COMPLETED
    assert again.state_times == job.state_times and again.cost_usd == job.cost_usd
    assert again.usage == job.usage
    stat = h.blobs.stat(result_uri(h.s, job_id, "notes.json"))
    assert stat is not None and stat.generation == generation.generation
    assert len(h.llm.requests()) == 1  # the duplicates cost nothing


def test_rate_limited_key_rotates_inside_the_function(h: Harness, unique: str) -> None:
    job_id = f"r-{unique}"
    h.llm.faults({"status": 429, "retry_after": 1})  # whichever key the function uses now
    h.transcribed_job(job_id, real_transcript(job_id), template=NotesTemplate.DIARY)
    h.publish(job_id)
    job = h.final(job_id)
    doc = h.notes(job_id)
    assert job.state is JobState.COMPLETED
    first, second = doc.provenance.attempts
    assert (first.outcome, second.outcome) == ("rate_limited", "ok")
    assert {first.key, second.key} == {0, 1}  # rotated to the other key
    assert first.waited_s == 0  # no wait for the first key's Retry-After
    statuses = [(r["key"], r["status"]) for r in h.llm.requests()]
    keys = ["local-key-1", "local-key-2"]
    assert statuses == [(keys[first.key], 429), (keys[second.key], 200)]
    assert doc.notes.diary_entry.startswith("Today I recorded a note to myself")


@pytest.mark.parametrize(
    ("transcript", "code"),
    [
        (None, "transcript_missing"),
        (b'{"job_id": "x", "segments": "not a list"}', "bad_transcript"),
        (
            Transcript(job_id="x", language="en", duration_s=3, model="m", segments=[])
            .model_dump_json()
            .encode(),
            "empty_transcript",
        ),
    ],
)
def test_bad_transcripts_fail_the_job_with_a_clear_error(
    h: Harness, unique: str, transcript: bytes | None, code: str
) -> None:
    job_id = f"b-{unique}"
    h.transcribed_job(job_id, transcript)
    h.publish(job_id)
    job = h.final(job_id)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == code
    assert "transcript.json" in job.error.message
    assert h.llm.requests() == []


def test_unusable_messages_are_acknowledged_not_retried(h: Harness, unique: str) -> None:
    url = h.stack.local.function_url("notes")
    for data in (b"not json", b'{"no_job_id": 1}'):
        body = {
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": f"m-{unique}",
                "attributes": {},
            },
            "subscription": f"projects/{h.s.project}/subscriptions/notes",
        }
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200  # acknowledged: a redelivery would not help
    # This test's own lines: the log file outlives one run.
    assert h.log_lines(f"unusable transcript event m-{unique}") == 2


def test_webhook_goes_through_the_ssrf_guard(h: Harness, unique: str, receiver: Any) -> None:
    rec = receiver(204)
    job_id = f"w-{unique}"
    h.transcribed_job(job_id, real_transcript(job_id), webhook_url=rec.url)
    h.publish(job_id)
    job = h.final(job_id)
    assert job.state is JobState.COMPLETED
    receipt = WebhookReceipt.model_validate_json(
        wait_for(
            lambda: (
                h.blobs.stat(result_uri(h.s, job_id, "webhook.json"))
                and h.blobs.read_bytes(result_uri(h.s, job_id, "webhook.json"))
            ),
            what="the webhook receipt",
        )
    )
    try:
        check_with_policy(rec.url, UrlPolicy.from_settings(h.s))
        allowed = True
    except InvalidInput:
        allowed = False
    if allowed:  # a stack configured to allow its own loopback receivers
        assert receipt.delivered and rec.count() == 1
        assert rec.bodies[0]["job_id"] == job_id
    else:  # production rules: http://127.0.0.1 is refused and nothing is sent
        assert not receipt.delivered and receipt.error is not None
        assert receipt.error.startswith(("url_scheme_not_allowed", "url_address_not_allowed"))
        assert rec.count() == 0


def test_short_transcripts_of_one_owner_share_one_request(h: Harness, unique: str) -> None:
    """Short TRANSCRIBED jobs of one owner: the first delivery claims the others, makes all
    their notes in one request and splits its cost; their own deliveries then charge nothing.
    Another owner's job, though short and waiting too, is not taken into the request."""
    ids = [f"b{i}-{unique}" for i in range(3)]
    for job_id in ids:
        h.transcribed_job(job_id, real_transcript(job_id))
    stranger = f"other-{unique}"
    h.transcribed_job(stranger, real_transcript(stranger), owner="someone-else")

    h.publish(ids[0])
    jobs = [h.final(job_id) for job_id in ids]

    assert [r["task"] for r in h.llm.requests()] == ["batch"]
    docs = [h.notes(job_id) for job_id in ids]
    for job, doc in zip(jobs, docs, strict=True):
        assert job.state is JobState.COMPLETED and job.cost_usd > 0
        assert doc.provenance.provider == "openai" and doc.notes.summary
        assert job.outputs["notes.md"].endswith("notes.md")
    batches = [j.coordination.notes_batch for j in jobs[1:]]
    assert [b.holder if b else None for b in batches] == [ids[0], ids[0]]
    assert h.jobs.get(stranger).state is JobState.TRANSCRIBED

    before = h.log_lines('"event": "duplicate"')
    for job_id in ids[1:]:
        h.publish(job_id)
    wait_for(
        lambda: h.log_lines('"event": "duplicate"') >= before + 2,
        timeout_s=30,
        what="the claimed jobs' own deliveries",
    )
    assert [r["task"] for r in h.llm.requests()] == ["batch"]  # nothing made or paid twice
    assert [h.jobs.get(j).cost_usd for j in ids] == [j.cost_usd for j in jobs]
