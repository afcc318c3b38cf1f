variable "project" {
  type        = string
  description = "Project ID the buckets belong to."
}

variable "location" {
  type        = string
  description = "Bucket location. Single region, the functions' region: Eventarc's GCS trigger must be in the bucket's region and the jobs read audio from it."
}

variable "names" {
  type = object({
    inbox   = string
    results = string
    sources = string
  })
  description = "Bucket names: inbox (uploads, settings buckets.inbox), results (settings buckets.results) and sources (function source archives)."
  validation {
    condition     = alltrue([for n in values(var.names) : can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", n))])
    error_message = "Bucket names must match ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ (as common/settings.py checks)."
  }
}

variable "lifecycle_days" {
  type = object({
    nearline_after = optional(number, 30)
    coldline_after = optional(number, 90)
    archive_after  = optional(number, 365)
    # Deletion: audio in the inbox, transcripts and notes in results.
    inbox_retention   = optional(number, 400)
    results_retention = optional(number, 1095)
    # Versioning keeps overwritten or deleted objects this long, then deletes them.
    noncurrent_retention = optional(number, 30)
  })
  description = "Lifecycle ages in days: Standard -> Nearline -> Coldline -> Archive, then deletion. A tier at or after the deletion age is skipped."
  default     = {}
  validation {
    condition = (
      var.lifecycle_days.nearline_after >= 1 &&
      var.lifecycle_days.nearline_after < var.lifecycle_days.coldline_after &&
      var.lifecycle_days.coldline_after < var.lifecycle_days.archive_after
    )
    error_message = "Tier ages must increase: 1 <= nearline_after < coldline_after < archive_after."
  }
  validation {
    condition = alltrue([
      for v in [var.lifecycle_days.inbox_retention, var.lifecycle_days.results_retention, var.lifecycle_days.noncurrent_retention] :
      v >= 1 && floor(v) == v
    ])
    error_message = "Retention ages must be whole days >= 1."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "When true, Terraform refuses to destroy a bucket that still holds objects (force_destroy = false)."
  default     = true
}

variable "iam" {
  type = map(object({
    bucket = string
    role   = string
    member = string
  }))
  description = "Bucket grants keyed by a static name (e.g. transcribe_reads_inbox): bucket key (inbox, results, sources), role and member."
  default     = {}
  validation {
    condition     = alltrue([for g in values(var.iam) : contains(["inbox", "results", "sources"], g.bucket)])
    error_message = "bucket must be one of inbox, results, sources."
  }
  validation {
    condition = alltrue([
      for g in values(var.iam) :
      contains(["roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.legacyBucketReader"], g.role)
    ])
    error_message = "Only object-level roles may be granted on the buckets (objectViewer, objectCreator, objectUser, legacyBucketReader)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on every bucket."
  default     = {}
}
