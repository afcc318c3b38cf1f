# Every input the environment roots share, with its type, defaults and validation. Each root's
# variables.tf is a symlink to this file, so a root takes exactly these inputs and checks them
# itself: a bad value in its tfvars is rejected at plan, naming the root's variable. The one
# input a root sets in code, its environment name, is in environment.tf. Inputs with a default
# are not nullable, so that null in a tfvars (or from another caller) means the default.

variable "project" {
  type        = string
  description = "GCP project ID (AUDIONOTES_PROJECT)."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a GCP project ID (as common/config/settings.py checks)."
  }
}

variable "region" {
  type        = string
  description = "Region of functions, jobs, buckets and the image repository (AUDIONOTES_REGION); it must offer Cloud Run L4 GPUs."
  default     = "us-central1"
  nullable    = false
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a GCP region such as us-central1."
  }
}

variable "firestore_location" {
  type        = string
  description = "Firestore location; null means the region."
  default     = null
}

variable "buckets" {
  type = object({
    inbox   = string
    results = string
    # Function source archives; null means "<project>-audionotes-src".
    sources = optional(string)
  })
  description = "Bucket names (AUDIONOTES_BUCKETS__INBOX, AUDIONOTES_BUCKETS__RESULTS). Globally unique, so they have no defaults."
  validation {
    condition = alltrue([
      for n in [var.buckets.inbox, var.buckets.results, coalesce(var.buckets.sources, "placeholder")] :
      can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", n))
    ])
    error_message = "Bucket names must match ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ (as common/config/settings.py checks)."
  }
  validation {
    condition     = var.buckets.inbox != var.buckets.results
    error_message = "inbox and results must be different buckets (the inbox triggers on_upload)."
  }
}

variable "function_source" {
  type = object({
    path = string
    md5  = string
  })
  description = "The functions' source zip and its hex MD5, as printed by `python terraform/package_functions.py` (it writes .local/function_source.tfvars.json)."
  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.function_source.md5))
    error_message = "function_source.md5 must be 32 lower-case hex digits."
  }
}

variable "job_image" {
  type        = string
  description = "Transcribe worker image, e.g. REGION-docker.pkg.dev/PROJECT/audionotes/transcribe@sha256:... Null on the first apply (before an image exists): the jobs are created once it is set."
  default     = null
  validation {
    condition     = var.job_image == null || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_.-]{1,128})$", var.job_image))
    error_message = "job_image must be a full image reference with a tag or an @sha256 digest."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect buckets (force_destroy off), the Firestore database, secrets and jobs from terraform destroy."
  default     = true
  nullable    = false
}

variable "storage_lifecycle" {
  type = object({
    # Colder classes, used only where an object stays in one for its minimum storage
    # duration (Nearline 30, Coldline 90, Archive 365 days) before it is deleted.
    nearline_after = optional(number, 30)
    coldline_after = optional(number, 90)
    archive_after  = optional(number, 365)
    # Deletion ages in days; null means job_retention_days: the audio (the whole inbox,
    # uploads/ and api-uploads/), the results under jobs/ and the content cache under cache/
    # go when the job document does.
    inbox_retention   = optional(number)
    results_retention = optional(number)
    cache_retention   = optional(number)
    sources_retention = optional(number, 365)
    # Versioning keeps an overwritten or deleted generation this long.
    noncurrent_retention = optional(number, 7)
  })
  description = "Object lifecycle in days: deletion ages (null: with the job, job_retention_days), Standard -> Nearline -> Coldline -> Archive where the ages allow, and how long deleted generations are kept."
  default     = {}
  nullable    = false
  validation {
    condition = alltrue([
      for v in [var.storage_lifecycle.inbox_retention, var.storage_lifecycle.results_retention, var.storage_lifecycle.cache_retention, var.storage_lifecycle.sources_retention, var.storage_lifecycle.noncurrent_retention] :
      v == null || try(v >= 1 && floor(v) == v, false)
    ])
    error_message = "Retention ages must be whole days >= 1."
  }
  validation {
    condition = (
      var.storage_lifecycle.nearline_after >= 1 &&
      var.storage_lifecycle.nearline_after < var.storage_lifecycle.coldline_after &&
      var.storage_lifecycle.coldline_after < var.storage_lifecycle.archive_after
    )
    error_message = "Tier ages must increase: 1 <= nearline_after < coldline_after < archive_after."
  }
}

