# Log-based metrics from the structured JSON logs (common/obs/logs.py), alert policies on them and
# on the dead-letter backlog, and one dashboard. The metrics and the alerts are one resource
# each, for_each over a map of their differences (local.log_metrics, local.alerts).

locals {
  # Gen2 functions log as Cloud Run revisions, the transcribe worker as Cloud Run jobs.
  resources = "resource.type=(\"cloud_run_revision\" OR \"cloud_run_job\")"
  # The same in Monitoring's filter syntax: an alert on a log-based metric must restrict
  # resource.type, or the API rejects the policy (400 "must specify a restriction on
  # resource.type"), which no offline check catches.
  monitored = "resource.type=one_of(\"cloud_run_revision\", \"cloud_run_job\")"

  # Metric key => the metric. One with a value_extractor is a distribution of that value, in
  # exponential buckets (num_finite_buckets, growth_factor, scale); one without counts the
  # matching lines. labels: label key => its extractor and description.
  log_metrics = {
    transitions = {
      name            = "job_transitions"
      description     = "Job state changes, by the state entered."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\""
      value_extractor = null
      unit            = "1"
      labels = {
        state = { extractor = "EXTRACT(jsonPayload.state)", description = "The state the job entered." }
      }
      buckets = null
    }
    stage = {
      name            = "stage_duration"
      description     = "Seconds a job spent in the previous state, by the state entered."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\" AND jsonPayload.duration_s>=0"
      value_extractor = "EXTRACT(jsonPayload.duration_s)"
      unit            = "s"
      labels = {
        state = { extractor = "EXTRACT(jsonPayload.state)", description = "The state the job entered." }
      }
      buckets = { num_finite_buckets = 40, growth_factor = 1.4, scale = 0.1 }
    }
    llm_cost = {
      name            = "llm_cost_usd"
      description     = "US dollars per LLM call of the notes function."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.llm_usage}\" AND jsonPayload.cost_usd>=0"
      value_extractor = "EXTRACT(jsonPayload.cost_usd)"
      unit            = "USD"
      labels          = {}
      buckets         = { num_finite_buckets = 30, growth_factor = 2, scale = 0.0001 }
    }
    llm_tokens = {
      name            = "llm_tokens"
      description     = "Tokens (prompt + completion) per LLM call of the notes function."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.llm_usage}\" AND jsonPayload.tokens>=0"
      value_extractor = "EXTRACT(jsonPayload.tokens)"
      unit            = "1"
      labels = {
        provider = { extractor = "EXTRACT(jsonPayload.provider)", description = "The provider of the chain that answered." }
        model    = { extractor = "EXTRACT(jsonPayload.model)", description = "The model that answered." }
      }
      buckets = { num_finite_buckets = 30, growth_factor = 2, scale = 10 }
    }
    failures = {
      name            = "job_failures"
      description     = "Jobs that FAILED, by error code."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.state_change}\" AND jsonPayload.state=\"FAILED\""
      value_extractor = null
      unit            = "1"
      labels = {
        code = { extractor = "EXTRACT(jsonPayload.code)", description = "The job's error.code." }
      }
      buckets = null
    }
    audio = {
      name            = "audio_seconds"
      description     = "Seconds of audio transcribed, once per job, by model (cache hits labelled)."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.transcribed}\" AND jsonPayload.audio_s>=0"
      value_extractor = "EXTRACT(jsonPayload.audio_s)"
      unit            = "s"
      labels = {
        model     = { extractor = "EXTRACT(jsonPayload.model)", description = "The Whisper model." }
        cache_hit = { extractor = "EXTRACT(jsonPayload.cache_hit)", description = "true: the transcript came from the content cache, no model ran." }
      }
      buckets = { num_finite_buckets = 30, growth_factor = 2, scale = 1 }
    }
    rtf = {
      name            = "transcribe_rtf"
      description     = "Real-time factor of each chunk's model run (compute seconds per audio second), by model."
      filter          = "${local.resources} AND jsonPayload.event=\"${var.log_events.chunk_transcribed}\" AND jsonPayload.rtf>=0"
      value_extractor = "EXTRACT(jsonPayload.rtf)"
      unit            = "1"
      labels = {
        model = { extractor = "EXTRACT(jsonPayload.model)", description = "The Whisper model." }
      }
      buckets = { num_finite_buckets = 30, growth_factor = 1.5, scale = 0.005 }
    }
  }
  metric_type = { for k, m in local.log_metrics : k => "logging.googleapis.com/user/${var.metric_prefix}/${m.name}" }
  # The same metric as PromQL names it.
  llm_cost_promql   = "logging_googleapis_com:user_${var.metric_prefix}_${local.log_metrics.llm_cost.name}_sum"
  dlq_subscriptions = "resource.type=\"pubsub_subscription\" AND resource.label.subscription_id=one_of(${join(", ", [for s in var.dead_letter_subscriptions : "\"${s}\""])})"
  # Messages in the dead-letter subscriptions that the dead_letters function has not
  # acknowledged yet (the dashboard), and the age of the oldest one (the alert).
  dlq_filter     = "${local.dlq_subscriptions} AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
  dlq_age_filter = "${local.dlq_subscriptions} AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
}

