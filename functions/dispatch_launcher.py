"""Starting, asking after and cancelling transcribe executions (Cloud Run Admin API v2).

``launch`` returns as soon as Cloud Run has accepted the execution: its name is in the
long-running operation's metadata, and nothing here ever waits for the operation to finish.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import Any, Protocol

from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.protobuf import duration_pb2

from common.config.settings import Settings


class Launcher(Protocol):
    def launch(self, job: str, *, env: dict[str, str], task_count: int, timeout_s: int) -> str:
        """Start an execution of Cloud Run job ``job`` (short name); returns its full name."""
        ...

    def is_alive(self, execution: str) -> bool:
        """Whether the execution exists and has not finished."""
        ...

    def cancel(self, execution: str) -> None:
        """Stop the execution's tasks; nothing to do if it finished or is gone."""
        ...


class CloudRunLauncher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client_args(self) -> dict[str, Any]:
        endpoint = self.settings.run_jobs.api_endpoint
        if not endpoint:
            return {}  # the public endpoint, gRPC, application default credentials
        # An endpoint override (a regional or private endpoint, or a stand-in) speaks REST.
        return {
            "transport": "rest",
            "client_options": ClientOptions(api_endpoint=endpoint),
            "credentials": AnonymousCredentials(),
        }

    @cached_property
    def jobs(self) -> run_v2.JobsClient:
        return run_v2.JobsClient(**self._client_args())

    @cached_property
    def executions(self) -> run_v2.ExecutionsClient:
        return run_v2.ExecutionsClient(**self._client_args())

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
        operation = self.jobs.run_job(
            request=run_v2.RunJobRequest(name=self.job_path(job), overrides=overrides)
        )
        name = str(operation.metadata.name)
        if not name:
            raise RuntimeError(f"run_job on {job} returned no execution name")
        return name

    def cancel(self, execution: str) -> None:
        # The long-running operation is not waited on.
        with contextlib.suppress(gexc.NotFound, gexc.FailedPrecondition):
            self.executions.cancel_execution(name=execution)

    def is_alive(self, execution: str) -> bool:
        try:
            found = self.executions.get_execution(name=execution)
        except gexc.NotFound:
            return False
        return not found.completion_time
