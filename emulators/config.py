"""Where the local stack lives: ports, folders and the environment it hands to processes.

The local deployment is configured exactly like a GCP one, through ``AUDIONOTES_*`` variables
(common.config.settings) plus the client libraries' own ``*_EMULATOR_HOST`` variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from common.config.settings import Settings, Tier
from common.domain import local_llms
from common.domain.local_llms import DEFAULT_LOCAL_LLM, LOCAL_LLMS

REPO_ROOT = Path(__file__).resolve().parent.parent

NOTES_FROM = ("local-llm", "double")

# Functions the stack serves, in start order; each runs if functions/main.py defines it.
FUNCTIONS = ("on_upload", "api", "dispatch", "notes", "dead_letters", "sweep")


@dataclass(frozen=True)
class Ports:
    base: int

    @property
    def firestore(self) -> int:
        return self.base + 80

    @property
    def pubsub(self) -> int:
        return self.base + 85

    @property
    def gcs_http(self) -> int:
        return self.base + 0

    @property
    def gcs_https(self) -> int:
        return self.base + 443

    @property
    def bridge(self) -> int:
        return self.base + 90

    @property
    def cloud_run(self) -> int:
        return self.base + 91

    @property
    def openai(self) -> int:
        return self.base + 92

    @property
    def llm(self) -> int:
        return self.base + 93

    def function(self, name: str) -> int:
        return self.base + 101 + FUNCTIONS.index(name)


@dataclass(frozen=True)
class LocalStack:
    """One local deployment. ``AUDIONOTES_LOCAL_DIR`` and ``AUDIONOTES_LOCAL_PORT_BASE`` let two
    stacks (say, a demo and a test run) live side by side."""

    state_dir: Path
    ports: Ports
    project: str = "audionotes-local"
    region: str = "us-central1"
    inbox_bucket: str = "audionotes-local-inbox"
    results_bucket: str = "audionotes-local-results"
    firestore_heap: str = "384m"
    pubsub_heap: str = "256m"
    # The model of jobs that name none; None: the best one installed (Settings' default). The
    # test suite runs tiny.en, the fastest, to keep its many jobs quick.
    default_model: str | None = None
    # The notes model server's model (run_jobs/llm; common/domain/local_llms.py).
    llm_model: str = DEFAULT_LOCAL_LLM
    # Where notes come from without a real OpenAI key: "local-llm", the model server (the
    # demo); "double", the OpenAI stand-in (emulators.openai_server) as the chain's OpenAI,
    # whose faults the tests script, with no fallback before the extractive engine.
    notes_from: str = "local-llm"
    # How transcription reaches the transcribe tasks (``Workers.mode``), and how many pull
    # workers each tier may run at once: one laptop, so few.
    workers_mode: str = "workers"
    max_workers: int = 2

    def __post_init__(self) -> None:
        if self.llm_model not in LOCAL_LLMS:
            raise ValueError(f"unknown local LLM {self.llm_model!r}; known: {sorted(LOCAL_LLMS)}")
        if self.notes_from not in NOTES_FROM:
            raise ValueError(f"notes_from must be one of {NOTES_FROM}, not {self.notes_from!r}")

    @classmethod
    def from_env(cls) -> LocalStack:
        state = os.environ.get("AUDIONOTES_LOCAL_DIR", str(REPO_ROOT / ".local"))
        base = int(os.environ.get("AUDIONOTES_LOCAL_PORT_BASE", "18000"))
        return cls(
            state_dir=Path(state).resolve(),
            ports=Ports(base),
            llm_model=os.environ.get("AUDIONOTES_LOCAL_LLM__MODEL", DEFAULT_LOCAL_LLM),
            notes_from=os.environ.get("AUDIONOTES_LOCAL_NOTES", "local-llm"),
            workers_mode=os.environ.get("AUDIONOTES_WORKERS__MODE", "workers"),
            max_workers=int(os.environ.get("AUDIONOTES_LOCAL_MAX_WORKERS", "2")),
        )

    # Folders -------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def gcs_dir(self) -> Path:
        return self.state_dir / "gcs"

    @property
    def executions_dir(self) -> Path:
        return self.state_dir / "executions"

    @property
    def boto_config(self) -> Path:
        return self.state_dir / "boto.cfg"

    @property
    def signing_key(self) -> Path:
        return self.state_dir / "signing-key.json"

    # Addresses -----------------------------------------------------------------------------
    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def function_url(self, name: str) -> str:
        return self.url(self.ports.function(name))

    @cached_property
    def settings(self) -> Settings:
        return Settings(
            project=self.project,
            region=self.region,
            buckets={"inbox": self.inbox_bucket, "results": self.results_bucket},
            # Locally, redeliveries come quickly so that tests and demos do not wait minutes;
            # the attempts before dead-lettering are production's.
            delivery={"min_backoff_s": 1, "max_backoff_s": 5},
            run_jobs={"api_endpoint": self.url(self.ports.cloud_run)},
            signing_key_file=str(self.signing_key),
            # See api_environment() for why each differs from production.
            auth={
                "jwt_secret": self.jwt_secret(),
                "trusted_proxy_hops": 0,
                "rate_per_minute": 100_000,
                "rate_per_hour": 1_000_000,
            },
            limits={"allow_http_urls": True, "allowed_private_networks": ["127.0.0.1/32"]},
            # One laptop: one batch lane per model, so that short jobs arriving together share
            # one execution and one model load (production spreads them over more lanes).
            batch_lanes={"count": 1},
            # Workers leave soon after the queue runs dry, and a killed one's chunk comes back
            # within Pub/Sub's shortest ack deadline, so tests and demos do not wait on them.
            workers={
                "mode": self.workers_mode,
                "max_cpu": self.max_workers,
                "max_gpu": self.max_workers,
                "idle_s": 5.0,
                "ack_deadline_s": 10,
                "poll_s": 0.5,
                "scale_lease_s": 10,
            },
            **self._transcription(),
        )

    def _transcription(self) -> dict[str, Any]:
        if self.default_model is None:
            return {}
        return {"transcription": {"default_models": dict.fromkeys(Tier, self.default_model)}}

    def environment(self) -> dict[str, str]:
        """What every local process gets, and what ``python -m emulators env`` prints."""
        s = self.settings
        env = {
            "AUDIONOTES_PROJECT": s.project,
            "AUDIONOTES_REGION": s.region,
            "AUDIONOTES_ENVIRONMENT": s.environment.value,
            "AUDIONOTES_BUCKETS__INBOX": s.buckets.inbox,
            "AUDIONOTES_BUCKETS__RESULTS": s.buckets.results,
            "AUDIONOTES_DELIVERY__MIN_BACKOFF_S": str(s.delivery.min_backoff_s),
            "AUDIONOTES_DELIVERY__MAX_BACKOFF_S": str(s.delivery.max_backoff_s),
            "AUDIONOTES_RUN_JOBS__API_ENDPOINT": s.run_jobs.api_endpoint or "",
            "AUDIONOTES_BATCH_LANES__COUNT": str(s.batch_lanes.count),
            **{
                f"AUDIONOTES_WORKERS__{k.upper()}": str(v)
                for k, v in s.workers.model_dump(mode="json").items()
            },
            "AUDIONOTES_TRANSCRIPTION__DEFAULT_MODELS": json.dumps(s.transcription.default_models),
            "AUDIONOTES_SIGNING_KEY_FILE": s.signing_key_file or "",
            "AUDIONOTES_INBOX": s.inbox_uri,
            "GOOGLE_CLOUD_PROJECT": s.project,
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports.firestore}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports.pubsub}",
            "STORAGE_EMULATOR_HOST": self.url(self.ports.gcs_http),
            "BOTO_CONFIG": str(self.boto_config),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": self.url(self.ports.gcs_http)
            + "/storage/v1/",
            "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
            "CLOUDSDK_CORE_PROJECT": s.project,
        }
        env.update(self.llm_environment())
        env.update(self.api_environment())
        env.update(self.tracing_environment())
        if (REPO_ROOT / "functions" / "main.py").exists() and "api" in defined_functions():
            env["AUDIONOTES_API_URL"] = self.function_url("api")
        return env

    def llm_environment(self) -> dict[str, str]:
        """The notes chain: a real OpenAI key, when configured, is used as it is, with the
        model server as its fallback; without one, notes come from the model server alone
        (``notes_from`` "local-llm") or from the OpenAI stand-in ("double")."""
        env = {"AUDIONOTES_LOCAL_LLM__MODEL": self.llm_model}
        real_key = bool(os.environ.get("AUDIONOTES_LLM__OPENAI_API_KEYS"))
        if not real_key and self.notes_from == "double":
            env["AUDIONOTES_LLM__OPENAI_API_KEYS"] = '["local-key-1","local-key-2"]'
            env["AUDIONOTES_LLM__OPENAI_BASE_URL"] = self.url(self.ports.openai) + "/v1"
        elif not os.environ.get("AUDIONOTES_LLM__FALLBACK_BASE_URL"):
            env |= {
                "AUDIONOTES_LLM__FALLBACK_BASE_URL": self.url(self.ports.llm) + "/v1",
                "AUDIONOTES_LLM__FALLBACK_MODEL": self.llm_model,
                "AUDIONOTES_LLM__FALLBACK_STYLE": "json_schema",
                "AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S": str(local_llms.REQUEST_TIMEOUT_S),
                "AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS": str(local_llms.CHUNK_TOKENS),
            }
        if not os.environ.get("AUDIONOTES_WEBHOOKS__SECRET"):
            env["AUDIONOTES_WEBHOOKS__SECRET"] = "local-webhook-secret"
        return env

    def tracing_environment(self) -> dict[str, str]:
        """Every process appends its finished spans to one JSON lines file in the state
        folder (tests/integration/test_tracing_flow.py reads a job's trace from it), unless
        an exporter is configured already."""
        if os.environ.get("AUDIONOTES_TRACING__EXPORTER"):
            return {}
        return {
            "AUDIONOTES_TRACING__EXPORTER": "jsonl",
            "AUDIONOTES_TRACING__JSONL_PATH": str(self.spans_file),
        }

    @property
    def spans_file(self) -> Path:
        return self.state_dir / "spans.jsonl"

    def api_environment(self) -> dict[str, str]:
        """The API on one machine: an HS256 secret of this stack's own (``python -m emulators
        token`` signs with it); http and 127.0.0.1 URLs allowed through the SSRF guard (test
        audio and webhook receivers run there; ::1, localhost's other names and every other
        private range stay refused); the TCP peer is the client (no proxy in front); and rate
        limits raised because every test and demo call comes from the one address 127.0.0.1
        (tests/integration/test_api_rate_limit.py runs its own processes with low limits)."""
        auth, limits = self.settings.auth, self.settings.limits
        assert auth.jwt_secret is not None
        return {
            "AUDIONOTES_AUTH__JWT_SECRET": auth.jwt_secret.get_secret_value(),
            "AUDIONOTES_AUTH__TRUSTED_PROXY_HOPS": str(auth.trusted_proxy_hops),
            "AUDIONOTES_AUTH__RATE_PER_MINUTE": str(auth.rate_per_minute),
            "AUDIONOTES_AUTH__RATE_PER_HOUR": str(auth.rate_per_hour),
            "AUDIONOTES_LIMITS__ALLOW_HTTP_URLS": str(limits.allow_http_urls).lower(),
            "AUDIONOTES_LIMITS__ALLOWED_PRIVATE_NETWORKS": json.dumps(
                limits.allowed_private_networks
            ),
        }

    @property
    def jwt_secret_file(self) -> Path:
        return self.state_dir / "jwt-secret"

    def jwt_secret(self) -> str:
        """This stack's HS256 secret, made on first use and kept in the state folder."""
        path = self.jwt_secret_file
        if not path.exists():
            import secrets

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".jwt-secret-{os.getpid()}-{secrets.token_hex(4)}")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # a concurrent first use won: use its
                os.link(tmp, path)
            tmp.unlink()
        return path.read_text().strip()

    def boto_text(self) -> str:
        # gsutil speaks the JSON API to fake-gcs-server's HTTPS port (its certificate is
        # self-signed); composite uploads are off because fake-gcs-server cannot compose them
        # into one finalize event the way GCS does.
        return (
            "[Credentials]\n"
            "gs_json_host = 127.0.0.1\n"
            f"gs_json_port = {self.ports.gcs_https}\n"
            "[Boto]\n"
            "https_validate_certificates = False\n"
            "[GSUtil]\n"
            f"default_project_id = {self.project}\n"
            "prefer_api = json\n"
            "parallel_composite_upload_threshold = 0\n"
        )


def defined_functions() -> list[str]:
    """Entry points that functions/main.py defines, found without importing it."""
    import ast

    main = REPO_ROOT / "functions" / "main.py"
    if not main.exists():
        return []
    tree = ast.parse(main.read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return [f for f in FUNCTIONS if f in names]


def sdk_root() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    out = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        check=False,
    )
    root = out.stdout.strip()
    return Path(root) if root else None
