# audionotes in one project and environment: every module wired to the others. The roots
# under envs/ call this module once each, with their environment's name and values.

data "google_project" "this" {
  project_id = var.project
}

data "google_storage_project_service_account" "gcs" {
  project = var.project
}

locals {
  labels = { app = "audionotes", environment = var.environment }

  # Every name the Python code also knows, equal to the defaults in common/settings.py
  # (tests/unit/test_terraform_names.py fails when they drift apart).
  names = {
    topics = {
      transcription_requests             = "transcription-requests"
      transcripts_ready                  = "transcripts-ready"
      transcription_requests_dead_letter = "transcription-requests-dead-letter"
      transcripts_ready_dead_letter      = "transcripts-ready-dead-letter"
    }
    subscriptions = {
      dispatch                           = "dispatch"
      notes                              = "notes"
      transcription_requests_dead_letter = "transcription-requests-dead-letter"
      transcripts_ready_dead_letter      = "transcripts-ready-dead-letter"
    }
    run_jobs = {
      transcribe_gpu = "transcribe-gpu"
      transcribe_cpu = "transcribe-cpu"
    }
    collections = {
      jobs = "jobs"
    }
  }

  # common/settings.py Delivery: how Pub/Sub delivers to dispatch and notes.
  delivery = {
    ack_deadline_s        = 600
    max_delivery_attempts = 5
    min_backoff_s         = 10
    max_backoff_s         = 600
  }

  # Deployed function name => entry point in functions/main.py.
  functions = {
    on_upload = "on-upload"
    api       = "api"
    dispatch  = "dispatch"
    notes     = "notes"
  }

  buckets = {
    inbox   = var.buckets.inbox
    results = var.buckets.results
    sources = coalesce(var.buckets.sources, "${var.project}-audionotes-src")
  }

  # The settings every function and job reads (AUDIONOTES_ + path joined by "__").
  common_env = {
    AUDIONOTES_PROJECT                        = var.project
    AUDIONOTES_REGION                         = var.region
    AUDIONOTES_ENVIRONMENT                    = var.environment
    AUDIONOTES_LOG_LEVEL                      = var.log_level
    AUDIONOTES_BUCKETS__INBOX                 = local.buckets.inbox
    AUDIONOTES_BUCKETS__RESULTS               = local.buckets.results
    AUDIONOTES_TOPICS__TRANSCRIPTION_REQUESTS = local.names.topics.transcription_requests
    AUDIONOTES_TOPICS__TRANSCRIPTS_READY      = local.names.topics.transcripts_ready
    AUDIONOTES_RUN_JOBS__TRANSCRIBE_GPU       = local.names.run_jobs.transcribe_gpu
    AUDIONOTES_RUN_JOBS__TRANSCRIBE_CPU       = local.names.run_jobs.transcribe_cpu
    AUDIONOTES_COLLECTIONS__JOBS              = local.names.collections.jobs
    AUDIONOTES_LIMITS__RETENTION_DAYS         = tostring(var.job_retention_days)
  }

  api_env = { for k, v in {
    AUDIONOTES_AUTH__JWKS_URL = var.api.jwks_url
    AUDIONOTES_AUTH__AUDIENCE = var.api.audience
  } : k => v if v != null }

  # dispatch sizes chunks to fit the task timeout; the worker reads the same numbers.
  transcribe_env = {
    AUDIONOTES_TRANSCRIPTION__GPU_TASK_TIMEOUT_S = tostring(var.transcribe.gpu.timeout_s)
    AUDIONOTES_TRANSCRIPTION__CPU_TASK_TIMEOUT_S = tostring(var.transcribe.cpu.timeout_s)
    AUDIONOTES_TRANSCRIPTION__MAX_RETRIES        = tostring(var.transcribe.max_retries)
  }

  notes_env = {
    AUDIONOTES_LLM__MODEL            = var.llm.model
    AUDIONOTES_LLM__DAILY_BUDGET_USD = tostring(var.llm.daily_budget_usd)
  }

  # Project-level roles of every runtime identity: logs, metrics, traces and Firestore (which
  # has no narrower IAM scope than the project).
  runtime_roles = ["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/cloudtrace.agent", "roles/datastore.user"]
  sa            = module.iam.service_accounts
}

module "iam" {
  source = "../iam"

  project                    = var.project
  gcs_service_agent_email    = data.google_storage_project_service_account.gcs.email_address
  pubsub_service_agent_email = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # The API hands out signed URLs (common/blobs.py IamSigner).
  self_signers = ["api"]

