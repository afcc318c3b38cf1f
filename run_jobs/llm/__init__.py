"""The self-hosted notes model: an OpenAI-compatible chat server on llama.cpp (a Cloud Run
service in production, a process of the local stack here), and its model installer."""
