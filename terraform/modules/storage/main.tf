# The inbox (uploaded audio), results (transcripts, notes, content cache) and sources (function
# archives) buckets. All: uniform bucket-level access, public access prevention enforced,
# versioning (an overwrite or delete keeps the previous generation for noncurrent_retention days).
#
# Deletion is per retention entry (a bucket, optionally only some prefixes of it). Colder
# classes are used only where the object stays in them for their whole minimum storage duration
# before it is deleted (Nearline 30, Coldline 90, Archive 365 days): a shorter stay would be
# billed as if it were that long (early deletion) and cost more than staying in Standard.

locals {
  min_storage_days = { NEARLINE = 30, COLDLINE = 90, ARCHIVE = 365 }
  tiers = [
    { class = "NEARLINE", age = var.tiers.nearline_after, from = ["STANDARD"] },
    { class = "COLDLINE", age = var.tiers.coldline_after, from = ["STANDARD", "NEARLINE"] },
    { class = "ARCHIVE", age = var.tiers.archive_after, from = ["STANDARD", "NEARLINE", "COLDLINE"] },
  ]

  # bucket key => its rules, in a fixed order: per retention entry (sorted by key) the colder
  # classes that fit, then the deletion.
  rules = {
    for bucket in keys(var.names) : bucket => flatten([
      for k in sort(keys(var.retention)) : concat(
        [
          for t in local.tiers : {
            type          = "SetStorageClass"
            storage_class = t.class
            age           = t.age
            from          = t.from
            prefixes      = var.retention[k].prefixes
          }
          if var.retention[k].tiering && t.age + local.min_storage_days[t.class] <= var.retention[k].days
        ],
        [{
          type          = "Delete"
          storage_class = null
          age           = var.retention[k].days
          from          = null
          prefixes      = var.retention[k].prefixes
        }],
      ) if var.retention[k].bucket == bucket
    ])
  }

  custom_roles = {
    # The API reads and deletes a job's audio and results, and never writes them.
    objectReadDelete = google_project_iam_custom_role.object_read_delete.name
  }
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

  # The web page PUTs uploads to signed URLs from the browser: the signature is the credential,
  # CORS only lets the page's origin see the answer.
  dynamic "cors" {
    for_each = length(lookup(var.upload_origins, each.key, [])) > 0 ? [var.upload_origins[each.key]] : []
    content {
      origin          = cors.value
      method          = ["PUT"]
      response_header = ["Content-Type"]
      max_age_seconds = 3600
    }
  }

  dynamic "lifecycle_rule" {
    for_each = local.rules[each.key]
    content {
      action {
        type          = lifecycle_rule.value.type
        storage_class = lifecycle_rule.value.storage_class
      }
      condition {
        age                   = lifecycle_rule.value.age
        with_state            = lifecycle_rule.value.type == "Delete" ? "ANY" : "LIVE"
        matches_storage_class = lifecycle_rule.value.from
        matches_prefix        = lifecycle_rule.value.prefixes
      }
    }
  }

  # Deleted and overwritten generations (versioning) go after noncurrent_retention days.
  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = var.noncurrent_retention
      with_state                 = "ARCHIVED"
    }
  }

  # Parts of XML API multipart uploads that were never completed are billed until aborted.
  lifecycle_rule {
    action {
      type = "AbortIncompleteMultipartUpload"
    }
    condition {
      age = 1
    }
  }
}

resource "google_project_iam_custom_role" "object_read_delete" {
  project     = var.project
  role_id     = "audionotesObjectReadDelete"
  title       = "audionotes object read and delete"
  description = "Read, list and delete objects; no writes (DELETE /v1/jobs removes audio and results)."
  permissions = ["storage.objects.get", "storage.objects.list", "storage.objects.delete"]
}

resource "google_storage_bucket_iam_member" "this" {
  for_each = var.iam

  bucket = google_storage_bucket.this[each.value.bucket].name
  role   = lookup(local.custom_roles, each.value.role, each.value.role)
  member = each.value.member

  # Object-level permissions limited to one folder. Listing is checked on the bucket, so a
  # grant with a prefix serves reads and writes of named objects only.
  dynamic "condition" {
    for_each = each.value.prefix == null ? [] : [each.value.prefix]
    content {
      title       = "only ${condition.value}"
      description = "Objects under ${condition.value} only."
      expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this[each.value.bucket].name}/objects/${condition.value}\")"
    }
  }
}