  service_accounts = {
    on_upload   = { description = "Function on_upload: upload event -> job -> transcription request.", project_roles = local.runtime_roles }
    api         = { description = "Function api: the HTTPS API.", project_roles = local.runtime_roles }
    dispatch    = { description = "Function dispatch: starts transcribe job executions.", project_roles = local.runtime_roles }
    notes       = { description = "Function notes: transcript -> structured notes (OpenAI).", project_roles = local.runtime_roles }
    transcribe  = { description = "Cloud Run jobs transcribe-gpu / transcribe-cpu.", project_roles = local.runtime_roles }
    pubsub_push = { description = "Identity of Pub/Sub push requests to dispatch and notes (run.invoker on them only)." }
    eventarc    = { description = "Eventarc trigger of on_upload.", project_roles = ["roles/eventarc.eventReceiver"] }
    # Builds the functions: logs and the gcf-artifacts image repository (which Cloud Functions
    # creates itself, so it has no narrower scope); source read access is on the sources bucket.
    builder = { description = "Cloud Build for the functions.", project_roles = ["roles/logging.logWriter", "roles/artifactregistry.writer"] }
  }
}

module "storage" {
  source = "../storage"

  project             = var.project
  location            = var.region
  names               = local.buckets
  lifecycle_days      = var.storage_lifecycle
  deletion_protection = var.deletion_protection
  labels              = local.labels

  iam = {
    on_upload_reads_inbox     = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.on_upload.member }
    dispatch_reads_inbox      = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.dispatch.member }
    transcribe_reads_inbox    = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.transcribe.member }
    dispatch_reads_results    = { bucket = "results", role = "roles/storage.objectViewer", member = local.sa.dispatch.member }
    transcribe_writes_results = { bucket = "results", role = "roles/storage.objectUser", member = local.sa.transcribe.member }
    notes_writes_results      = { bucket = "results", role = "roles/storage.objectUser", member = local.sa.notes.member }
    api_manages_results       = { bucket = "results", role = "roles/storage.objectUser", member = local.sa.api.member }
    # POST /v1/uploads hands out V4 signed PUT URLs: they act with the signer's permissions.
    api_signs_inbox_uploads = { bucket = "inbox", role = "roles/storage.objectCreator", member = local.sa.api.member }
    builder_reads_sources   = { bucket = "sources", role = "roles/storage.objectViewer", member = local.sa.builder.member }
  }

  depends_on = [module.iam]
}

module "firestore" {
  source = "../firestore"

  project             = var.project
  location            = coalesce(var.firestore_location, var.region)
  collections         = local.names.collections
  deletion_protection = var.deletion_protection

  depends_on = [module.iam]
}

module "secrets" {
  source = "../secrets"

  project             = var.project
  deletion_protection = var.deletion_protection
  labels              = local.labels

  secrets = merge(
    {
      jwt_secret      = { secret_id = var.api.secret_id, accessors = { api = local.sa.api.member } }
      openai_api_keys = { secret_id = var.llm.secret_id, accessors = { notes = local.sa.notes.member } }
      webhook_secret  = { secret_id = var.llm.webhook_secret_id, accessors = { notes = local.sa.notes.member } }
    },
    var.llm.fallback_api_key_secret_id == null ? {} : {
      fallback_api_key = { secret_id = var.llm.fallback_api_key_secret_id, accessors = { notes = local.sa.notes.member } }
    },
  )

  depends_on = [module.iam]
}

module "functions" {
  source = "../functions"

  project               = var.project
  region                = var.region
  build_service_account = local.sa.builder.id
  common_env            = local.common_env
  labels                = local.labels

  source_archive = {
    bucket = module.storage.buckets.sources.name
    path   = var.function_source.path
    md5    = var.function_source.md5
  }

