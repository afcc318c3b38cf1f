# Offline checks of the whole system (this module with its defaults) with a mocked google
# provider: run with
#   ../shared/tools/terraform-offline/tf-offline -chdir=terraform/modules/audionotes test
# (terraform/check does). The environment roots pass their tfvars through to this module;
# their own tests (envs/*/tests/) check that wiring and what differs between them.

mock_provider "google" {
  source = "./tests/mocks"
}

variables {
  environment = "dev"
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

# Distinct URLs and identities where the tests tell them apart (the mocks give every function
# and service account the same ones).
override_resource {
  target = module.functions.google_cloudfunctions2_function.this["dead-letters"]
  values = { service_config = { uri = "https://dead-letters-abc123-uc.a.run.app", service = "dead-letters" } }
}
override_resource {
  target = module.functions.google_cloudfunctions2_function.this["sweep"]
  values = { service_config = { uri = "https://sweep-abc123-uc.a.run.app", service = "sweep" } }
}
override_resource {
  target = module.functions.google_cloudfunctions2_function.this["api"]
  values = { service_config = { uri = "https://api-abc123-uc.a.run.app", service = "api" } }
}
override_resource {
  target = module.functions.google_cloudfunctions2_function.this["dispatch"]
  values = { service_config = { uri = "https://dispatch-abc123-uc.a.run.app", service = "dispatch" } }
}
override_resource {
  target = module.functions.google_cloudfunctions2_function.this["notes"]
  values = { service_config = { uri = "https://notes-abc123-uc.a.run.app", service = "notes" } }
}
override_resource {
  target = module.iam.google_service_account.this["pubsub_push"]
  values = {
    email  = "audionotes-pubsub-push@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:audionotes-pubsub-push@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/audionotes-pubsub-push@x-proj1.iam.gserviceaccount.com"
  }
}
override_resource {
  target = module.iam.google_service_account.this["scheduler"]
  values = {
    email  = "audionotes-scheduler@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:audionotes-scheduler@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/audionotes-scheduler@x-proj1.iam.gserviceaccount.com"
  }
}
override_resource {
  target = module.iam.google_service_account.this["sweep"]
  values = {
    email  = "audionotes-sweep@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:audionotes-sweep@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/audionotes-sweep@x-proj1.iam.gserviceaccount.com"
  }
}
override_resource {
  target = module.iam.google_service_account.this["dead_letters"]
  values = {
    email  = "audionotes-dead-letters@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:audionotes-dead-letters@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/audionotes-dead-letters@x-proj1.iam.gserviceaccount.com"
  }
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
    condition     = module.pubsub.push_subscriptions["dispatch"].push_endpoint == "https://dispatch-abc123-uc.a.run.app" && module.pubsub.push_subscriptions["notes"].push_endpoint == "https://notes-abc123-uc.a.run.app"
    error_message = "dispatch and notes subscriptions must push to their functions."
  }
  assert {
    condition     = alltrue([for k, s in module.pubsub.push_subscriptions : module.functions.function_specs[k].timeout_s <= s.ack_deadline_seconds])
    error_message = "A pushed-to function's timeout must fit in its subscription's ack deadline."
  }
  assert {
    condition     = length(module.pubsub.subscriptions) == 8
    error_message = "Two push subscriptions, three work (pull) subscriptions and three dead-letter subscriptions expected."
  }

  # Dead letters: the three dead-letter subscriptions push to dead_letters with the push
  # identity's OIDC token, redeliver like the others, never dead-letter themselves and keep 7 days.
  assert {
    condition     = keys(module.pubsub.dead_letter_subscriptions) == ["transcription_requests_dead_letter", "transcripts_ready_dead_letter", "work_dead_letter"] && [for s in values(module.pubsub.dead_letter_subscriptions) : s.name] == ["transcription-requests-dead-letter", "transcripts-ready-dead-letter", "transcription-work-dead-letter"]
    error_message = "The three dead-letter subscriptions (names from Settings) must exist."
  }
  assert {
    condition = alltrue([for s in values(module.pubsub.dead_letter_subscriptions) :
      s.push_endpoint == "https://dead-letters-abc123-uc.a.run.app" && s.push_endpoint == module.functions.functions["dead-letters"].uri && s.oidc_audience == s.push_endpoint
    ])
    error_message = "Every dead-letter subscription must push to the dead_letters function (OIDC audience: its URL)."
  }
  assert {
    condition     = alltrue([for s in values(module.pubsub.dead_letter_subscriptions) : s.oidc_service_account_email == "audionotes-pubsub-push@x-proj1.iam.gserviceaccount.com"])
    error_message = "Dead-letter pushes must carry an OIDC token of the pubsub_push identity."
  }
  assert {
    condition = alltrue([for s in values(module.pubsub.dead_letter_subscriptions) :
      !s.has_dead_letter_policy && s.message_retention_duration == "604800s" && s.minimum_backoff == "10s" && s.maximum_backoff == "600s" && s.ack_deadline_seconds >= module.functions.function_specs["dead-letters"].timeout_s
    ])
    error_message = "Dead-letter subscriptions: no dead-letter policy of their own, 7 days retention, the same backoff, an ack deadline covering dead_letters' timeout."
  }
  assert {
    condition     = module.functions.invokers["dead-letters"] == { pubsub_push = "serviceAccount:audionotes-pubsub-push@x-proj1.iam.gserviceaccount.com" } && module.functions.invokers["dispatch"] == module.functions.invokers["dead-letters"] && module.functions.invokers["notes"] == module.functions.invokers["dead-letters"]
    error_message = "Only the push identity may invoke dispatch, notes and dead_letters."
  }
  assert {
    condition = (
      module.functions.function_specs["dead-letters"].entry_point == "dead_letters" &&
      module.functions.function_specs["dead-letters"].service_account == "audionotes-dead-letters@x-proj1.iam.gserviceaccount.com" &&
      module.functions.function_specs["dead-letters"].env["AUDIONOTES_SUBSCRIPTIONS__DISPATCH"] == "dispatch" &&
      module.functions.function_specs["dead-letters"].env["AUDIONOTES_SUBSCRIPTIONS__NOTES"] == "notes" &&
      module.functions.function_specs["dead-letters"].env["AUDIONOTES_RUN_JOBS__TRANSCRIBE_GPU"] == "transcribe-gpu" &&
      module.functions.function_specs["dead-letters"].env["AUDIONOTES_RUN_JOBS__TRANSCRIBE_CPU"] == "transcribe-cpu" &&
      module.functions.function_specs["dead-letters"].env["AUDIONOTES_REGION"] == "us-central1"
    )
    error_message = "dead_letters runs as its own identity and knows the subscriptions it tells apart and the jobs whose executions it looks up."
  }

  # Sweep: Cloud Scheduler POSTs {"older_than_s": 900} every 5 minutes with the scheduler
  # identity's OIDC token; that identity alone may invoke sweep.
  assert {
    condition     = google_cloud_scheduler_job.sweep.schedule == "*/5 * * * *" && google_cloud_scheduler_job.sweep.http_target[0].http_method == "POST"
    error_message = "The sweep job must POST every 5 minutes."
  }
  assert {
    condition     = google_cloud_scheduler_job.sweep.http_target[0].uri == "https://sweep-abc123-uc.a.run.app" && google_cloud_scheduler_job.sweep.http_target[0].uri == module.functions.functions["sweep"].uri
    error_message = "The scheduler job must call the sweep function's URL."
  }
  assert {
    condition     = jsondecode(base64decode(google_cloud_scheduler_job.sweep.http_target[0].body)) == { older_than_s = 900 } && jsonencode(google_cloud_scheduler_job.sweep.http_target[0].headers) == jsonencode({ "Content-Type" = "application/json" })
    error_message = "The scheduler job must send {\"older_than_s\": 900} as application/json."
  }
  assert {
    condition     = google_cloud_scheduler_job.sweep.http_target[0].oidc_token[0].service_account_email == "audionotes-scheduler@x-proj1.iam.gserviceaccount.com" && google_cloud_scheduler_job.sweep.http_target[0].oidc_token[0].audience == module.functions.functions["sweep"].uri
    error_message = "The scheduler job must authenticate as the scheduler identity, for the sweep URL."
  }
  assert {
    condition     = module.functions.invokers["sweep"] == { scheduler = "serviceAccount:audionotes-scheduler@x-proj1.iam.gserviceaccount.com" }
    error_message = "Only the scheduler identity may invoke sweep (no allUsers)."
  }
  assert {
    condition     = module.functions.function_specs["sweep"].entry_point == "sweep" && module.functions.function_specs["sweep"].service_account == "audionotes-sweep@x-proj1.iam.gserviceaccount.com" && module.functions.function_specs["sweep"].timeout_s <= tonumber(trimsuffix(google_cloud_scheduler_job.sweep.attempt_deadline, "s"))
    error_message = "sweep runs as its own identity, within the scheduler's attempt deadline."
  }
  assert {
    condition     = contains(module.iam.enabled_services, "cloudscheduler.googleapis.com")
    error_message = "The Cloud Scheduler API must be enabled."
  }
  assert {
    condition     = contains(module.iam.enabled_services, "cloudtrace.googleapis.com") && output.settings.AUDIONOTES_TRACING__EXPORTER == "cloud_trace"
    error_message = "Spans must be exported to Cloud Trace, with its API enabled."
  }

  # The new identities' roles: Firestore (and logs, metrics, traces) at project level, the
  # rest on single resources; the scheduler identity holds nothing but run.invoker on sweep.
  assert {
    condition = alltrue([for k in ["sweep", "dead_letters"] :
      module.iam.project_grants[k] == toset(["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/cloudtrace.agent", "roles/datastore.user"])
    ]) && length(module.iam.project_grants["scheduler"]) == 0 && length(module.iam.project_grants["pubsub_push"]) == 0
    error_message = "sweep and dead_letters get datastore.user with the runtime roles only; scheduler and pubsub_push no project role."
  }
  assert {
    condition     = length(setintersection(toset(flatten([for roles in values(module.iam.project_grants) : tolist(roles)])), ["roles/owner", "roles/editor", "roles/viewer"])) == 0
    error_message = "No component may hold a basic (primitive) role."
  }
  assert {
    condition     = { for k, topic in module.pubsub.publishers : k => topic if startswith(k, "sweep") } == { sweep_requests = "transcription_requests", sweep_ready = "transcripts_ready" }
    error_message = "sweep may publish to transcription-requests and transcripts-ready only."
  }

  # Lifecycle (defaults): audio, results and cache go with the job (job_retention_days, 30),
  # too soon for any colder class (Nearline alone needs 30 days in it); old generations after 7.
  assert {
    condition     = jsonencode([for r in module.storage.lifecycle_rules.inbox : r.age if r.action == "Delete" && coalesce(r.days_since_noncurrent_time, 0) == 0]) == "[30]" && alltrue([for r in module.storage.lifecycle_rules.inbox : length(coalesce(r.prefixes, [])) == 0])
    error_message = "The whole inbox (uploads/ and api-uploads/) must be deleted at the job retention (30 days)."
  }
  assert {
    condition     = jsonencode([for r in module.storage.lifecycle_rules.results : [r.age, r.prefixes] if r.action == "Delete" && coalesce(r.days_since_noncurrent_time, 0) == 0]) == jsonencode([[30, ["cache/"]], [30, ["jobs/"]]])
    error_message = "Results under jobs/ and the cache under cache/ must be deleted at the job retention (30 days)."
  }
  assert {
    condition     = alltrue([for b in values(module.storage.lifecycle_rules) : length([for r in b : r if r.action == "SetStorageClass"]) == 0])
    error_message = "No colder class may be used where objects are deleted before its minimum storage duration."
  }
  assert {
    condition     = alltrue([for b in values(module.storage.lifecycle_rules) : contains([for r in b : r.days_since_noncurrent_time if r.action == "Delete"], 7) && contains([for r in b : r.action], "AbortIncompleteMultipartUpload")])
    error_message = "Every bucket deletes old generations after 7 days and aborts stale multipart uploads."
  }
  assert {
    condition     = jsonencode([for r in module.storage.lifecycle_rules.sources : r.age if r.action == "Delete" && coalesce(r.days_since_noncurrent_time, 0) == 0]) == "[365]"
    error_message = "Function archives are deleted after 365 days."
  }

  # Firestore: TTL policies where the code writes expire_at; indexes of the queries it makes.
  assert {
    condition     = module.firestore.ttl_policies == { jobs = "expire_at", rate_limits = "expire_at" }
    error_message = "jobs and rate_limits must have TTL policies on expire_at (breakers and spend have no expiry field)."
  }
  assert {
    condition     = keys(module.firestore.indexes) == ["lane_state_created", "owner_created", "owner_state_created", "state_created", "work_tier_state_chunks"]
    error_message = "Composite indexes: GET /v1/jobs by owner, with and without state, newest first; the sweep by state, newest first; a batch lane's jobs, oldest first; a tier's worker backlog; nothing else."
  }
  assert {
    condition     = module.firestore.indexes["work_tier_state_chunks"] == [["coordination.work_tier", "ASCENDING"], ["state", "ASCENDING"], ["coordination.work_chunks", "ASCENDING"]]
    error_message = "The backlog sum (coordination.work_tier ==, state in, sum of coordination.work_chunks) needs the index (coordination.work_tier, state, coordination.work_chunks)."
  }
  assert {
    condition     = module.firestore.indexes["lane_state_created"] == [["coordination.batch_lane", "ASCENDING"], ["state", "ASCENDING"], ["created_at", "ASCENDING"]]
    error_message = "A lane worker's query (coordination.batch_lane ==, state in, created_at asc) needs the index (coordination.batch_lane, state, created_at ASC)."
  }
  assert {
    condition     = module.firestore.indexes["state_created"] == [["state", "ASCENDING"], ["created_at", "DESCENDING"]]
    error_message = "The sweep's query (state ==, created_at desc) needs the index (state ASC, created_at DESC)."
  }

  # Bucket grants: who does what to which objects.
  assert {
    condition     = module.storage.grants["on_upload_reads_uploads"].prefix == "uploads/" && module.storage.grants["on_upload_reads_uploads"].role == "roles/storage.objectViewer"
    error_message = "on_upload reads objects under uploads/ only."
  }
  assert {
    condition     = module.storage.grants["api_signs_uploads"].prefix == "api-uploads/" && module.storage.grants["api_signs_uploads"].role == "roles/storage.objectCreator" && module.storage.grants["api_signs_uploads"].bucket == "inbox"
    error_message = "The API's signed upload URLs may create objects under api-uploads/ only."
  }
  assert {
    condition     = alltrue([for k in ["api_reads_deletes_inbox", "api_reads_deletes_results"] : module.storage.grants[k].role == "objectReadDelete"]) && module.storage.custom_roles.objectReadDelete.permissions == toset(["storage.objects.get", "storage.objects.list", "storage.objects.delete"])
    error_message = "The API reads and deletes audio and results and writes neither."
  }
  assert {
    condition     = module.storage.grants["notes_writes_results"].prefix == "jobs/" && length([for k, g in module.storage.grants : k if startswith(k, "dispatch_") && g.bucket != "inbox"]) == 0
    error_message = "notes writes under jobs/ only; dispatch reads the inbox and nothing else."
  }

  # Pub/Sub publishers: on_upload and api request transcriptions, the worker announces them.
  assert {
    condition = module.pubsub.publishers == {
      on_upload          = "transcription_requests", api = "transcription_requests", transcribe = "transcripts_ready", sweep_requests = "transcription_requests", sweep_ready = "transcripts_ready",
      dispatch_work_high = "work_high", dispatch_work_normal = "work_normal", dispatch_work_low = "work_low"
    }
    error_message = "Only on_upload, api and sweep publish requests, only the worker and sweep publish transcripts-ready, only dispatch publishes to the work topics (dead_letters publishes nothing, nobody to a dead-letter topic)."
  }

  # Cloud Run jobs: dispatch and sweep launch workers (run with overrides, count running
  # tasks by listing executions), the API cancels executions.
  assert {
    condition = alltrue([for job, grants in module.run_jobs.job_grants : grants == {
      "runner:dispatch"     = toset(["run.jobs.run", "run.jobs.runWithOverrides", "run.executions.get", "run.executions.list"])
      "runner:sweep"        = toset(["run.jobs.run", "run.jobs.runWithOverrides", "run.executions.get", "run.executions.list"])
      "canceller:api"       = toset(["run.executions.cancel"])
      "viewer:dead_letters" = toset(["run.executions.get"])
    }])
    error_message = "On each job: dispatch and sweep may run (with overrides), get and list executions, api may cancel them, dead_letters may only get them, nothing more."
  }
  assert {
    condition     = alltrue([for spec in values(module.run_jobs.job_specs) : length(coalesce(spec.command, [])) == 0 && length(coalesce(spec.args, [])) == 0])
    error_message = "The jobs must run the image's ENTRYPOINT (python -m run_jobs.transcribe): no command or args."
  }

  # Secrets: each readable by the one identity that needs it.
  assert {
    condition     = jsonencode(module.secrets.accessors) == jsonencode({ jwt_secret = ["api"], openai_api_keys = ["notes"], webhook_secret = ["notes"] })
    error_message = "The JWT secret is readable by api only, the OpenAI keys and webhook key by notes only."
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
    condition     = alltrue([for f in ["dispatch", "notes", "api", "dead-letters", "sweep"] : module.functions.function_specs[f].event_type == null])
    error_message = "dispatch, notes and dead_letters are fed by push subscriptions, api and sweep by HTTPS: no event_trigger."
  }
  assert {
    condition     = module.functions.function_specs["api"].ingress == "ALLOW_ALL" && alltrue([for k, f in module.functions.function_specs : f.ingress == "ALLOW_INTERNAL_ONLY" if k != "api"])
    error_message = "Only the API is reachable from the internet (sweep too is internal: Cloud Scheduler in the project counts as internal)."
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
      AUDIONOTES_WEBHOOKS__SECRET     = "audionotes-webhook-secret"
    }
    error_message = "notes gets the OpenAI keys and the webhook key, and nothing else, from Secret Manager."
  }
  assert {
    condition     = alltrue([for f in ["on-upload", "dispatch", "dead-letters", "sweep"] : length(module.functions.function_specs[f].secret_env) == 0])
    error_message = "on_upload, dispatch, dead_letters and sweep read no secrets."
  }

  # Each function and job gets the settings it reads.
  assert {
    condition = alltrue([
      for spec in concat(values(module.functions.function_specs), values(module.run_jobs.job_specs)) :
      spec.env["AUDIONOTES_BUCKETS__INBOX_PREFIX"] == "uploads/" && spec.env["AUDIONOTES_BUCKETS__RESULTS_PREFIX"] == "jobs/" && spec.env["AUDIONOTES_BUCKETS__CACHE_PREFIX"] == "cache/" && spec.env["AUDIONOTES_COLLECTIONS__JOBS"] == "jobs" && spec.env["AUDIONOTES_LIMITS__RETENTION_DAYS"] == "30"
    ])
    error_message = "Every function and job needs the folder and collection names and the retention."
  }
  assert {
    condition     = module.functions.function_specs["api"].env["AUDIONOTES_AUTH__API_UPLOAD_PREFIX"] == "api-uploads/" && module.functions.function_specs["api"].env["AUDIONOTES_COLLECTIONS__RATE_LIMITS"] == "rate_limits" && module.functions.function_specs["api"].env["AUDIONOTES_AUTH__RATE_PER_MINUTE"] == "60"
    error_message = "api needs its upload folder, the rate_limits collection and the rate limits."
  }
  assert {
    condition = (
      module.functions.function_specs["dispatch"].env["AUDIONOTES_EXECUTIONS__BATCH_TIER"] == "cpu" &&
      module.functions.function_specs["dispatch"].env["AUDIONOTES_TRANSCRIPTION__DEFAULT_MODELS"] == jsonencode({ cpu = "base", gpu = "large-v3-turbo" }) &&
      module.functions.function_specs["dispatch"].env["AUDIONOTES_LIMITS__CHUNK_SECONDS"] == "1200" &&
      module.functions.function_specs["dispatch"].env["AUDIONOTES_EXECUTIONS__MAX_RETRIES"] == "3"
    )
    error_message = "dispatch needs the batch tier, default model, chunk length and retries."
  }
  assert {
    condition     = module.functions.function_specs["notes"].env["AUDIONOTES_LLM__MODEL"] == "gpt-4o-mini" && module.functions.function_specs["notes"].env["AUDIONOTES_COLLECTIONS__BREAKERS"] == "breakers" && module.functions.function_specs["notes"].env["AUDIONOTES_COLLECTIONS__SPEND"] == "spend"
    error_message = "notes needs its model and the breakers and spend collections."
  }
  assert {
    condition     = alltrue([for spec in values(module.run_jobs.job_specs) : spec.env["AUDIONOTES_TRANSCRIPTION__MODELS"] == jsonencode({ "base" = "/models/base", "large-v3-turbo" = "/models/large-v3-turbo", "tiny.en" = "/models/tiny.en" }) && !contains(keys(spec.env), "AUDIONOTES_TRANSCRIPTION__CACHE_DIR") && spec.env["AUDIONOTES_EXECUTIONS__MAX_RETRIES"] == "3"])
    error_message = "The jobs load the models where the image's bake put them, keep its cache folder, and know the retry limit."
  }

  # Least privilege: no basic roles anywhere at project level.
  assert {
    condition     = length(setintersection(toset(module.iam.project_roles), ["roles/owner", "roles/editor", "roles/viewer"])) == 0
    error_message = "No basic (primitive) roles may be granted."
  }

  assert {
    condition     = output.api_url == "https://api-abc123-uc.a.run.app"
    error_message = "api_url must be the API function's URI."
  }
}