resource "google_logging_metric" "this" {
  for_each = local.log_metrics

  project         = var.project
  name            = "${var.metric_prefix}/${each.value.name}"
  description     = each.value.description
  filter          = each.value.filter
  value_extractor = each.value.value_extractor
  # Unset, not an empty map, for a metric without labels (llm_cost).
  label_extractors = length(each.value.labels) == 0 ? null : { for k, label in each.value.labels : k => label.extractor }
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.value_extractor == null ? "INT64" : "DISTRIBUTION"
    unit        = each.value.unit
    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value.description
      }
    }
  }
  dynamic "bucket_options" {
    for_each = each.value.buckets == null ? [] : [each.value.buckets]
    content {
      exponential_buckets {
        num_finite_buckets = bucket_options.value.num_finite_buckets
        growth_factor      = bucket_options.value.growth_factor
        scale              = bucket_options.value.scale
      }
    }
  }
}

locals {
  # Alert key => the policy (display name, severity, conditions, markdown documentation). Every
  # condition fires above its value (COMPARISON_GT) and is either a threshold on a time series
  # (threshold; with a denominator_filter it is the ratio of two series, aggregated alike) or a
  # PromQL query (promql).
  alerts = {
    failure_rate = {
      display_name = "audionotes: job failure rate"
      severity     = "ERROR"
      conditions = [{
        display_name = "FAILED / (COMPLETED + FAILED) over 15 min > ${var.thresholds.failure_ratio}"
        threshold = {
          filter             = "${local.monitored} AND metric.type=\"${local.metric_type.transitions}\" AND metric.label.state=\"FAILED\""
          denominator_filter = "${local.monitored} AND metric.type=\"${local.metric_type.transitions}\" AND metric.label.state=one_of(\"COMPLETED\", \"FAILED\")"
          value              = var.thresholds.failure_ratio
          duration           = "0s"
          alignment_period   = "900s"
          aligner            = "ALIGN_DELTA"
          reducer            = "REDUCE_SUM"
        }
        promql = null
      }]
      documentation = "More than ${var.thresholds.failure_ratio * 100}% of the jobs that finished in the last 15 minutes FAILED. Look at the job documents' `error.code` and the function/job logs."
    }
    # The dead-letter subscriptions push to the dead_letters function, which acknowledges a
    # dead letter as soon as it has failed its job (or found it moved on): a backlog there is
    # no longer "messages parked for a human" but dead letters the function cannot handle (it
    # fails, or is down) and Pub/Sub keeps redelivering. The count alone would also see
    # letters in flight, so the alert reads the age of the oldest unacknowledged one: older
    # than thresholds.dead_letter_age_s means several deliveries to dead_letters have failed.
    # Each job that does get failed counts in the failure-rate alert (error code dead_lettered).
    dead_letter_backlog = {
      display_name = "audionotes: dead-letter backlog"
      severity     = "ERROR"
      conditions = [{
        display_name = "a dead letter unhandled by the dead_letters function for over ${var.thresholds.dead_letter_age_s} s"
        threshold = {
          filter             = local.dlq_age_filter
          denominator_filter = null
          value              = var.thresholds.dead_letter_age_s
          duration           = "300s"
          alignment_period   = "60s"
          aligner            = "ALIGN_MAX"
          reducer            = null
        }
        promql = null
      }]
      documentation = "A message Pub/Sub gave up on has waited more than ${var.thresholds.dead_letter_age_s} s in a dead-letter subscription (${join(", ", var.dead_letter_subscriptions)}): the dead_letters function, which marks its job FAILED, keeps failing or is down. Its logs say why; Pub/Sub redelivers with backoff and keeps the message for the subscription's retention (7 days), so fixing the function is enough."
    }
    stage_latency = {
      display_name = "audionotes: stage latency over SLA"
      severity     = "WARNING"
      conditions = [
        for state, seconds in var.thresholds.stage_latency_s : {
          display_name = "p95 seconds before ${state} > ${seconds}"
          threshold = {
            filter             = "${local.monitored} AND metric.type=\"${local.metric_type.stage}\" AND metric.label.state=\"${state}\""
            denominator_filter = null
            value              = seconds
            duration           = "600s"
            alignment_period   = "300s"
            aligner            = "ALIGN_DELTA"
            reducer            = "REDUCE_PERCENTILE_95"
          }
          promql = null
        }
      ]
      documentation = "A pipeline stage is slower than its SLA at the 95th percentile. Check the backlog of the stage's subscription, Cloud Run job quota (GPUs) and the OpenAI latency."
    }
    llm_spend = {
      display_name = "audionotes: LLM spend"
      severity     = "WARNING"
      conditions = [{
        display_name = "LLM spend in the last hour > ${var.thresholds.llm_hourly_fraction} of the daily budget"
        threshold    = null
        promql = {
          query               = "sum(increase(${local.llm_cost_promql}[1h])) > ${var.thresholds.llm_daily_budget_usd * var.thresholds.llm_hourly_fraction}"
          duration            = "0s"
          evaluation_interval = "300s"
        }
      }]
      documentation = "The notes function spent more than ${var.thresholds.llm_hourly_fraction * 100}% of the daily LLM budget (USD ${var.thresholds.llm_daily_budget_usd}) in one hour. The budget guard in the notes function stops at the daily budget; this is the early warning."
    }
  }
}

