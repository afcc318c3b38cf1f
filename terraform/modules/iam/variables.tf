variable "project" {
  type        = string
  description = "Project ID everything is created in."
}

variable "services" {
  type        = set(string)
  description = "APIs to enable (left enabled on destroy: other things in the project may use them)."
  default = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
  validation {
    condition     = alltrue([for s in var.services : can(regex("^[a-z0-9-]+\\.googleapis\\.com$", s))])
    error_message = "Each service must look like NAME.googleapis.com."
  }
}

variable "account_prefix" {
  type        = string
  description = "Prefix of every service account ID (<prefix>-<component>, at most 30 characters)."
  default     = "audionotes"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,16}$", var.account_prefix))
    error_message = "account_prefix must be 3-17 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "service_accounts" {
  type = map(object({
    description = string
    # Project-level roles. Resource-level grants (buckets, topics, secrets, jobs) are made by
    # the module that owns the resource; only what has no narrower scope belongs here.
    project_roles = optional(set(string), [])
  }))
  description = "One service account per component, keyed by component (on_upload, api, ...)."
  validation {
    condition     = alltrue([for k, _ in var.service_accounts : can(regex("^[a-z][a-z0-9_]{1,11}$", k))])
    error_message = "Component keys must be 2-12 characters of a-z, 0-9 and '_'."
  }
  validation {
    # Least privilege: basic (primitive) roles grant thousands of permissions.
    condition = alltrue(flatten([
      for _, sa in var.service_accounts : [
        for r in sa.project_roles : !contains(["roles/owner", "roles/editor", "roles/viewer"], r)
      ]
    ]))
    error_message = "Basic roles (roles/owner, roles/editor, roles/viewer) are not allowed; use predefined or custom roles."
  }
}

variable "gcs_service_agent_email" {
  type        = string
  description = "The Cloud Storage service agent (data.google_storage_project_service_account): Eventarc's GCS triggers need it to publish to Pub/Sub."
}

variable "pubsub_service_agent_email" {
  type        = string
  description = "The Pub/Sub service agent (service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com): it mints the OIDC tokens of push subscriptions."
}

variable "push_identity" {
  type        = string
  description = "Key in service_accounts of the identity Pub/Sub push subscriptions authenticate as."
  default     = "pubsub_push"
}

variable "self_signers" {
  type        = set(string)
  description = "Components that sign (V4 signed URLs through IAM signBlob) as themselves: each gets roles/iam.serviceAccountTokenCreator on its own account only."
  default     = []
}
