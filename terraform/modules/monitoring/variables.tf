variable "project" {
  type        = string
  description = "Project ID of the metrics, alerts and dashboard."
}

variable "metric_prefix" {
  type        = string
  description = "Prefix of the log-based metric names (logging.googleapis.com/user/<prefix>/...)."
  default     = "audionotes"
  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{1,30}$", var.metric_prefix))
    error_message = "metric_prefix must be 2-31 characters of a-z, 0-9 and '_'."
  }
}

variable "log_events" {
  type = object({
    # A job entered jsonPayload.state; jsonPayload.duration_s is the time it spent in the
    # previous state (common/obs/logs.py copies every extra= field into the JSON line).
    state_change = optional(string, "job_state")
    # One LLM call of the notes function; jsonPayload.cost_usd is what it cost.
    llm_usage = optional(string, "llm_usage")
    # A job's transcript exists: jsonPayload.audio_s seconds of audio (once per job),
    # jsonPayload.model, jsonPayload.cache_hit.
    transcribed = optional(string, "transcribed")
    # One task ran the model over its chunk: jsonPayload.rtf = seconds of compute per second
    # of audio, jsonPayload.model.
    chunk_transcribed = optional(string, "chunk_transcribed")
  })
  description = "Values of jsonPayload.event the log-based metrics count (the logging contract with the Python code)."
  default     = {}
}

variable "dead_letter_subscriptions" {
  type        = list(string)
  description = "Dead-letter subscriptions (pushed to the dead_letters function) whose unhandled messages are an alert."
  validation {
    condition     = length(var.dead_letter_subscriptions) > 0
    error_message = "Give at least one dead-letter subscription."
  }
}

variable "thresholds" {
  type = object({
    failure_ratio = optional(number, 0.05)
    # state entered => p95 seconds allowed in the state before it (the stage SLA).
    stage_latency_s = optional(map(number), {
      DISPATCHED   = 300
      TRANSCRIBING = 900
      TRANSCRIBED  = 3600
      COMPLETED    = 900
    })
    llm_daily_budget_usd = optional(number, 50)
    # Alert when one hour spends this fraction of the daily budget.
    llm_hourly_fraction = optional(number, 0.25)
    # Alert when a dead letter has waited this long for the dead_letters function.
    dead_letter_age_s = optional(number, 900)
  })
  description = "Alerting thresholds: job failure ratio, per-stage p95 latency SLA, LLM spend, age of an unhandled dead letter."
  default     = {}
  validation {
    condition     = var.thresholds.failure_ratio > 0 && var.thresholds.failure_ratio < 1
    error_message = "failure_ratio must be between 0 and 1."
  }
  validation {
    condition = alltrue([
      for s, v in var.thresholds.stage_latency_s :
      contains(["DISPATCHED", "TRANSCRIBING", "TRANSCRIBED", "SUMMARIZING", "COMPLETED"], s) && v > 0
    ])
    error_message = "stage_latency_s keys must be job states after QUEUED, values positive seconds."
  }
  validation {
    condition     = var.thresholds.llm_daily_budget_usd >= 0 && var.thresholds.llm_hourly_fraction > 0 && var.thresholds.llm_hourly_fraction <= 1
    error_message = "llm_daily_budget_usd must be >= 0 and llm_hourly_fraction in (0, 1]."
  }
  validation {
    condition     = var.thresholds.dead_letter_age_s >= 60
    error_message = "dead_letter_age_s must be at least 60 s (a dead letter in flight is not a backlog)."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Notification channel ids (projects/P/notificationChannels/N) every alert notifies."
  default     = []
}