variable "job_retention_days" {
  type        = number
  description = "Days a job document lives before Firestore's TTL deletes it (AUDIONOTES_LIMITS__RETENTION_DAYS, sets expire_at)."
  default     = 30
  nullable    = false
  validation {
    condition     = var.job_retention_days >= 1 && floor(var.job_retention_days) == var.job_retention_days
    error_message = "job_retention_days must be a whole number of days >= 1."
  }
}

variable "transcribe" {
  type = object({
    # Retries of a failed task (AUDIONOTES_EXECUTIONS__MAX_RETRIES; tasks are idempotent).
    max_retries = optional(number, 3)
    # The tier of normal and low priority jobs; high priority always runs on the GPU
    # (AUDIONOTES_EXECUTIONS__BATCH_TIER).
    batch_tier = optional(string, "cpu")
    # The Whisper models the image carries: build it with the same list
    # (docker build --build-arg WHISPER_MODELS="tiny.en base large-v3-turbo"); every function
    # refuses a job that asks for another (AUDIONOTES_TRANSCRIPTION__MODELS).
    models = optional(list(string), ["tiny.en", "base", "large-v3-turbo"])
    # The model of jobs that name none, per tier (AUDIONOTES_TRANSCRIPTION__DEFAULT_MODELS).
    default_models = optional(object({
      cpu = optional(string, "base")
      gpu = optional(string, "large-v3-turbo")
    }), {})
    # Seconds of audio per task (AUDIONOTES_LIMITS__CHUNK_SECONDS); dispatch splits by it.
    chunk_seconds = optional(number, 1200)
    gpu = optional(object({
      cpu         = optional(string, "4")
      memory      = optional(string, "16Gi")
      timeout_s   = optional(number, 3000)
      parallelism = optional(number, 10)
    }), {})
    cpu = optional(object({
      cpu         = optional(string, "4")
      memory      = optional(string, "8Gi")
      timeout_s   = optional(number, 14400)
      parallelism = optional(number, 10)
    }), {})
  })
  description = "The transcribe jobs: the GPU tier (one nvidia-l4 per task) and the CPU tier, and what dispatch decides with (batch tier, default model, chunk length). The task timeouts are also given to dispatch and the worker (AUDIONOTES_EXECUTIONS__GPU_TASK_TIMEOUT_S, AUDIONOTES_EXECUTIONS__CPU_TASK_TIMEOUT_S): dispatch sets each execution's timeout from them."
  default     = {}
  nullable    = false
  validation {
    condition     = var.transcribe.gpu.timeout_s >= 60 && var.transcribe.gpu.timeout_s < 3600
    error_message = "GPU task timeout must be 60..3599 s (Cloud Run's GPU task limit is 1 h); long audio is split into chunks."
  }
  validation {
    condition     = var.transcribe.cpu.timeout_s >= 60 && var.transcribe.cpu.timeout_s <= 86400
    error_message = "CPU task timeout must be 60..86400 s (the settings allow at most 24 h)."
  }
  validation {
    condition     = var.transcribe.max_retries >= 0 && var.transcribe.max_retries <= 10
    error_message = "max_retries must be 0..10."
  }
  validation {
    condition     = contains(["cpu", "gpu"], var.transcribe.batch_tier)
    error_message = "batch_tier must be cpu or gpu (common/config/settings.py Tier)."
  }
  validation {
    # common/domain/whisper_models.py CATALOG (a unit test holds the two lists together).
    condition     = length(var.transcribe.models) > 0 && alltrue([for m in var.transcribe.models : contains(["tiny.en", "base", "small", "medium", "large-v3", "large-v3-turbo", "distil-large-v3", "distil-large-v3.5"], m)])
    error_message = "models must be catalog names: tiny.en, base, small, medium, large-v3, large-v3-turbo, distil-large-v3, distil-large-v3.5."
  }
  validation {
    condition     = contains(var.transcribe.models, var.transcribe.default_models.cpu) && contains(var.transcribe.models, var.transcribe.default_models.gpu)
    error_message = "default_models.cpu and .gpu must be among transcribe.models (the image carries no other)."
  }
  validation {
    # A chunk must at least be transcribable in real time within a GPU task's timeout.
    condition     = var.transcribe.chunk_seconds >= 30 && floor(var.transcribe.chunk_seconds) == var.transcribe.chunk_seconds && var.transcribe.chunk_seconds <= var.transcribe.gpu.timeout_s
    error_message = "chunk_seconds must be a whole number >= 30 (the settings' minimum) and at most the GPU task timeout."
  }
}

