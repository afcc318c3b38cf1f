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

  # Every name the Python code also knows, equal to the defaults in common/config/settings.py
  # (tests/unit/test_terraform_names.py fails when they drift apart).
  names = {
    topics = {
      transcription_requests             = "transcription-requests"
      transcripts_ready                  = "transcripts-ready"
      transcription_requests_dead_letter = "transcription-requests-dead-letter"
      transcripts_ready_dead_letter      = "transcripts-ready-dead-letter"
      work_high                          = "transcription-work-high"
      work_normal                        = "transcription-work-normal"
      work_low                           = "transcription-work-low"
      work_dead_letter                   = "transcription-work-dead-letter"
    }
    subscriptions = {
      dispatch                           = "dispatch"
      notes                              = "notes"
      transcription_requests_dead_letter = "transcription-requests-dead-letter"
      transcripts_ready_dead_letter      = "transcripts-ready-dead-letter"
      work_high                          = "work-high"
      work_normal                        = "work-normal"
      work_low                           = "work-low"
      work_dead_letter                   = "transcription-work-dead-letter"
    }
    run_jobs = {
      transcribe_gpu = "transcribe-gpu"
      transcribe_cpu = "transcribe-cpu"
    }
    collections = {
      jobs         = "jobs"
      rate_limits  = "rate_limits"
      breakers     = "breakers"
      spend        = "spend"
      batch_lanes  = "batch_lanes"
      worker_pools = "worker_pools"
    }
    # Folders: Buckets.inbox_prefix (gsutil uploads become jobs), Auth.api_upload_prefix
    # (signed-URL uploads of POST /v1/uploads), Buckets.results_prefix and cache_prefix.
    prefixes = {
      inbox_prefix      = "uploads/"
      api_upload_prefix = "api-uploads/"
      results_prefix    = "jobs/"
      cache_prefix      = "cache/"
    }
  }

  # common/config/settings.py Delivery: how Pub/Sub delivers to dispatch, notes and dead_letters.
  delivery = {
    ack_deadline_s        = 600
    max_delivery_attempts = 5
    min_backoff_s         = 10
    max_backoff_s         = 600
  }

  # common/config/settings.py Workers: the pull workers and how dispatch and sweep scale them.
  # One definition of each number: the work subscriptions' ack deadline is the one the
  # workers extend (AUDIONOTES_WORKERS__ACK_DEADLINE_S), and the GPU cap defaults to the
  # Settings default (4) held to the quota granted (output workers checks an explicit one).
  workers = merge(var.workers, {
    max_gpu = var.max_gpu_workers != null ? var.max_gpu_workers : min(4, var.gpu_quota)
    max_cpu = var.max_cpu_workers
  })

  # Deployed function name => entry point in functions/main.py.
  functions = {
    on_upload    = "on-upload"
    api          = "api"
    dispatch     = "dispatch"
    notes        = "notes"
    dead_letters = "dead-letters"
    sweep        = "sweep"
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
    AUDIONOTES_BUCKETS__INBOX_PREFIX          = local.names.prefixes.inbox_prefix
    AUDIONOTES_BUCKETS__RESULTS_PREFIX        = local.names.prefixes.results_prefix
    AUDIONOTES_BUCKETS__CACHE_PREFIX          = local.names.prefixes.cache_prefix
    AUDIONOTES_TOPICS__TRANSCRIPTION_REQUESTS = local.names.topics.transcription_requests
    AUDIONOTES_TOPICS__TRANSCRIPTS_READY      = local.names.topics.transcripts_ready
    AUDIONOTES_RUN_JOBS__TRANSCRIBE_GPU       = local.names.run_jobs.transcribe_gpu
    AUDIONOTES_RUN_JOBS__TRANSCRIBE_CPU       = local.names.run_jobs.transcribe_cpu
    AUDIONOTES_COLLECTIONS__JOBS              = local.names.collections.jobs
    AUDIONOTES_COLLECTIONS__RATE_LIMITS       = local.names.collections.rate_limits
    AUDIONOTES_COLLECTIONS__BREAKERS          = local.names.collections.breakers
    AUDIONOTES_COLLECTIONS__SPEND             = local.names.collections.spend
    AUDIONOTES_COLLECTIONS__BATCH_LANES       = local.names.collections.batch_lanes
    AUDIONOTES_COLLECTIONS__WORKER_POOLS      = local.names.collections.worker_pools
    AUDIONOTES_LIMITS__RETENTION_DAYS         = tostring(var.job_retention_days)
    # The models baked into the transcribe image, where its bake puts them
    # (run_jobs/transcribe/Dockerfile): the jobs load them from there, and every function
    # checks a job's model against them at submission.
    AUDIONOTES_TRANSCRIPTION__MODELS = jsonencode({ for m in var.transcribe.models : m => "/models/${m}" })
    # Spans go to Cloud Trace (every runtime account has roles/cloudtrace.agent).
    AUDIONOTES_TRACING__EXPORTER = "cloud_trace"
  }

  # The API (functions/api, common/edge/auth.py, common/gcp/rate_limit.py). Lists are JSON, as
  # pydantic-settings reads them; unset values keep the Settings defaults.
  api_env = { for k, v in {
    AUDIONOTES_AUTH__API_UPLOAD_PREFIX = local.names.prefixes.api_upload_prefix
    AUDIONOTES_AUTH__JWKS_URL          = var.api.jwks_url
    AUDIONOTES_AUTH__AUDIENCE          = var.api.audience
    AUDIONOTES_AUTH__ISSUERS           = length(var.api.issuers) == 0 ? null : jsonencode(var.api.issuers)
    AUDIONOTES_AUTH__RATE_PER_MINUTE   = tostring(var.api.rate_per_minute)
    AUDIONOTES_AUTH__RATE_PER_HOUR     = tostring(var.api.rate_per_hour)
    AUDIONOTES_AUTH__SOURCE_BUCKETS    = length(var.api.source_buckets) == 0 ? null : jsonencode(var.api.source_buckets)
  } : k => v if v != null }

  # The task timeouts: dispatch and sweep size each execution by them (timeout override),
  # the worker stops taking chunks workers.reserve_s before its own.
  timeouts_env = {
    AUDIONOTES_EXECUTIONS__GPU_TASK_TIMEOUT_S = tostring(var.transcribe.gpu.timeout_s)
    AUDIONOTES_EXECUTIONS__CPU_TASK_TIMEOUT_S = tostring(var.transcribe.cpu.timeout_s)
  }

  # The worker (run_jobs/transcribe/worker.py): the work subscriptions it pulls from (which
  # ones depends on the batch tier: common/domain/scaling.py priorities_served), when it stops
  # (idle, reserve), how long a chunk is its own (ack deadline) and how often it polls; it
  # compares its attempt with max_retries before failing a job for good.
  transcribe_env = merge(local.timeouts_env, {
    AUDIONOTES_EXECUTIONS__MAX_RETRIES    = tostring(var.transcribe.max_retries)
    AUDIONOTES_EXECUTIONS__BATCH_TIER     = var.transcribe.batch_tier
    AUDIONOTES_SUBSCRIPTIONS__WORK_HIGH   = local.names.subscriptions.work_high
    AUDIONOTES_SUBSCRIPTIONS__WORK_NORMAL = local.names.subscriptions.work_normal
    AUDIONOTES_SUBSCRIPTIONS__WORK_LOW    = local.names.subscriptions.work_low
    AUDIONOTES_WORKERS__IDLE_S            = tostring(local.workers.idle_s)
    AUDIONOTES_WORKERS__RESERVE_S         = tostring(local.workers.reserve_s)
    AUDIONOTES_WORKERS__ACK_DEADLINE_S    = tostring(local.workers.ack_deadline_s)
    AUDIONOTES_WORKERS__POLL_S            = tostring(local.workers.poll_s)
  })

  # dispatch and sweep scale each tier's workers to its backlog (functions/dispatch_work.py
  # ensure_workers): the mode, the caps (the GPU one held to gpu_quota), chunks per worker and
  # the scaling lease.
  scaling_env = merge(local.timeouts_env, {
    AUDIONOTES_WORKERS__MODE               = local.workers.mode
    AUDIONOTES_WORKERS__MAX_GPU            = tostring(local.workers.max_gpu)
    AUDIONOTES_WORKERS__MAX_CPU            = tostring(local.workers.max_cpu)
    AUDIONOTES_WORKERS__BACKLOG_PER_WORKER = tostring(local.workers.backlog_per_worker)
    AUDIONOTES_WORKERS__SCALE_LEASE_S      = tostring(local.workers.scale_lease_s)
  })

  # dispatch alone picks the tier, the model and the chunk length (functions/dispatch.py) and
  # publishes the chunks to the work topics.
  dispatch_env = merge(local.transcribe_env, local.scaling_env, {
    AUDIONOTES_TRANSCRIPTION__DEFAULT_MODELS = jsonencode(var.transcribe.default_models)
    AUDIONOTES_LIMITS__CHUNK_SECONDS         = tostring(var.transcribe.chunk_seconds)
    AUDIONOTES_TOPICS__WORK_HIGH             = local.names.topics.work_high
    AUDIONOTES_TOPICS__WORK_NORMAL           = local.names.topics.work_normal
    AUDIONOTES_TOPICS__WORK_LOW              = local.names.topics.work_low
  })

  # sweep republishes requests (dispatch queues the chunks again) and then scales the
  # workers like dispatch (functions/sweep.py).
  sweep_env = local.scaling_env

  # dead_letters tells which step a dead letter was for by the subscription it failed on
  # (functions/dead_letters.py stuck_states); the run_jobs names and region it looks
  # executions up with (CloudRunLauncher) are in common_env, as for dispatch.
  dead_letters_env = {
    AUDIONOTES_SUBSCRIPTIONS__DISPATCH    = local.names.subscriptions.dispatch
    AUDIONOTES_SUBSCRIPTIONS__NOTES       = local.names.subscriptions.notes
    AUDIONOTES_SUBSCRIPTIONS__WORK_HIGH   = local.names.subscriptions.work_high
    AUDIONOTES_SUBSCRIPTIONS__WORK_NORMAL = local.names.subscriptions.work_normal
    AUDIONOTES_SUBSCRIPTIONS__WORK_LOW    = local.names.subscriptions.work_low
  }

  notes_env = merge({ for k, v in {
    AUDIONOTES_LLM__MODEL             = var.llm.model
    AUDIONOTES_LLM__DAILY_BUDGET_USD  = tostring(var.llm.daily_budget_usd)
    AUDIONOTES_LLM__OPENAI_BASE_URL   = var.llm.openai_base_url
    AUDIONOTES_LLM__FALLBACK_BASE_URL = var.llm.fallback_base_url
    AUDIONOTES_LLM__FALLBACK_MODEL    = var.llm.fallback_model
  } : k => v if v != null }, local.local_llm_env)

  # The self-hosted notes model (modules/llm_service), when enabled: the notes chain's
  # fallback, asked with response_format json_schema (the server turns the schema into a
  # grammar) and a Google ID token for the service URL (common/config/settings.py Llm
  # fallback_style, fallback_auth). As with job_image, nothing is created before its image
  # exists (the repository comes first); the output local_llm_url checks the rest.
  local_llm_on = var.enable_local_llm && var.local_llm.image != null && var.local_llm.subnetwork != null
  local_llm_env = local.local_llm_on ? {
    AUDIONOTES_LLM__FALLBACK_BASE_URL = "${one(module.llm_service[*].url)}/v1"
    AUDIONOTES_LLM__FALLBACK_MODEL    = one(module.llm_service[*].model)
    AUDIONOTES_LLM__FALLBACK_STYLE    = "json_schema"
    AUDIONOTES_LLM__FALLBACK_AUTH     = "google_id_token"
    # As long as the service lets a request run; chunks that fit its context with the
    # prompt and completion (common/domain/local_llms.py CHUNK_TOKENS).
    AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S = tostring(var.local_llm.timeout_s)
    AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS      = "3000"
  } : {}
  # An internal-ingress service takes a function's request only through a VPC: the notes
  # function sends all its traffic out through the given subnetwork (Direct VPC egress).
  notes_vpc = local.local_llm_on ? {
    network    = one(data.google_compute_subnetwork.local_llm[*].network)
    subnetwork = one(data.google_compute_subnetwork.local_llm[*].self_link)
  } : null

  # Retention: a job's audio and results go with the job (Firestore TTL at
  # job_retention_days) unless storage_lifecycle says otherwise.
  retention = {
    inbox   = coalesce(var.storage_lifecycle.inbox_retention, var.job_retention_days)
    results = coalesce(var.storage_lifecycle.results_retention, var.job_retention_days)
    cache   = coalesce(var.storage_lifecycle.cache_retention, var.job_retention_days)
  }

  # Project-level roles of every runtime identity: logs, metrics, traces and Firestore (which
  # has no narrower IAM scope than the project).
  # sweep: its function's timeout is also how long Cloud Scheduler waits for it.
  sweep_timeout_s = 300

  runtime_roles = ["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/cloudtrace.agent", "roles/datastore.user"]
  sa            = module.iam.service_accounts
}

