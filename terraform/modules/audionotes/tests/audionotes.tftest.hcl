# Offline checks of the whole system (this module with its defaults) with a mocked google
# provider: run with
#   ../shared/tools/terraform-offline/tf-offline -chdir=terraform/modules/audionotes test
# (terraform/check does). The environment roots pass their tfvars through to this module;
# their own tests (envs/*/tests/) check that wiring and what differs between them.

mock_provider "google" {
  source = "./tests/mocks"
}

variables {
  environment = "test"
  project     = "x-proj1"
  buckets = {
    inbox   = "in-bkt"
    results = "out-bkt"
  }
  function_source = {
    path = "../../../.local/functions.zip"
    md5  = "0123456789abcdef0123456789abcdef"
  }
  job_image = "us-central1-docker.pkg.dev/x-proj1/audionotes/transcribe@sha256:0000000000000000000000000000000000000000000000000000000000000000"
}

# Plan first: every for_each key must be known before anything exists (a real first apply).
run "plan_has_known_keys" {
  command = plan

  assert {
    condition     = length(module.run_jobs.jobs) == 2
    error_message = "Both transcribe jobs must be planned."
  }
}

run "first_apply_without_image" {
  command = plan

  variables {
    job_image = null
  }

  assert {
    condition     = length(module.run_jobs.jobs) == 0
    error_message = "Without an image no job may be created (the registry comes first)."
  }
}

