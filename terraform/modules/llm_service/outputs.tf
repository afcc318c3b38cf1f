output "url" {
  description = "The service's run.app URL (the notes function calls <url>/v1 with an ID token for <url>)."
  value       = google_cloud_run_v2_service.llm.uri
}

output "service_account" {
  description = "The service's own identity: id, email and IAM member."
  value = {
    id     = google_service_account.llm.name
    email  = google_service_account.llm.email
    member = google_service_account.llm.member
  }
}

output "model" {
  description = "The model id the service serves (what requests name: AUDIONOTES_LLM__FALLBACK_MODEL)."
  value       = local.variant.model
}

output "spec" {
  description = "What the checks care about: ingress, scaling, concurrency, timeout, accelerator, limits, CPU allocation, startup probe, env and the invokers."
  value = {
    ingress       = google_cloud_run_v2_service.llm.ingress
    min_instances = google_cloud_run_v2_service.llm.template[0].scaling[0].min_instance_count
    max_instances = google_cloud_run_v2_service.llm.template[0].scaling[0].max_instance_count
    concurrency   = google_cloud_run_v2_service.llm.template[0].max_instance_request_concurrency
    timeout       = google_cloud_run_v2_service.llm.template[0].timeout
    accelerator   = try(google_cloud_run_v2_service.llm.template[0].node_selector[0].accelerator, null)
    limits        = google_cloud_run_v2_service.llm.template[0].containers[0].resources[0].limits
    cpu_idle      = google_cloud_run_v2_service.llm.template[0].containers[0].resources[0].cpu_idle
    startup_probe = {
      path           = google_cloud_run_v2_service.llm.template[0].containers[0].startup_probe[0].http_get[0].path
      window_s       = google_cloud_run_v2_service.llm.template[0].containers[0].startup_probe[0].period_seconds * google_cloud_run_v2_service.llm.template[0].containers[0].startup_probe[0].failure_threshold
      port           = google_cloud_run_v2_service.llm.template[0].containers[0].startup_probe[0].http_get[0].port
      container_port = google_cloud_run_v2_service.llm.template[0].containers[0].ports[0].container_port
    }
    service_account = google_cloud_run_v2_service.llm.template[0].service_account
    env             = { for e in google_cloud_run_v2_service.llm.template[0].containers[0].env : e.name => e.value }
    invokers        = [google_cloud_run_v2_service_iam_member.invoker.member]
    invoker_role    = google_cloud_run_v2_service_iam_member.invoker.role
  }
}