module "iam" {
  source = "../iam"

  project                    = var.project
  gcs_service_agent_email    = data.google_storage_project_service_account.gcs.email_address
  pubsub_service_agent_email = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # The API hands out signed URLs (common/gcp/gcs.py IamSigner).
  self_signers = ["api"]

  service_accounts = {
    on_upload    = { description = "Function on_upload: upload event -> job -> transcription request.", project_roles = local.runtime_roles }
    api          = { description = "Function api: the HTTPS API.", project_roles = local.runtime_roles }
    dispatch     = { description = "Function dispatch: queues a job's chunks and starts transcribe workers.", project_roles = local.runtime_roles }
    notes        = { description = "Function notes: transcript -> structured notes (OpenAI).", project_roles = local.runtime_roles }
    transcribe   = { description = "Cloud Run jobs transcribe-gpu / transcribe-cpu.", project_roles = local.runtime_roles }
    dead_letters = { description = "Function dead_letters: a dead-lettered message -> its job FAILED.", project_roles = local.runtime_roles }
    sweep        = { description = "Function sweep: republishes lost messages, starts transcribe workers.", project_roles = local.runtime_roles }
    pubsub_push  = { description = "Identity of Pub/Sub push requests to dispatch, notes and dead_letters (run.invoker on them only)." }
    scheduler    = { description = "Identity of Cloud Scheduler's calls to sweep (run.invoker on it only)." }
    eventarc     = { description = "Eventarc trigger of on_upload.", project_roles = ["roles/eventarc.eventReceiver"] }
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
  deletion_protection = var.deletion_protection
  upload_origins      = { inbox = var.api.web_origins }
  labels              = local.labels

  tiers = {
    nearline_after = var.storage_lifecycle.nearline_after
    coldline_after = var.storage_lifecycle.coldline_after
    archive_after  = var.storage_lifecycle.archive_after
  }
  noncurrent_retention = var.storage_lifecycle.noncurrent_retention
  retention = {
    # The whole inbox: uploads/ (gsutil) and api-uploads/ (signed URLs) alike, and anything
    # else written there (nothing in it becomes a job after its retention has passed).
    inbox_audio = { bucket = "inbox", days = local.retention.inbox }
    results_jobs = {
      bucket   = "results"
      prefixes = [local.names.prefixes.results_prefix]
      days     = local.retention.results
    }
    results_cache = {
      bucket   = "results"
      prefixes = [local.names.prefixes.cache_prefix]
      days     = local.retention.cache
    }
    # Function archives: each code change uploads a new one; old ones need no tiering.
    sources = { bucket = "sources", days = var.storage_lifecycle.sources_retention, tiering = false }
  }

  # What each component does to which objects (see the Python it runs):
  iam = {
    # on_upload reads the head (a ranged read) of new objects under uploads/ only.
    on_upload_reads_uploads = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.on_upload.member, prefix = local.names.prefixes.inbox_prefix }
    # dispatch probes the audio (ranged reads) and the worker downloads it: either prefix.
    dispatch_reads_inbox   = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.dispatch.member }
    transcribe_reads_inbox = { bucket = "inbox", role = "roles/storage.objectViewer", member = local.sa.transcribe.member }
    # The worker writes transcripts, its chunk results (jobs/*/work/) and the cache, lists the
    # chunks done and overwrites its own files on a retry.
    transcribe_writes_results = { bucket = "results", role = "roles/storage.objectUser", member = local.sa.transcribe.member }
    # notes reads the transcript and writes notes and the webhook receipt, all under jobs/.
    notes_writes_results = { bucket = "results", role = "roles/storage.objectUser", member = local.sa.notes.member, prefix = local.names.prefixes.results_prefix }
    # The API checks and reads the head of a caller's upload, serves results and, on DELETE,
    # removes a job's audio (either prefix) and results; it writes neither.
    api_reads_deletes_inbox   = { bucket = "inbox", role = "objectReadDelete", member = local.sa.api.member }
    api_reads_deletes_results = { bucket = "results", role = "objectReadDelete", member = local.sa.api.member }
    # POST /v1/uploads hands out V4 signed PUT URLs, which act with the signer's permissions:
    # object creation under api-uploads/ only.
    api_signs_uploads     = { bucket = "inbox", role = "roles/storage.objectCreator", member = local.sa.api.member, prefix = local.names.prefixes.api_upload_prefix }
    builder_reads_sources = { bucket = "sources", role = "roles/storage.objectViewer", member = local.sa.builder.member }
  }

  depends_on = [module.iam]
}

