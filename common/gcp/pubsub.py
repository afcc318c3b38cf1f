"""Publishing to Pub/Sub: awaited, retried on transient errors, with trace context.

The client is created on first use. ``publish`` returns only once Pub/Sub has confirmed the
message, so a handler that returns has really handed its work on (no fire-and-forget).
"""

from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from pydantic import BaseModel

from common.domain.errors import PublishFailed
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


class Publisher:
    def __init__(
        self,
        project: str,
        *,
        client: pubsub_v1.PublisherClient | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.project = project
        self.timeout_s = timeout_s
        self._client = client

    @property
    def client(self) -> pubsub_v1.PublisherClient:
        if self._client is None:
            # One message per handler call: the batch latency (library default 10 ms) is the
            # only delay, and we wait for the future anyway.
            self._client = pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.01)
            )
        return self._client

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
        future = self.client.publish(
            self.topic_path(topic), data, retry=_PUBLISH_RETRY, timeout=self.timeout_s, **attrs
        )
        try:
            message_id: str = future.result(timeout=self.timeout_s)
        except Exception as exc:  # the future raises whatever the transport raised
            raise PublishFailed(f"publish to {topic} failed: {exc}") from exc
        log.info("published to %s as %s", topic, message_id, extra={"event": "published"})
        return message_id
