output "service_accounts" {
  description = "Per component: the account's id (for IAM on the account), email and IAM member."
  value = {
    for k, sa in google_service_account.this : k => {
      id     = sa.name
      email  = sa.email
      member = sa.member
    }
  }
}

output "enabled_services" {
  description = "APIs this module enabled (depend on it before creating resources of those APIs)."
  value       = [for s in google_project_service.this : s.service]
}

output "project_grants" {
  description = "Component => the project-level roles its service account holds."
  value = {
    for k in keys(google_service_account.this) : k => toset([for key, g in google_project_iam_member.this : g.role if split("|", key)[0] == k])
  }
}

output "project_roles" {
  description = "Every project-level role this module grants (to components and service agents)."
  value = concat(
    [for g in google_project_iam_member.this : g.role],
    [google_project_iam_member.gcs_agent_publisher.role],
  )
}
