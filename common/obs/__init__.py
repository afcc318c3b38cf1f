"""Observability: structured JSON logs, OpenTelemetry traces, metric names.

Imports ``common.config`` and ``common.domain`` only.
"""
