"""What every ``BlobStore`` promises its callers, as checks run on the in-memory fake (unit tier)
and on ``GcsBlobStore`` against fake-gcs-server (integration tier): one behaviour, two stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.domain.errors import BlobChanged, BlobExists, BlobNotFound
from common.domain.ports import BlobStore

DATA = bytes(range(256)) * 4


def check_read_range(blobs: BlobStore, base: str) -> None:
    uri = base + "range.bin"
    first = blobs.write_bytes(uri, DATA, content_type="application/octet-stream")
    assert blobs.read_range(uri, 0, 4) == DATA[:4]
    assert blobs.read_range(uri, 1000, 100) == DATA[1000:]  # cut at the end of the object
    assert blobs.read_range(uri, 10, 5, generation=first) == DATA[10:15]
    blobs.write_bytes(uri, b"replaced", content_type="application/octet-stream")
    with pytest.raises(BlobNotFound):  # that generation is gone
        blobs.read_range(uri, 0, 4, generation=first)
    with pytest.raises(BlobNotFound):
        blobs.read_range(base + "missing.bin", 0, 4)


def check_open_reader(blobs: BlobStore, base: str) -> None:
    uri = base + "reader.bin"
    blobs.write_bytes(uri, DATA, content_type="application/octet-stream")
    with blobs.open_reader(uri, chunk_size=256) as reader:
        assert reader.read(300) == DATA[:300]
        reader.seek(900)
        assert reader.read() == DATA[900:]
    with pytest.raises(BlobNotFound), blobs.open_reader(base + "missing", chunk_size=256) as r:
        r.read(1)


def check_create(blobs: BlobStore, base: str) -> None:
    uri = base + "created.json"
    generation = blobs.create(uri, b"first", content_type="application/json")
    with pytest.raises(BlobExists):
        blobs.create(uri, b"second", content_type="application/json")
    info = blobs.stat(uri)
    assert info is not None and info.generation == generation
    assert blobs.read_bytes(uri) == b"first"


def check_replace(blobs: BlobStore, base: str) -> None:
    uri = base + "claim.json"
    first = blobs.write_bytes(uri, b"v1", content_type="application/json")
    second = blobs.replace(uri, b"v2", content_type="application/json", generation=first)
    assert second != first
    with pytest.raises(BlobChanged):  # another writer replaced ``first`` already
        blobs.replace(uri, b"v3", content_type="application/json", generation=first)
    assert blobs.read_bytes(uri) == b"v2"
    assert blobs.delete(uri)
    with pytest.raises(BlobChanged):  # deleted meanwhile
        blobs.replace(uri, b"v4", content_type="application/json", generation=second)
    assert blobs.stat(uri) is None


def check_write_file(blobs: BlobStore, base: str, folder: Path) -> None:
    path = folder / "upload.wav"
    path.write_bytes(DATA)
    uri = base + "upload.wav"
    generation = blobs.write_file(uri, path, content_type="audio/wav")
    info = blobs.stat(uri)
    assert info is not None and (info.size, info.generation) == (len(DATA), generation)
    assert blobs.read_bytes(uri) == DATA
