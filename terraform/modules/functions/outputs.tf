output "functions" {
  description = "Function name => {uri (run.app URL), url (cloudfunctions.net URL), service (Cloud Run service name)}."
  value = {
    for k, f in google_cloudfunctions2_function.this : k => {
      uri     = f.service_config[0].uri
      url     = f.url
      service = f.service_config[0].service
    }
  }
}

output "source_object" {
  description = "The uploaded source archive object (gs://bucket/name)."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}

output "function_specs" {
  description = "Function name => entry point, trigger event type (null for HTTP), timeout, ingress, service account, environment (plain and secret-backed) and Direct VPC egress (null without)."
  value = {
    for k, f in google_cloudfunctions2_function.this : k => {
      entry_point     = f.build_config[0].entry_point
      event_type      = try(f.event_trigger[0].event_type, null)
      event_filters   = try({ for ef in f.event_trigger[0].event_filters : ef.attribute => ef.value }, {})
      timeout_s       = f.service_config[0].timeout_seconds
      ingress         = f.service_config[0].ingress_settings
      service_account = f.service_config[0].service_account_email
      env             = f.service_config[0].environment_variables
      secret_env      = { for s in f.service_config[0].secret_environment_variables : s.key => s.secret }
      vpc_egress      = f.service_config[0].direct_vpc_egress
      vpc_subnetwork  = try(f.service_config[0].direct_vpc_network_interface[0].subnetwork, null)
    }
  }
}

output "invokers" {
  description = "Function name => {static key => IAM member} holding roles/run.invoker on it."
  value = {
    for fn in keys(google_cloudfunctions2_function.this) : fn => {
      for k, g in google_cloud_run_v2_service_iam_member.invoker : split("|", k)[1] => g.member if split("|", k)[0] == fn
    }
  }
}