  functions = {
    (local.functions.on_upload) = {
      entry_point           = "on_upload"
      description           = "Upload to the inbox -> job (QUEUED) -> transcription request."
      service_account_email = local.sa.on_upload.email
      timeout_s             = 60
      min_instances         = var.function_scaling.on_upload.min_instances
      max_instances         = var.function_scaling.on_upload.max_instances
      concurrency           = var.function_scaling.on_upload.concurrency
      invokers              = { eventarc = local.sa.eventarc.member }
      storage_trigger = {
        event_type            = "google.cloud.storage.object.v1.finalized"
        bucket                = module.storage.buckets.inbox.name
        service_account_email = local.sa.eventarc.email
        retry                 = true
      }
    }
    (local.functions.api) = {
      entry_point           = "api"
      description           = "HTTPS API: /v1/jobs."
      service_account_email = local.sa.api.email
      ingress               = "ALLOW_ALL"
      timeout_s             = 60
      min_instances         = var.function_scaling.api.min_instances
      max_instances         = var.function_scaling.api.max_instances
      concurrency           = var.function_scaling.api.concurrency
      env                   = local.api_env
      secret_env            = { AUDIONOTES_AUTH__JWT_SECRET = module.secrets.secrets.jwt_secret.secret_id }
      invokers              = merge(var.api.public ? { public = "allUsers" } : {}, var.api.invokers)
    }
    # dispatch and notes are HTTP-deployed and fed by the pubsub module's push subscriptions
    # (dead-letter policy, attempts and ack deadline under our control; see that module).
    # Their timeouts stay below the ack deadline (local.delivery.ack_deadline_s).
    (local.functions.dispatch) = {
      entry_point           = "dispatch"
      description           = "Transcription request -> Cloud Run job execution."
      service_account_email = local.sa.dispatch.email
      timeout_s             = 300
      min_instances         = var.function_scaling.dispatch.min_instances
      max_instances         = var.function_scaling.dispatch.max_instances
      concurrency           = var.function_scaling.dispatch.concurrency
      env                   = local.transcribe_env
      invokers              = { pubsub_push = local.sa.pubsub_push.member }
    }
    (local.functions.notes) = {
      entry_point           = "notes"
      description           = "Transcript ready -> structured notes (OpenAI)."
      service_account_email = local.sa.notes.email
      timeout_s             = 540
      memory                = "1Gi"
      min_instances         = var.function_scaling.notes.min_instances
      max_instances         = var.function_scaling.notes.max_instances
      concurrency           = var.function_scaling.notes.concurrency
      env                   = local.notes_env
      secret_env = merge(
        {
          AUDIONOTES_LLM__OPENAI_API_KEYS = module.secrets.secrets.openai_api_keys.secret_id
          AUDIONOTES_LLM__WEBHOOK_SECRET  = module.secrets.secrets.webhook_secret.secret_id
        },
        var.llm.fallback_api_key_secret_id == null ? {} : {
          AUDIONOTES_LLM__FALLBACK_API_KEY = module.secrets.secrets.fallback_api_key.secret_id
        },
      )
      invokers = { pubsub_push = local.sa.pubsub_push.member }
    }
  }

  # A function whose identity cannot read its secret fails to deploy.
  depends_on = [module.iam, module.secrets]
}

module "pubsub" {
  source = "../pubsub"

  project                     = var.project
  names                       = { topics = local.names.topics, subscriptions = local.names.subscriptions }
  delivery                    = local.delivery
  pubsub_service_agent_member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  push_service_account_email  = local.sa.pubsub_push.email
  labels                      = local.labels

  push_endpoints = {
    dispatch = module.functions.functions[local.functions.dispatch].uri
    notes    = module.functions.functions[local.functions.notes].uri
  }

  publishers = {
    on_upload  = { topic = "transcription_requests", member = local.sa.on_upload.member }
    api        = { topic = "transcription_requests", member = local.sa.api.member }
    transcribe = { topic = "transcripts_ready", member = local.sa.transcribe.member }
    # A content-cache hit skips transcription: dispatch announces the cached transcript.
    dispatch = { topic = "transcripts_ready", member = local.sa.dispatch.member }
  }
}

module "run_jobs" {
  source = "../run_jobs"

  project               = var.project
  region                = var.region
  image                 = var.job_image
  service_account_email = local.sa.transcribe.email
  service_account_id    = local.sa.transcribe.id
  common_env            = local.common_env
  runners               = { dispatch = local.sa.dispatch.member }
  deletion_protection   = var.deletion_protection
  labels                = local.labels

  jobs = {
    (local.names.run_jobs.transcribe_gpu) = {
      gpu         = true
      accelerator = "nvidia-l4"
      cpu         = var.transcribe.gpu.cpu
      memory      = var.transcribe.gpu.memory
      timeout_s   = var.transcribe.gpu.timeout_s
      max_retries = var.transcribe.max_retries
      parallelism = var.transcribe.gpu.parallelism
      env         = local.transcribe_env
    }
    (local.names.run_jobs.transcribe_cpu) = {
      gpu         = false
      cpu         = var.transcribe.cpu.cpu
      memory      = var.transcribe.cpu.memory
      timeout_s   = var.transcribe.cpu.timeout_s
      max_retries = var.transcribe.max_retries
      parallelism = var.transcribe.cpu.parallelism
      env         = local.transcribe_env
    }
  }

  depends_on = [module.iam]
}

module "monitoring" {
  source = "../monitoring"

  project = var.project
  dead_letter_subscriptions = [
    local.names.subscriptions.transcription_requests_dead_letter,
    local.names.subscriptions.transcripts_ready_dead_letter,
  ]
  notification_channels = var.alerting.notification_channels
  thresholds = merge(
    {
      failure_ratio        = var.alerting.failure_ratio
      llm_daily_budget_usd = var.llm.daily_budget_usd
    },
    var.alerting.stage_latency_s == null ? {} : { stage_latency_s = var.alerting.stage_latency_s },
  )

  depends_on = [module.iam]
}
