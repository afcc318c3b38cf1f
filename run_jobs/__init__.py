"""Cloud Run containers: the transcribe job (transcribe/) and the notes model server (llm/).
Each folder is one image's code (and its Dockerfile); imports ``common`` only."""
