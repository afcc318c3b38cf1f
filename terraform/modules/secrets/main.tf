# Secret Manager secrets, each readable only by the identities listed for it. No secret
# version is created here: payloads are added with `gcloud secrets versions add`, so they never
# appear in Terraform state or plans.

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project             = var.project
  secret_id           = each.value.secret_id
  labels              = var.labels
  deletion_protection = var.deletion_protection

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = merge([
    for k, s in var.secrets : { for a, m in s.accessors : "${k}|${a}" => { secret = k, member = m } }
  ]...)

  project   = var.project
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
