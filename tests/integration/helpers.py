"""Small tools for integration tests: waiting, tapping topics, reading jobs."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from common.config.settings import Settings
from common.domain.jobs import upload_job_id

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout_s: float = 30, what: str = "it") -> T:
    """Poll until ``check`` returns something truthy; fail with ``what`` after the deadline."""
    end = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


def inbox_job_id(settings: Settings, name: str) -> str:
    """The job id on_upload gives ``inbox_uri + name``, from its generation (gsutil stat)."""
    uri = f"{settings.inbox_uri}{name}"
    stat = subprocess.run(["gsutil", "stat", uri], capture_output=True, text=True, check=True)
    generation = stat.stdout.split("Generation:")[1].split()[0]
    return upload_job_id(
        settings.buckets.inbox, f"{settings.buckets.inbox_prefix}{name}", generation
    )


def gsutil_upload(settings: Settings, path: Path, name: str) -> str:
    """``gsutil cp path inbox_uri + name``, as a user would; the job id it becomes."""
    subprocess.run(["gsutil", "-q", "cp", str(path), f"{settings.inbox_uri}{name}"], check=True)
    return inbox_job_id(settings, name)


class Tap:
    """A pull subscription of the test's own on a topic, to count what was published."""

    def __init__(self, project: str, topic: str, name: str) -> None:
        self.subscriber = pubsub_v1.SubscriberClient()
        self.path = self.subscriber.subscription_path(project, name)
        self.subscriber.create_subscription(
            name=self.path, topic=f"projects/{project}/topics/{topic}"
        )

    def drain(self, *, settle_s: float = 1.5) -> list[pubsub_v1.types.PubsubMessage]:
        """Everything published so far: pulls until a pull finds nothing new for settle_s."""
        messages = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            response = self.subscriber.pull(
                subscription=self.path, max_messages=100, timeout=5, return_immediately=True
            )
            if response.received_messages:
                messages += [m.message for m in response.received_messages]
                self.subscriber.acknowledge(
                    subscription=self.path,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
                quiet_since = time.monotonic()
            else:
                time.sleep(0.1)
        return messages

    def delete(self) -> None:
        with contextlib.suppress(gexc.NotFound):
            self.subscriber.delete_subscription(subscription=self.path)