run "fallback_key_is_optional" {
  command = apply

  variables {
    llm = {
      fallback_base_url          = "https://llm.internal.example/v1"
      fallback_model             = "llama-3.1-8b"
      fallback_api_key_secret_id = "audionotes-fallback-key"
    }
  }

  assert {
    condition     = module.functions.function_specs["notes"].secret_env["AUDIONOTES_LLM__FALLBACK_API_KEY"] == "audionotes-fallback-key"
    error_message = "A configured fallback key reaches notes from Secret Manager."
  }
  assert {
    condition     = jsonencode(module.secrets.accessors["fallback_api_key"]) == jsonencode(["notes"])
    error_message = "The fallback key is readable by notes only."
  }
  assert {
    condition     = module.functions.function_specs["notes"].env["AUDIONOTES_LLM__FALLBACK_BASE_URL"] == "https://llm.internal.example/v1" && module.functions.function_specs["notes"].env["AUDIONOTES_LLM__FALLBACK_MODEL"] == "llama-3.1-8b"
    error_message = "The fallback's URL and model reach notes."
  }
}

run "fallback_key_without_fallback_url_is_rejected" {
  command = plan

  variables {
    llm = { fallback_api_key_secret_id = "audionotes-fallback-key" }
  }

  expect_failures = [var.llm]
}

