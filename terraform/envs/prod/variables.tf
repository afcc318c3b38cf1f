# This root's inputs, set in its terraform.tfvars. Each is passed unchanged to
# modules/audionotes, whose variables.tf holds the types, defaults, validation and full
# descriptions: a bad value is rejected at plan there, naming the variable. Null (the default
# here) means "the module's default".

variable "project" {
  type        = string
  description = "GCP project ID (AUDIONOTES_PROJECT)."
}

variable "region" {
  type        = string
  description = "Region of functions, jobs, buckets and the image repository; null: us-central1."
  default     = null
}

variable "firestore_location" {
  type        = string
  description = "Firestore location; null: the region."
  default     = null
}

variable "buckets" {
  type        = any
  description = "Bucket names: { inbox, results, sources (optional) }."
}

variable "function_source" {
  type        = any
  description = "The functions' source zip: { path, md5 }, from .local/function_source.tfvars.json."
}

variable "job_image" {
  type        = string
  description = "Transcribe worker image (tag or @sha256 digest); null until the first image is pushed."
  default     = null
}

variable "deletion_protection" {
  type        = bool
  description = "Protect buckets, database, secrets and jobs from destroy; null: true."
  default     = null
}

variable "storage_lifecycle" {
  type        = any
  description = "Object lifecycle in days: retention of the inbox, results, cache and sources (null: with the job), storage class ages, noncurrent_retention."
  default     = null
}

variable "job_retention_days" {
  type        = number
  description = "Days a job document lives (AUDIONOTES_LIMITS__RETENTION_DAYS); null: 30."
  default     = null
}

variable "transcribe" {
  type        = any
  description = "The transcribe jobs: max_retries, batch_tier, default_model, chunk_seconds and the gpu and cpu tiers (cpu, memory, timeout_s, parallelism)."
  default     = null
}

variable "function_scaling" {
  type        = any
  description = "Per function: min_instances, max_instances, concurrency."
  default     = null
}

variable "api" {
  type        = any
  description = "The HTTPS API: public, jwks_url, audience, issuers, rate_per_minute, rate_per_hour, source_buckets, invokers, secret_id."
  default     = null
}

variable "llm" {
  type        = any
  description = "The notes LLM: model, daily_budget_usd, openai_base_url, the fallback (fallback_base_url, fallback_model) and its secrets' ids."
  default     = null
}

variable "log_level" {
  type        = string
  description = "AUDIONOTES_LOG_LEVEL of every function and job; null: INFO."
  default     = null
}

variable "alerting" {
  type        = any
  description = "Alert notification_channels, failure_ratio, stage_latency_s."
  default     = null
}

variable "sweep" {
  type        = any
  description = "The sweep of stuck jobs: Cloud Scheduler schedule (cron, UTC) and older_than_s."
  default     = null
}
