# Offline checks of the optional self-hosted notes model (enable_local_llm, modules/llm_service)
# with a mocked google provider: run with
#   ../shared/tools/terraform-offline/tf-offline -chdir=terraform/modules/audionotes test
# (terraform/check does). A private Cloud Run service only the notes function may call, scaled
# to zero, on CPU or one L4; notes gets the fallback settings and VPC egress only when it is on.

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
  local_llm = {
    image      = "us-central1-docker.pkg.dev/x-proj1/audionotes/llm@sha256:1111111111111111111111111111111111111111111111111111111111111111"
    subnetwork = "notes-egress"
  }
}

# The notes identity apart from the others (the mocks give every account the same email).
override_resource {
  target = module.iam.google_service_account.this["notes"]
  values = {
    email  = "audionotes-notes@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:audionotes-notes@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/audionotes-notes@x-proj1.iam.gserviceaccount.com"
  }
}

run "off_by_default" {
  command = apply

  variables {
    # A local_llm block alone changes nothing: enable_local_llm is the switch.
    enable_local_llm = false
  }

  assert {
    condition     = length(module.llm_service) == 0 && output.local_llm_url == null
    error_message = "Without enable_local_llm there is no model service and no URL."
  }
  assert {
    condition     = length(setintersection(keys(module.functions.function_specs["notes"].env), ["AUDIONOTES_LLM__FALLBACK_BASE_URL", "AUDIONOTES_LLM__FALLBACK_MODEL", "AUDIONOTES_LLM__FALLBACK_STYLE", "AUDIONOTES_LLM__FALLBACK_AUTH"])) == 0
    error_message = "Without the local model, notes gets no fallback settings."
  }
  assert {
    condition     = alltrue([for f in values(module.functions.function_specs) : f.vpc_subnetwork == null])
    error_message = "Without the local model, no function leaves through a VPC."
  }
}

run "cpu_service" {
  command = apply

  variables {
    enable_local_llm = true
  }

  assert {
    condition     = module.llm_service[0].spec.ingress == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    error_message = "The model service must take internal traffic only."
  }
  assert {
    condition     = module.llm_service[0].spec.invokers == ["serviceAccount:audionotes-notes@x-proj1.iam.gserviceaccount.com"] && module.llm_service[0].spec.invoker_role == "roles/run.invoker"
    error_message = "roles/run.invoker on the service goes to the notes function's identity and no one else."
  }
  assert {
    condition     = module.llm_service[0].spec.min_instances == 0 && module.llm_service[0].spec.max_instances == 2
    error_message = "The service scales to zero, and out to local_llm.max_instances (2)."
  }
  assert {
    condition     = module.llm_service[0].spec.concurrency == 5 && module.llm_service[0].spec.env["AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH"] == "4"
    error_message = "An instance takes 1 + queue_depth requests: one generating, queue_depth waiting."
  }
  assert {
    condition     = module.llm_service[0].spec.accelerator == null && jsonencode(module.llm_service[0].spec.limits) == jsonencode({ cpu = "4", memory = "8Gi" }) && module.llm_service[0].spec.cpu_idle == true
    error_message = "The CPU variant: 4 vCPU, 8 GiB, no GPU, CPU allocated only during requests."
  }
  assert {
    condition = module.llm_service[0].spec.env == {
      AUDIONOTES_LOCAL_LLM__MODEL        = "qwen2.5-coder-1.5b-instruct"
      AUDIONOTES_LOCAL_LLM__THREADS      = "4"
      AUDIONOTES_LOCAL_LLM__N_GPU_LAYERS = "0"
      AUDIONOTES_LOCAL_LLM__QUEUE_DEPTH  = "4"
    }
    error_message = "The server gets its model, one thread per vCPU, no GPU layers and its queue depth (the model folder comes from the image)."
  }
  assert {
    condition     = module.llm_service[0].spec.startup_probe.path == "/health" && module.llm_service[0].spec.startup_probe.window_s >= 120 && module.llm_service[0].spec.startup_probe.port == module.llm_service[0].spec.startup_probe.container_port
    error_message = "The startup probe polls /health on the serving port, long enough for the model to load."
  }
  assert {
    condition     = tonumber(trimsuffix(module.llm_service[0].spec.timeout, "s")) >= module.functions.function_specs["notes"].timeout_s
    error_message = "The request timeout covers a long generation: at least the notes function's whole timeout."
  }
  assert {
    condition     = module.llm_service[0].spec.service_account == module.llm_service[0].service_account.email && module.llm_service[0].service_account.email != module.iam.service_accounts["notes"].email
    error_message = "The service runs as its own identity."
  }
  assert {
    condition = {
      for k, v in module.functions.function_specs["notes"].env : k => v if contains(["AUDIONOTES_LLM__FALLBACK_BASE_URL", "AUDIONOTES_LLM__FALLBACK_MODEL", "AUDIONOTES_LLM__FALLBACK_STYLE", "AUDIONOTES_LLM__FALLBACK_AUTH", "AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S", "AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS", "AUDIONOTES_LLM__FALLBACK_API_KEY"], k)
      } == {
      AUDIONOTES_LLM__FALLBACK_BASE_URL          = "https://audionotes-llm-abc123-uc.a.run.app/v1"
      AUDIONOTES_LLM__FALLBACK_MODEL             = "qwen2.5-coder-1.5b-instruct"
      AUDIONOTES_LLM__FALLBACK_STYLE             = "json_schema"
      AUDIONOTES_LLM__FALLBACK_AUTH              = "google_id_token"
      AUDIONOTES_LLM__FALLBACK_REQUEST_TIMEOUT_S = "600"
      AUDIONOTES_LLM__FALLBACK_CHUNK_TOKENS      = "3000"
    }
    error_message = "notes gets the service as its fallback: <url>/v1, the served model, json_schema requests, a Google ID token, the service's timeout and chunks that fit its context."
  }
  assert {
    condition     = output.local_llm_url == "https://audionotes-llm-abc123-uc.a.run.app" && output.local_llm_url == module.llm_service[0].url
    error_message = "local_llm_url is the service's URL."
  }
  assert {
    condition     = module.functions.function_specs["notes"].vpc_egress == "VPC_EGRESS_ALL_TRAFFIC" && endswith(module.functions.function_specs["notes"].vpc_subnetwork, "/subnetworks/notes-egress")
    error_message = "notes sends all its traffic through local_llm.subnetwork (internal ingress admits it only from a VPC)."
  }
  assert {
    condition     = alltrue([for k, f in module.functions.function_specs : f.vpc_subnetwork == null if k != "notes"])
    error_message = "Only notes leaves through the VPC."
  }
  assert {
    condition     = !contains(keys(module.secrets.accessors), "fallback_api_key")
    error_message = "The local model needs no key: no fallback key secret."
  }
}