variable "function_scaling" {
  type = object({
    on_upload = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 50), concurrency = optional(number, 1) }), {})
    api       = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 20), concurrency = optional(number, 16) }), {})
    dispatch  = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 50), concurrency = optional(number, 1) }), {})
    notes     = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 100), concurrency = optional(number, 1) }), {})
    # dead_letters only sees messages Pub/Sub gave up on; sweep runs one at a time.
    dead_letters = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 10), concurrency = optional(number, 1) }), {})
    sweep        = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 1), concurrency = optional(number, 1) }), {})
  })
  description = "Instances and per-instance concurrency of each function."
  default     = {}
  nullable    = false
}

variable "api" {
  type = object({
    # The API authenticates callers itself (JWT); public means allUsers may reach it.
    public   = optional(bool, true)
    jwks_url = optional(string)
    audience = optional(string)
    # Accepted token issuers (e.g. https://accounts.google.com); empty accepts any.
    issuers         = optional(list(string), [])
    rate_per_minute = optional(number, 60)
    rate_per_hour   = optional(number, 1000)
    # Buckets besides the inbox whose objects every caller may name as gs:// audio_url; the
    # api, dispatch and the worker get read access to them.
    source_buckets = optional(list(string), [])
    invokers       = optional(map(string), {})
    secret_id      = optional(string, "audionotes-jwt-secret")
    # Origins the web page is served from, allowed to PUT uploads to the inbox's signed URLs
    # (CORS). Any by default: the signed URL is the credential, not the origin.
    web_origins = optional(list(string), ["*"])
  })
  description = "The HTTPS API: public reachability, RS256 JWKS URL, audience and issuers (AUDIONOTES_AUTH__JWKS_URL, AUDIONOTES_AUTH__AUDIENCE, AUDIONOTES_AUTH__ISSUERS), rate limits per caller (AUDIONOTES_AUTH__RATE_PER_MINUTE, AUDIONOTES_AUTH__RATE_PER_HOUR), readable source buckets (AUDIONOTES_AUTH__SOURCE_BUCKETS), the web page's origins for browser uploads (the inbox's CORS), the Secret Manager id of the HS256 secret (AUDIONOTES_AUTH__JWT_SECRET)."
  default     = {}
  nullable    = false
  validation {
    condition     = var.api.jwks_url == null || startswith(coalesce(var.api.jwks_url, "https://"), "https://")
    error_message = "api.jwks_url must be an https:// URL."
  }
  validation {
    condition     = var.api.jwks_url == null || var.api.audience != null
    error_message = "api.jwks_url needs api.audience: Google signs every client's ID tokens with the same keys, so without an audience any of them would pass."
  }
  validation {
    condition     = var.api.rate_per_minute >= 1 && var.api.rate_per_hour >= 1
    error_message = "api.rate_per_minute and api.rate_per_hour must be >= 1."
  }
  validation {
    condition     = alltrue([for b in var.api.source_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", b))])
    error_message = "api.source_buckets must be bucket names."
  }
}

variable "llm" {
  type = object({
    model            = optional(string, "gpt-4o-mini")
    daily_budget_usd = optional(number, 50)
    secret_id        = optional(string, "audionotes-openai-api-keys")
    # null: OpenAI's public endpoint.
    openai_base_url = optional(string)
    # HMAC key that signs the webhooks the notes function sends.
    webhook_secret_id = optional(string, "audionotes-webhook-secret")
    # A self-hosted OpenAI-compatible fallback (vLLM, Ollama, llama.cpp): null has none.
    fallback_base_url = optional(string)
    # null: the same model name as the primary.
    fallback_model = optional(string)
    # The fallback rarely needs a key: null creates no secret.
    fallback_api_key_secret_id = optional(string)
  })
  description = "The notes LLM (AUDIONOTES_LLM__MODEL, AUDIONOTES_LLM__DAILY_BUDGET_USD, AUDIONOTES_LLM__OPENAI_BASE_URL), its fallback (AUDIONOTES_LLM__FALLBACK_BASE_URL, AUDIONOTES_LLM__FALLBACK_MODEL) and the Secret Manager ids of its secrets: the OpenAI keys as a JSON list (AUDIONOTES_LLM__OPENAI_API_KEYS), the webhook signing key (AUDIONOTES_WEBHOOKS__SECRET), the fallback key (AUDIONOTES_LLM__FALLBACK_API_KEY)."
  default     = {}
  nullable    = false
  validation {
    condition     = var.llm.daily_budget_usd >= 0
    error_message = "llm.daily_budget_usd must be >= 0."
  }
  validation {
    condition     = alltrue([for u in [var.llm.openai_base_url, var.llm.fallback_base_url] : u == null || can(regex("^https?://", coalesce(u, "https://")))])
    error_message = "llm.openai_base_url and llm.fallback_base_url must be http(s):// URLs."
  }
  validation {
    condition     = var.llm.fallback_base_url != null || (var.llm.fallback_model == null && var.llm.fallback_api_key_secret_id == null)
    error_message = "llm.fallback_model and llm.fallback_api_key_secret_id need llm.fallback_base_url (common/gcp/notes_engine.py uses a fallback only when it has a URL)."
  }
}

variable "enable_local_llm" {
  type        = bool
  description = "Run the self-hosted notes model (run_jobs/llm) as a private Cloud Run service (modules/llm_service), the notes function's fallback: it gets AUDIONOTES_LLM__FALLBACK_BASE_URL, __FALLBACK_MODEL, __FALLBACK_STYLE (json_schema) and __FALLBACK_AUTH (google_id_token), and egress through local_llm.subnetwork. Needs local_llm.subnetwork; nothing is created until local_llm.image is set; excludes llm.fallback_base_url."
  default     = false
  nullable    = false
}

variable "local_llm" {
  type = object({
    # The server image (run_jobs/llm/Dockerfile; BACKEND=cuda12 when gpu), pushed to the
    # image repository. Null on the first apply: the service is created once it is set.
    image = optional(string)
    # The model the image baked in (--build-arg MODEL), common/domain/local_llms.py.
    model = optional(string, "qwen2.5-coder-1.5b-instruct")
    # One nvidia-l4 per instance (4 vCPU, 16 GiB), every layer on the GPU; else 4 vCPU, 8 GiB.
    gpu = optional(bool, false)
    # The GPU variant's model (a bigger one, where the catalog has it); null: model.
    gpu_model     = optional(string)
    max_instances = optional(number, 2)
    # Requests queued per instance behind the one generating (AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH).
    queue_depth = optional(number, 4)
    timeout_s   = optional(number, 600)
    # The subnetwork (name, in region) the notes function's traffic leaves through (Direct VPC
    # egress, all traffic): an internal-ingress service counts a function's request as
    # internal only when it comes through a VPC. It needs Private Google Access (checked at
    # plan) and, for OpenAI and webhooks, Cloud NAT on its network.
    subnetwork = optional(string)
  })
  description = "The self-hosted notes model service (with enable_local_llm): image, model (AUDIONOTES_LOCAL_LLM__MODEL), GPU variant and its model, max instances, queue depth, request timeout, and the subnetwork of the notes function's egress."
  default     = {}
  nullable    = false
  validation {
    # common/domain/local_llms.py LOCAL_LLMS (a unit test holds the two lists together).
    condition     = alltrue([for m in [var.local_llm.model, coalesce(var.local_llm.gpu_model, var.local_llm.model)] : contains(["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"], m)])
    error_message = "local_llm.model and gpu_model must be catalog models: qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct."
  }
  validation {
    condition     = var.local_llm.image == null || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_.-]{1,128})$", coalesce(var.local_llm.image, "x")))
    error_message = "local_llm.image must be a full image reference with a tag or an @sha256 digest."
  }
  validation {
    condition     = var.local_llm.max_instances >= 1 && var.local_llm.max_instances <= 100 && floor(var.local_llm.max_instances) == var.local_llm.max_instances
    error_message = "local_llm.max_instances must be a whole number, 1..100."
  }
  validation {
    condition     = var.local_llm.queue_depth >= 0 && var.local_llm.queue_depth <= 256 && floor(var.local_llm.queue_depth) == var.local_llm.queue_depth
    error_message = "local_llm.queue_depth must be a whole number, 0..256 (common/config/settings.py LocalLlm)."
  }
  validation {
    condition     = var.local_llm.timeout_s >= 60 && var.local_llm.timeout_s <= 3600
    error_message = "local_llm.timeout_s must be 60..3600 s."
  }
}

