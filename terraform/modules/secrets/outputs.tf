output "secrets" {
  description = "Secret key => {secret_id, id} (reference secret_id from functions and jobs)."
  value       = { for k, s in google_secret_manager_secret.this : k => { secret_id = s.secret_id, id = s.id } }
}

output "accessors" {
  description = "Secret key => the keys (components) of the identities allowed to read it, sorted."
  value = {
    for k in keys(var.secrets) : k => sort([
      for gk, _ in google_secret_manager_secret_iam_member.accessor : split("|", gk)[1] if split("|", gk)[0] == k
    ])
  }
}
