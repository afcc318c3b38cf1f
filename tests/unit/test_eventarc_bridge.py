"""The bridge turns fake-gcs-server's notification into the CloudEvent Eventarc sends."""

from __future__ import annotations

import json

import pytest

from emulators.eventarc_bridge import to_cloud_event
from tests.conftest import DATA


def test_notification_becomes_the_golden_cloud_event() -> None:
    push = json.loads((DATA / "gcs-notification-push.json").read_text())
    expected = json.loads((DATA / "gcs-finalized-cloudevent.json").read_text())
    headers, body = to_cloud_event(push)
    assert headers == expected["headers"]
    assert json.loads(body) == expected["data"]


def test_unknown_event_type_is_refused() -> None:
    push = json.loads((DATA / "gcs-notification-push.json").read_text())
    push["message"]["attributes"]["eventType"] = "OBJECT_ARCHIVE"
    with pytest.raises(KeyError):
        to_cloud_event(push)
