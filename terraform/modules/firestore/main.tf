# The Firestore (native mode) database: point-in-time recovery, daily backups, the TTL policies
# (jobs and rate-limit windows carry expire_at) and the composite indexes of the queries the
# code makes (common/gcp/job_store.py FirestoreJobStore.list: optional owner, optional state,
# created_at desc).
#
# The other collections need neither: breakers (one document per LLM provider, common/notes/
# breaker.py), spend (a document per UTC day with shards/ and charges/ subcollections,
# common/notes/ledger.py) and worker_pools (one scaling lease per tier, common/gcp/
# coordination_store.py) are read by id, and no expiry field is written to them, so the spend
# ledger is kept until someone deletes it.

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

# Firestore deletes a document some time (usually within 24 h) after its TTL field's time:
# jobs at their retention deadline (Limits.retention_days), rate-limit windows an hour after
# they end (common/gcp/rate_limit.py). index_config {} exempts the field from single-field
# indexing: an index on a timestamp that no query reads only costs writes and creates hotspots.
resource "google_firestore_field" "ttl" {
  for_each = var.ttl_fields

  project    = var.project
  database   = google_firestore_database.this.name
  collection = var.collections[each.key]
  field      = each.value

  ttl_config {}
  index_config {}
}

# The jobs TTL policy was a single resource before rate_limits got one.
moved {
  from = google_firestore_field.job_ttl
  to   = google_firestore_field.ttl["jobs"]
}

locals {
  f = var.job_fields
  indexes = {
    # GET /v1/jobs?state=... for one owner, newest first.
    owner_state_created = [[local.f.owner, "ASCENDING"], [local.f.state, "ASCENDING"], [local.f.created_at, "DESCENDING"]]
    # GET /v1/jobs for one owner, newest first.
    owner_created = [[local.f.owner, "ASCENDING"], [local.f.created_at, "DESCENDING"]]
    # The sweep function (functions/sweep.py): jobs in one state, newest first, all owners.
    state_created = [[local.f.state, "ASCENDING"], [local.f.created_at, "DESCENDING"]]
    # A batch lane's unfinished jobs, oldest first (common/gcp/job_store.py in_lane).
    lane_state_created = [[local.f.batch_lane, "ASCENDING"], [local.f.state, "ASCENDING"], [local.f.created_at, "ASCENDING"]]
    # A tier's worker backlog: the sum of coordination.work_chunks over its jobs in DISPATCHED
    # or TRANSCRIBING (common/gcp/job_store.py work_backlog; dispatch and sweep scale by it).
    work_tier_state_chunks = [[local.f.work_tier, "ASCENDING"], [local.f.state, "ASCENDING"], [local.f.work_chunks, "ASCENDING"]]
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
