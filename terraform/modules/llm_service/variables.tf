variable "project" {
  type        = string
  description = "Project ID of the service."
}

variable "region" {
  type        = string
  description = "Region of the service (for gpu: one with Cloud Run L4 GPUs, e.g. us-central1, europe-west4)."
}

variable "name" {
  type        = string
  description = "Cloud Run service name."
  default     = "audionotes-llm"
  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", var.name))
    error_message = "name must be lower-case letters, digits and '-' (a Cloud Run service name)."
  }
}

variable "account_id" {
  type        = string
  description = "Account ID of the service's own identity (no roles)."
  default     = "audionotes-llm"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.account_id))
    error_message = "account_id must be 6-30 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "image" {
  type        = string
  description = "The server image (run_jobs/llm/Dockerfile; BACKEND=cuda12 for gpu), preferably pinned by digest. It bakes in one model: model (or gpu_model) must be that one."
  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_.-]{1,128})$", var.image))
    error_message = "image must be a full image reference with a tag or an @sha256 digest."
  }
}

variable "model" {
  type        = string
  description = "Model id (common/domain/local_llms.py) of the CPU variant: AUDIONOTES_LOCAL_LLM__MODEL."
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*$", var.model))
    error_message = "model must be a model id (common/config/settings.py LocalLlm.model)."
  }
}

variable "gpu_model" {
  type        = string
  description = "Model id of the GPU variant, typically a bigger one; null: model."
  default     = null
  validation {
    condition     = var.gpu_model == null || can(regex("^[a-z0-9][a-z0-9._-]*$", coalesce(var.gpu_model, "x")))
    error_message = "gpu_model must be a model id (common/config/settings.py LocalLlm.model)."
  }
}

variable "gpu" {
  type        = bool
  description = "The GPU variant: one nvidia-l4, 4 vCPU / 16 GiB, every layer on the GPU. Otherwise 4 vCPU / 8 GiB on CPU."
  default     = false
}

variable "max_instances" {
  type        = number
  description = "Most instances at once (the minimum is 0: it scales to zero). With gpu, each is one L4 of the project's Cloud Run GPU quota."
  default     = 2
  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number, 1..100."
  }
}

variable "queue_depth" {
  type        = number
  description = "Requests an instance queues behind the one it generates (AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH); its concurrency is 1 + this."
  default     = 4
  validation {
    condition     = var.queue_depth >= 0 && var.queue_depth <= 256 && floor(var.queue_depth) == var.queue_depth
    error_message = "queue_depth must be a whole number, 0..256 (common/config/settings.py LocalLlm)."
  }
}

variable "timeout_s" {
  type        = number
  description = "Request timeout in seconds: a queued request's wait plus a long generation (4,000 tokens at CPU speed are minutes)."
  default     = 600
  validation {
    condition     = var.timeout_s >= 60 && var.timeout_s <= 3600 && floor(var.timeout_s) == var.timeout_s
    error_message = "timeout_s must be whole seconds, 60..3600 (Cloud Run's request limit)."
  }
}

variable "invoker" {
  type        = string
  description = "The one IAM member granted roles/run.invoker: the notes function's service account (serviceAccount:EMAIL)."
  validation {
    condition     = startswith(var.invoker, "serviceAccount:")
    error_message = "invoker must be a service account member (serviceAccount:EMAIL)."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the service."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels on the service."
  default     = {}
}
