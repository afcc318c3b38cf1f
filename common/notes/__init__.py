"""The notes engine: structured notes from a transcript through a provider chain (OpenAI,
then an OpenAI-compatible fallback, then extractive notes).

- ``providers``: one HTTP call through the official ``openai`` client, its errors classified;
- ``keys``: API key rotation; ``breaker``: the circuit breaker's rule (its Firestore store is
  in ``common.gcp``);
- ``pricing`` and ``ledger``: cost per call and the daily spend ledger with its budget;
- ``chunking`` and ``prompts``: token-bounded chunks, map-reduce and batch requests;
- ``extractive``: notes without a model; ``cache``: notes made once per owner and content;
- ``chain``: ``NotesEngine``, which puts them together.

Independent of ``audio`` and ``edge``; below ``gcp``.
"""