run "gpu_service" {
  command = apply

  variables {
    enable_local_llm = true
    local_llm = {
      image         = "us-central1-docker.pkg.dev/x-proj1/audionotes/llm-gpu@sha256:2222222222222222222222222222222222222222222222222222222222222222"
      subnetwork    = "notes-egress"
      gpu           = true
      model         = "qwen2.5-coder-0.5b-instruct"
      gpu_model     = "qwen2.5-coder-1.5b-instruct"
      max_instances = 1
      queue_depth   = 8
    }
  }

  assert {
    condition     = module.llm_service[0].spec.accelerator == "nvidia-l4" && module.llm_service[0].spec.limits["nvidia.com/gpu"] == "1"
    error_message = "The GPU variant selects one nvidia-l4."
  }
  assert {
    condition     = module.llm_service[0].spec.limits["cpu"] == "4" && module.llm_service[0].spec.limits["memory"] == "16Gi" && module.llm_service[0].spec.cpu_idle == false
    error_message = "An L4 needs at least 4 vCPU and 16 GiB, and instance-based billing."
  }
  assert {
    condition     = module.llm_service[0].spec.env["AUDIONOTES_LOCAL_LLM__N_GPU_LAYERS"] == "99"
    error_message = "The GPU variant offloads every layer (n_gpu_layers 99)."
  }
  assert {
    condition     = module.llm_service[0].spec.env["AUDIONOTES_LOCAL_LLM__MODEL"] == "qwen2.5-coder-1.5b-instruct" && module.functions.function_specs["notes"].env["AUDIONOTES_LLM__FALLBACK_MODEL"] == "qwen2.5-coder-1.5b-instruct"
    error_message = "The GPU variant serves gpu_model, and notes asks for that model."
  }
  assert {
    condition     = module.llm_service[0].spec.min_instances == 0 && module.llm_service[0].spec.max_instances == 1 && module.llm_service[0].spec.concurrency == 9
    error_message = "Scale to zero, at most max_instances L4s, 1 + queue_depth requests each."
  }
}

# As with job_image: enabled before its image exists, nothing is created and notes is as before.
run "enabled_before_its_image" {
  command = plan

  variables {
    enable_local_llm = true
    local_llm        = { subnetwork = "notes-egress" }
  }

  assert {
    condition     = length(module.llm_service) == 0 && length(data.google_compute_subnetwork.local_llm) == 0
    error_message = "Without local_llm.image no service is created and no subnetwork looked up."
  }
}

run "enabled_without_subnetwork_is_rejected" {
  command = plan

  variables {
    enable_local_llm = true
    local_llm = {
      image = "us-central1-docker.pkg.dev/x-proj1/audionotes/llm:v1"
    }
  }

  expect_failures = [output.local_llm_url]
}

run "enabled_with_another_fallback_is_rejected" {
  command = plan

  variables {
    enable_local_llm = true
    llm              = { fallback_base_url = "https://llm.internal.example/v1" }
  }

  expect_failures = [output.local_llm_url]
}

run "subnetwork_without_private_google_access_is_rejected" {
  command = plan

  variables {
    enable_local_llm = true
  }

  override_data {
    target = data.google_compute_subnetwork.local_llm
    values = { private_ip_google_access = false }
  }

  expect_failures = [data.google_compute_subnetwork.local_llm]
}

run "unknown_model_is_rejected" {
  command = plan

  variables {
    local_llm = { model = "llama-3.1-70b" }
  }

  expect_failures = [var.local_llm]
}
