# Cloud Functions (2nd gen) built from one source archive of the repository.
#
# The archive (terraform/package_functions.py) holds common/ and functions/ plus a generated
# root main.py that re-exports the entry points from functions/main.py, because the Python
# runtime imports main.py from the source root, and a requirements.txt generated from
# pyproject.toml. Its object name carries the archive's MD5: a code change is a new object,
# and the new object name is a change to every function that redeploys it.

resource "google_storage_bucket_object" "source" {
  name         = "functions/source-${var.source_archive.md5}.zip"
  bucket       = var.source_archive.bucket
  source       = var.source_archive.path
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:Ingress is per function: only the public API gets ALLOW_ALL (it authenticates every request with JWT); the others are ALLOW_INTERNAL_ONLY, asserted by modules/audionotes/tests.
  for_each = var.functions

  project     = var.project
  location    = var.region
  name        = each.key
  description = each.value.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = each.value.entry_point
    service_account = var.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = each.value.service_account_email
    ingress_settings                 = each.value.ingress
    timeout_seconds                  = each.value.timeout_s
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(var.common_env, each.value.env)
    direct_vpc_egress                = each.value.vpc == null ? null : each.value.vpc.egress

    dynamic "direct_vpc_network_interface" {
      for_each = each.value.vpc == null ? [] : [each.value.vpc]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
      }
    }

    dynamic "secret_environment_variables" {
      for_each = each.value.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.storage_trigger == null ? [] : [each.value.storage_trigger]
    content {
      trigger_region        = var.region
      event_type            = event_trigger.value.event_type
      retry_policy          = event_trigger.value.retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
      service_account_email = event_trigger.value.service_account_email
      event_filters {
        attribute = "bucket"
        value     = event_trigger.value.bucket
      }
    }
  }
}

locals {
  invokers = merge([
    for fn, f in var.functions : {
      for k, member in f.invokers : "${fn}|${k}" => { function = fn, member = member }
    }
  ]...)
}

# Gen2 functions are Cloud Run services: invocation is roles/run.invoker on the service.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invokers

  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.this[each.value.function].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value.member
}
