"""Starting, asking after and cancelling transcribe executions (Cloud Run Admin API v2), behind
the ``Launcher`` port.

``launch`` returns as soon as Cloud Run has accepted the execution: its name is in the
long-running operation's metadata, and nothing here ever waits for the operation to finish.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.api_core import exceptions as gexc
from google.cloud import run_v2
from google.protobuf import duration_pb2

from common.config.settings import Settings
from common.domain.errors import ExecutorUnavailable
from common.gcp import clients


class CloudRunLauncher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def jobs(self) -> run_v2.JobsClient:
        return clients.run_jobs_client(self.settings.run_jobs.api_endpoint)

    @property
    def executions(self) -> run_v2.ExecutionsClient:
        return clients.run_executions_client(self.settings.run_jobs.api_endpoint)

    def job_path(self, job: str) -> str:
        s = self.settings
        return run_v2.JobsClient.job_path(s.project, s.region, job)

    def launch(self, job: str, *, env: dict[str, str], task_count: int, timeout_s: int) -> str:
        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[
                run_v2.RunJobRequest.Overrides.ContainerOverride(
                    env=[run_v2.EnvVar(name=k, value=v) for k, v in sorted(env.items())]
                )
            ],
            task_count=task_count,
            timeout=duration_pb2.Duration(seconds=timeout_s),
        )
        try:
            operation = self.jobs.run_job(
                request=run_v2.RunJobRequest(name=self.job_path(job), overrides=overrides)
            )
        except gexc.GoogleAPICallError as exc:
            raise ExecutorUnavailable(f"run_job on {job} failed: {exc}") from exc
        name = str(operation.metadata.name)
        if not name:
            raise ExecutorUnavailable(f"run_job on {job} returned no execution name")
        return name

    def cancel(self, execution: str) -> None:
        # The long-running operation is not waited on; a finished or gone one needs nothing.
        try:
            self.executions.cancel_execution(name=execution)
        except (gexc.NotFound, gexc.FailedPrecondition):
            return
        except gexc.GoogleAPICallError as exc:
            raise ExecutorUnavailable(f"cancel {execution} failed: {exc}") from exc

    def is_alive(self, execution: str) -> bool:
        try:
            found = self.executions.get_execution(name=execution)
        except gexc.NotFound:
            return False
        except gexc.GoogleAPICallError as exc:
            raise ExecutorUnavailable(f"get {execution} failed: {exc}") from exc
        return not found.completion_time

    def active_tasks(self, job: str, *, within_s: float) -> int:
        # Listed newest first (the API's order): an execution older than the longest task
        # ends the walk, so the cost stays bounded however many finished executions a job has.
        since = datetime.now(UTC) - timedelta(seconds=within_s)
        active = 0
        try:
            for ex in self.executions.list_executions(parent=self.job_path(job)):
                if ex.create_time and ex.create_time < since:
                    break
                if ex.completion_time:
                    continue
                ended = ex.succeeded_count + ex.failed_count + ex.cancelled_count
                active += max(0, ex.task_count - ended)
        except gexc.GoogleAPICallError as exc:
            raise ExecutorUnavailable(f"list executions of {job} failed: {exc}") from exc
        return active
