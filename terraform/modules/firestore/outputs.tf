output "database" {
  description = "The database's name and id."
  value       = { name = google_firestore_database.this.name, id = google_firestore_database.this.id }
}

output "indexes" {
  description = "Composite index key => fields in order."
  value       = local.indexes
}
