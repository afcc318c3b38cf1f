"""Cloud Functions entry points. Each converts its input, calls a handler and maps errors.

Permanent problems (an event we cannot parse) are logged and acknowledged; anything else
raises, so the platform redelivers (functions-framework answers 500).
"""

from __future__ import annotations

import functions_framework
from cloudevents.http.event import CloudEvent
from pydantic import ValidationError

from common.logs import bind, get_logger, new_traceparent
from functions.bootstrap import services
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
