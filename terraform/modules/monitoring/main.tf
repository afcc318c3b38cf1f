# Log-based metrics from the structured JSON logs (common/obs/logs.py), alert policies on them and
# on the dead-letter backlog, and one dashboard.

locals {
  # Gen2 functions log as Cloud Run revisions, the transcribe worker as Cloud Run jobs.
  resources = "resource.type=(\"cloud_run_revision\" OR \"cloud_run_job\")"
  # The same in Monitoring's filter syntax: an alert on a log-based metric must restrict
  # resource.type, or the API rejects the policy (400 "must specify a restriction on
  # resource.type"), which no offline check catches.
  monitored = "resource.type=one_of(\"cloud_run_revision\", \"cloud_run_job\")"
  metrics = {
    transitions = "${var.metric_prefix}/job_transitions"
    stage       = "${var.metric_prefix}/stage_duration"
    llm_cost    = "${var.metric_prefix}/llm_cost_usd"
    llm_tokens  = "${var.metric_prefix}/llm_tokens"
    failures    = "${var.metric_prefix}/job_failures"
    audio       = "${var.metric_prefix}/audio_seconds"
    rtf         = "${var.metric_prefix}/transcribe_rtf"
  }
  metric_type = { for k, m in local.metrics : k => "logging.googleapis.com/user/${m}" }
  # The same metric as PromQL names it.
  llm_cost_promql   = "logging_googleapis_com:user_${replace(local.metrics.llm_cost, "/", "_")}_sum"
  dlq_subscriptions = "resource.type=\"pubsub_subscription\" AND resource.label.subscription_id=one_of(${join(", ", [for s in var.dead_letter_subscriptions : "\"${s}\""])})"
  # Messages in the dead-letter subscriptions that the dead_letters function has not
  # acknowledged yet (the dashboard), and the age of the oldest one (the alert).
  dlq_filter     = "${local.dlq_subscriptions} AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
  dlq_age_filter = "${local.dlq_subscriptions} AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
}

resource "google_logging_metric" "transitions" {
  project     = var.project
  name        = local.metrics.transitions
  description = "Job state changes, by the state entered."
  filter      = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\""
  label_extractors = {
    state = "EXTRACT(jsonPayload.state)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "state"
      value_type  = "STRING"
      description = "The state the job entered."
    }
  }
}

resource "google_logging_metric" "stage_duration" {
  project         = var.project
  name            = local.metrics.stage
  description     = "Seconds a job spent in the previous state, by the state entered."
  filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\" AND jsonPayload.duration_s>=0"
  value_extractor = "EXTRACT(jsonPayload.duration_s)"
  label_extractors = {
    state = "EXTRACT(jsonPayload.state)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"
    labels {
      key         = "state"
      value_type  = "STRING"
      description = "The state the job entered."
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.4
      scale              = 0.1
    }
  }
}

resource "google_logging_metric" "llm_cost" {
  project         = var.project
  name            = local.metrics.llm_cost
  description     = "US dollars per LLM call of the notes function."
  filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.llm_usage}\" AND jsonPayload.cost_usd>=0"
  value_extractor = "EXTRACT(jsonPayload.cost_usd)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "USD"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 2
      scale              = 0.0001
    }
  }
}

resource "google_monitoring_alert_policy" "failure_rate" {
  project               = var.project
  display_name          = "audionotes: job failure rate"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "FAILED / (COMPLETED + FAILED) over 15 min > ${var.thresholds.failure_ratio}"
    condition_threshold {
      filter             = "${local.monitored} AND metric.type=\"${local.metric_type.transitions}\" AND metric.label.state=\"FAILED\""
      denominator_filter = "${local.monitored} AND metric.type=\"${local.metric_type.transitions}\" AND metric.label.state=one_of(\"COMPLETED\", \"FAILED\")"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.thresholds.failure_ratio
      duration           = "0s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.thresholds.failure_ratio * 100}% of the jobs that finished in the last 15 minutes FAILED. Look at the job documents' `error.code` and the function/job logs."
  }
}

# The dead-letter subscriptions push to the dead_letters function, which acknowledges a dead
# letter as soon as it has failed its job (or found it moved on): a backlog there is no longer
# "messages parked for a human" but dead letters the function cannot handle (it fails, or is
# down) and Pub/Sub keeps redelivering. The count alone would also see letters in flight, so
# the alert reads the age of the oldest unacknowledged one: older than
# thresholds.dead_letter_age_s means several deliveries to dead_letters have failed. Each job
# that does get failed counts in the failure-rate alert (error code dead_lettered).
resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  project               = var.project
  display_name          = "audionotes: dead-letter backlog"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "a dead letter unhandled by the dead_letters function for over ${var.thresholds.dead_letter_age_s} s"
    condition_threshold {
      filter          = local.dlq_age_filter
      comparison      = "COMPARISON_GT"
      threshold_value = var.thresholds.dead_letter_age_s
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message Pub/Sub gave up on has waited more than ${var.thresholds.dead_letter_age_s} s in a dead-letter subscription (${join(", ", var.dead_letter_subscriptions)}): the dead_letters function, which marks its job FAILED, keeps failing or is down. Its logs say why; Pub/Sub redelivers with backoff and keeps the message for the subscription's retention (7 days), so fixing the function is enough."
  }
}

