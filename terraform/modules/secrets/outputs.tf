output "secrets" {
  description = "Secret key => {secret_id, id} (reference secret_id from functions and jobs)."
  value       = { for k, s in google_secret_manager_secret.this : k => { secret_id = s.secret_id, id = s.id } }
}
