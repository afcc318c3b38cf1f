variable "project" {
  type        = string
  description = "Project ID of the jobs and the image repository."
}

variable "region" {
  type        = string
  description = "Region of the jobs (one with L4 GPUs for Cloud Run, e.g. us-central1, europe-west4)."
}

variable "repository_id" {
  type        = string
  description = "Artifact Registry Docker repository for the job image."
  default     = "audionotes"
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "repository_id must be lower-case letters, digits and '-'."
  }
}

variable "image" {
  type        = string
  description = "Container image of the transcribe worker (run_jobs/transcribe/Dockerfile), preferably pinned by digest. Null until the first image is pushed (then no job is created)."
  default     = null
}

variable "service_account_email" {
  type        = string
  description = "Identity the job tasks run as."
}

variable "service_account_id" {
  type        = string
  description = "The same account's id (projects/P/serviceAccounts/EMAIL), for the actAs grant to runners."
}

variable "common_env" {
  type        = map(string)
  description = "Environment variables every job task gets (the AUDIONOTES_* names from common/config/settings.py)."
  validation {
    condition     = alltrue([for k in keys(var.common_env) : can(regex("^AUDIONOTES_[A-Z0-9_]+$", k))])
    error_message = "common_env keys must be AUDIONOTES_* settings variables."
  }
}

variable "jobs" {
  type = map(object({
    gpu         = optional(bool, false)
    accelerator = optional(string, "nvidia-l4")
    cpu         = optional(string, "4")
    memory      = optional(string, "16Gi")
    timeout_s   = optional(number, 3000)
    max_retries = optional(number, 3)
    parallelism = optional(number, 0)
    task_count  = optional(number, 1)
    env         = optional(map(string), {})
    # env var name => Secret Manager secret_id (latest version).
    secret_env = optional(map(string), {})
  }))
  description = "Jobs keyed by name (common/config/settings.py RunJobs). dispatch overrides task_count and env per execution; parallelism caps concurrent tasks per execution (0 = as many as quota allows)."
  validation {
    condition     = alltrue([for k, _ in var.jobs : can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", k))])
    error_message = "Job names must match ^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$ (as common/config/settings.py checks)."
  }
  validation {
    # A GPU task must finish inside Cloud Run's 1 h GPU limit: long audio is chunked instead.
    condition     = alltrue([for j in values(var.jobs) : j.timeout_s >= 60 && (j.gpu ? j.timeout_s < 3600 : j.timeout_s <= 86400)])
    error_message = "timeout_s must be >= 60, below 3600 for GPU jobs and at most 86400 otherwise."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : j.max_retries >= 0 && j.max_retries <= 10 && j.parallelism >= 0 && j.task_count >= 1])
    error_message = "max_retries must be 0..10, parallelism >= 0, task_count >= 1."
  }
  validation {
    # The image sets these to its baked-in models (run_jobs/transcribe/Dockerfile).
    condition     = alltrue([for j in values(var.jobs) : length(setintersection(keys(j.env), ["AUDIONOTES_TRANSCRIPTION__MODELS", "AUDIONOTES_TRANSCRIPTION__CACHE_DIR"])) == 0])
    error_message = "AUDIONOTES_TRANSCRIPTION__MODELS and __CACHE_DIR come from the image; do not set them on the jobs."
  }
  validation {
    condition     = alltrue([for j in values(var.jobs) : !j.gpu || (tonumber(j.cpu) >= 4 && contains(["nvidia-l4", "nvidia-rtx-pro-6000"], j.accelerator))])
    error_message = "GPU jobs need at least 4 vCPU and a Cloud Run accelerator (nvidia-l4)."
  }
}

variable "runners" {
  type        = map(string)
  description = "static key => IAM member allowed to run the jobs with overrides and get and list their executions (the dispatch and sweep functions, which launch workers); each also gets actAs on the jobs' identity."
  default     = {}
}

variable "cancellers" {
  type        = map(string)
  description = "static key => IAM member allowed to cancel the jobs' executions (the api function, for DELETE /v1/jobs)."
  default     = {}
}

variable "execution_viewers" {
  type        = map(string)
  description = "static key => IAM member allowed only to get the jobs' executions (the dead_letters function: is a job's execution still alive?)."
  default     = {}
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the jobs."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels on the jobs and the repository."
  default     = {}
}
