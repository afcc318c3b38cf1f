"""Cloud Functions entry points. Each converts its input, calls a handler and maps errors.

Permanent problems (an event we cannot parse) are logged and acknowledged; anything else
raises, so the platform redelivers (functions-framework answers 500).

Every deployed function loads this file but runs one entry point, so each entry point imports
its own handler: a process loads only its handler's dependencies (openai for notes, the Cloud
Run client and PyAV for dispatch, ...), which saves memory and cold-start time.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import flask
import functions_framework
import werkzeug
from cloudevents.http.event import CloudEvent
from pydantic import ValidationError

from common.domain.errors import InvalidInput, JobNotFound
from common.domain.messages import TranscriptionRequested, TranscriptReady, decode_push
from common.obs.logs import get_logger
from common.obs.tracing import configure_tracing, is_traceparent, stage
from functions.bootstrap import Services, services

if TYPE_CHECKING:
    from functions.api import ApiServices

log = get_logger("functions.main")


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    from functions.uploads import StorageObject, handle_upload

    svc = _traced(services(), "on_upload")
    # The job's trace starts here (or continues the event's, when it carries one).
    with stage("on_upload", parents=[event.get("traceparent")]) as span:
        try:
            obj = StorageObject.model_validate(event.data)
        except ValidationError as exc:
            log.error(
                "unusable storage event %s: %s", event["id"], exc, extra={"code": "bad_event"}
            )
            return
        outcome = handle_upload(obj, svc)
        span.set_attribute("outcome", outcome.value)
        log.info("on_upload %s: %s", obj.name, outcome.value, extra={"event": "on_upload"})


@functions_framework.cloud_event
def dispatch(event: CloudEvent) -> None:
    from functions.dispatch import dispatch_services, handle_dispatch

    svc = _traced(services(), "dispatch")
    try:
        request, attributes = decode_push(event.data, TranscriptionRequested)
    except InvalidInput as exc:
        log.error(
            "unusable transcription request %s: %s", event["id"], exc, extra={"code": exc.code}
        )
        return
    parents = _job_trace(attributes, request.job_id, svc)
    with stage("dispatch", parents=parents, job_id=request.job_id) as span:
        outcome = handle_dispatch(request, svc, dispatch_services())
        span.set_attribute("outcome", outcome.value)
        log.info("dispatch: %s", outcome.value, extra={"event": "dispatch"})


@functions_framework.cloud_event
def notes(event: CloudEvent) -> None:
    from functions.notes import handle_transcript_ready, notes_services

    _traced(services(), "notes")
    svc = notes_services()
    try:
        message, attributes = decode_push(event.data, TranscriptReady)
    except InvalidInput as exc:
        log.error("unusable transcript event %s: %s", event["id"], exc, extra={"code": exc.code})
        return
    parents = _job_trace(attributes, message.job_id, svc.core)
    with stage("notes", parents=parents, job_id=message.job_id) as span:
        attempt = (event.data or {}).get("deliveryAttempt")
        outcome = handle_transcript_ready(
            message, svc, delivery_attempt=attempt if isinstance(attempt, int) else None
        )
        span.set_attribute("outcome", outcome.value)
        log.info("notes: %s", outcome.value, extra={"event": "notes"})


@functions_framework.http
def api(request: flask.Request) -> werkzeug.Response:
    """The HTTPS API: its own Flask app (functions.api.http) is handed the request as it came."""
    return flask.Response.from_app(_api_app(), request.environ, buffered=True)


@functools.cache
def _api_app() -> flask.Flask:
    from common.config.settings import get_settings
    from common.gcp.clients import storage_origin
    from functions.api.http import create_app

    return create_app(get_settings(), _traced_api, storage_origin=storage_origin())


def _json_http_errors() -> None:
    """Requests the framework answers itself (a path its catch-all route does not match, such
    as one with a newline) get the API's JSON error body, not Flask's HTML page."""
    if not flask.has_app_context():  # imported outside functions-framework (tests, tools)
        return
    from werkzeug.exceptions import HTTPException

    from functions.api.http import http_error

    flask.current_app.register_error_handler(HTTPException, http_error)


_json_http_errors()


def _traced(svc: Services, function: str) -> Services:
    configure_tracing(svc.settings.tracing, function)  # once per process
    return svc


def _traced_api() -> ApiServices:
    from functions.api import api_services

    api_ = api_services()
    configure_tracing(api_.core.settings.tracing, "api")
    return api_


def _job_trace(attributes: dict[str, str], job_id: str, svc: Services) -> list[str | None]:
    """The job's trace context: the message's ``traceparent`` attribute or, for a message
    published without a usable one (a replay by hand), the job's stored one."""
    traceparent = attributes.get("traceparent")
    if is_traceparent(traceparent):
        return [traceparent]
    try:
        return [svc.jobs.get(job_id).traceparent]
    except JobNotFound:
        return []


@functions_framework.cloud_event
def dead_letters(event: CloudEvent) -> None:
    """Both dead-letter topics push here: the job of a message Pub/Sub gave up on is FAILED."""
    from functions.dead_letters import DeadLetter, handle_dead_letter
    from functions.dispatch import dispatch_services

    svc = _traced(services(), "dead_letters")
    letter = DeadLetter.from_push(event.data)
    with stage("dead_letters", parents=[letter.traceparent], job_id=letter.job_id) as span:
        outcome = handle_dead_letter(letter, svc, dispatch_services().launcher)
        span.set_attribute("outcome", outcome.value)
        log.info("dead_letters: %s", outcome.value, extra={"event": "dead_letters"})


@functions_framework.http
def sweep(request: flask.Request) -> flask.Response:
    """Cloud Scheduler's periodic call: jobs whose message was lost get it published again."""
    from functions.dispatch import dispatch_services
    from functions.sweep import SweepRequest
    from functions.sweep import sweep as run_sweep

    try:
        body = SweepRequest.model_validate(request.get_json(silent=True) or {})
    except ValidationError as exc:
        response = flask.jsonify({"error": {"code": "bad_request", "message": str(exc)}})
        response.status_code = 400
        return response
    svc = _traced(services(), "sweep")
    with stage("sweep", parents=[request.headers.get("traceparent")]):
        report = run_sweep(svc, body, work=dispatch_services().work)
    return flask.jsonify(report.as_dict())
