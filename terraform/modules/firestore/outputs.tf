output "database" {
  description = "The database's name and id."
  value       = { name = google_firestore_database.this.name, id = google_firestore_database.this.id }
}

output "indexes" {
  description = "Composite index key => fields in order."
  value       = local.indexes
}

output "ttl_policies" {
  description = "Collection name => the field its TTL policy deletes documents by."
  value       = { for k, f in google_firestore_field.ttl : f.collection => f.field }
}
