output "log_metrics" {
  description = "Log-based metric key => metric type."
  value       = local.metric_type
}

output "alert_policies" {
  description = "Alert policy key => id."
  value = {
    failure_rate        = google_monitoring_alert_policy.failure_rate.id
    dead_letter_backlog = google_monitoring_alert_policy.dead_letter_backlog.id
    stage_latency       = google_monitoring_alert_policy.stage_latency.id
    llm_spend           = google_monitoring_alert_policy.llm_spend.id
  }
}

output "dashboard" {
  description = "The dashboard's id."
  value       = google_monitoring_dashboard.this.id
}
