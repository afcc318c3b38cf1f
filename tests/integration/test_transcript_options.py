"""Transcript options through the local stack, on both submission paths: a vocabulary and a
translation reach faster-whisper and the job, and what a model cannot do is refused up front
(a FAILED upload or a 422), before any execution is launched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.config.settings import Settings
from common.domain.jobs import Job, JobState
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import issue_hs256
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from tests.data.speech import make_speech
from tests.integration.helpers import inbox_job_id, wait_for

pytestmark = pytest.mark.integration

DONE = (JobState.TRANSCRIBED, JobState.SUMMARIZING, JobState.COMPLETED)
SCRIPT = str(Path(sys.executable).with_name("audionotes"))
GERMAN = (
    "Guten Morgen. Heute besprechen wir den Plan für die neue Version. "
    "Maria schreibt den Bericht bis Freitag."
)


@pytest.fixture
def cli(clean_stack: Any, unique: str) -> Any:
    secret = clean_stack.local.settings.auth.jwt_secret.get_secret_value()
    env = {
        **os.environ,
        **clean_stack.local.environment(),
        "AUDIONOTES_TOKEN": issue_hs256(secret, f"opts-{unique}"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=300)

    return run


def _upload(settings: Settings, path: Path, name: str, *headers: str) -> str:
    flags = [arg for header in headers for arg in ("-h", header)]
    subprocess.run(["gsutil", "-q", *flags, "cp", str(path), settings.inbox_uri + name], check=True)
    return inbox_job_id(settings, name)


def _state(store: FirestoreJobStore, job_id: str, states: tuple[JobState, ...]) -> Job | None:
    try:
        job = store.get(job_id)
    except Exception:  # not written yet
        return None
    return job if job.state in states else None


def _transcript(settings: Settings, job_id: str) -> Transcript:
    raw = GcsBlobStore(settings.project).read_bytes(result_uri(settings, job_id, "transcript.json"))
    return Transcript.model_validate_json(raw)


def test_vocabulary_on_an_upload_reaches_the_decoder_and_the_job(
    settings: Settings, store: FirestoreJobStore, unique: str, tmp_path: Path
) -> None:
    speech = make_speech(tmp_path / "names.wav", "Priya will move the service to Kubernetes.")
    job_id = _upload(
        settings, speech, f"{unique}/names.wav", "x-goog-meta-vocabulary:Priya, Kubernetes"
    )
    job = wait_for(lambda: _state(store, job_id, DONE), timeout_s=240, what="the transcript")
    assert job.options.vocabulary == ["Priya", "Kubernetes"]
    transcript = _transcript(settings, job_id)
    assert transcript.options["hotwords"] == "Priya, Kubernetes"
    assert "Kubernetes" in transcript.text
    summary = job.transcription
    assert summary is not None and summary.language == "en" and summary.task == "transcribe"
    assert summary.quality.words >= 6 and 0 <= summary.quality.low_confidence_share <= 1


def test_translation_through_the_cli_gives_english_and_the_detected_language(
    settings: Settings, store: FirestoreJobStore, cli: Any, tmp_path: Path
) -> None:
    german = tmp_path / "plan.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(german), GERMAN], check=True)
    submitted = cli("submit", str(german), "--model", "base", "--task", "translate")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    job = wait_for(lambda: _state(store, job_id, DONE), timeout_s=240, what="the translation")
    assert job.transcription is not None and job.transcription.task == "translate"
    assert job.transcription.language == "de"
    assert (job.transcription.language_probability or 0) > 0.5
    transcript = _transcript(settings, job_id)
    assert transcript.task == "translate" and transcript.options["task"] == "translate"
    words = set(transcript.text.lower().replace(".", " ").replace(",", " ").split())
    assert {"good", "morning"} <= words and "morgen" not in words, transcript.text


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (("x-goog-meta-task:translate", "x-goog-meta-model:tiny.en"), "model_cannot_translate"),
        (("x-goog-meta-model:large-v3",), "model_not_installed"),
        (("x-goog-meta-model:whisper-9",), "unknown_model"),
        (("x-goog-meta-vocabulary:" + ",".join(f"term{i}" for i in range(101)),), "bad_options"),
    ],
)
def test_what_a_model_cannot_do_fails_the_upload_before_any_launch(
    settings: Settings,
    store: FirestoreJobStore,
    unique: str,
    tmp_path: Path,
    headers: tuple[str, ...],
    code: str,
) -> None:
    speech = make_speech(tmp_path / "short.wav", "One two three.")
    job_id = _upload(settings, speech, f"{unique}/refused.wav", *headers)
    job = wait_for(lambda: _state(store, job_id, (JobState.FAILED,)), what="the refusal")
    assert job.error is not None and job.error.code == code
    assert job.execution is None


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"model": "tiny.en", "task": "translate"}, "model_cannot_translate"),
        ({"model": "large-v3-turbo"}, "model_not_installed"),
        ({"vocabulary": ["x" * 51]}, "invalid_value"),
        ({"vocabulary": ["line\nbreak"]}, "invalid_value"),
        ({"vocabulary": [f"t{i}" for i in range(101)]}, "invalid_value"),
    ],
)
def test_the_api_refuses_the_same_with_422(
    clean_stack: Any, unique: str, options: dict[str, object], code: str
) -> None:
    import requests

    s = clean_stack.local.settings
    token = issue_hs256(s.auth.jwt_secret.get_secret_value(), f"opts-{unique}")
    response = requests.post(
        clean_stack.local.function_url("api") + "/v1/jobs",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data=json.dumps({"audio_url": "https://127.0.0.1:9/a.wav", **options}),
        timeout=30,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code, response.text


def test_the_running_api_lists_the_models_this_stack_has(clean_stack: Any, unique: str) -> None:
    import requests

    s = clean_stack.local.settings
    token = issue_hs256(s.auth.jwt_secret.get_secret_value(), f"opts-{unique}")
    listed = requests.get(
        clean_stack.local.function_url("api") + "/v1/models",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()["models"]
    installed = {m["name"]: m["default_for"] for m in listed if m["installed"]}
    assert installed == {"tiny.en": ["cpu", "gpu"], "base": []}  # the suite's stack: tiny.en