run "long_retention_tiers_only_where_they_fit" {
  command = apply

  variables {
    job_retention_days = 400
    storage_lifecycle  = { results_retention = 1095, cache_retention = 45 }
  }

  # Audio kept 400 days: Nearline at 30 (30 more days fit), Coldline at 90 (90 fit), never
  # Archive (365 days in it would end after the deletion at 400).
  assert {
    condition     = { for r in module.storage.lifecycle_rules.inbox : r.storage_class => r.age if r.action == "SetStorageClass" } == { NEARLINE = 30, COLDLINE = 90 }
    error_message = "Inbox audio kept 400 days: Nearline at 30, Coldline at 90, no Archive."
  }
  assert {
    condition     = contains([for r in module.storage.lifecycle_rules.inbox : r.age if r.action == "Delete"], 400)
    error_message = "Inbox audio is deleted with its job (400 days)."
  }
  assert {
    condition     = { for r in module.storage.lifecycle_rules.results : r.storage_class => r.age if r.action == "SetStorageClass" && jsonencode(r.prefixes) == jsonencode(["jobs/"]) } == { NEARLINE = 30, COLDLINE = 90, ARCHIVE = 365 }
    error_message = "Results kept 1095 days go down to Archive at 365."
  }
  assert {
    condition     = length([for r in module.storage.lifecycle_rules.results : r if r.action == "SetStorageClass" && jsonencode(r.prefixes) == jsonencode(["cache/"])]) == 0 && contains([for r in module.storage.lifecycle_rules.results : r.age if r.action == "Delete" && jsonencode(r.prefixes) == jsonencode(["cache/"])], 45)
    error_message = "A cache kept 45 days stays in Standard and is deleted at 45."
  }
}

