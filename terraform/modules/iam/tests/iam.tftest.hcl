# The iam module refuses basic roles, and grants exactly what it is given.

mock_provider "google" {
  mock_resource "google_service_account" {
    defaults = {
      email  = "component@x-proj1.iam.gserviceaccount.com"
      member = "serviceAccount:component@x-proj1.iam.gserviceaccount.com"
      name   = "projects/x-proj1/serviceAccounts/component@x-proj1.iam.gserviceaccount.com"
    }
  }
}

variables {
  project                    = "x-proj1"
  gcs_service_agent_email    = "service-1@gs-project-accounts.iam.gserviceaccount.com"
  pubsub_service_agent_email = "service-1@gcp-sa-pubsub.iam.gserviceaccount.com"
}

run "grants_what_it_is_given" {
  command = apply

  variables {
    service_accounts = {
      pubsub_push = { description = "push" }
      api         = { description = "api", project_roles = ["roles/datastore.user", "roles/logging.logWriter"] }
    }
  }

  assert {
    condition     = length(google_project_iam_member.this) == 2 && google_project_iam_member.this["api|roles/datastore.user"].role == "roles/datastore.user"
    error_message = "Each (account, role) pair must be one grant."
  }
  assert {
    condition     = google_service_account.this["pubsub_push"].account_id == "audionotes-pubsub-push"
    error_message = "Account ids are <prefix>-<component with dashes>."
  }
  assert {
    condition     = google_project_iam_member.gcs_agent_publisher.role == "roles/pubsub.publisher"
    error_message = "The GCS service agent must be able to publish (Eventarc GCS triggers)."
  }
}

run "basic_roles_are_rejected" {
  command = plan

  variables {
    service_accounts = {
      pubsub_push = { description = "push" }
      api         = { description = "api", project_roles = ["roles/editor"] }
    }
  }

  expect_failures = [var.service_accounts]
}
