"""Copying a job's audio to a local file: from Cloud Storage, or over HTTPS through the SSRF
guard (``common.edge.ssrf``), never more than ``Limits.max_upload_bytes``; hashing it on the way."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.config.settings import Settings
from common.domain.errors import InvalidInput
from common.domain.ports import BlobStore
from common.edge.ssrf import UrlPolicy, fetch

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedAudio:
    path: Path
    sha256: str
    bytes: int


def fetch_audio(uri: str, folder: Path, *, settings: Settings, blobs: BlobStore) -> FetchedAudio:
    """Download ``uri`` (gs:// or https://) into a new file under ``folder``.

    Raises ``InvalidInput`` for a source that can never work (an unsupported scheme, a URL the
    guard refuses, a file over the size limit, an HTTP 4xx) and lets transient failures
    (network errors, 5xx) propagate so the caller's platform retries.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, suffix=".part")
    os.close(fd)
    path = Path(name)
    try:
        if uri.startswith("gs://"):
            blobs.download_to(uri, path)
        elif uri.startswith(("https://", "http://")):
            _download_url(uri, path, settings)
        else:
            raise InvalidInput(f"unsupported audio source {uri!r}", code="unsupported_source")
        size = path.stat().st_size
        if size > settings.limits.max_upload_bytes:
            raise InvalidInput(
                f"{uri} is {size} bytes; the limit is {settings.limits.max_upload_bytes}",
                code="too_large",
            )
        return FetchedAudio(path=path, sha256=sha256_file(path), bytes=size)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _download_url(url: str, path: Path, settings: Settings) -> None:
    limit = settings.limits.max_upload_bytes
    response = fetch(url, UrlPolicy.from_settings(settings), stream=True, timeout=(10.0, 60.0))
    with response:
        if 400 <= response.status_code < 500:
            raise InvalidInput(
                f"{url} answered HTTP {response.status_code}", code="source_unavailable"
            )
        response.raise_for_status()
        written = 0
        with path.open("wb") as out:
            for block in response.iter_content(_READ_CHUNK):
                written += len(block)
                if written > limit:
                    raise InvalidInput(f"{url} is over {limit} bytes", code="too_large")
                out.write(block)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ_CHUNK):
            digest.update(block)
    return digest.hexdigest()
