"""The work queue adapter (common/gcp/work_queue.py) against the Pub/Sub emulator, on a topic
and pull subscription of the test's own configured as the work queues are (ack deadline,
dead-letter policy, so deliveries are counted): what a worker relies on when it pulls, keeps,
hands back and acknowledges chunk work."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from common.config.settings import Settings
from common.domain.messages import ChunkWork
from common.domain.ports import WorkItem
from common.gcp.work_queue import PubSubWorkQueue
from tests.fakes import make_plan

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_name(stack, settings: Settings, unique: str) -> Iterator[tuple[str, str]]:
    """(topic path, subscription name) of a queue of this test's own."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(settings.project, f"work-test-{unique}")
    dead = publisher.topic_path(settings.project, f"work-test-{unique}-dead")
    name = f"work-test-{unique}"
    path = subscriber.subscription_path(settings.project, name)
    publisher.create_topic(name=topic)
    publisher.create_topic(name=dead)
    subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic,
            "ack_deadline_seconds": 10,
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
        }
    )
    yield topic, name
    with contextlib.suppress(gexc.NotFound):
        subscriber.delete_subscription(subscription=path)
    for t in (topic, dead):
        with contextlib.suppress(gexc.NotFound):
            publisher.delete_topic(topic=t)


def _work(job_id: str, index: int = 0) -> ChunkWork:
    return ChunkWork(job_id=job_id, index=index, plan=make_plan(2400.0, 1200, job_id=job_id))


def _pull(queue: PubSubWorkQueue, name: str, timeout_s: float = 20) -> WorkItem:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        item = queue.pull(name)
        if item is not None:
            return item
        time.sleep(0.2)
    raise AssertionError(f"nothing came from {name} in {timeout_s} s")


def test_a_chunk_is_pulled_whole_handed_back_counted_and_gone_once_acknowledged(
    settings: Settings, queue_name: tuple[str, str]
) -> None:
    topic, name = queue_name
    sent = _work("j-queue", 1)
    pubsub_v1.PublisherClient().publish(
        topic, sent.model_dump_json().encode(), traceparent="00-abc-def-01"
    ).result(timeout=30)
    queue = PubSubWorkQueue(settings.project)

    first = _pull(queue, name)
    assert first.work == sent and first.subscription == name
    assert first.delivery_attempt == 1 and first.attributes == {"traceparent": "00-abc-def-01"}
    assert queue.pull(name) is None  # held by us: no one else gets it meanwhile

    queue.extend(first, 0)  # handed back, as after a crash
    second = _pull(queue, name)
    assert second.message_id == first.message_id and second.delivery_attempt == 2

    queue.extend(second, 10)  # kept: still ours for the ack deadline
    time.sleep(2)
    assert queue.pull(name) is None
    queue.ack(second)
    time.sleep(12)  # past the deadline the extension gave: an acknowledged message stays gone
    assert queue.pull(name) is None


def test_a_body_no_worker_can_use_comes_back_without_work_to_be_acknowledged(
    settings: Settings, queue_name: tuple[str, str]
) -> None:
    topic, name = queue_name
    pubsub_v1.PublisherClient().publish(topic, b'{"job_id": 3}').result(timeout=30)
    queue = PubSubWorkQueue(settings.project)

    item = _pull(queue, name)
    assert item.work is None
    queue.ack(item)
    assert queue.pull(name) is None
