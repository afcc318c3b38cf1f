output "buckets" {
  description = "Per bucket key (inbox, results, sources): name and gs:// URL."
  value = {
    for k, b in google_storage_bucket.this : k => { name = b.name, url = b.url }
  }
}

output "lifecycle_rules" {
  description = "Bucket key => lifecycle rules as {action, storage_class, age, days_since_noncurrent_time}."
  value = {
    for k, b in google_storage_bucket.this : k => [
      for r in b.lifecycle_rule : {
        action                     = one(r.action).type
        storage_class              = one(r.action).storage_class
        age                        = one(r.condition).age
        days_since_noncurrent_time = one(r.condition).days_since_noncurrent_time
      }
    ]
  }
}
