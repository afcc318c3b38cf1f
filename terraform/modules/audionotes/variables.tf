# Every input of the system, with its type, defaults and validation: the environment roots
# (envs/<env>/variables.tf) pass their values through unchecked, so a bad value in a root's
# tfvars is rejected here, at plan, naming the variable. Inputs with a default are not
# nullable: a root passes null for "not set" and gets the default below.

variable "environment" {
  type        = string
  description = "Environment name (AUDIONOTES_ENVIRONMENT and the environment label), e.g. dev or prod."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.environment))
    error_message = "environment must be 3-16 characters of a-z, 0-9 and '-' (it is a label value)."
  }
}

variable "project" {
  type        = string
  description = "GCP project ID (AUDIONOTES_PROJECT)."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a GCP project ID (as common/settings.py checks)."
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
    error_message = "Bucket names must match ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ (as common/settings.py checks)."
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
    nearline_after       = optional(number, 30)
    coldline_after       = optional(number, 90)
    archive_after        = optional(number, 365)
    inbox_retention      = optional(number, 400)
    results_retention    = optional(number, 1095)
    noncurrent_retention = optional(number, 30)
  })
  description = "Object lifecycle in days: Standard -> Nearline -> Coldline -> Archive, then deletion at the retention age."
  default     = {}
  nullable    = false
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
    # Retries of a failed task (AUDIONOTES_TRANSCRIPTION__MAX_RETRIES; tasks are idempotent).
    max_retries = optional(number, 3)
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
  description = "The transcribe jobs: the GPU tier (one nvidia-l4 per task) and the CPU tier. The task timeouts are also given to dispatch and the worker (AUDIONOTES_TRANSCRIPTION__GPU_TASK_TIMEOUT_S, AUDIONOTES_TRANSCRIPTION__CPU_TASK_TIMEOUT_S), which size the chunks to fit."
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
}

variable "function_scaling" {
  type = object({
    on_upload = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 50), concurrency = optional(number, 1) }), {})
    api       = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 20), concurrency = optional(number, 16) }), {})
    dispatch  = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 50), concurrency = optional(number, 1) }), {})
    notes     = optional(object({ min_instances = optional(number, 0), max_instances = optional(number, 100), concurrency = optional(number, 1) }), {})
  })
  description = "Instances and per-instance concurrency of each function."
  default     = {}
  nullable    = false
}

variable "api" {
  type = object({
    # The API authenticates callers itself (JWT); public means allUsers may reach it.
    public    = optional(bool, true)
    jwks_url  = optional(string)
    audience  = optional(string)
    invokers  = optional(map(string), {})
    secret_id = optional(string, "audionotes-jwt-secret")
  })
  description = "The HTTPS API: public reachability, RS256 JWKS URL and audience (AUDIONOTES_AUTH__JWKS_URL, AUDIONOTES_AUTH__AUDIENCE), the Secret Manager id of the HS256 secret (AUDIONOTES_AUTH__JWT_SECRET)."
  default     = {}
  nullable    = false
  validation {
    condition     = var.api.jwks_url == null || startswith(coalesce(var.api.jwks_url, "https://"), "https://")
    error_message = "api.jwks_url must be an https:// URL."
  }
}

variable "llm" {
  type = object({
    model            = optional(string, "gpt-4o-mini")
    daily_budget_usd = optional(number, 50)
    secret_id        = optional(string, "audionotes-openai-api-keys")
    # HMAC key that signs the webhooks the notes function sends.
    webhook_secret_id = optional(string, "audionotes-webhook-secret")
    # A self-hosted fallback endpoint rarely needs a key: null creates no secret.
    fallback_api_key_secret_id = optional(string)
  })
  description = "The notes LLM (AUDIONOTES_LLM__MODEL, AUDIONOTES_LLM__DAILY_BUDGET_USD) and the Secret Manager ids of its secrets: the OpenAI keys as a JSON list (AUDIONOTES_LLM__OPENAI_API_KEYS), the webhook signing key (AUDIONOTES_LLM__WEBHOOK_SECRET), the fallback key (AUDIONOTES_LLM__FALLBACK_API_KEY)."
  default     = {}
  nullable    = false
  validation {
    condition     = var.llm.daily_budget_usd >= 0
    error_message = "llm.daily_budget_usd must be >= 0."
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
  })
  description = "Alert notification channels and thresholds (null stage_latency_s keeps the monitoring module's SLA table)."
  default     = {}
  nullable    = false
}
