variable "project" {
  type        = string
  description = "Project ID the topics and subscriptions belong to."
}

variable "names" {
  type = object({
    topics = object({
      transcription_requests             = string
      transcripts_ready                  = string
      transcription_requests_dead_letter = string
      transcripts_ready_dead_letter      = string
      work_high                          = string
      work_normal                        = string
      work_low                           = string
      work_dead_letter                   = string
    })
    subscriptions = object({
      dispatch                           = string
      notes                              = string
      transcription_requests_dead_letter = string
      transcripts_ready_dead_letter      = string
      work_high                          = string
      work_normal                        = string
      work_low                           = string
      work_dead_letter                   = string
    })
  })
  description = "Topic and subscription names, exactly as common/config/settings.py (Topics, Subscriptions) names them."
  validation {
    condition = alltrue([
      for n in concat(values(var.names.topics), values(var.names.subscriptions)) :
      can(regex("^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$", n)) && !startswith(n, "goog")
    ])
    error_message = "Pub/Sub names must match ^[a-zA-Z][a-zA-Z0-9._~%+-]{2,254}$ and not start with 'goog'."
  }
}

variable "delivery" {
  type = object({
    ack_deadline_s        = optional(number, 600)
    max_delivery_attempts = optional(number, 5)
    min_backoff_s         = optional(number, 10)
    max_backoff_s         = optional(number, 600)
  })
  description = "How Pub/Sub delivers to the handlers (common/config/settings.py Delivery; the defaults are its defaults)."
  default     = {}
  validation {
    condition     = var.delivery.ack_deadline_s >= 10 && var.delivery.ack_deadline_s <= 600
    error_message = "ack_deadline_s must be 10..600 (the Pub/Sub limits)."
  }
  validation {
    condition     = var.delivery.max_delivery_attempts >= 5 && var.delivery.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5..100 (the Pub/Sub limits)."
  }
  validation {
    condition     = 0 <= var.delivery.min_backoff_s && var.delivery.min_backoff_s <= var.delivery.max_backoff_s && var.delivery.max_backoff_s <= 600
    error_message = "Backoff must satisfy 0 <= min_backoff_s <= max_backoff_s <= 600."
  }
}

variable "work_ack_deadline_s" {
  type        = number
  description = "Ack deadline of the work (pull) subscriptions, in seconds: how long a chunk stays with a worker that stops extending it (common/config/settings.py Workers.ack_deadline_s; give the workers the same number)."
  default     = 60
  validation {
    condition     = var.work_ack_deadline_s >= 10 && var.work_ack_deadline_s <= 600 && floor(var.work_ack_deadline_s) == var.work_ack_deadline_s
    error_message = "work_ack_deadline_s must be whole seconds, 10..600 (the Pub/Sub limits)."
  }
}

variable "push_endpoints" {
  type = object({
    dispatch     = string
    notes        = string
    dead_letters = string
  })
  description = "HTTPS URLs (the functions' run.app URIs) the subscriptions push to, also the OIDC audience: dispatch and notes, and dead_letters for every dead-letter subscription."
  validation {
    condition     = alltrue([for u in values(var.push_endpoints) : startswith(u, "https://")])
    error_message = "Push endpoints must be https:// URLs."
  }
}

variable "push_service_account_email" {
  type        = string
  description = "Identity of the OIDC tokens on push requests; it needs roles/run.invoker on the target functions."
}

variable "publishers" {
  type = map(object({
    topic  = string
    member = string
  }))
  description = "Publish grants keyed by a static name (e.g. api): topic key (transcription_requests, transcripts_ready, work_high, work_normal, work_low) and IAM member."
  default     = {}
  validation {
    condition     = alltrue([for p in values(var.publishers) : contains(["transcription_requests", "transcripts_ready", "work_high", "work_normal", "work_low"], p.topic)])
    error_message = "Publishers may only be granted on transcription_requests, transcripts_ready or a work topic (never a dead-letter topic)."
  }
}

variable "pullers" {
  type        = map(string)
  description = "static key => IAM member that pulls from the work subscriptions (the transcribe jobs' identity): roles/pubsub.subscriber on the three work subscriptions, nothing else."
  default     = {}
}

variable "pubsub_service_agent_member" {
  type        = string
  description = "The Pub/Sub service agent (serviceAccount:service-NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com): it forwards undeliverable messages to the dead-letter topics."
}

variable "dead_letter_retention" {
  type        = string
  description = "How long the dead-letter subscriptions keep messages the dead_letters function has not acknowledged yet (max 31 days)."
  default     = "604800s"
  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention)) && tonumber(trimsuffix(var.dead_letter_retention, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention, "s")) <= 2678400
    error_message = "dead_letter_retention must be seconds like \"604800s\", between 600s and 2678400s (31 days)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels on every topic and subscription."
  default     = {}
}
