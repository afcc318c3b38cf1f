"""The ``audionotes`` console script against the local stack, configured only by environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.domain.jobs import Job, JobError, JobSource, JobState, api_job_id
from common.domain.transcripts import result_uri
from common.edge.auth import issue_hs256
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("audionotes"))


@pytest.fixture
def cli(clean_stack: Any, unique: str) -> Any:
    secret = clean_stack.local.settings.auth.jwt_secret.get_secret_value()
    env = {
        **os.environ,
        **clean_stack.local.environment(),
        "AUDIONOTES_TOKEN": issue_hs256(secret, f"cli-{unique}"),
    }

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    run.owner = f"cli-{unique}"  # type: ignore[attr-defined]
    return run


def test_submit_status_list_get_notes_wait(cli: Any, clean_stack: Any, tmp_path: Path) -> None:
    speech = tmp_path / "standup.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "Standup at ten."], check=True)
    s = clean_stack.local.settings
    store = FirestoreJobStore(s.project, s.collections.jobs)
    blobs = GcsBlobStore(s.project)
    owner = cli.owner

    signed = cli("submit", str(speech), "--priority", "high", "--idempotency-key", "cli-1")
    job_id = signed.stdout.strip()
    assert cli("submit", str(speech), "--idempotency-key", "cli-1", ok=False).returncode == 1
    via_gcs = cli("submit", str(speech), "--via", "gcs").stdout.strip()
    status = json.loads(cli("status", job_id).stdout)
    assert (status["job_id"], status["options"]["priority"]) == (job_id, "high")
    assert status["source"]["uri"].startswith(f"gs://{s.buckets.inbox}/{s.auth.api_upload_prefix}")
    listed = cli("list").stdout
    assert job_id in listed and via_gcs in listed
    first = cli("list", "--limit", "1")
    token = first.stderr.split("--page-token ", 1)[1].split(")")[0]
    second = cli("list", "--limit", "1", "--page-token", token)
    assert {first.stdout.split()[0], second.stdout.split()[0]} == {job_id, via_gcs}

    # A job whose results exist, made as the pipeline would leave it (the local pipeline's own
    # pace is not this test's business), for get / notes / wait.
    done = Job.new(
        job_id=api_job_id(owner, None),
        owner=owner,
        source=JobSource(uri="gs://b/x.wav"),
        retention_days=1,
    )
    store.create(done)
    for state in (JobState.DISPATCHED, JobState.TRANSCRIBED, JobState.SUMMARIZING):
        store.transition(done.job_id, state)
    blobs.write_bytes(
        result_uri(s, done.job_id, "transcript.srt"), b"1\nStandup\n", content_type="x/y"
    )
    blobs.write_bytes(result_uri(s, done.job_id, "notes.md"), b"# Standup\n", content_type="x/y")
    store.transition(done.job_id, JobState.COMPLETED)
    waited = cli("wait", done.job_id)
    assert "100.0% COMPLETED" in waited.stderr
    assert cli("get", done.job_id, "--format", "srt").stdout == "1\nStandup\n"
    out = tmp_path / "notes.md"
    cli("notes", done.job_id, "-o", str(out))
    assert out.read_bytes() == b"# Standup\n"
    failed_job = Job.new(
        job_id=api_job_id(owner, None),
        owner=owner,
        source=JobSource(uri="gs://b/y.wav"),
        retention_days=1,
    )
    store.create(failed_job)
    store.transition(
        failed_job.job_id, JobState.FAILED, error=JobError(code="not_audio", message="a PDF")
    )
    refused = cli("wait", failed_job.job_id, ok=False)
    assert refused.returncode == 1 and "not_audio: a PDF" in refused.stderr
    deleted = json.loads(cli("delete", via_gcs).stdout)
    assert deleted["job_id"] == via_gcs
    failed = cli("status", "a-nope", ok=False)
    assert failed.returncode == 1 and "job_not_found" in failed.stderr


def test_the_emulators_token_command_makes_a_token_the_local_api_accepts(clean_stack: Any) -> None:
    import jwt
    import requests

    local = clean_stack.local
    env = {
        **os.environ,
        "AUDIONOTES_LOCAL_DIR": str(local.state_dir),
        "AUDIONOTES_LOCAL_PORT_BASE": str(local.ports.base),
    }
    token = subprocess.run(
        [sys.executable, "-m", "emulators", "token", "--subject", "alice"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "alice"
    answer = requests.get(
        f"{local.function_url('api')}/v1/jobs",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["jobs"] == []  # alice's jobs: none yet