resource "google_monitoring_alert_policy" "this" {
  for_each = local.alerts
  # Each alert names a log-based metric by type: on a first apply it must exist first.
  depends_on = [google_logging_metric.this]

  project               = var.project
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = var.notification_channels

  dynamic "conditions" {
    for_each = each.value.conditions
    content {
      display_name = conditions.value.display_name
      dynamic "condition_threshold" {
        for_each = conditions.value.threshold == null ? [] : [conditions.value.threshold]
        content {
          filter             = condition_threshold.value.filter
          denominator_filter = condition_threshold.value.denominator_filter
          comparison         = "COMPARISON_GT"
          threshold_value    = condition_threshold.value.value
          duration           = condition_threshold.value.duration
          aggregations {
            alignment_period     = condition_threshold.value.alignment_period
            per_series_aligner   = condition_threshold.value.aligner
            cross_series_reducer = condition_threshold.value.reducer
          }
          dynamic "denominator_aggregations" {
            for_each = condition_threshold.value.denominator_filter == null ? [] : [condition_threshold.value]
            content {
              alignment_period     = denominator_aggregations.value.alignment_period
              per_series_aligner   = denominator_aggregations.value.aligner
              cross_series_reducer = denominator_aggregations.value.reducer
            }
          }
        }
      }
      dynamic "condition_prometheus_query_language" {
        for_each = conditions.value.promql == null ? [] : [conditions.value.promql]
        content {
          query               = condition_prometheus_query_language.value.query
          duration            = condition_prometheus_query_language.value.duration
          evaluation_interval = condition_prometheus_query_language.value.evaluation_interval
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.documentation
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