run "system" {
  command = apply

  # GPU job: one nvidia-l4 per task, zonal redundancy off, under the 1 h GPU task limit.
  assert {
    condition     = module.run_jobs.job_specs["transcribe-gpu"].accelerator == "nvidia-l4"
    error_message = "transcribe-gpu must select nvidia-l4."
  }
  assert {
    condition     = module.run_jobs.job_specs["transcribe-gpu"].limits["nvidia.com/gpu"] == "1"
    error_message = "transcribe-gpu must ask for one GPU."
  }
  assert {
    condition     = module.run_jobs.job_specs["transcribe-gpu"].gpu_zonal_redundancy_disabled == true
    error_message = "transcribe-gpu must disable GPU zonal redundancy."
  }
  assert {
    condition     = tonumber(trimsuffix(module.run_jobs.job_specs["transcribe-gpu"].timeout, "s")) < 3600
    error_message = "GPU task timeout must be under 3600 s."
  }
  assert {
    condition     = module.run_jobs.job_specs["transcribe-gpu"].max_retries >= 1 && module.run_jobs.job_specs["transcribe-gpu"].parallelism >= 1
    error_message = "transcribe-gpu must retry failed tasks and set a parallelism."
  }
  assert {
    condition     = module.run_jobs.job_specs["transcribe-cpu"].accelerator == null && !contains(keys(module.run_jobs.job_specs["transcribe-cpu"].limits), "nvidia.com/gpu")
    error_message = "transcribe-cpu must not ask for a GPU."
  }

  # Pub/Sub: dead letters after 5 attempts, 600 s ack deadline, on every push subscription.
  assert {
    condition     = alltrue([for s in values(module.pubsub.push_subscriptions) : s.max_delivery_attempts == 5])
    error_message = "Every push subscription must dead-letter after 5 delivery attempts."
  }
  assert {
    condition     = alltrue([for s in values(module.pubsub.push_subscriptions) : s.ack_deadline_seconds == 600])
    error_message = "Every push subscription must have a 600 s ack deadline."
  }
  assert {
    condition     = alltrue([for s in values(module.pubsub.push_subscriptions) : s.dead_letter_topic != s.topic])
    error_message = "A subscription must not dead-letter into its own topic."
  }
  assert {
    condition     = alltrue([for k, s in module.pubsub.push_subscriptions : s.push_endpoint == module.functions.functions[k].uri])
    error_message = "dispatch and notes subscriptions must push to their functions."
  }
  assert {
    condition     = alltrue([for k, s in module.pubsub.push_subscriptions : module.functions.function_specs[k].timeout_s <= s.ack_deadline_seconds])
    error_message = "A pushed-to function's timeout must fit in its subscription's ack deadline."
  }
  assert {
    condition     = length(module.pubsub.subscriptions) == 4
    error_message = "Two push subscriptions and two dead-letter subscriptions expected."
  }

  # Lifecycle: Nearline at 30 days, then colder, deletion at the retention age.
  assert {
    condition     = contains([for r in module.storage.lifecycle_rules.inbox : r.age if r.storage_class == "NEARLINE"], 30)
    error_message = "Inbox objects must move to Nearline after 30 days."
  }
  assert {
    condition     = contains([for r in module.storage.lifecycle_rules.results : r.age if r.storage_class == "COLDLINE"], 90) && contains([for r in module.storage.lifecycle_rules.results : r.age if r.storage_class == "ARCHIVE"], 365)
    error_message = "Results must move to Coldline at 90 and Archive at 365 days."
  }
  assert {
    condition     = contains([for r in module.storage.lifecycle_rules.inbox : r.age if r.action == "Delete"], 400) && contains([for r in module.storage.lifecycle_rules.results : r.age if r.action == "Delete"], 1095)
    error_message = "Objects must be deleted at the retention age."
  }

  # Triggers: on_upload on object finalized in the inbox; dispatch and notes by push only.
  assert {
    condition     = module.functions.function_specs["on-upload"].event_type == "google.cloud.storage.object.v1.finalized"
    error_message = "on_upload must trigger on google.cloud.storage.object.v1.finalized."
  }
  assert {
    condition     = module.functions.function_specs["on-upload"].event_filters["bucket"] == "in-bkt"
    error_message = "on_upload must trigger on the inbox bucket."
  }
  assert {
    condition     = module.functions.function_specs["dispatch"].event_type == null && module.functions.function_specs["notes"].event_type == null && module.functions.function_specs["api"].event_type == null
    error_message = "dispatch and notes are fed by push subscriptions, api by HTTPS: no event_trigger."
  }
  assert {
    condition     = module.functions.function_specs["api"].ingress == "ALLOW_ALL" && module.functions.function_specs["dispatch"].ingress == "ALLOW_INTERNAL_ONLY"
    error_message = "Only the API is reachable from the internet."
  }

  # Settings on every function and job; secrets only where they are needed.
  assert {
    condition = alltrue([
      for spec in concat(values(module.functions.function_specs), values(module.run_jobs.job_specs)) :
      spec.env["AUDIONOTES_PROJECT"] == "x-proj1" && spec.env["AUDIONOTES_BUCKETS__INBOX"] == "in-bkt" && spec.env["AUDIONOTES_BUCKETS__RESULTS"] == "out-bkt"
    ])
    error_message = "Every function and job needs AUDIONOTES_PROJECT and the bucket names."
  }
  assert {
    condition     = module.functions.function_specs["api"].secret_env == { AUDIONOTES_AUTH__JWT_SECRET = "audionotes-jwt-secret" }
    error_message = "api gets the JWT secret and nothing else from Secret Manager."
  }
  assert {
    condition = module.functions.function_specs["notes"].secret_env == {
      AUDIONOTES_LLM__OPENAI_API_KEYS = "audionotes-openai-api-keys"
      AUDIONOTES_LLM__WEBHOOK_SECRET  = "audionotes-webhook-secret"
    }
    error_message = "notes gets the OpenAI keys and the webhook key, and nothing else, from Secret Manager."
  }
  assert {
    condition     = length(module.functions.function_specs["on-upload"].secret_env) == 0 && length(module.functions.function_specs["dispatch"].secret_env) == 0
    error_message = "on_upload and dispatch read no secrets."
  }

  # Least privilege: no basic roles anywhere at project level.
  assert {
    condition     = length(setintersection(toset(module.iam.project_roles), ["roles/owner", "roles/editor", "roles/viewer"])) == 0
    error_message = "No basic (primitive) roles may be granted."
  }

  assert {
    condition     = output.api_url == "https://fn-abc123-uc.a.run.app"
    error_message = "api_url must be the API function's URI."
  }
}

run "fallback_key_is_optional" {
  command = apply

  variables {
    llm = { fallback_api_key_secret_id = "audionotes-fallback-key" }
  }

  assert {
    condition     = module.functions.function_specs["notes"].secret_env["AUDIONOTES_LLM__FALLBACK_API_KEY"] == "audionotes-fallback-key"
    error_message = "A configured fallback key reaches notes from Secret Manager."
  }
}

run "timeouts_reach_dispatch_and_worker" {
  command = apply

  assert {
    condition = alltrue([
      for spec in [module.functions.function_specs["dispatch"], module.run_jobs.job_specs["transcribe-gpu"], module.run_jobs.job_specs["transcribe-cpu"]] :
      spec.env["AUDIONOTES_TRANSCRIPTION__GPU_TASK_TIMEOUT_S"] == trimsuffix(module.run_jobs.job_specs["transcribe-gpu"].timeout, "s")
    ])
    error_message = "dispatch and the worker must know the GPU job's real task timeout."
  }
}

run "gpu_timeout_over_an_hour_is_rejected" {
  command = plan

  variables {
    transcribe = { gpu = { timeout_s = 3600 } }
  }

  expect_failures = [var.transcribe]
}
