# Values GCP would compute and that audionotes interpolates into strings or validates (emails,
# project number, URLs). Shared by tests/audionotes.tftest.hcl and the environment roots'
# tests: mock_provider "google" { source = "<path to this folder>" }.

mock_data "google_project" {
  defaults = {
    number = "123456789012"
  }
}
mock_data "google_storage_project_service_account" {
  defaults = {
    email_address = "service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    member        = "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
  }
}
mock_resource "google_service_account" {
  defaults = {
    email  = "component@x-proj1.iam.gserviceaccount.com"
    member = "serviceAccount:component@x-proj1.iam.gserviceaccount.com"
    name   = "projects/x-proj1/serviceAccounts/component@x-proj1.iam.gserviceaccount.com"
  }
}
mock_resource "google_cloudfunctions2_function" {
  defaults = {
    url = "https://us-central1-x-proj1.cloudfunctions.net/fn"
    service_config = {
      uri     = "https://fn-abc123-uc.a.run.app"
      service = "fn"
    }
  }
}
mock_resource "google_cloud_run_v2_service" {
  defaults = {
    uri = "https://audionotes-llm-abc123-uc.a.run.app"
  }
}
mock_data "google_compute_subnetwork" {
  defaults = {
    private_ip_google_access = true
    self_link                = "https://www.googleapis.com/compute/v1/projects/x-proj1/regions/us-central1/subnetworks/notes-egress"
    network                  = "https://www.googleapis.com/compute/v1/projects/x-proj1/global/networks/audionotes"
  }
}
