# audionotes prod: the whole system (modules/audionotes) in one project. The roots differ only
# in this name and in their tfvars (see terraform.tfvars.example); variables.tf is a symlink to
# the module's, so its types, defaults and validation apply here as they are.

locals {
  environment = "prod"
}

provider "google" {
  project = var.project
  region  = var.region
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
  enable_local_llm    = var.enable_local_llm
  local_llm           = var.local_llm
  log_level           = var.log_level
  alerting            = var.alerting
  sweep               = var.sweep
  gpu_quota           = var.gpu_quota
  max_gpu_workers     = var.max_gpu_workers
  max_cpu_workers     = var.max_cpu_workers
  workers             = var.workers
}
