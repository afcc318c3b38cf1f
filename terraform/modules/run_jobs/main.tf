# The transcribe worker as Cloud Run jobs (GPU and CPU tiers), the image repository, and what
# the dispatch and sweep functions need to start executions.

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:The image holds open-source code and public model weights only; Google-managed encryption at rest is enough, and a CMEK key would add KMS cost and an outage risk to every pull.
  project       = var.project
  location      = var.region
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "audionotes container images (transcribe worker)"
  labels        = var.labels

  docker_config {
    immutable_tags = false
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }
}

resource "google_cloud_run_v2_job" "this" {
  for_each = var.image == null ? {} : var.jobs

  project             = var.project
  location            = var.region
  name                = each.key
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    task_count  = each.value.task_count
    parallelism = each.value.parallelism

    template {
      service_account = var.service_account_email
      timeout         = "${each.value.timeout_s}s"
      max_retries     = each.value.max_retries
      # GPU jobs: without zonal redundancy the GPU quota is cheaper and easier to get; a task
      # that loses its zone is retried (max_retries) and every task is idempotent.
      gpu_zonal_redundancy_disabled = each.value.gpu ? true : null

      dynamic "node_selector" {
        for_each = each.value.gpu ? [each.value.accelerator] : []
        content {
          accelerator = node_selector.value
        }
      }

      # No command or args: the image's ENTRYPOINT (python -m run_jobs.transcribe, see
      # run_jobs/transcribe/Dockerfile) runs. Per execution, dispatch (or sweep) adds as env
      # overrides the worker's tier and timeout (AUDIONOTES_TRANSCRIBE_WORKER: the tasks pull
      # chunks from the work subscriptions) or, in workers.mode per_job, the chunk plan
      # (AUDIONOTES_TRANSCRIBE_PLAN), JOB_ID and TRACEPARENT; the image sets
      # AUDIONOTES_TRANSCRIPTION__MODELS and __CACHE_DIR to its baked-in models.
      containers {
        name  = "transcribe"
        image = var.image

        resources {
          limits = merge(
            { cpu = each.value.cpu, memory = each.value.memory },
            each.value.gpu ? { "nvidia.com/gpu" = "1" } : {},
          )
        }

        dynamic "env" {
          for_each = merge(var.common_env, each.value.env)
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "env" {
          for_each = each.value.secret_env
          content {
            name = env.key
            value_source {
              secret_key_ref {
                secret  = env.value
                version = "latest"
              }
            }
          }
        }
      }
    }
  }
}

# dispatch and sweep start executions with per-execution overrides (the chunk plan or worker
# env, task count and timeout; common/gcp/cloud_run.py), ask whether an execution is still
# running and list a job's executions to count its running worker tasks (active_tasks): a
# custom role with exactly that, instead of roles/run.developer (which can also change and
# delete jobs). They never wait on the run operation, so they need no run.operations.get.
resource "google_project_iam_custom_role" "job_runner" {
  project     = var.project
  role_id     = "audionotesJobRunner"
  title       = "audionotes job runner"
  description = "Run the transcribe jobs with overrides, look up and list their executions."
  permissions = [
    "run.jobs.run",
    "run.jobs.runWithOverrides",
    "run.executions.get",
    "run.executions.list",
  ]
}

# DELETE /v1/jobs cancels a running execution (functions/api/service.py CloudRunCanceller).
resource "google_project_iam_custom_role" "execution_canceller" {
  project     = var.project
  role_id     = "audionotesExecutionCanceller"
  title       = "audionotes execution canceller"
  description = "Cancel executions of the transcribe jobs."
  permissions = ["run.executions.cancel"]
}

# dead_letters only asks whether a DISPATCHED job's execution is still alive before failing
# the job (functions/dead_letters.py, CloudRunLauncher.is_alive): one permission, no run.
resource "google_project_iam_custom_role" "execution_viewer" {
  project     = var.project
  role_id     = "audionotesExecutionViewer"
  title       = "audionotes execution viewer"
  description = "Look up executions of the transcribe jobs."
  permissions = ["run.executions.get"]
}

locals {
  job_execution_viewers = merge([
    for job in keys(google_cloud_run_v2_job.this) : {
      for k, member in var.execution_viewers : "${job}|${k}" => { job = job, member = member }
    }
  ]...)
  job_runners = merge([
    for job in keys(google_cloud_run_v2_job.this) : {
      for k, member in var.runners : "${job}|${k}" => { job = job, member = member }
    }
  ]...)
  job_cancellers = merge([
    for job in keys(google_cloud_run_v2_job.this) : {
      for k, member in var.cancellers : "${job}|${k}" => { job = job, member = member }
    }
  ]...)
}

resource "google_cloud_run_v2_job_iam_member" "runner" {
  for_each = local.job_runners

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_job.this[each.value.job].name
  role     = google_project_iam_custom_role.job_runner.name
  member   = each.value.member
}

resource "google_cloud_run_v2_job_iam_member" "canceller" {
  for_each = local.job_cancellers

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_job.this[each.value.job].name
  role     = google_project_iam_custom_role.execution_canceller.name
  member   = each.value.member
}

resource "google_cloud_run_v2_job_iam_member" "execution_viewer" {
  for_each = local.job_execution_viewers

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_job.this[each.value.job].name
  role     = google_project_iam_custom_role.execution_viewer.name
  member   = each.value.member
}

# Running a job that executes as another identity requires actAs on that identity.
resource "google_service_account_iam_member" "runner_act_as" {
  for_each = var.runners

  service_account_id = var.service_account_id
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
