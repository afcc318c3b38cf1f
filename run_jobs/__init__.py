"""Cloud Run jobs. Each folder is one job's code (and its Dockerfile); imports ``common`` only."""
