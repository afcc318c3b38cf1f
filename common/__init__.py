"""What the deployables share, in layers (import contracts in pyproject.toml hold them):

- ``config``: Settings, the one definition of every name and option;
- ``domain``: models, the state machine, plans, ports (Protocols); no I/O library;
- ``obs``: logs, traces and metrics;
- ``audio``, ``edge`` (SSRF, auth, sniffing, fetching, webhooks) and ``notes`` (the notes
  engine): independent of each other;
- ``gcp``: the adapters to Firestore, Cloud Storage, Pub/Sub and Cloud Run.

Imports libraries only, never ``functions``, ``run_jobs``, ``emulators`` or the CLI.
"""
