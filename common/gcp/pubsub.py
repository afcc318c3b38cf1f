"""Publishing to Pub/Sub behind the ``Publisher`` port: awaited, retried on transient errors,
with trace context.

The process's one publisher client (``common.gcp.clients``) is taken on first use. ``publish``
returns only once Pub/Sub has confirmed the message, so a handler that returns has really
handed its work on (no fire-and-forget).
"""

from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from pydantic import BaseModel

from common.domain.errors import PublishFailed
from common.gcp import clients
from common.obs.logs import current_job_id, current_traceparent, get_logger

log = get_logger(__name__)

# The library's default publish retry covers the same codes; stated here so it is visible
# and bounded by our own deadline.
_PUBLISH_RETRY = Retry(
    predicate=if_exception_type(
        gexc.Aborted,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.ResourceExhausted,
        gexc.ServiceUnavailable,
        gexc.Unknown,
        gexc.Cancelled,
    ),
    initial=0.1,
    maximum=5.0,
    multiplier=2.0,
    timeout=30.0,
)


class PubSubPublisher:
    def __init__(self, project: str, *, timeout_s: float = 30.0) -> None:
        self.project = project
        self.timeout_s = timeout_s

    @property
    def client(self) -> pubsub_v1.PublisherClient:
        return clients.publisher_client()

    def topic_path(self, topic: str) -> str:
        path: str = self.client.topic_path(self.project, topic)
        return path

    def publish(self, topic: str, message: BaseModel | dict[str, Any], **attributes: str) -> str:
        """Publish JSON and wait for the server's message id; raises ``PublishFailed``."""
        body = message.model_dump(mode="json") if isinstance(message, BaseModel) else message
        data = json.dumps(body, separators=(",", ":")).encode()
        attrs = {k: str(v) for k, v in attributes.items() if v is not None}
        job_id = attrs.get("job_id") or body.get("job_id") or current_job_id()
        if job_id:
            attrs["job_id"] = str(job_id)
        traceparent = current_traceparent()
        if traceparent and "traceparent" not in attrs:
            attrs["traceparent"] = traceparent
        try:
            future = self.client.publish(
                self.topic_path(topic), data, retry=_PUBLISH_RETRY, timeout=self.timeout_s, **attrs
            )
            message_id: str = future.result(timeout=self.timeout_s)
        except Exception as exc:  # the client and its future raise whatever the transport did
            raise PublishFailed(f"publish to {topic} failed: {exc}") from exc
        log.info("published to %s as %s", topic, message_id, extra={"event": "published"})
        return message_id
