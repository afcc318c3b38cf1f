"""One Google client of each kind per process: every adapter and composition root takes its
clients from here, so a process opens one connection pool per service, not one per store.

Each is made on first use (never at import) and kept per project and endpoint. The emulator
variables (``FIRESTORE_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``, ``PUBSUB_EMULATOR_HOST``) are
read by Google's libraries when a client is made; they are part of the key, so a process that
points them elsewhere gets a client for the new endpoint.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, run_v2, storage  # type: ignore[attr-defined]

T = TypeVar("T")

_made: dict[Hashable, Any] = {}
_lock = threading.Lock()


def _once(key: Hashable, make: Callable[[], T]) -> T:
    with _lock:  # handlers run in threads: two first calls must not make two clients
        if key not in _made:
            _made[key] = make()
        client: T = _made[key]
        return client


def firestore_client(project: str) -> firestore.Client:
    key = ("firestore", project, os.environ.get("FIRESTORE_EMULATOR_HOST"))
    return _once(key, lambda: firestore.Client(project=project))


def storage_client(project: str) -> storage.Client:
    key = ("storage", project, os.environ.get("STORAGE_EMULATOR_HOST"))
    return _once(key, lambda: storage.Client(project=project))


def storage_origin() -> str:
    """The origin signed URLs point to: the emulator's locally, Cloud Storage's otherwise."""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if not emulator:
        return "https://storage.googleapis.com"
    parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
    return f"{parts.scheme}://{parts.netloc}"


def publisher_client() -> pubsub_v1.PublisherClient:
    # One message per handler call: the batch latency (library default 10 ms) is the only
    # delay, and the publisher waits for the future anyway.
    return _once(
        ("pubsub", os.environ.get("PUBSUB_EMULATOR_HOST")),
        lambda: pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.01)
        ),
    )


def subscriber_client() -> pubsub_v1.SubscriberClient:
    return _once(
        ("pubsub-subscriber", os.environ.get("PUBSUB_EMULATOR_HOST")), pubsub_v1.SubscriberClient
    )


def run_jobs_client(endpoint: str | None) -> run_v2.JobsClient:
    return _once(("run_jobs", endpoint), lambda: run_v2.JobsClient(**_run_args(endpoint)))


def run_executions_client(endpoint: str | None) -> run_v2.ExecutionsClient:
    return _once(
        ("run_executions", endpoint), lambda: run_v2.ExecutionsClient(**_run_args(endpoint))
    )


def _run_args(endpoint: str | None) -> dict[str, Any]:
    if not endpoint:
        return {}  # the public endpoint, gRPC, application default credentials
    # An endpoint override (a regional or private endpoint, or a stand-in) speaks REST.
    return {
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=endpoint),
        "credentials": AnonymousCredentials(),
    }
