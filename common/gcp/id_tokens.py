"""Google ID tokens for calling a private Cloud Run service (the notes model server) as the
process's service account: minted from the metadata server (or a key file's account), cached
until shortly before they expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import google.auth.transport.requests
from google.oauth2 import id_token

# Google's ID tokens live an hour; mint a new one well before the old one runs out.
TOKEN_TTL_S = 3600
REFRESH_BEFORE_S = 300


def audience_of(base_url: str) -> str:
    """Cloud Run accepts a token whose audience is the service's URL: scheme and host."""
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


class IdTokenSource:
    """A callable returning a valid ID token for ``audience``; thread-safe."""

    def __init__(
        self,
        audience: str,
        *,
        fetch: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audience = audience
        self._fetch = fetch or _fetch_id_token
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires - REFRESH_BEFORE_S:
                self._token = self._fetch(self.audience)
                self._expires = now + TOKEN_TTL_S
            return self._token


def _fetch_id_token(audience: str) -> str:
    token = id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    return str(token)
