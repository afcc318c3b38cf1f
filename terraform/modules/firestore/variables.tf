variable "project" {
  type        = string
  description = "Project ID of the database."
}

variable "location" {
  type        = string
  description = "Firestore location: a multi-region (nam5, eur3) or a region (us-central1)."
}

variable "database" {
  type        = string
  description = "Database ID. The client libraries use \"(default)\" unless told otherwise."
  default     = "(default)"
}

variable "collections" {
  type = object({
    jobs         = string
    rate_limits  = string
    breakers     = string
    spend        = string
    batch_lanes  = string
    worker_pools = string
  })
  description = "Collection names (common/config/settings.py Collections)."
}

variable "ttl_fields" {
  type        = map(string)
  description = "Collection key (of collections) => the timestamp field its TTL policy deletes documents by."
  default = {
    jobs        = "expire_at"
    rate_limits = "expire_at"
  }
  validation {
    condition     = alltrue([for k in keys(var.ttl_fields) : contains(["jobs", "rate_limits", "breakers", "spend"], k)])
    error_message = "ttl_fields keys must be collection keys: jobs, rate_limits, breakers, spend."
  }
}

variable "job_fields" {
  type = object({
    owner      = optional(string, "owner")
    state      = optional(string, "state")
    created_at = optional(string, "created_at")
    batch_lane = optional(string, "coordination.batch_lane")
    # The pull workers' backlog (common/gcp/job_store.py WORK_TIER_FIELD, WORK_CHUNKS_FIELD).
    work_tier   = optional(string, "coordination.work_tier")
    work_chunks = optional(string, "coordination.work_chunks")
  })
  description = "Field paths of a job document that the composite indexes refer to."
  default     = {}
}

variable "backup_retention" {
  type        = string
  description = "How long each daily backup is kept (seconds, at most 14 weeks)."
  default     = "1209600s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.backup_retention)) && tonumber(trimsuffix(var.backup_retention, "s")) >= 86400 && tonumber(trimsuffix(var.backup_retention, "s")) <= 8467200
    error_message = "backup_retention must be like \"1209600s\", between 1 day and 14 weeks."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect the database from deletion (delete_protection_state) and abandon it on destroy."
  default     = true
}
