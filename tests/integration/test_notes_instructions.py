"""``notes_instructions`` through the local stack: an upload's ``x-goog-meta-notes-instructions``
reaches the job and the prompt the model provider is sent (the local OpenAI-compatible server
logs what each request carried), and a bad value is refused on both paths before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.config.settings import Settings
from common.domain.jobs import MAX_NOTES_INSTRUCTIONS_CHARS, JobState
from common.edge.auth import issue_hs256
from common.gcp.job_store import FirestoreJobStore
from tests.data.speech import make_speech
from tests.integration.helpers import wait_for
from tests.integration.test_notes_chain import LocalLlm
from tests.integration.test_transcript_options import _state, _upload

pytestmark = pytest.mark.integration

ASK = "List every number mentioned."


@pytest.fixture
def llm(clean_stack: Any) -> LocalLlm:
    server = LocalLlm(clean_stack.local.url(clean_stack.local.ports.openai))
    server.reset()
    return server


def test_an_uploads_instructions_reach_the_job_and_the_providers_prompt(
    settings: Settings, store: FirestoreJobStore, llm: LocalLlm, unique: str, tmp_path: Path
) -> None:
    speech = make_speech(tmp_path / "plan.wav", "Anna will send the budget by Friday.")
    job_id = _upload(
        settings, speech, f"{unique}/plan.wav", f"x-goog-meta-notes-instructions: {ASK} "
    )
    job = wait_for(
        lambda: _state(store, job_id, (JobState.COMPLETED, JobState.FAILED)),
        timeout_s=300,
        what="the notes",
    )
    assert job.state is JobState.COMPLETED, job.error
    assert job.options.notes_instructions == ASK
    answered = [r for r in llm.requests() if r["status"] == 200]
    assert answered and [r["instructions"] for r in answered] == [ASK] * len(answered)


def test_a_bad_value_fails_the_upload_and_the_api_refuses_it_with_422(
    clean_stack: Any, settings: Settings, store: FirestoreJobStore, unique: str, tmp_path: Path
) -> None:
    import requests

    speech = make_speech(tmp_path / "short.wav", "One two three.")
    too_long = "x" * (MAX_NOTES_INSTRUCTIONS_CHARS + 1)
    job_id = _upload(
        settings, speech, f"{unique}/refused.wav", f"x-goog-meta-notes-instructions:{too_long}"
    )
    job = wait_for(lambda: _state(store, job_id, (JobState.FAILED,)), what="the refusal")
    assert job.error is not None and job.error.code == "bad_notes_instructions"
    assert job.error.message.startswith("x-goog-meta-notes-instructions: ")
    assert job.execution is None

    token = issue_hs256(settings.auth.jwt_secret.get_secret_value(), f"instr-{unique}")
    response = requests.post(
        clean_stack.local.function_url("api") + "/v1/jobs",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=json.dumps({"audio_url": "https://127.0.0.1:9/a.wav", "notes_instructions": too_long}),
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bad_notes_instructions", response.text
