"""A job's audio on local disk, stored once per content (keyed by sha256).

A task that runs again in the same instance, or a second chunk of the same file, finds the
audio without downloading it: Cloud Storage sources are indexed by (uri, generation), which
names one immutable object version.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from common.config.settings import Settings
from common.domain.ports import BlobStore
from common.edge.fetch import FetchedAudio, fetch_audio


class AudioCache:
    def __init__(self, root: Path, settings: Settings, blobs: BlobStore) -> None:
        self.root = root
        self.settings = settings
        self.blobs = blobs

    def get(self, uri: str, generation: str | None) -> FetchedAudio:
        index = self._index(uri, generation)
        if index is not None and index.exists():
            known = json.loads(index.read_text())
            path = self.root / "audio" / known["sha256"]
            if path.exists():
                return FetchedAudio(path=path, sha256=known["sha256"], bytes=known["bytes"])
        fetched = fetch_audio(uri, self.root / "tmp", settings=self.settings, blobs=self.blobs)
        final = self.root / "audio" / fetched.sha256
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched.path, final)  # atomic; a concurrent copy of the same bytes is equal
        if index is not None:
            index.parent.mkdir(parents=True, exist_ok=True)
            staging = index.with_suffix(f".{os.getpid()}.tmp")
            staging.write_text(json.dumps({"sha256": fetched.sha256, "bytes": fetched.bytes}))
            os.replace(staging, index)
        return FetchedAudio(path=final, sha256=fetched.sha256, bytes=fetched.bytes)

    def _index(self, uri: str, generation: str | None) -> Path | None:
        if not uri.startswith("gs://") or not generation:
            return None  # an https URL may serve other bytes next time
        key = hashlib.sha256(f"{uri}#{generation}".encode()).hexdigest()
        return self.root / "sources" / f"{key}.json"
