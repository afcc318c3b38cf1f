variable "project" {
  type        = string
  description = "Project ID of the secrets."
}

variable "secrets" {
  type = map(object({
    secret_id = string
    # The only identities allowed to read the secret's payload: static key => IAM member (the
    # keys must be known at plan time, the members may come from resources being created).
    accessors = map(string)
  }))
  description = "Secrets keyed by purpose (jwt_secret, openai_api_keys). Terraform creates the secret and its IAM; the value is added out of band (gcloud secrets versions add) so it never enters the state."
  validation {
    condition     = alltrue([for s in values(var.secrets) : can(regex("^[a-zA-Z0-9_-]{1,255}$", s.secret_id))])
    error_message = "secret_id must be 1-255 characters of letters, digits, '_' and '-'."
  }
  validation {
    condition     = alltrue([for s in values(var.secrets) : length(s.accessors) > 0])
    error_message = "Every secret needs at least one accessor (otherwise nothing can use it)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on every secret."
  default     = {}
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the secrets (and with them every version)."
  default     = true
}
