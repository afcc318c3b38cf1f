"""The pure domain: jobs and their state machine, leases, lanes, plans, messages, transcripts,
notes models, object names, errors, and the ports (Protocols) the adapters implement.

Imports ``common.config``, the standard library and pydantic only: no I/O library (no google,
requests, openai, av, opentelemetry), so every rule here is testable without a network.
"""
