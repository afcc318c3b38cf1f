"""Eventarc, locally: Cloud Storage notifications in, binary-mode CloudEvents out.

fake-gcs-server publishes each finalized object to the inbox-events topic; a push
subscription delivers it here; we POST the CloudEvent that Eventarc would send
(``google.cloud.storage.object.v1.finalized``, the object resource as data) to ``on_upload``
and answer with its status, so a failing function is redelivered as on GCP.

    python -m emulators.eventarc_bridge --port 18090 --target http://127.0.0.1:18101
"""

from __future__ import annotations

import argparse
import base64
import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

_EVENT_TYPES = {
    "OBJECT_FINALIZE": "google.cloud.storage.object.v1.finalized",
    "OBJECT_DELETE": "google.cloud.storage.object.v1.deleted",
    "OBJECT_METADATA_UPDATE": "google.cloud.storage.object.v1.metadataUpdated",
}


def to_cloud_event(push: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent for one Pub/Sub push payload."""
    message = push["message"]
    attributes = message.get("attributes") or {}
    event_type = _EVENT_TYPES[attributes["eventType"]]
    data = base64.b64decode(message.get("data") or "")
    obj = json.loads(data)
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": str(message.get("messageId") or message.get("message_id")),
        "ce-type": event_type,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{obj['bucket']}",
        "ce-subject": header_value(f"objects/{obj['name']}"),
        "ce-time": attributes.get("eventTime") or obj.get("updated", ""),
    }
    return headers, data


def header_value(text: str) -> str:
    """A CloudEvents attribute as an HTTP header (binary mode, as Eventarc sends it): space,
    '"', '%' and everything outside printable ASCII percent-encoded as UTF-8."""
    return "".join(
        c if 0x21 <= ord(c) <= 0x7E and c not in '"%' else quote(c, safe="") for c in text
    )


def make_handler(target: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # readiness
            self._answer(200, b"ok")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                headers, body = to_cloud_event(json.loads(self.rfile.read(length)))
            except (KeyError, ValueError) as exc:
                # Not a storage notification we understand: acknowledge so it is not retried.
                self._answer(204, f"ignored: {exc}".encode())
                return
            request = urllib.request.Request(target, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=600) as response:
                    self._answer(response.status, response.read())
            except urllib.error.HTTPError as err:
                self._answer(err.code, err.read())
            except OSError as exc:
                self._answer(503, f"on_upload unreachable: {exc}".encode())

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            print(f"bridge: {format % args}", flush=True)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="URL of the on_upload function")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.target))
    server.serve_forever()


if __name__ == "__main__":
    main()
