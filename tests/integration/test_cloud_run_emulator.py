"""The production ``google.cloud.run_v2`` client against our Cloud Run Admin API emulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from tests.integration.helpers import wait_for

# A task that records what it saw; fails its first attempt when asked to.
TASK = """
import json, os, sys
out = sys.argv[1]
seen = {k: v for k, v in os.environ.items() if k.startswith(("CLOUD_RUN_", "PROBE_"))}
index, attempt = seen["CLOUD_RUN_TASK_INDEX"], seen["CLOUD_RUN_TASK_ATTEMPT"]
with open(f"{out}/task-{index}-attempt-{attempt}.json", "w") as f:
    json.dump(seen, f)
mode = seen.get("PROBE_MODE", "ok")
if mode == "fail-first" and attempt == "0" or mode == "always-fail":
    sys.exit(3)
"""


@pytest.fixture
def clients(stack):  # type: ignore[no-untyped-def]
    options = ClientOptions(api_endpoint=stack.local.settings.run_jobs.api_endpoint)
    creds = AnonymousCredentials()  # type: ignore[no-untyped-call]
    jobs = run_v2.JobsClient(transport="rest", client_options=options, credentials=creds)
    executions = run_v2.ExecutionsClient(
        transport="rest", client_options=options, credentials=creds
    )
    return jobs, executions


def _create_job(jobs: run_v2.JobsClient, stack, name: str, out: Path, retries: int) -> str:  # type: ignore[no-untyped-def]
    s = stack.local.settings
    job = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=1,
            parallelism=2,
            template=run_v2.TaskTemplate(
                containers=[
                    run_v2.Container(
                        image="local",
                        command=[sys.executable, "-c", TASK],
                        args=[str(out)],
                        env=[run_v2.EnvVar(name="PROBE_MODE", value="ok")],
                    )
                ],
                max_retries=retries,
                timeout="60s",
            ),
        )
    )
    jobs.create_job(parent=f"projects/{s.project}/locations/{s.region}", job=job, job_id=name)
    return f"projects/{s.project}/locations/{s.region}/jobs/{name}"


def _run(jobs: run_v2.JobsClient, job_name: str, *, mode: str, task_count: int) -> str:
    overrides = run_v2.RunJobRequest.Overrides(
        container_overrides=[
            run_v2.RunJobRequest.Overrides.ContainerOverride(
                env=[run_v2.EnvVar(name="PROBE_MODE", value=mode)]
            )
        ],
        task_count=task_count,
        timeout="30s",
    )
    operation = jobs.run_job(request=run_v2.RunJobRequest(name=job_name, overrides=overrides))
    execution = operation.metadata  # what production code records; it never waits on it
    assert execution.name.startswith(f"{job_name}/executions/")
    return str(execution.name)


def _finished(executions: run_v2.ExecutionsClient, name: str) -> run_v2.Execution | None:
    execution = executions.get_execution(name=name)
    return execution if execution.completion_time else None


def test_run_job_starts_one_process_per_task_with_cloud_run_env(clients, stack, tmp_path, unique):
    jobs, executions = clients
    job_name = _create_job(jobs, stack, f"probe-{unique}", tmp_path, retries=0)
    name = _run(jobs, job_name, mode="ok", task_count=3)

    done = wait_for(lambda: _finished(executions, name), what="the execution")
    assert (done.succeeded_count, done.failed_count, done.task_count) == (3, 0, 3)
    assert done.conditions[0].state == run_v2.Condition.State.CONDITION_SUCCEEDED
    seen = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("task-*.json"))]
    assert sorted(s["CLOUD_RUN_TASK_INDEX"] for s in seen) == ["0", "1", "2"]
    assert {s["CLOUD_RUN_TASK_COUNT"] for s in seen} == {"3"}
    assert {s["CLOUD_RUN_EXECUTION"] for s in seen} == {name.rsplit("/", 1)[1]}
    assert {s["CLOUD_RUN_JOB"] for s in seen} == {f"probe-{unique}"}
    assert {s["PROBE_MODE"] for s in seen} == {"ok"}  # the override replaced the template's


def test_failed_task_is_retried_and_then_succeeds(clients, stack, tmp_path, unique):
    jobs, executions = clients
    job_name = _create_job(jobs, stack, f"retry-{unique}", tmp_path, retries=2)
    name = _run(jobs, job_name, mode="fail-first", task_count=1)

    done = wait_for(lambda: _finished(executions, name), what="the execution")
    assert (done.succeeded_count, done.failed_count, done.retried_count) == (1, 0, 1)
    assert sorted(p.name for p in tmp_path.glob("task-*.json")) == [
        "task-0-attempt-0.json",
        "task-0-attempt-1.json",
    ]


def test_task_failing_every_attempt_fails_the_execution(clients, stack, tmp_path, unique):
    jobs, executions = clients
    job_name = _create_job(jobs, stack, f"fail-{unique}", tmp_path, retries=1)
    name = _run(jobs, job_name, mode="always-fail", task_count=1)

    done = wait_for(lambda: _finished(executions, name), what="the execution")
    assert (done.succeeded_count, done.failed_count) == (0, 1)
    assert done.conditions[0].state == run_v2.Condition.State.CONDITION_FAILED
    assert len(list(tmp_path.glob("task-0-attempt-*.json"))) == 2  # 1 try + 1 retry


def test_unknown_job_is_not_found(clients, stack):
    jobs, _ = clients
    s = stack.local.settings
    with pytest.raises(gexc.NotFound):
        jobs.run_job(name=f"projects/{s.project}/locations/{s.region}/jobs/no-such-job")
