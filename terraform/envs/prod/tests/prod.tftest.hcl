# Offline checks of the prod root with a mocked google provider: run with
#   ../shared/tools/terraform-offline/tf-offline -chdir=terraform/envs/prod test
# (terraform/check does). The system itself (jobs, subscriptions, lifecycle, triggers, secrets,
# roles, validation) is tested once, in modules/audionotes/tests/; here: this root plans and
# applies, passes its values through (unset = the module's default), names its environment and
# checks its inputs itself (its variables.tf is the module's).

mock_provider "google" {
  source = "../../modules/audionotes/tests/mocks"
}

variables {
  project = "x-proj1"
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

# The API function's own URL, so that api_url is seen to be that function's (the mocks give
# every function the same one).
override_resource {
  target = module.audionotes.module.functions.google_cloudfunctions2_function.this["api"]
  values = { service_config = { uri = "https://api-abc123-uc.a.run.app", service = "api" } }
}

# A bad value stops at this root's own variable (not only inside the module).
run "bad_value_rejected_here" {
  command = plan

  variables {
    transcribe = { gpu = { timeout_s = 3600 } }
  }

  expect_failures = [var.transcribe]
}

# Plan first: every for_each key must be known before anything exists (a real first apply).
run "plan_has_known_keys" {
  command = plan

  assert {
    condition     = length(output.jobs) == 2
    error_message = "Both transcribe jobs must be planned."
  }
}

run "first_apply_without_image" {
  command = plan

  variables {
    job_image = null
  }

  assert {
    condition     = length(output.jobs) == 0
    error_message = "Without an image no job may be created (the registry comes first)."
  }
}

run "root" {
  command = apply

  assert {
    condition     = output.settings["AUDIONOTES_ENVIRONMENT"] == "prod"
    error_message = "Functions and jobs must be told they run in prod."
  }
  assert {
    condition     = output.settings["AUDIONOTES_PROJECT"] == "x-proj1" && output.buckets == { inbox = "in-bkt", results = "out-bkt", sources = "x-proj1-audionotes-src" }
    error_message = "The project and bucket names must reach the module."
  }
  assert {
    condition     = output.settings["AUDIONOTES_REGION"] == "us-central1" && output.settings["AUDIONOTES_LOG_LEVEL"] == "INFO" && output.settings["AUDIONOTES_LIMITS__RETENTION_DAYS"] == "30"
    error_message = "Unset inputs must take the module's defaults."
  }
  assert {
    condition     = keys(output.jobs) == ["transcribe-cpu", "transcribe-gpu"] && keys(output.functions) == ["api", "dead-letters", "dispatch", "notes", "on-upload", "sweep"]
    error_message = "Both jobs and all six functions must be created."
  }
  assert {
    condition     = output.api_url == "https://api-abc123-uc.a.run.app" && output.inbox_uri == "gs://in-bkt/uploads/"
    error_message = "api_url must be the API function's URI, inbox_uri the inbox's uploads/ prefix."
  }
}

run "values_reach_the_module" {
  command = apply

  variables {
    region    = "europe-west4"
    log_level = "DEBUG"
  }

  assert {
    condition     = output.settings["AUDIONOTES_REGION"] == "europe-west4" && output.settings["AUDIONOTES_LOG_LEVEL"] == "DEBUG"
    error_message = "Values set in this root must reach every function and job."
  }
  assert {
    condition     = startswith(output.image_repository, "europe-west4-docker.pkg.dev/x-proj1/")
    error_message = "The image repository must be in the region set here."
  }
}

# prod's terraform.tfvars.example leaves deletion protection unset: on.
run "protected_by_default" {
  command = plan

  assert {
    condition     = output.deletion_protection == true
    error_message = "prod must be protected from terraform destroy unless told otherwise."
  }
}
