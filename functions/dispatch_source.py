"""What the dispatcher learns about a job's audio before planning: its duration and whether
FFmpeg can read it at all (so an undecodable upload fails here, before any task starts).

Cloud Storage objects are probed through a ranged reader: PyAV reads the header and the first
frame and seeks, and only those bytes travel. HTTPS sources are copied through the SSRF guard.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Protocol

from common.audio.decode import AudioInfo, probe
from common.config.settings import Settings
from common.domain.errors import BlobNotFound, InvalidInput
from common.domain.ports import BlobStore
from common.edge.fetch import fetch_audio

# Ranged reads of this size: a WAV or MP3 header and first frame fit in one.
_READ_CHUNK = 256 * 1024


class Prober(Protocol):
    def probe(self, uri: str) -> AudioInfo: ...


class SourceProber:
    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs

    def probe(self, uri: str) -> AudioInfo:
        if uri.startswith("gs://"):
            try:
                with self.blobs.open_reader(uri, chunk_size=_READ_CHUNK) as reader:
                    return probe(reader)
            except BlobNotFound as exc:
                raise InvalidInput(f"{uri} does not exist", code="source_missing") from exc
        with tempfile.TemporaryDirectory(prefix="probe-") as folder:
            fetched = fetch_audio(uri, Path(folder), settings=self.settings, blobs=self.blobs)
            return probe(fetched.path)
