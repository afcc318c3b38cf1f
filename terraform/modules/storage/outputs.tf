output "buckets" {
  description = "Per bucket key (inbox, results, sources): name, gs:// URL and CORS rules."
  value = {
    for k, b in google_storage_bucket.this : k => {
      name = b.name
      url  = b.url
      cors = [for c in b.cors : { origin = c.origin, method = c.method }]
    }
  }
}

output "lifecycle_rules" {
  description = "Bucket key => lifecycle rules as {action, storage_class, age, prefixes, days_since_noncurrent_time}."
  value = {
    for k, b in google_storage_bucket.this : k => [
      for r in b.lifecycle_rule : {
        action                     = one(r.action).type
        storage_class              = one(r.action).storage_class
        age                        = one(r.condition).age
        prefixes                   = one(r.condition).matches_prefix
        days_since_noncurrent_time = one(r.condition).days_since_noncurrent_time
      }
    ]
  }
}

output "grants" {
  description = "Grant key => {bucket, role (as given: a predefined role or objectReadDelete), member, prefix}: who may do what to which objects."
  value = {
    for k, g in google_storage_bucket_iam_member.this : k => {
      bucket = var.iam[k].bucket
      role   = var.iam[k].role
      member = g.member
      prefix = var.iam[k].prefix
    }
  }
}

output "custom_roles" {
  description = "Custom role key (usable as a grant's role) => {name, permissions}."
  value = {
    objectReadDelete = {
      name        = google_project_iam_custom_role.object_read_delete.name
      permissions = google_project_iam_custom_role.object_read_delete.permissions
    }
  }
}
