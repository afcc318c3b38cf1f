"""The Cloud Run Admin API v2, the subset audionotes uses, running tasks as local processes.

Implements jobs create/get/run (with overrides: env, args, task_count, timeout), executions
get/list/cancel and operations get, in the REST+JSON shapes the production
``google.cloud.run_v2`` client (``transport="rest"``) sends and parses. A job's "image" is its
container's ``command`` + ``args``, run with the real ``CLOUD_RUN_*`` variables; tasks honour
``parallelism``, ``maxRetries`` and ``timeout``, and each attempt keeps its exit code and log.

    python -m emulators.cloud_run --port 18091 --state-dir .local/executions
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

_LOC = r"projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(rf"^/v2/{_LOC}/jobs$"), "create_job"),
    ("GET", re.compile(rf"^/v2/{_LOC}/jobs/(?P<job>[^/:]+)$"), "get_job"),
    ("POST", re.compile(rf"^/v2/{_LOC}/jobs/(?P<job>[^/:]+):run$"), "run_job"),
    ("GET", re.compile(rf"^/v2/{_LOC}/jobs/(?P<job>[^/:]+)/executions$"), "list_executions"),
    ("GET", re.compile(rf"^/v2/{_LOC}/jobs/(?P<job>[^/]+)/executions/(?P<ex>[^/:]+)$"), "get_ex"),
    (
        "POST",
        re.compile(rf"^/v2/{_LOC}/jobs/(?P<job>[^/]+)/executions/(?P<ex>[^/:]+):cancel$"),
        "cancel",
    ),
    ("GET", re.compile(rf"^/v2/{_LOC}/operations/(?P<op>[^/:]+)$"), "get_operation"),
]
_EXECUTION_TYPE = "type.googleapis.com/google.cloud.run.v2.Execution"
_JOB_TYPE = "type.googleapis.com/google.cloud.run.v2.Job"


class ApiError(Exception):
    _STATUS: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
    }

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code

    def body(self) -> dict[str, Any]:
        status = self._STATUS.get(self.code, "UNKNOWN")
        return {"error": {"code": self.code, "message": str(self), "status": status}}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _seconds(duration: str | None, default: float) -> float:
    if not duration:
        return default
    return float(duration.rstrip("s"))


@dataclass
class TaskRun:
    index: int
    attempts: list[dict[str, Any]] = field(default_factory=list)
    state: str = "PENDING"  # PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Execution:
    name: str
    job: str
    uid: str
    command: list[str]
    env: dict[str, str]
    task_count: int
    parallelism: int
    max_retries: int
    timeout_s: float
    log_dir: Path
    create_time: str = field(default_factory=_now)
    start_time: str | None = None
    completion_time: str | None = None
    cancelled: bool = False
    tasks: list[TaskRun] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        states = [t.state for t in self.tasks]
        return {
            "runningCount": states.count("RUNNING"),
            "succeededCount": states.count("SUCCEEDED"),
            "failedCount": states.count("FAILED"),
            "cancelledCount": states.count("CANCELLED"),
            "retriedCount": sum(max(len(t.attempts) - 1, 0) for t in self.tasks),
        }

    def to_json(self) -> dict[str, Any]:
        counts = self.counts()
        if self.completion_time is None:
            condition = {"type": "Completed", "state": "CONDITION_PENDING"}
        elif self.cancelled:
            condition = {"type": "Completed", "state": "CONDITION_FAILED", "reason": "CANCELLED"}
        elif counts["failedCount"]:
            condition = {
                "type": "Completed",
                "state": "CONDITION_FAILED",
                "message": f"{counts['failedCount']} of {self.task_count} tasks failed",
            }
        else:
            condition = {"type": "Completed", "state": "CONDITION_SUCCEEDED"}
        body: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "job": self.job,
            "createTime": self.create_time,
            "taskCount": self.task_count,
            "parallelism": self.parallelism,
            "reconciling": self.completion_time is None,
            "conditions": [condition],
            "logUri": self.log_dir.as_uri(),
            **counts,
        }
        if self.start_time:
            body["startTime"] = self.start_time
        if self.completion_time:
            body["completionTime"] = self.completion_time
        return body


class CloudRunEmulator:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.jobs_file = state_dir / "jobs.json"
        self.lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, Execution] = {}
        self.operations: dict[str, str] = {}  # operation name -> execution name
        if self.jobs_file.exists():
            self.jobs = json.loads(self.jobs_file.read_text())

    # Jobs ----------------------------------------------------------------------------------
    def create_job(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        job_id = (query.get("jobId") or [""])[0]
        if not re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", job_id):
            raise ApiError(400, f"invalid jobId {job_id!r}")
        name = f"projects/{m['project']}/locations/{m['location']}/jobs/{job_id}"
        containers = body.get("template", {}).get("template", {}).get("containers") or []
        if not containers or not containers[0].get("command"):
            raise ApiError(400, "the local emulator needs template.template.containers[0].command")
        with self.lock:
            if name in self.jobs:
                raise ApiError(409, f"job {name} already exists")
            job = {**body, "name": name, "createTime": _now(), "uid": str(uuid.uuid4())}
            self.jobs[name] = job
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.jobs_file.write_text(json.dumps(self.jobs, indent=1))
        return self._operation(m, done=True, response={"@type": _JOB_TYPE, **job})

    def get_job(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        return self._job(m)

    def _job(self, m: dict[str, str]) -> dict[str, Any]:
        name = f"projects/{m['project']}/locations/{m['location']}/jobs/{m['job']}"
        job = self.jobs.get(name)
        if job is None:
            raise ApiError(
                404,
                f"Resource '{m['job']}' of kind 'JOB' in region "
                f"'{m['location']}' in project '{m['project']}' does not exist.",
            )
        return job

    def run_job(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        job = self._job(m)
        template = job.get("template", {})
        task_template = template.get("template", {})
        container = task_template["containers"][0]
        overrides = body.get("overrides") or {}
        container_override = (overrides.get("containerOverrides") or [{}])[0]
        args = list(container.get("args") or [])
        if container_override.get("clearArgs"):
            args = []
        if container_override.get("args"):
            args = list(container_override["args"])
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        env.update({e["name"]: e.get("value", "") for e in container_override.get("env") or []})
        task_count = int(overrides.get("taskCount") or template.get("taskCount") or 1)
        parallelism = int(template.get("parallelism") or 0) or task_count
        short = f"{m['job']}-{secrets.token_hex(3)[:5]}"
        name = f"{job['name']}/executions/{short}"
        execution = Execution(
            name=name,
            job=m["job"],
            uid=str(uuid.uuid4()),
            command=list(container["command"]) + args,
            env=env,
            task_count=task_count,
            parallelism=min(parallelism, task_count),
            max_retries=int(task_template.get("maxRetries", 3)),
            timeout_s=_seconds(overrides.get("timeout") or task_template.get("timeout"), 600),
            log_dir=self.state_dir / short,
            tasks=[TaskRun(i) for i in range(task_count)],
        )
        with self.lock:
            self.executions[name] = execution
        threading.Thread(target=self._run, args=(execution,), daemon=True).start()
        return self._operation(m, done=False, metadata=execution, name=name)

    # Executions ----------------------------------------------------------------------------
    def get_ex(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        return self._execution(m).to_json()

    def list_executions(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        job = self._job(m)
        with self.lock:
            items = [e.to_json() for n, e in self.executions.items() if n.startswith(job["name"])]
        return {"executions": sorted(items, key=lambda e: e["createTime"], reverse=True)}

    def cancel(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        execution = self._execution(m)
        with self.lock:
            execution.cancelled = True
            for task in execution.tasks:
                if task.process is not None and task.process.poll() is None:
                    _kill(task.process)
        return self._operation(m, done=False, metadata=execution, name=execution.name)

    def _execution(self, m: dict[str, str]) -> Execution:
        name = (
            f"projects/{m['project']}/locations/{m['location']}/jobs/{m['job']}"
            f"/executions/{m['ex']}"
        )
        execution = self.executions.get(name)
        if execution is None:
            raise ApiError(404, f"execution {name} not found")
        return execution

    # Operations ----------------------------------------------------------------------------
    def get_operation(
        self, m: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]
    ) -> dict[str, Any]:
        name = f"projects/{m['project']}/locations/{m['location']}/operations/{m['op']}"
        execution_name = self.operations.get(name)
        if execution_name is None:
            raise ApiError(404, f"operation {name} not found")
        execution = self.executions[execution_name]
        done = execution.completion_time is not None
        payload = {"@type": _EXECUTION_TYPE, **execution.to_json()}
        op: dict[str, Any] = {"name": name, "metadata": payload, "done": done}
        if done:
            op["response"] = payload
        return op

    def _operation(
        self,
        m: dict[str, str],
        *,
        done: bool,
        metadata: Execution | None = None,
        response: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        op_name = f"projects/{m['project']}/locations/{m['location']}/operations/{uuid.uuid4()}"
        op: dict[str, Any] = {"name": op_name, "done": done}
        if metadata is not None:
            op["metadata"] = {"@type": _EXECUTION_TYPE, **metadata.to_json()}
            if name:
                self.operations[op_name] = name
        if response is not None:
            op["response"] = response
        return op

    # Running -------------------------------------------------------------------------------
    def _run(self, execution: Execution) -> None:
        execution.start_time = _now()
        execution.log_dir.mkdir(parents=True, exist_ok=True)
        slots = threading.Semaphore(execution.parallelism)
        threads = []
        for task in execution.tasks:
            slots.acquire()
            if execution.cancelled:
                task.state = "CANCELLED"
                slots.release()
                continue
            t = threading.Thread(target=self._run_task, args=(execution, task, slots), daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        execution.completion_time = _now()

    def _run_task(self, execution: Execution, task: TaskRun, slots: threading.Semaphore) -> None:
        try:
            for attempt in range(execution.max_retries + 1):
                if execution.cancelled:
                    task.state = "CANCELLED"
                    return
                task.state = "RUNNING"
                code = self._attempt(execution, task, attempt)
                task.attempts.append({"attempt": attempt, "exitCode": code})
                if code == 0:
                    task.state = "SUCCEEDED"
                    return
            task.state = "CANCELLED" if execution.cancelled else "FAILED"
        finally:
            slots.release()

    def _attempt(self, execution: Execution, task: TaskRun, attempt: int) -> int:
        env = {
            **os.environ,
            **execution.env,
            "CLOUD_RUN_JOB": execution.job,
            "CLOUD_RUN_EXECUTION": execution.name.rsplit("/", 1)[1],
            "CLOUD_RUN_TASK_INDEX": str(task.index),
            "CLOUD_RUN_TASK_COUNT": str(execution.task_count),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        log_path = execution.log_dir / f"task-{task.index}-attempt-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                execution.command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            task.process = process
            try:
                return process.wait(timeout=execution.timeout_s)
            except subprocess.TimeoutExpired:
                _kill(process)
                log.write(f"\n[emulator] task timed out after {execution.timeout_s}s\n".encode())
                return -signal.SIGKILL


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def make_handler(emulator: CloudRunEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            if method == "GET" and url.path == "/healthz":
                self._answer(200, {"ok": True})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                for verb, pattern, action in _ROUTES:
                    match = pattern.match(url.path)
                    if verb == method and match:
                        result = getattr(emulator, action)(
                            match.groupdict(), parse_qs(url.query), body
                        )
                        self._answer(200, result)
                        return
                raise ApiError(404, f"no route for {method} {url.path}")
            except ApiError as err:
                self._answer(err.code, err.body())
            except (ValueError, KeyError, TypeError) as exc:
                self._answer(400, ApiError(400, f"bad request: {exc}").body())

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"cloud-run: {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args()
    emulator = CloudRunEmulator(args.state_dir.resolve())
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(emulator))
    server.serve_forever()


if __name__ == "__main__":
    main()
