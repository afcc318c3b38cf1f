"""The notes provider chain: OpenAI, then an OpenAI-compatible fallback, then extractive notes.

- ``providers``: one HTTP call through the official ``openai`` client, its errors classified;
- ``retry``: our backoff (full jitter, honouring Retry-After); ``keys``: API key rotation;
- ``breaker``: a circuit breaker whose state lives in Firestore, shared by all instances;
- ``pricing`` and ``ledger``: cost per call and the daily spend ledger with its budget;
- ``chunking`` and ``prompts``: token-bounded chunks, map-reduce and batch requests;
- ``chain``: ``NotesEngine``, which puts them together.
"""
