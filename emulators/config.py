"""Where the local stack lives: ports, folders and the environment it hands to processes.

The local deployment is configured exactly like a GCP one, through ``AUDIONOTES_*`` variables
(common.settings) plus the client libraries' own ``*_EMULATOR_HOST`` variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from common.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Functions the stack serves, in start order; each runs if functions/main.py defines it.
FUNCTIONS = ("on_upload", "api", "dispatch", "notes")


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

    @classmethod
    def from_env(cls) -> LocalStack:
        state = os.environ.get("AUDIONOTES_LOCAL_DIR", str(REPO_ROOT / ".local"))
        base = int(os.environ.get("AUDIONOTES_LOCAL_PORT_BASE", "18000"))
        return cls(state_dir=Path(state).resolve(), ports=Ports(base))

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
        )

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
        if (REPO_ROOT / "functions" / "main.py").exists() and "api" in defined_functions():
            env["AUDIONOTES_API_URL"] = self.function_url("api")
        return env

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