# Auth.source_buckets: other buckets whose objects callers may name as gs:// audio_url. The
# API checks them, dispatch probes them and the worker downloads them.
resource "google_storage_bucket_iam_member" "source_bucket_readers" {
  for_each = {
    for pair in setproduct(var.api.source_buckets, ["api", "dispatch", "transcribe"]) :
    "${pair[0]}|${pair[1]}" => { bucket = pair[0], component = pair[1] }
  }

  bucket = each.value.bucket
  role   = "roles/storage.objectViewer"
  member = local.sa[each.value.component].member
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
      description           = "Transcription request -> chunks on the work queues, workers started."
      service_account_email = local.sa.dispatch.email
      timeout_s             = 300
      min_instances         = var.function_scaling.dispatch.min_instances
      max_instances         = var.function_scaling.dispatch.max_instances
      concurrency           = var.function_scaling.dispatch.concurrency
      env                   = local.dispatch_env
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
          AUDIONOTES_WEBHOOKS__SECRET     = module.secrets.secrets.webhook_secret.secret_id
        },
        var.llm.fallback_api_key_secret_id == null ? {} : {
          AUDIONOTES_LLM__FALLBACK_API_KEY = module.secrets.secrets.fallback_api_key.secret_id
        },
      )
      invokers = { pubsub_push = local.sa.pubsub_push.member }
      vpc      = local.notes_vpc
    }
    # The three dead-letter subscriptions push here (pubsub module); it reads and updates one job
    # and may ask Cloud Run about one execution, well within the ack deadline.
    (local.functions.dead_letters) = {
      entry_point           = "dead_letters"
      description           = "Dead-lettered message -> its job FAILED, with the reason."
      service_account_email = local.sa.dead_letters.email
      timeout_s             = 60
      min_instances         = var.function_scaling.dead_letters.min_instances
      max_instances         = var.function_scaling.dead_letters.max_instances
      concurrency           = var.function_scaling.dead_letters.concurrency
      env                   = local.dead_letters_env
      invokers              = { pubsub_push = local.sa.pubsub_push.member }
    }
    # Called by Cloud Scheduler (google_cloud_scheduler_job.sweep below). Internal ingress is
    # enough: Cloud Run counts requests from Cloud Scheduler (like Pub/Sub and Eventarc) in
    # the same project as internal, even at the run.app URL
    # (https://cloud.google.com/run/docs/securing/ingress, "Internal"), and a gen2 function's
    # ALLOW_INTERNAL_ONLY is its Cloud Run service's internal ingress. The OIDC token of the
    # scheduler identity, the only invoker, is still checked.
    (local.functions.sweep) = {
      entry_point           = "sweep"
      description           = "Periodic: lost messages published again, workers scaled to the backlog."
      service_account_email = local.sa.sweep.email
      ingress               = "ALLOW_INTERNAL_ONLY"
      timeout_s             = local.sweep_timeout_s
      min_instances         = var.function_scaling.sweep.min_instances
      max_instances         = var.function_scaling.sweep.max_instances
      concurrency           = var.function_scaling.sweep.concurrency
      env                   = local.sweep_env
      invokers              = { scheduler = local.sa.scheduler.member }
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
  work_ack_deadline_s         = local.workers.ack_deadline_s
  pubsub_service_agent_member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  push_service_account_email  = local.sa.pubsub_push.email
  labels                      = local.labels

  push_endpoints = {
    dispatch     = module.functions.functions[local.functions.dispatch].uri
    notes        = module.functions.functions[local.functions.notes].uri
    dead_letters = module.functions.functions[local.functions.dead_letters].uri
  }

  # dispatch publishes a job's chunks to its priority's work topic (a content-cache hit is
  # found by the worker, which publishes transcripts-ready).
  publishers = {
    dispatch_work_high   = { topic = "work_high", member = local.sa.dispatch.member }
    dispatch_work_normal = { topic = "work_normal", member = local.sa.dispatch.member }
    dispatch_work_low    = { topic = "work_low", member = local.sa.dispatch.member }
    on_upload            = { topic = "transcription_requests", member = local.sa.on_upload.member }
    api                  = { topic = "transcription_requests", member = local.sa.api.member }
    transcribe           = { topic = "transcripts_ready", member = local.sa.transcribe.member }
    # sweep republishes what a stuck job waits for: a request (QUEUED, DISPATCHED) or a
    # transcript-ready message (TRANSCRIBED, SUMMARIZING).
    sweep_requests = { topic = "transcription_requests", member = local.sa.sweep.member }
    sweep_ready    = { topic = "transcripts_ready", member = local.sa.sweep.member }
  }

  # The workers pull (and acknowledge) on the three work subscriptions, nothing else.
  pullers = { transcribe = local.sa.transcribe.member }
}

