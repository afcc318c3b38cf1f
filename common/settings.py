"""One definition of every name: project, buckets, topics, subscriptions, jobs, limits.

Environment variables use the prefix ``AUDIONOTES_`` and ``__`` between nested groups, e.g.
``AUDIONOTES_BUCKETS__INBOX``. Names of topics, subscriptions, Cloud Run jobs and Firestore
collections are contracts (DESIGN.md) and carry their production values as defaults; the
project and bucket names are per deployment and have none, so a missing one fails at startup.
Terraform sets the same variables on every function and job (tests/unit/test_terraform_names.py
holds it to this file).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr, computed_field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "AUDIONOTES_"
ENV_NESTED_DELIMITER = "__"

_GCS_NAME = r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$"
_RESOURCE_ID = r"^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$"
_RUN_JOB_NAME = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"


class Environment(StrEnum):
    LOCAL = "local"
    DEV = "dev"
    PROD = "prod"


class Buckets(BaseModel):
    inbox: str = Field(pattern=_GCS_NAME, description="Uploads land here (Eventarc trigger).")
    results: str = Field(pattern=_GCS_NAME, description="Transcripts, notes and the cache.")
    inbox_prefix: str = Field(default="uploads/", description="Only objects under it are jobs.")
    results_prefix: str = Field(default="jobs/", description="jobs/{job_id}/transcript.json ...")
    cache_prefix: str = Field(default="cache/", description="Content cache keyed by sha256.")

    @field_validator("inbox_prefix", "results_prefix", "cache_prefix")
    @classmethod
    def _folder(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError("must be a relative folder ending in '/', e.g. 'uploads/'")
        return value


class Topics(BaseModel):
    transcription_requests: str = Field(default="transcription-requests", pattern=_RESOURCE_ID)
    transcripts_ready: str = Field(default="transcripts-ready", pattern=_RESOURCE_ID)
    transcription_requests_dead_letter: str = Field(
        default="transcription-requests-dead-letter", pattern=_RESOURCE_ID
    )
    transcripts_ready_dead_letter: str = Field(
        default="transcripts-ready-dead-letter", pattern=_RESOURCE_ID
    )
    # Where Cloud Storage notifications for the inbox go. On GCP Eventarc owns this path; the
    # local stack publishes fake-gcs-server's finalize events here for the Eventarc bridge.
    inbox_events: str = Field(default="inbox-events", pattern=_RESOURCE_ID)


class Subscriptions(BaseModel):
    dispatch: str = Field(default="dispatch", pattern=_RESOURCE_ID)
    notes: str = Field(default="notes", pattern=_RESOURCE_ID)
    transcription_requests_dead_letter: str = Field(
        default="transcription-requests-dead-letter", pattern=_RESOURCE_ID
    )
    transcripts_ready_dead_letter: str = Field(
        default="transcripts-ready-dead-letter", pattern=_RESOURCE_ID
    )
    inbox_events: str = Field(default="on-upload", pattern=_RESOURCE_ID)


class Delivery(BaseModel):
    """How Pub/Sub delivers to our handlers; Terraform uses the same numbers."""

    ack_deadline_s: int = Field(default=600, ge=10, le=600)
    max_delivery_attempts: int = Field(default=5, ge=5, le=100)
    min_backoff_s: int = Field(default=10, ge=0, le=600)
    max_backoff_s: int = Field(default=600, ge=0, le=600)


class RunJobs(BaseModel):
    transcribe_gpu: str = Field(default="transcribe-gpu", pattern=_RUN_JOB_NAME)
    transcribe_cpu: str = Field(default="transcribe-cpu", pattern=_RUN_JOB_NAME)
    # None means the public endpoint; the local stack points it at its Cloud Run emulator.
    api_endpoint: str | None = None


class Collections(BaseModel):
    jobs: str = "jobs"
    rate_limits: str = "rate_limits"
    breakers: str = "breakers"
    spend: str = "spend"


class Limits(BaseModel):
    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_audio_seconds: int = Field(default=6 * 3600, gt=0)
    chunk_seconds: int = Field(default=20 * 60, ge=30)
    retention_days: int = Field(default=30, ge=1)
    publish_timeout_s: float = Field(default=30.0, gt=0)


class Auth(BaseModel):
    """API authentication and rate limits (issue: ingestion and the HTTPS API)."""

    # HS256 secret (Secret Manager on GCP); RS256 tokens are checked against jwks_url.
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    audience: str | None = None
    rate_per_minute: int = Field(default=60, ge=1)
    rate_per_hour: int = Field(default=1000, ge=1)


class Llm(BaseModel):
    """The notes provider chain (issue: notes)."""

    # A JSON list, e.g. '["sk-a","sk-b"]'; one Secret Manager secret on GCP.
    openai_api_keys: list[SecretStr] = Field(default_factory=list)
    openai_base_url: str | None = None
    model: str = "gpt-4o-mini"
    fallback_base_url: str | None = None
    fallback_model: str | None = None
    daily_budget_usd: float = Field(default=50.0, ge=0)


class Settings(BaseSettings):
    """Everything a deployment must say about itself. Build it once with ``get_settings()``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
        frozen=True,
    )

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = "us-central1"
    environment: Environment = Environment.LOCAL
    buckets: Buckets
    topics: Topics = Topics()
    subscriptions: Subscriptions = Subscriptions()
    delivery: Delivery = Delivery()
    run_jobs: RunJobs = RunJobs()
    collections: Collections = Collections()
    limits: Limits = Limits()
    auth: Auth = Auth()
    llm: Llm = Llm()
    log_level: str = "INFO"
    # A service-account JSON key for V4 signed URLs; None signs through IAM signBlob (GCP).
    signing_key_file: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def inbox_uri(self) -> str:
        return f"gs://{self.buckets.inbox}/{self.buckets.inbox_prefix}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use (never at import)."""
    return Settings()  # required fields come from the environment
