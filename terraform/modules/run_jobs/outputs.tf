output "jobs" {
  description = "Job name => {name, id}."
  value       = { for k, j in google_cloud_run_v2_job.this : k => { name = j.name, id = j.id } }
}

output "repository" {
  description = "Artifact Registry repository: id and the Docker URL prefix to tag images with."
  value = {
    id  = google_artifact_registry_repository.images.id
    url = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
  }
}

output "job_runner_role" {
  description = "The custom role granted to runners on each job."
  value       = google_project_iam_custom_role.job_runner.name
}

output "job_grants" {
  description = "Job name => \"runner:<key>\" / \"canceller:<key>\" / \"viewer:<key>\" (keys of runners, cancellers, execution_viewers) => the permissions granted on that job."
  value = {
    for job in keys(google_cloud_run_v2_job.this) : job => merge(
      { for k, g in google_cloud_run_v2_job_iam_member.runner : "runner:${split("|", k)[1]}" => google_project_iam_custom_role.job_runner.permissions if g.name == job },
      { for k, g in google_cloud_run_v2_job_iam_member.canceller : "canceller:${split("|", k)[1]}" => google_project_iam_custom_role.execution_canceller.permissions if g.name == job },
      { for k, g in google_cloud_run_v2_job_iam_member.execution_viewer : "viewer:${split("|", k)[1]}" => google_project_iam_custom_role.execution_viewer.permissions if g.name == job },
    )
  }
}

output "job_specs" {
  description = "Job name => the properties checks and dashboards care about (accelerator, limits, timeout, retries, parallelism)."
  value = {
    for k, j in google_cloud_run_v2_job.this : k => {
      accelerator                   = try(j.template[0].template[0].node_selector[0].accelerator, null)
      gpu_zonal_redundancy_disabled = j.template[0].template[0].gpu_zonal_redundancy_disabled
      limits                        = j.template[0].template[0].containers[0].resources[0].limits
      timeout                       = j.template[0].template[0].timeout
      max_retries                   = j.template[0].template[0].max_retries
      parallelism                   = j.template[0].parallelism
      service_account               = j.template[0].template[0].service_account
      command                       = j.template[0].template[0].containers[0].command
      args                          = j.template[0].template[0].containers[0].args
      env                           = { for e in j.template[0].template[0].containers[0].env : e.name => e.value if e.value != null }
      secret_env                    = { for e in j.template[0].template[0].containers[0].env : e.name => e.value_source[0].secret_key_ref[0].secret if length(e.value_source) > 0 }
    }
  }
}
