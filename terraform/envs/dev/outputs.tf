# Pass-through of modules/audionotes' outputs (described there).

output "api_url" {
  description = "Base URL of the HTTPS API (POST /v1/jobs ...)."
  value       = module.audionotes.api_url
}

output "buckets" {
  description = "Bucket names: inbox (upload here, under uploads/), results, sources."
  value       = module.audionotes.buckets
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = module.audionotes.topics
}

output "subscriptions" {
  description = "Pub/Sub subscription names: push (dispatch, notes, and the dead-letter ones to dead_letters) and pull (the work queues work-high, work-normal, work-low)."
  value       = module.audionotes.subscriptions
}

output "jobs" {
  description = "Cloud Run job names (empty until job_image is set)."
  value       = module.audionotes.jobs
}

output "functions" {
  description = "Function name => run.app URI."
  value       = module.audionotes.functions
}

output "image_repository" {
  description = "Docker URL prefix to tag the transcribe image with."
  value       = module.audionotes.image_repository
}

output "service_accounts" {
  description = "Component => service account email."
  value       = module.audionotes.service_accounts
}

output "inbox_uri" {
  description = "Where uploads start jobs (gsutil cp FILE <this>)."
  value       = module.audionotes.inbox_uri
}

output "settings" {
  description = "The AUDIONOTES_* settings every function and job gets (no secrets): export them to run a tool against this environment."
  value       = module.audionotes.settings
}

output "deletion_protection" {
  description = "Whether buckets with objects, the database, secrets and jobs are protected from terraform destroy."
  value       = module.audionotes.deletion_protection
}

output "local_llm_url" {
  description = "URL of the self-hosted notes model service (null unless enable_local_llm, and until local_llm.image is set): the notes function's fallback, <url>/v1."
  value       = module.audionotes.local_llm_url
}

output "workers" {
  description = "The pull workers' caps, the GPU quota they are held to and the work subscriptions' ack deadline."
  value       = module.audionotes.workers
}
