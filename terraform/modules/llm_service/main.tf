# The self-hosted notes model (run_jobs/llm, image from run_jobs/llm/Dockerfile) as a private
# Cloud Run service: internal ingress, IAM-checked, one invoker (the notes function's
# identity), scaled to zero when no notes are being made.

locals {
  # The GPU variant: one L4 (Cloud Run's minimum beside it is 4 vCPU and 16 GiB), every layer
  # offloaded (n_gpu_layers 99), and a bigger model where the catalog has one. The CPU
  # variant: 4 vCPU and 8 GiB, llama.cpp on all four.
  variant = var.gpu ? {
    cpu          = "4"
    memory       = "16Gi"
    n_gpu_layers = 99
    model        = coalesce(var.gpu_model, var.model)
    } : {
    cpu          = "4"
    memory       = "8Gi"
    n_gpu_layers = 0
    model        = var.model
  }

  # LocalLlm (common/config/settings.py), AUDIONOTES_LOCAL_LLM__*: the model the image baked
  # in (AUDIONOTES_LOCAL_LLM__MODEL_DIR comes from the image), one llama.cpp thread per vCPU,
  # and as many waiting requests as the service lets in beside the one being generated.
  env = {
    AUDIONOTES_LOCAL_LLM__MODEL        = local.variant.model
    AUDIONOTES_LOCAL_LLM__THREADS      = local.variant.cpu
    AUDIONOTES_LOCAL_LLM__N_GPU_LAYERS = tostring(local.variant.n_gpu_layers)
    AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH  = tostring(var.queue_depth)
  }

  # The server generates one request at a time and queues queue_depth more (answering 429
  # beyond them): Cloud Run sends an instance exactly that many, and scales out past it.
  concurrency = 1 + var.queue_depth

  # The startup probe waits this long for the model to load (the server binds its port, and
  # /health answers, only once the GGUF is in memory): 24 tries 10 s apart.
  startup = { period_s = 10, failure_threshold = 24, timeout_s = 5 }
}

resource "google_service_account" "llm" {
  project      = var.project
  account_id   = var.account_id
  display_name = "audionotes llm"
  # No roles: the server calls no Google API (its model is in the image, its logs go to
  # stdout, which Cloud Run collects without a role).
  description = "Cloud Run service ${var.name}: the self-hosted notes model (run_jobs/llm). Holds no roles."
}

resource "google_cloud_run_v2_service" "llm" {
  project             = var.project
  location            = var.region
  name                = var.name
  description         = "Self-hosted notes model (run_jobs/llm): the fallback of the notes function's provider chain."
  labels              = var.labels
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.llm.email
    timeout                          = "${var.timeout_s}s"
    max_instance_request_concurrency = local.concurrency
    # As for the GPU jobs: without zonal redundancy the GPU quota is easier to get and
    # cheaper; a lost zone costs a cold start, and notes falls back meanwhile.
    gpu_zonal_redundancy_disabled = var.gpu ? true : null

    # Scale to zero: nothing runs, and nothing is billed, while no notes are being made.
    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    dynamic "node_selector" {
      for_each = var.gpu ? ["nvidia-l4"] : []
      content {
        accelerator = node_selector.value
      }
    }

    containers {
      name  = "llm"
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = merge(
          { cpu = local.variant.cpu, memory = local.variant.memory },
          var.gpu ? { "nvidia.com/gpu" = "1" } : {},
        )
        # CPU variant: CPU allocated only while requests are in flight (request-based
        # billing; the queue is always inside a request). GPU services need instance-based
        # billing (CPU always allocated while an instance lives).
        cpu_idle          = !var.gpu
        startup_cpu_boost = true
      }

      startup_probe {
        period_seconds    = local.startup.period_s
        failure_threshold = local.startup.failure_threshold
        timeout_seconds   = local.startup.timeout_s
        http_get {
          path = "/health"
          port = 8080
        }
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }
}

# Exactly one invoker: the notes function's identity (it sends a Google ID token minted for
# the service URL, Llm.fallback_auth = google_id_token).
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.llm.name
  role     = "roles/run.invoker"
  member   = var.invoker
}
