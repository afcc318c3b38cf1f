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
    jobs = string
  })
  description = "Collection names (common/settings.py Collections)."
}

variable "job_fields" {
  type = object({
    owner      = optional(string, "owner")
    state      = optional(string, "state")
    created_at = optional(string, "created_at")
    expire_at  = optional(string, "expire_at")
  })
  description = "Field names of a job document that the indexes and the TTL policy refer to."
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