run "source_buckets_are_readable" {
  command = apply

  variables {
    api = { source_buckets = ["shared-audio"] }
  }

  assert {
    condition     = module.functions.function_specs["api"].env["AUDIONOTES_AUTH__SOURCE_BUCKETS"] == jsonencode(["shared-audio"])
    error_message = "api must know the source buckets."
  }
  assert {
    condition     = toset(keys(google_storage_bucket_iam_member.source_bucket_readers)) == toset(["shared-audio|api", "shared-audio|dispatch", "shared-audio|transcribe"])
    error_message = "api, dispatch and the worker must be able to read a source bucket."
  }
}

run "web_page_uploads_pass_the_inbox_cors" {
  command = apply

  variables {
    api = { web_origins = ["https://api-abc-uc.a.run.app"] }
  }

  assert {
    condition     = jsonencode([for c in module.storage.buckets["inbox"].cors : c.origin]) == jsonencode([["https://api-abc-uc.a.run.app"]])
    error_message = "The inbox must let the web page's origin PUT to its signed URLs."
  }
  assert {
    condition     = jsonencode([for c in module.storage.buckets["inbox"].cors : c.method]) == jsonencode([["PUT"]])
    error_message = "The page only PUTs uploads: no other method is allowed across origins."
  }
  assert {
    condition     = length(module.storage.buckets["results"].cors) == 0
    error_message = "Only the inbox takes browser uploads."
  }
}

