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
    error_message = "Bucket names must match ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ (as common/config/settings.py checks)."
  }
}

variable "tiers" {
  type = object({
    nearline_after = optional(number, 30)
    coldline_after = optional(number, 90)
    archive_after  = optional(number, 365)
  })
  description = "Ages in days at which objects move Standard -> Nearline -> Coldline -> Archive; a class is used only where an object would stay in it for its minimum storage duration before deletion."
  default     = {}
  validation {
    condition = (
      var.tiers.nearline_after >= 1 &&
      var.tiers.nearline_after < var.tiers.coldline_after &&
      var.tiers.coldline_after < var.tiers.archive_after
    )
    error_message = "Tier ages must increase: 1 <= nearline_after < coldline_after < archive_after."
  }
}

variable "retention" {
  type = map(object({
    bucket = string
    # Only objects under these prefixes; null means the whole bucket.
    prefixes = optional(list(string))
    days     = number
    # Whether colder classes may be used before deletion (where the ages allow).
    tiering = optional(bool, true)
  }))
  description = "Deletion ages, keyed by a static name (e.g. inbox_audio): bucket key (inbox, results, sources), optional prefixes, age in days. Every bucket needs at least one entry."
  validation {
    condition     = alltrue([for r in values(var.retention) : contains(["inbox", "results", "sources"], r.bucket)])
    error_message = "bucket must be one of inbox, results, sources."
  }
  validation {
    condition     = alltrue([for r in values(var.retention) : r.days >= 1 && floor(r.days) == r.days])
    error_message = "Retention ages must be whole days >= 1."
  }
  validation {
    condition     = alltrue([for r in values(var.retention) : r.prefixes == null || alltrue([for p in coalesce(r.prefixes, []) : endswith(p, "/") && !startswith(p, "/")])])
    error_message = "Prefixes must be relative folders ending in '/', e.g. uploads/."
  }
  validation {
    condition     = alltrue([for b in ["inbox", "results", "sources"] : anytrue([for r in values(var.retention) : r.bucket == b])])
    error_message = "Every bucket (inbox, results, sources) needs a retention entry: nothing may be kept forever by accident."
  }
}

variable "noncurrent_retention" {
  type        = number
  description = "Days an overwritten or deleted generation is kept (versioning) before it is deleted."
  default     = 7
  validation {
    condition     = var.noncurrent_retention >= 1 && floor(var.noncurrent_retention) == var.noncurrent_retention
    error_message = "noncurrent_retention must be whole days >= 1."
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
    # Limits the grant to objects under this folder (an IAM condition); null: the whole bucket.
    prefix = optional(string)
  }))
  description = "Bucket grants keyed by a static name (e.g. transcribe_reads_inbox): bucket key (inbox, results, sources), role (a predefined object role, or objectReadDelete: this module's custom role), member and optional prefix."
  default     = {}
  validation {
    condition     = alltrue([for g in values(var.iam) : contains(["inbox", "results", "sources"], g.bucket)])
    error_message = "bucket must be one of inbox, results, sources."
  }
  validation {
    condition = alltrue([
      for g in values(var.iam) :
      contains(["roles/storage.objectViewer", "roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.legacyBucketReader", "objectReadDelete"], g.role)
    ])
    error_message = "Only object-level roles may be granted on the buckets (objectViewer, objectCreator, objectUser, legacyBucketReader, objectReadDelete)."
  }
  validation {
    condition     = alltrue([for g in values(var.iam) : g.prefix == null || (endswith(coalesce(g.prefix, "x/"), "/") && !startswith(coalesce(g.prefix, "x/"), "/"))])
    error_message = "prefix must be a relative folder ending in '/', e.g. api-uploads/."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on every bucket."
  default     = {}
}

variable "upload_origins" {
  type        = map(list(string))
  description = "Bucket key => origins that may PUT to its signed URLs from a browser (CORS); the inbox takes the web page's uploads."
  default     = {}
}
