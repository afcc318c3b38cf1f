# The inbox (uploaded audio), results (transcripts, notes, content cache) and sources (function
# archives) buckets. All: uniform bucket-level access, public access prevention enforced,
# versioning (an overwrite or delete keeps the previous generation for noncurrent_retention days).

locals {
  retention = {
    inbox   = var.lifecycle_days.inbox_retention
    results = var.lifecycle_days.results_retention
    sources = var.lifecycle_days.results_retention
  }
  tiers = [
    { class = "NEARLINE", age = var.lifecycle_days.nearline_after, from = ["STANDARD"] },
    { class = "COLDLINE", age = var.lifecycle_days.coldline_after, from = ["STANDARD", "NEARLINE"] },
    { class = "ARCHIVE", age = var.lifecycle_days.archive_after, from = ["STANDARD", "NEARLINE", "COLDLINE"] },
  ]
}

resource "google_storage_bucket" "this" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (Data Access logs for GCS), not by legacy usage-log buckets.
  for_each = var.names

  project                     = var.project
  name                        = each.value
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = merge(var.labels, { bucket = each.key })

  versioning {
    enabled = true
  }

  # Standard -> Nearline -> Coldline -> Archive, each only if it comes before deletion.
  dynamic "lifecycle_rule" {
    for_each = [for t in local.tiers : t if t.age < local.retention[each.key]]
    content {
      action {
        type          = "SetStorageClass"
        storage_class = lifecycle_rule.value.class
      }
      condition {
        age                   = lifecycle_rule.value.age
        with_state            = "LIVE"
        matches_storage_class = lifecycle_rule.value.from
      }
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      age        = local.retention[each.key]
      with_state = "ANY"
    }
  }

  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.lifecycle_days.noncurrent_retention
      with_state                 = "ARCHIVED"
    }
  }
}

resource "google_storage_bucket_iam_member" "this" {
  for_each = var.iam

  bucket = google_storage_bucket.this[each.value.bucket].name
  role   = each.value.role
  member = each.value.member
}
