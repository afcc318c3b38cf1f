"""OpenTelemetry tracing: one trace per job, one span per stage.

The trace starts where the job is created (``on_upload``, ``POST /v1/jobs``); the job
document keeps that span's W3C ``traceparent``, and every later stage continues the trace:
``dispatch`` and ``notes`` from the Pub/Sub message's ``traceparent`` attribute (which
``common.gcp.pubsub.PubSubPublisher`` sets from the current span), each transcribe task from the
``TRACEPARENT`` variable dispatch sets on its execution, and, where those are missing, from
the job's stored ``traceparent``.

Entry points call ``configure_tracing()`` once per process (never at import); it installs the
SDK's ``TracerProvider`` whatever the exporter, so spans always have ids that logs
(``common.obs.logs``) and messages carry. Library code only calls ``trace.get_tracer(__name__)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from common.config.settings import Tracing, TracingExporter
from common.obs.logs import bind

__all__ = [
    "JsonLinesExporter",
    "configure_tracing",
    "is_traceparent",
    "parent_context",
    "stage",
]

_PROPAGATOR = TraceContextTextMapPropagator()
_lock = threading.Lock()
_provider: list[TracerProvider] = []


def configure_tracing(
    settings: Tracing, service: str, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """For entry points: install the process's tracer provider (the first call wins).

    ``exporter`` overrides the settings' choice (tests pass an ``InMemorySpanExporter``).
    """
    with _lock:
        if _provider:
            return _provider[0]
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service, "service.namespace": settings.service_namespace}
            )
        )
        chosen = exporter or _exporter(settings)
        if chosen is not None:
            # Synchronous export: a Cloud Run task or a function instance may be frozen or
            # stopped as soon as it returns, before a batch would be flushed.
            provider.add_span_processor(SimpleSpanProcessor(chosen))
        trace.set_tracer_provider(provider)
        _provider.append(provider)
        return provider


def _exporter(settings: Tracing) -> SpanExporter | None:
    if settings.exporter is TracingExporter.CONSOLE:
        return ConsoleSpanExporter()
    if settings.exporter is TracingExporter.JSONL:
        assert settings.jsonl_path is not None  # Tracing's validator
        return JsonLinesExporter(settings.jsonl_path)
    if settings.exporter is TracingExporter.CLOUD_TRACE:
        # Imported here: only deployments that export to Cloud Trace load its client.
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        exporter: SpanExporter = CloudTraceSpanExporter()
        return exporter
    return None


def is_traceparent(traceparent: str | None) -> bool:
    """Whether this is a W3C traceparent a span can continue."""
    if not traceparent:
        return False
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return trace.get_current_span(ctx).get_span_context().is_valid


def parent_context(*traceparents: str | None) -> Context:
    """The context of the first valid W3C ``traceparent`` given, else an empty one (a span
    started in it begins a new trace)."""
    for traceparent in traceparents:
        if traceparent and is_traceparent(traceparent):
            return _PROPAGATOR.extract({"traceparent": traceparent})
    return Context()


@contextlib.contextmanager
def stage(
    name: str,
    *,
    parents: Sequence[str | None] = (),
    job_id: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """An entry point's span: it continues the first valid traceparent of ``parents`` (or
    starts a trace), is current inside, and binds ``job_id`` for the logs."""
    attrs = dict(attributes or {})
    if job_id is not None:
        attrs["job_id"] = job_id
    tracer = trace.get_tracer(__name__)
    with (
        tracer.start_as_current_span(
            name, context=parent_context(*parents), kind=kind, attributes=attrs
        ) as span,
        bind(job_id=job_id),
    ):
        yield span


class JsonLinesExporter(SpanExporter):
    """Appends each finished span as one JSON line to a file shared by every process.

    Each line is written with one ``write`` on an ``O_APPEND`` descriptor, so the lines of
    concurrent processes never interleave.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans).encode()
        with self._lock:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(span: ReadableSpan) -> dict[str, object]:
    """One span as the JSON lines file holds it (hex ids, as in a traceparent)."""
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start": _iso(span.start_time),
        "end": _iso(span.end_time),
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def _iso(nanoseconds: int | None) -> str | None:
    if nanoseconds is None:
        return None
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC).isoformat()