run "timeouts_reach_dispatch_and_worker" {
  command = apply

  assert {
    condition = alltrue([
      for spec in [module.functions.function_specs["dispatch"], module.run_jobs.job_specs["transcribe-gpu"], module.run_jobs.job_specs["transcribe-cpu"]] :
      spec.env["AUDIONOTES_EXECUTIONS__GPU_TASK_TIMEOUT_S"] == trimsuffix(module.run_jobs.job_specs["transcribe-gpu"].timeout, "s")
    ])
    error_message = "dispatch and the worker must know the GPU job's real task timeout."
  }
}

run "unknown_environment_is_rejected" {
  command = plan

  variables {
    environment = "staging"
  }

  expect_failures = [var.environment]
}

run "gpu_timeout_over_an_hour_is_rejected" {
  command = plan

  variables {
    transcribe = { gpu = { timeout_s = 3600 } }
  }

  expect_failures = [var.transcribe]
}

run "sweep_schedule_must_be_cron" {
  command = plan

  variables {
    sweep = { schedule = "every 5 minutes" }
  }

  expect_failures = [var.sweep]
}

run "sweep_age_under_a_minute_is_rejected" {
  command = plan

  variables {
    sweep = { older_than_s = 10 }
  }

  expect_failures = [var.sweep]
}

