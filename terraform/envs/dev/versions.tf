terraform {
  required_version = ">= 1.7"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 8.7"
    }
  }

  # State in a GCS bucket of your choosing (created once, by hand, with versioning):
  #   terraform init -backend-config=bucket=BUCKET -backend-config=prefix=audionotes/dev
  backend "gcs" {}
}
