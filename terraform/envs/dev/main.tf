# audionotes dev: the whole system (modules/audionotes) in one project. The roots differ
# only in the environment name here and in their tfvars (see terraform.tfvars.example).

locals {
  environment = "dev"
}

provider "google" {
  project = var.project
  # Every regional resource takes its region from the module; null leaves the provider's unset.
  region = var.region
  default_labels = {
    app         = "audionotes"
    environment = local.environment
  }
}

module "audionotes" {
  source = "../../modules/audionotes"

  environment = local.environment

  project             = var.project
  region              = var.region
  firestore_location  = var.firestore_location
  buckets             = var.buckets
  function_source     = var.function_source
  job_image           = var.job_image
  deletion_protection = var.deletion_protection
  storage_lifecycle   = var.storage_lifecycle
  job_retention_days  = var.job_retention_days
  transcribe          = var.transcribe
  function_scaling    = var.function_scaling
  api                 = var.api
  llm                 = var.llm
  log_level           = var.log_level
  alerting            = var.alerting
  sweep               = var.sweep
}

# State applied before the roots called modules/audionotes keeps its resources (no destroy and
# re-create); harmless on a fresh state.
moved {
  from = module.iam
  to   = module.audionotes.module.iam
}

moved {
  from = module.storage
  to   = module.audionotes.module.storage
}

moved {
  from = module.firestore
  to   = module.audionotes.module.firestore
}

moved {
  from = module.secrets
  to   = module.audionotes.module.secrets
}

moved {
  from = module.functions
  to   = module.audionotes.module.functions
}

moved {
  from = module.pubsub
  to   = module.audionotes.module.pubsub
}

moved {
  from = module.run_jobs
  to   = module.audionotes.module.run_jobs
}

moved {
  from = module.monitoring
  to   = module.audionotes.module.monitoring
}
