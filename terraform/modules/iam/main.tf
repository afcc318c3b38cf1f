# Identities, their project-level roles, the service agents' grants and the required APIs.

resource "google_project_service" "this" {
  for_each = var.services

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

resource "google_service_account" "this" {
  for_each = var.service_accounts

  project      = var.project
  account_id   = "${var.account_prefix}-${replace(each.key, "_", "-")}"
  display_name = "audionotes ${each.key}"
  description  = each.value.description

  depends_on = [google_project_service.this]
}

locals {
  project_grants = merge([
    for k, sa in var.service_accounts : {
      for r in sa.project_roles : "${k}|${r}" => { account = k, role = r }
    }
  ]...)
}

resource "google_project_iam_member" "this" {
  for_each = local.project_grants

  project = var.project
  role    = each.value.role
  member  = google_service_account.this[each.value.account].member
}

# Eventarc's Cloud Storage triggers receive GCS notifications through Pub/Sub: the Cloud Storage
# service agent must be allowed to publish them. There is no per-topic scope here: Eventarc
# creates its transport topic itself, so the grant is project-level.
resource "google_project_iam_member" "gcs_agent_publisher" {
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.gcs_service_agent_email}"

  depends_on = [google_project_service.this]
}

# Push subscriptions authenticate with OIDC tokens that the Pub/Sub service agent mints for
# the push identity (needed explicitly for projects created before April 2021; harmless after).
resource "google_service_account_iam_member" "pubsub_agent_token_creator" {
  service_account_id = google_service_account.this[var.push_identity].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent_email}"
}

# Signed URLs without a key file (common/gcp/gcs.py IamSigner) call signBlob as the runtime
# identity, which needs token-creator on itself, and on nothing else.
resource "google_service_account_iam_member" "self_signer" {
  for_each = var.self_signers

  service_account_id = google_service_account.this[each.value].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.this[each.value].member
}