variable "log_level" {
  type        = string
  description = "AUDIONOTES_LOG_LEVEL of every function and job."
  default     = "INFO"
  nullable    = false
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "alerting" {
  type = object({
    notification_channels = optional(list(string), [])
    failure_ratio         = optional(number, 0.05)
    stage_latency_s       = optional(map(number))
    # Alert when a dead letter has waited this long for the dead_letters function.
    dead_letter_age_s = optional(number, 900)
  })
  description = "Alert notification channels and thresholds (null stage_latency_s keeps the monitoring module's SLA table; dead_letter_age_s: seconds a dead letter may wait for the dead_letters function)."
  default     = {}
  nullable    = false
}

variable "sweep" {
  type = object({
    # Cron, in UTC: how often Cloud Scheduler calls the sweep function.
    schedule = optional(string, "*/5 * * * *")
    # A job is swept once it has been this long in QUEUED, DISPATCHED, TRANSCRIBED or
    # SUMMARIZING (functions/sweep.py SweepRequest.older_than_s): longer than any healthy stay.
    older_than_s = optional(number, 900)
  })
  description = "The sweep of stuck jobs: the Cloud Scheduler schedule (cron, UTC) and the age in seconds after which a job in a waiting state gets its message again (the body {\"older_than_s\": N} of each call)."
  default     = {}
  nullable    = false
  validation {
    condition     = can(regex("^\\S+( \\S+){4}$", var.sweep.schedule))
    error_message = "sweep.schedule must be a five-field cron expression, e.g. \"*/5 * * * *\"."
  }
  validation {
    condition     = var.sweep.older_than_s >= 60 && var.sweep.older_than_s <= 604800 && floor(var.sweep.older_than_s) == var.sweep.older_than_s
    error_message = "sweep.older_than_s must be whole seconds, 60..604800 (functions/sweep.py accepts at most 7 days; under a minute would republish healthy jobs' messages)."
  }
}

variable "gpu_quota" {
  type        = number
  description = "The Cloud Run L4 GPUs granted to this project in the region (AUDIONOTES_WORKERS__MAX_GPU is held to it). The default Cloud Run GPU quota is zero: request it in the Cloud console under IAM & Admin -> Quotas, service Cloud Run Admin API (run.googleapis.com), region REGION; the jobs run without zonal redundancy (gpu_zonal_redundancy_disabled), so the quota they use is \"Total Nvidia L4 GPU allocation without zonal redundancy, per project per region\" (beside \"Total Nvidia L4 GPU allocation, per project per region\", the zonal-redundant one services use). With gcloud: find its id with `gcloud beta quotas info list --service=run.googleapis.com --project=PROJECT`, then `gcloud beta quotas preferences create --service=run.googleapis.com --quota-id=ID --preferred-value=N --dimensions=region=REGION --project=PROJECT`. max_gpu_workers may not exceed it; with 0 no GPU worker starts (high-priority work waits in its queue)."
  default     = 0
  nullable    = false
  validation {
    condition     = var.gpu_quota >= 0 && var.gpu_quota <= 1000 && floor(var.gpu_quota) == var.gpu_quota
    error_message = "gpu_quota must be a whole number of GPUs, 0..1000."
  }
}

variable "max_gpu_workers" {
  type        = number
  description = "GPU worker tasks (one nvidia-l4 each) running at once, at most (AUDIONOTES_WORKERS__MAX_GPU): dispatch and sweep start no more. Null: 4 (the Settings default), held to gpu_quota (min(4, gpu_quota)). An explicit value above gpu_quota is rejected at plan."
  default     = null
  validation {
    condition     = var.max_gpu_workers == null || try(var.max_gpu_workers >= 0 && var.max_gpu_workers <= 1000 && floor(var.max_gpu_workers) == var.max_gpu_workers, false)
    error_message = "max_gpu_workers must be a whole number, 0..1000 (common/config/settings.py Workers.max_gpu)."
  }
}

variable "max_cpu_workers" {
  type        = number
  description = "CPU worker tasks running at once, at most (AUDIONOTES_WORKERS__MAX_CPU): dispatch and sweep start no more; 0 leaves the CPU tier's work in its queues."
  default     = 8
  nullable    = false
  validation {
    condition     = var.max_cpu_workers >= 0 && var.max_cpu_workers <= 1000 && floor(var.max_cpu_workers) == var.max_cpu_workers
    error_message = "max_cpu_workers must be a whole number, 0..1000 (common/config/settings.py Workers.max_cpu)."
  }
}

variable "workers" {
  type = object({
    # workers: chunks go to the work queues and pull workers take them; per_job: one
    # execution per job, one task per chunk (the earlier design).
    mode = optional(string, "workers")
    # Queued chunks per running worker dispatch aims for (1: latency; more: fewer starts).
    backlog_per_worker = optional(number, 2)
    # A worker whose queues stay empty this long exits (billed idle tail).
    idle_s = optional(number, 30)
    # A worker takes no new chunk with less than this left before its task timeout.
    reserve_s = optional(number, 300)
    # The work subscriptions' ack deadline, which the worker extends while it transcribes.
    ack_deadline_s = optional(number, 60)
    # How long a worker waits before asking again when its queues are empty.
    poll_s = optional(number, 1)
    # How long one dispatch's scaling decision holds the tier's lease (worker_pools).
    scale_lease_s = optional(number, 30)
  })
  description = "The pull workers (common/config/settings.py Workers; the defaults are its defaults): mode and chunks per worker (AUDIONOTES_WORKERS__MODE, __BACKLOG_PER_WORKER) and the scaling lease (__SCALE_LEASE_S) for dispatch and sweep; idle exit, reserve before the task timeout, ack deadline and poll interval (__IDLE_S, __RESERVE_S, __ACK_DEADLINE_S, __POLL_S) for the workers. ack_deadline_s is also the work subscriptions' ack deadline. The caps are max_gpu_workers and max_cpu_workers."
  default     = {}
  nullable    = false
  validation {
    condition     = contains(["workers", "per_job"], var.workers.mode)
    error_message = "workers.mode must be workers or per_job (common/config/settings.py DispatchMode)."
  }
  validation {
    condition     = var.workers.ack_deadline_s >= 10 && var.workers.ack_deadline_s <= 600 && floor(var.workers.ack_deadline_s) == var.workers.ack_deadline_s
    error_message = "workers.ack_deadline_s must be whole seconds, 10..600 (the Pub/Sub limits)."
  }
  validation {
    condition     = var.workers.backlog_per_worker > 0 && var.workers.backlog_per_worker <= 1000
    error_message = "workers.backlog_per_worker must be above 0 and at most 1000."
  }
  validation {
    condition = (
      var.workers.idle_s >= 0 && var.workers.idle_s <= 3600 &&
      var.workers.reserve_s >= 0 && var.workers.reserve_s <= 3600 &&
      var.workers.poll_s > 0 && var.workers.poll_s <= 60 &&
      var.workers.scale_lease_s >= 5 && var.workers.scale_lease_s <= 600 && floor(var.workers.scale_lease_s) == var.workers.scale_lease_s
    )
    error_message = "workers: idle_s and reserve_s 0..3600, poll_s above 0 and at most 60, scale_lease_s whole seconds 5..600 (the Settings limits)."
  }
}
