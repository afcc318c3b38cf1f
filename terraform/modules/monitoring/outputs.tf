output "log_metrics" {
  description = "Log-based metric key => metric type."
  value       = local.metric_type
}

output "alert_policies" {
  description = "Alert policy key => id."
  value       = { for k, policy in google_monitoring_alert_policy.this : k => policy.id }
}

output "dashboard" {
  description = "The dashboard's id."
  value       = google_monitoring_dashboard.this.id
}
