# Set by each environment root in code (its own name), not from its tfvars: hence not in
# variables.tf, which the roots share.

variable "environment" {
  type        = string
  description = "Environment name (AUDIONOTES_ENVIRONMENT and the environment label): dev or prod, the values common/config/settings.py Environment accepts on GCP (local is the emulator stack)."
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod (common/config/settings.py Environment; local means the emulators and signs URLs without IAM)."
  }
}