module "run_jobs" {
  source = "../run_jobs"

  project               = var.project
  region                = var.region
  image                 = var.job_image
  service_account_email = local.sa.transcribe.email
  service_account_id    = local.sa.transcribe.id
  common_env            = local.common_env
  # Both launch workers (list executions to count running tasks, run with overrides).
  runners             = { dispatch = local.sa.dispatch.member, sweep = local.sa.sweep.member }
  cancellers          = { api = local.sa.api.member }
  execution_viewers   = { dead_letters = local.sa.dead_letters.member }
  deletion_protection = var.deletion_protection
  labels              = local.labels

  jobs = {
    (local.names.run_jobs.transcribe_gpu) = {
      gpu         = true
      accelerator = "nvidia-l4"
      cpu         = var.transcribe.gpu.cpu
      memory      = var.transcribe.gpu.memory
      timeout_s   = var.transcribe.gpu.timeout_s
      max_retries = var.transcribe.max_retries
      # One execution never asks for more GPUs than the workers may hold (gpu_quota).
      parallelism = min(var.transcribe.gpu.parallelism, max(1, local.workers.max_gpu))
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

# The subnetwork of the notes function's egress, when the local model is on. With all its
# traffic in the VPC, the function reaches Firestore, Cloud Storage, Pub/Sub and Secret
# Manager only through Private Google Access; OpenAI and webhook receivers need Cloud NAT on
# the network (terraform/README.md).
data "google_compute_subnetwork" "local_llm" {
  count = local.local_llm_on ? 1 : 0

  project = var.project
  region  = var.region
  name    = var.local_llm.subnetwork

  lifecycle {
    postcondition {
      condition     = self.private_ip_google_access
      error_message = "local_llm.subnetwork needs Private Google Access: the notes function sends all its traffic through it, Google APIs included (gcloud compute networks subnets update NAME --region REGION --enable-private-ip-google-access)."
    }
  }
}

module "llm_service" {
  source = "../llm_service"
  count  = local.local_llm_on ? 1 : 0

  project             = var.project
  region              = var.region
  image               = var.local_llm.image
  model               = var.local_llm.model
  gpu                 = var.local_llm.gpu
  gpu_model           = var.local_llm.gpu_model
  max_instances       = var.local_llm.max_instances
  queue_depth         = var.local_llm.queue_depth
  timeout_s           = var.local_llm.timeout_s
  invoker             = local.sa.notes.member
  deletion_protection = var.deletion_protection
  labels              = local.labels

  depends_on = [module.iam]
}

module "monitoring" {
  source = "../monitoring"

  project = var.project
  dead_letter_subscriptions = [
    local.names.subscriptions.transcription_requests_dead_letter,
    local.names.subscriptions.transcripts_ready_dead_letter,
    local.names.subscriptions.work_dead_letter,
  ]
  notification_channels = var.alerting.notification_channels
  thresholds = merge(
    {
      failure_ratio        = var.alerting.failure_ratio
      llm_daily_budget_usd = var.llm.daily_budget_usd
      dead_letter_age_s    = var.alerting.dead_letter_age_s
    },
    var.alerting.stage_latency_s == null ? {} : { stage_latency_s = var.alerting.stage_latency_s },
  )

  depends_on = [module.iam]
}

# Every sweep.schedule (5 minutes by default) Cloud Scheduler POSTs {"older_than_s": N} to the
# sweep function (functions/sweep.py SweepRequest) with an OIDC token of the scheduler
# identity, which holds roles/run.invoker on sweep and nothing else. No retries: the next run
# comes soon and sweeps whatever this one missed.
resource "google_cloud_scheduler_job" "sweep" {
  project          = var.project
  region           = var.region
  name             = "audionotes-sweep"
  description      = "Publish again the message a stuck job waits for (functions/sweep.py)."
  schedule         = var.sweep.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${local.sweep_timeout_s}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = module.functions.functions[local.functions.sweep].uri
    body        = base64encode(jsonencode({ older_than_s = var.sweep.older_than_s }))
    headers     = { "Content-Type" = "application/json" }

    oidc_token {
      service_account_email = local.sa.scheduler.email
      audience              = module.functions.functions[local.functions.sweep].uri
    }
  }

  depends_on = [module.iam]
}