run "sweep_settings_reach_the_scheduler" {
  command = apply

  variables {
    sweep = { schedule = "*/10 * * * *", older_than_s = 1800 }
  }

  assert {
    condition     = google_cloud_scheduler_job.sweep.schedule == "*/10 * * * *" && jsondecode(base64decode(google_cloud_scheduler_job.sweep.http_target[0].body)) == { older_than_s = 1800 }
    error_message = "sweep.schedule and sweep.older_than_s must reach the scheduler job."
  }
}

# The pull workers: three work queues pulled by the transcribe identity only, dead-lettered
# like the push subscriptions, with the ack deadline the workers extend; the caps reach
# dispatch and sweep, and the GPU cap is held to the quota (0 by default).
run "work_queues_and_worker_caps" {
  command = apply

  assert {
    condition     = keys(module.pubsub.work_subscriptions) == ["work_high", "work_low", "work_normal"] && [for s in values(module.pubsub.work_subscriptions) : s.name] == ["work-high", "work-low", "work-normal"]
    error_message = "Work subscriptions work-high, work-normal and work-low (names from Settings) must exist."
  }
  assert {
    condition = alltrue([for k, s in module.pubsub.work_subscriptions :
      !s.pushes && s.topic == module.pubsub.topics[k].id && s.ack_deadline_seconds == 60 && s.ack_deadline_seconds == output.workers.ack_deadline_s
    ])
    error_message = "Each work subscription is a pull subscription on its own topic, with the workers' 60 s ack deadline."
  }
  assert {
    condition = alltrue([for s in values(module.pubsub.work_subscriptions) :
      s.dead_letter_topic == module.pubsub.topics["work_dead_letter"].id && s.max_delivery_attempts == 5 && s.minimum_backoff == "10s" && s.maximum_backoff == "600s"
    ])
    error_message = "Work subscriptions dead-letter into transcription-work-dead-letter after 5 attempts, with the same backoff as the others."
  }
  assert {
    condition     = module.pubsub.dead_letter_subscriptions["work_dead_letter"].topic == module.pubsub.topics["work_dead_letter"].id && module.pubsub.dead_letter_subscriptions["work_dead_letter"].push_endpoint == module.functions.functions["dead-letters"].uri
    error_message = "transcription-work-dead-letter pushes to the dead_letters function."
  }
  assert {
    condition = module.pubsub.dead_lettering == {
      dispatch  = "transcription_requests_dead_letter", notes = "transcripts_ready_dead_letter",
      work_high = "work_dead_letter", work_normal = "work_dead_letter", work_low = "work_dead_letter"
    }
    error_message = "The Pub/Sub service agent must be subscriber on every dead-lettering subscription and publisher on its dead-letter topic."
  }
  assert {
    condition     = alltrue([for s in values(module.pubsub.work_subscriptions) : s.pullers == toset([module.iam.service_accounts["transcribe"].member])])
    error_message = "Only the transcribe jobs' identity may pull from the work subscriptions."
  }
  assert {
    condition     = !contains(module.iam.project_grants["transcribe"], "roles/pubsub.subscriber")
    error_message = "The workers' subscriber role is on the work subscriptions, not the project."
  }
  assert {
    condition = alltrue([for spec in values(module.run_jobs.job_specs) :
      spec.env["AUDIONOTES_WORKERS__ACK_DEADLINE_S"] == "60" && spec.env["AUDIONOTES_WORKERS__IDLE_S"] == "30" && spec.env["AUDIONOTES_WORKERS__RESERVE_S"] == "300" &&
      spec.env["AUDIONOTES_SUBSCRIPTIONS__WORK_HIGH"] == "work-high" && spec.env["AUDIONOTES_EXECUTIONS__BATCH_TIER"] == "cpu" && spec.env["AUDIONOTES_COLLECTIONS__WORKER_POOLS"] == "worker_pools"
    ])
    error_message = "The workers know their ack deadline, idle and reserve times, subscriptions and batch tier."
  }
  assert {
    condition = alltrue([for f in ["dispatch", "sweep"] :
      module.functions.function_specs[f].env["AUDIONOTES_WORKERS__MAX_GPU"] == "0" && module.functions.function_specs[f].env["AUDIONOTES_WORKERS__MAX_CPU"] == "8" &&
      module.functions.function_specs[f].env["AUDIONOTES_WORKERS__MODE"] == "workers" && module.functions.function_specs[f].env["AUDIONOTES_WORKERS__BACKLOG_PER_WORKER"] == "2" &&
      module.functions.function_specs[f].env["AUDIONOTES_WORKERS__SCALE_LEASE_S"] == "30" && module.functions.function_specs[f].env["AUDIONOTES_EXECUTIONS__GPU_TASK_TIMEOUT_S"] == "3000" &&
      module.functions.function_specs[f].env["AUDIONOTES_COLLECTIONS__WORKER_POOLS"] == "worker_pools"
    ])
    error_message = "dispatch and sweep scale the workers: mode, caps (GPU 0 without quota, CPU 8), chunks per worker, lease, task timeouts, worker_pools."
  }
  assert {
    condition     = module.functions.function_specs["dispatch"].env["AUDIONOTES_TOPICS__WORK_HIGH"] == "transcription-work-high" && module.functions.function_specs["dispatch"].env["AUDIONOTES_TOPICS__WORK_LOW"] == "transcription-work-low"
    error_message = "dispatch publishes to the work topics named in Settings."
  }
  assert {
    condition     = module.functions.function_specs["dead-letters"].env["AUDIONOTES_SUBSCRIPTIONS__WORK_NORMAL"] == "work-normal"
    error_message = "dead_letters tells a work queue's dead letters by their source subscription."
  }
  assert {
    condition     = output.workers == { max_gpu = 0, max_cpu = 8, gpu_quota = 0, ack_deadline_s = 60 } && module.run_jobs.job_specs["transcribe-gpu"].parallelism == 1
    error_message = "Without GPU quota no GPU worker may start (max_gpu 0), and a GPU execution runs one task at a time."
  }
}

