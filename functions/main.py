"""Cloud Functions entry points. Each converts its input, calls a handler and maps errors.

Permanent problems (an event we cannot parse) are logged and acknowledged; anything else
raises, so the platform redelivers (functions-framework answers 500).
"""

from __future__ import annotations

import flask
import functions_framework
from cloudevents.http.event import CloudEvent
from pydantic import ValidationError

from common.errors import InvalidInput
from common.logs import bind, get_logger, new_traceparent
from common.messages import TranscriptionRequested, TranscriptReady, decode_push
from functions.api import api_services
from functions.api.http import handle as handle_api
from functions.bootstrap import services
from functions.dispatch import dispatch_deps, handle_dispatch
from functions.notes import handle_transcript_ready, notes_services
from functions.uploads import StorageObject, handle_upload

log = get_logger("functions.main")


@functions_framework.cloud_event
def on_upload(event: CloudEvent) -> None:
    svc = services()
    with bind(traceparent=new_traceparent(event.get("traceparent"))):
        try:
            obj = StorageObject.model_validate(event.data)
        except ValidationError as exc:
            log.error(
                "unusable storage event %s: %s", event["id"], exc, extra={"code": "bad_event"}
            )
            return
        outcome = handle_upload(obj, svc)
        log.info("on_upload %s: %s", obj.name, outcome.value, extra={"event": "on_upload"})


@functions_framework.cloud_event
def dispatch(event: CloudEvent) -> None:
    svc = services()
    try:
        request, attributes = decode_push(event.data, TranscriptionRequested)
    except InvalidInput as exc:
        log.error(
            "unusable transcription request %s: %s", event["id"], exc, extra={"code": exc.code}
        )
        return
    with bind(job_id=request.job_id, traceparent=new_traceparent(attributes.get("traceparent"))):
        outcome = handle_dispatch(request, svc, dispatch_deps())
        log.info("dispatch: %s", outcome.value, extra={"event": "dispatch"})


@functions_framework.cloud_event
def notes(event: CloudEvent) -> None:
    svc = notes_services()
    try:
        message, attributes = decode_push(event.data, TranscriptReady)
    except InvalidInput as exc:
        log.error("unusable transcript event %s: %s", event["id"], exc, extra={"code": exc.code})
        return
    with bind(job_id=message.job_id, traceparent=new_traceparent(attributes.get("traceparent"))):
        outcome = handle_transcript_ready(message, svc)
        log.info("notes: %s", outcome.value, extra={"event": "notes"})


@functions_framework.http
def api(request: flask.Request) -> flask.Response:
    """The HTTPS API: routing, auth, rate limits and error mapping live in functions.api.http."""
    return handle_api(request, api_services)
