output "api_url" {
  description = "Base URL of the HTTPS API (POST /v1/jobs ...)."
  value       = module.functions.functions[local.functions.api].uri
}

output "buckets" {
  description = "Bucket names: inbox (upload here, under uploads/), results, sources."
  value       = { for k, b in module.storage.buckets : k => b.name }
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = { for k, t in module.pubsub.topics : k => t.name }
}

output "subscriptions" {
  description = "Pub/Sub subscription names: push (dispatch, notes, and the dead-letter ones to dead_letters) and pull (the work queues work-high, work-normal, work-low)."
  value       = { for k, s in module.pubsub.subscriptions : k => s.name }
}

output "jobs" {
  description = "Cloud Run job names (empty until job_image is set)."
  value       = { for k, j in module.run_jobs.jobs : k => j.name }
}

output "functions" {
  description = "Function name => run.app URI."
  value       = { for k, f in module.functions.functions : k => f.uri }
}

output "image_repository" {
  description = "Docker URL prefix to tag the transcribe image with."
  value       = module.run_jobs.repository.url
}

output "service_accounts" {
  description = "Component => service account email."
  value       = { for k, sa in module.iam.service_accounts : k => sa.email }
}

output "inbox_uri" {
  description = "Where uploads start jobs (gsutil cp FILE <this>)."
  value       = "gs://${module.storage.buckets.inbox.name}/uploads/"
}

output "settings" {
  description = "The AUDIONOTES_* settings every function and job gets (no secrets): export them to run a tool against this environment."
  value       = local.common_env
}

output "deletion_protection" {
  description = "Whether buckets with objects, the database, secrets and jobs are protected from terraform destroy."
  value       = var.deletion_protection
}

output "local_llm_url" {
  description = "URL of the self-hosted notes model service (null unless enable_local_llm, and until local_llm.image is set): the notes function's fallback, <url>/v1."
  value       = one(module.llm_service[*].url)

  precondition {
    condition     = !var.enable_local_llm || var.local_llm.subnetwork != null
    error_message = "enable_local_llm needs local_llm.subnetwork: the notes function's egress (internal ingress admits it only through a VPC)."
  }
  precondition {
    condition     = !var.enable_local_llm || var.llm.fallback_base_url == null
    error_message = "enable_local_llm makes the local model the notes fallback: leave llm.fallback_base_url (and fallback_model) unset."
  }
}

output "workers" {
  description = "The pull workers' caps as dispatch and sweep get them (max_gpu, max_cpu), the GPU quota they are held to, and the work subscriptions' ack deadline the workers extend."
  value = {
    max_gpu        = local.workers.max_gpu
    max_cpu        = local.workers.max_cpu
    gpu_quota      = var.gpu_quota
    ack_deadline_s = local.workers.ack_deadline_s
  }

  precondition {
    condition     = local.workers.max_gpu <= var.gpu_quota
    error_message = "max_gpu_workers exceeds gpu_quota: Cloud Run would refuse the GPU tasks beyond the quota. Request more L4 quota (terraform/README.md, \"GPU workers and quota\") and raise gpu_quota, or lower max_gpu_workers."
  }
  precondition {
    condition     = var.workers.reserve_s < var.transcribe.gpu.timeout_s && var.workers.reserve_s < var.transcribe.cpu.timeout_s
    error_message = "workers.reserve_s must be below both task timeouts (transcribe.gpu.timeout_s, transcribe.cpu.timeout_s), or a worker would take no chunk at all."
  }
}
