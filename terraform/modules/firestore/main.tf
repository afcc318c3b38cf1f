# The Firestore (native mode) database of job documents: point-in-time recovery, daily backups,
# the TTL policy on expire_at and the composite indexes the API's listings need.

resource "google_firestore_database" "this" {
  project                           = var.project
  name                              = var.database
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_backup_schedule" "daily" {
  project   = var.project
  database  = google_firestore_database.this.name
  retention = var.backup_retention

  daily_recurrence {}
}

# Firestore deletes a job document some time (usually within 24 h) after its expire_at.
# index_config {} exempts the field from single-field indexing: an index on a monotonically
# increasing timestamp that no query reads only costs writes and creates hotspots.
resource "google_firestore_field" "job_ttl" {
  project    = var.project
  database   = google_firestore_database.this.name
  collection = var.collections.jobs
  field      = var.job_fields.expire_at

  ttl_config {}
  index_config {}
}

locals {
  f = var.job_fields
  indexes = {
    # GET /v1/jobs?state=... for one owner, newest first.
    owner_state_created = [[local.f.owner, "ASCENDING"], [local.f.state, "ASCENDING"], [local.f.created_at, "DESCENDING"]]
    # GET /v1/jobs for one owner, newest first.
    owner_created = [[local.f.owner, "ASCENDING"], [local.f.created_at, "DESCENDING"]]
    # Operations: jobs stuck in a state since before a time (oldest first).
    state_created = [[local.f.state, "ASCENDING"], [local.f.created_at, "ASCENDING"]]
  }
}

resource "google_firestore_index" "jobs" {
  for_each = local.indexes

  project     = var.project
  database    = google_firestore_database.this.name
  collection  = var.collections.jobs
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}