run "granted_quota_raises_the_gpu_cap" {
  command = apply

  variables {
    gpu_quota = 10
  }

  assert {
    condition     = module.functions.function_specs["dispatch"].env["AUDIONOTES_WORKERS__MAX_GPU"] == "4" && module.functions.function_specs["sweep"].env["AUDIONOTES_WORKERS__MAX_GPU"] == "4" && module.run_jobs.job_specs["transcribe-gpu"].parallelism == 4
    error_message = "With quota, the GPU cap defaults to the Settings default (4), and one execution asks for no more GPUs."
  }
}

run "explicit_caps_within_quota" {
  command = apply

  variables {
    gpu_quota       = 20
    max_gpu_workers = 20
    max_cpu_workers = 0
    workers         = { ack_deadline_s = 120, backlog_per_worker = 1 }
  }

  assert {
    condition     = module.functions.function_specs["dispatch"].env["AUDIONOTES_WORKERS__MAX_GPU"] == "20" && module.functions.function_specs["dispatch"].env["AUDIONOTES_WORKERS__MAX_CPU"] == "0" && module.functions.function_specs["sweep"].env["AUDIONOTES_WORKERS__BACKLOG_PER_WORKER"] == "1"
    error_message = "max_gpu_workers, max_cpu_workers and workers.backlog_per_worker reach dispatch and sweep."
  }
  assert {
    condition     = alltrue([for s in values(module.pubsub.work_subscriptions) : s.ack_deadline_seconds == 120]) && alltrue([for spec in values(module.run_jobs.job_specs) : spec.env["AUDIONOTES_WORKERS__ACK_DEADLINE_S"] == "120"])
    error_message = "workers.ack_deadline_s is both the work subscriptions' ack deadline and the workers' setting."
  }
  assert {
    condition     = module.run_jobs.job_specs["transcribe-gpu"].parallelism == 10
    error_message = "The GPU job's parallelism stays transcribe.gpu.parallelism (10) when the cap is above it."
  }
}

run "gpu_workers_over_quota_are_rejected" {
  command = plan

  variables {
    gpu_quota       = 2
    max_gpu_workers = 3
  }

  expect_failures = [output.workers]
}

run "gpu_workers_without_quota_are_rejected" {
  command = plan

  variables {
    max_gpu_workers = 4
  }

  expect_failures = [output.workers]
}

run "unknown_worker_mode_is_rejected" {
  command = plan

  variables {
    workers = { mode = "push" }
  }

  expect_failures = [var.workers]
}
