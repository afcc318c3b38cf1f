"""The chunk queues behind the ``WorkQueue`` port: Pub/Sub pull subscriptions.

A worker asks for one message at a time (``max_messages=1``) so that a chunk it has not
started never sits in its hands while another worker idles; it keeps the message by extending
its ack deadline while it transcribes (``extend``), so a worker that is killed stops extending
and Pub/Sub hands the chunk to another within the subscription's ack deadline.
"""

from __future__ import annotations

import json
import warnings

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from pydantic import ValidationError

from common.domain.errors import PublishFailed
from common.domain.messages import ChunkWork
from common.domain.ports import WorkItem
from common.gcp import clients
from common.obs.logs import get_logger

log = get_logger(__name__)

_PULL_TIMEOUT_S = 20.0

# A worker asks its queues in turn, so an empty one must answer at once rather than hold the
# request open; the flag is deprecated (Pub/Sub may then answer empty while messages wait,
# which costs one more poll here), and warned about on every call.
warnings.filterwarnings("ignore", "The return_immediately flag is deprecated", DeprecationWarning)


class PubSubWorkQueue:
    def __init__(self, project: str) -> None:
        self.project = project

    @property
    def client(self) -> pubsub_v1.SubscriberClient:
        return clients.subscriber_client()

    def _path(self, subscription: str) -> str:
        path: str = self.client.subscription_path(self.project, subscription)
        return path

    def pull(self, subscription: str) -> WorkItem | None:
        try:
            response = self.client.pull(
                request={
                    "subscription": self._path(subscription),
                    "max_messages": 1,
                    # An empty queue answers at once: the worker tries its next queue.
                    "return_immediately": True,
                },
                timeout=_PULL_TIMEOUT_S,
            )
        except (gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
            log.warning("pull from %s: %s; trying again later", subscription, exc)
            return None
        if not response.received_messages:
            return None
        received = response.received_messages[0]
        message = received.message
        work: ChunkWork | None
        try:
            work = ChunkWork.model_validate(json.loads(message.data))
        except (ValueError, ValidationError) as exc:
            log.error("unusable work message %s: %s", message.message_id, exc)
            work = None
        return WorkItem(
            work=work,
            ack_id=received.ack_id,
            subscription=subscription,
            # Pub/Sub counts deliveries only where a dead-letter policy is set (ours all are).
            delivery_attempt=max(1, received.delivery_attempt),
            message_id=message.message_id,
            attributes=dict(message.attributes),
        )

    def extend(self, item: WorkItem, seconds: int) -> None:
        try:
            self.client.modify_ack_deadline(
                request={
                    "subscription": self._path(item.subscription),
                    "ack_ids": [item.ack_id],
                    "ack_deadline_seconds": seconds,
                }
            )
        except gexc.GoogleAPICallError as exc:
            raise PublishFailed(f"extend {item.message_id} failed: {exc}") from exc

    def ack(self, item: WorkItem) -> None:
        try:
            self.client.acknowledge(
                request={"subscription": self._path(item.subscription), "ack_ids": [item.ack_id]}
            )
        except gexc.GoogleAPICallError as exc:
            # Not fatal: the chunk's result is stored, so a redelivery only finds it done.
            log.warning("ack of %s failed (%s); it will be redelivered", item.message_id, exc)
