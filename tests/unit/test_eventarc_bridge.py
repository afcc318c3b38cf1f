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


def test_a_non_latin1_object_name_is_percent_encoded_in_the_subject_as_eventarc_does() -> None:
    import base64

    obj = {"bucket": "in-bkt", "name": "uploads/☃ meeting.wav", "generation": "1"}
    push = {
        "message": {
            "data": base64.b64encode(json.dumps(obj).encode()).decode(),
            "attributes": {"eventType": "OBJECT_FINALIZE"},
            "messageId": "7",
        }
    }
    headers, body = to_cloud_event(push)
    assert headers["ce-subject"] == "objects/uploads/%E2%98%83%20meeting.wav"
    for value in headers.values():
        value.encode("latin-1")  # every header can go on the wire
    assert json.loads(body)["name"] == "uploads/☃ meeting.wav"  # the data stays literal
