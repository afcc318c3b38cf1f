"""Structured JSON logs that Cloud Logging understands, with job and trace correlation.

Library code logs through ``get_logger(__name__)`` and never configures logging; entry points
call ``configure_logging()`` once. ``bind()`` puts a job id and W3C trace context on every
record logged inside it (contextvars, so it is per request and per thread). Inside an
OpenTelemetry span (``common.obs.tracing``) the trace and span ids are that span's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_job_id: ContextVar[str | None] = ContextVar("audionotes_job_id", default=None)
_traceparent: ContextVar[str | None] = ContextVar("audionotes_traceparent", default=None)

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def current_traceparent() -> str | None:
    """The current OpenTelemetry span's W3C traceparent, else the one ``bind`` set."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    return _traceparent.get()


def current_job_id() -> str | None:
    return _job_id.get()


@contextlib.contextmanager
def bind(*, job_id: str | None = None, traceparent: str | None = None) -> Iterator[None]:
    tokens = []
    if job_id is not None:
        tokens.append((_job_id, _job_id.set(job_id)))
    if traceparent is not None:
        tokens.append((_traceparent, _traceparent.set(traceparent)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the special fields Cloud Logging lifts out."""

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        job_id = getattr(record, "job_id", None) or _job_id.get()
        if job_id:
            entry["job_id"] = job_id
        match = _TRACEPARENT.match(current_traceparent() or "")
        if match:
            trace = match.group(1)
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace}" if self.project else trace
            )
            entry["logging.googleapis.com/spanId"] = match.group(2)
            # Bit 0 of the flags; W3C level 2 adds bit 1 ("random trace id").
            entry["logging.googleapis.com/trace_sampled"] = bool(int(match.group(3), 16) & 1)
        # Whatever a caller passed as ``extra=`` becomes a field (event, code, state,
        # duration_s, cost_usd, ...): the log-based metrics in terraform/modules/monitoring
        # read them from jsonPayload.
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and value is not None:
                entry.setdefault(key, value)
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", project: str | None = None) -> None:
    """For entry points only: JSON lines on stderr, replacing any earlier handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(project or os.environ.get("AUDIONOTES_PROJECT")))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