resource "google_monitoring_alert_policy" "stage_latency" {
  project               = var.project
  display_name          = "audionotes: stage latency over SLA"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  dynamic "conditions" {
    for_each = var.thresholds.stage_latency_s
    content {
      display_name = "p95 seconds before ${conditions.key} > ${conditions.value}"
      condition_threshold {
        filter          = "${local.monitored} AND metric.type=\"${local.metric_type.stage}\" AND metric.label.state=\"${conditions.key}\""
        comparison      = "COMPARISON_GT"
        threshold_value = conditions.value
        duration        = "600s"
        aggregations {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_DELTA"
          cross_series_reducer = "REDUCE_PERCENTILE_95"
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A pipeline stage is slower than its SLA at the 95th percentile. Check the backlog of the stage's subscription, Cloud Run job quota (GPUs) and the OpenAI latency."
  }
}

resource "google_monitoring_alert_policy" "llm_spend" {
  project               = var.project
  display_name          = "audionotes: LLM spend"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "LLM spend in the last hour > ${var.thresholds.llm_hourly_fraction} of the daily budget"
    condition_prometheus_query_language {
      query               = "sum(increase(${local.llm_cost_promql}[1h])) > ${var.thresholds.llm_daily_budget_usd * var.thresholds.llm_hourly_fraction}"
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The notes function spent more than ${var.thresholds.llm_hourly_fraction * 100}% of the daily LLM budget (USD ${var.thresholds.llm_daily_budget_usd}) in one hour. The budget guard in the notes function stops at the daily budget; this is the early warning."
  }
}

locals {
  tiles = [
    {
      title = "Jobs entering each state (per 5 min)"
      data_set = {
        plotType = "LINE"
        timeSeriesQuery = { timeSeriesFilter = {
          filter      = "metric.type=\"${local.metric_type.transitions}\""
          aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] }
        } }
      }
    },
    {
      title = "p95 seconds spent before each state"
      data_set = {
        plotType = "LINE"
        timeSeriesQuery = { timeSeriesFilter = {
          filter      = "metric.type=\"${local.metric_type.stage}\""
          aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_95", groupByFields = ["metric.label.state"] }
        } }
      }
    },
    {
      title = "Dead-letter backlog (messages)"
      data_set = {
        plotType = "LINE"
        timeSeriesQuery = { timeSeriesFilter = {
          filter      = local.dlq_filter
          aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
        } }
      }
    },
    {
      title = "LLM spend (USD in the trailing hour)"
      data_set = {
        plotType        = "LINE"
        timeSeriesQuery = { prometheusQuery = "sum(increase(${local.llm_cost_promql}[1h]))" }
      }
    },
  ]
}

resource "google_monitoring_dashboard" "this" {
  project = var.project
  dashboard_json = jsonencode({
    displayName = "audionotes"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, t in local.tiles : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = { title = t.title, xyChart = { dataSets = [t.data_set] } }
        }
      ]
    }
  })
}

resource "google_logging_metric" "failures" {
  project     = var.project
  name        = local.metrics.failures
  description = "Jobs that FAILED, by error code."
  filter      = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\" AND jsonPayload.state=\"FAILED\""
  label_extractors = {
    code = "EXTRACT(jsonPayload.code)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "code"
      value_type  = "STRING"
      description = "The job's error.code."
    }
  }
}

resource "google_logging_metric" "audio_seconds" {
  project         = var.project
  name            = local.metrics.audio
  description     = "Seconds of audio transcribed, once per job, by model (cache hits labelled)."
  filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.transcribed}\" AND jsonPayload.audio_s>=0"
  value_extractor = "EXTRACT(jsonPayload.audio_s)"
  label_extractors = {
    model     = "EXTRACT(jsonPayload.model)"
    cache_hit = "EXTRACT(jsonPayload.cache_hit)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "The Whisper model."
    }
    labels {
      key         = "cache_hit"
      value_type  = "STRING"
      description = "true: the transcript came from the content cache, no model ran."
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 2
      scale              = 1
    }
  }
}

resource "google_logging_metric" "transcribe_rtf" {
  project         = var.project
  name            = local.metrics.rtf
  description     = "Real-time factor of each chunk's model run (compute seconds per audio second), by model."
  filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.chunk_transcribed}\" AND jsonPayload.rtf>=0"
  value_extractor = "EXTRACT(jsonPayload.rtf)"
  label_extractors = {
    model = "EXTRACT(jsonPayload.model)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "The Whisper model."
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 1.5
      scale              = 0.005
    }
  }
}

resource "google_logging_metric" "llm_tokens" {
  project         = var.project
  name            = local.metrics.llm_tokens
  description     = "Tokens (prompt + completion) per LLM call of the notes function."
  filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.llm_usage}\" AND jsonPayload.tokens>=0"
  value_extractor = "EXTRACT(jsonPayload.tokens)"
  label_extractors = {
    provider = "EXTRACT(jsonPayload.provider)"
    model    = "EXTRACT(jsonPayload.model)"
  }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"
    labels {
      key         = "provider"
      value_type  = "STRING"
      description = "The provider of the chain that answered."
    }
    labels {
      key         = "model"
      value_type  = "STRING"
      description = "The model that answered."
    }
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 30
      growth_factor      = 2
      scale              = 10
    }
  }
}
