variable "project" {
  type        = string
  description = "Project ID of the functions."
}

variable "region" {
  type        = string
  description = "Region of the functions (and of the Eventarc trigger: the inbox bucket's region)."
}

variable "source_archive" {
  type = object({
    bucket = string
    path   = string
    md5    = string
  })
  description = "The packaged source (terraform/package_functions.py): bucket to upload it to, local zip path and its hex MD5. The object is named by the MD5, so a code change redeploys and an unchanged one does not."
  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.source_archive.md5))
    error_message = "source_archive.md5 must be 32 lower-case hex digits (md5sum of the zip)."
  }
  validation {
    condition     = endswith(var.source_archive.path, ".zip")
    error_message = "source_archive.path must be a .zip archive."
  }
}

variable "runtime" {
  type        = string
  description = "Cloud Functions Python runtime."
  default     = "python312"
  validation {
    condition     = can(regex("^python3[0-9]{2}$", var.runtime))
    error_message = "runtime must be a Python runtime such as python312."
  }
}

variable "build_service_account" {
  type        = string
  description = "Service account id (projects/P/serviceAccounts/EMAIL) Cloud Build uses to build the functions."
}

variable "common_env" {
  type        = map(string)
  description = "Environment variables every function gets (the AUDIONOTES_* names from common/config/settings.py)."
  validation {
    condition     = alltrue([for k in keys(var.common_env) : can(regex("^AUDIONOTES_[A-Z0-9_]+$", k))])
    error_message = "common_env keys must be AUDIONOTES_* settings variables."
  }
}

variable "functions" {
  type = map(object({
    entry_point           = string
    description           = optional(string, "")
    service_account_email = string
    env                   = optional(map(string), {})
    # env var name => Secret Manager secret_id (version "latest", resolved at instance start).
    secret_env    = optional(map(string), {})
    ingress       = optional(string, "ALLOW_INTERNAL_ONLY")
    timeout_s     = optional(number, 60)
    memory        = optional(string, "512Mi")
    cpu           = optional(string, "1")
    min_instances = optional(number, 0)
    max_instances = optional(number, 100)
    concurrency   = optional(number, 1)
    # static key => IAM member granted roles/run.invoker on the function's Cloud Run service.
    invokers = optional(map(string), {})
    # Direct VPC egress: the function's traffic leaves through this subnetwork (self links).
    # ALL_TRAFFIC is what makes its calls to an internal-ingress Cloud Run service internal.
    vpc = optional(object({
      network    = string
      subnetwork = string
      egress     = optional(string, "VPC_EGRESS_ALL_TRAFFIC")
    }))
    # Eventarc Cloud Storage trigger (on_upload). Pub/Sub consumers use push subscriptions
    # from the pubsub module instead: see the comment there.
    storage_trigger = optional(object({
      event_type            = string
      bucket                = string
      service_account_email = string
      retry                 = optional(bool, true)
    }))
  }))
  description = "Functions keyed by their deployed name (e.g. on-upload => entry point on_upload)."
  validation {
    condition     = alltrue([for k, _ in var.functions : can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", k))])
    error_message = "Function names must be lower-case letters, digits and '-' (they are also Cloud Run service names)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], f.ingress)])
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.vpc == null || contains(["VPC_EGRESS_ALL_TRAFFIC", "VPC_EGRESS_PRIVATE_RANGES_ONLY"], try(f.vpc.egress, ""))])
    error_message = "vpc.egress must be VPC_EGRESS_ALL_TRAFFIC or VPC_EGRESS_PRIVATE_RANGES_ONLY."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout_s >= 1 && f.timeout_s <= 3600])
    error_message = "timeout_s must be 1..3600 (HTTP functions); event-driven functions allow at most 540."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.storage_trigger == null || startswith(try(f.storage_trigger.event_type, ""), "google.cloud.storage.object.v1.")])
    error_message = "storage_trigger.event_type must be a Cloud Storage event (google.cloud.storage.object.v1.*)."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.storage_trigger == null || f.timeout_s <= 540])
    error_message = "Event-triggered functions allow at most 540 s."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.min_instances >= 0 && f.min_instances <= f.max_instances])
    error_message = "0 <= min_instances <= max_instances."
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.concurrency == 1 || tonumber(f.cpu) >= 1])
    error_message = "Concurrency above 1 needs at least 1 vCPU."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on every function."
  default     = {}
}
