"""The ``BlobStore`` port on the in-memory fake (the same checks run on ``GcsBlobStore`` in the
integration tier), and the callers that now rely on it: the probe's streaming reader and the
API's refusal of a source the service may not read."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any, cast

import pytest

from common.domain.errors import BlobForbidden, InvalidInput
from common.edge.auth import Principal
from functions.api.service import ApiServices, Forbidden, resolve_source, upload_folder
from functions.bootstrap import Services
from functions.dispatch_source import SourceProber
from tests import blob_contract
from tests.fakes import MemoryBlobStore, MemoryJobStore, RecordingPublisher, settings

BASE = "gs://test-results/t/"


@pytest.mark.parametrize(
    "check",
    [
        blob_contract.check_read_range,
        blob_contract.check_open_reader,
        blob_contract.check_create,
        blob_contract.check_replace,
    ],
)
def test_memory_store_keeps_the_port(check: Any) -> None:
    check(MemoryBlobStore(), BASE)


def test_memory_store_writes_a_file(tmp_path: Path) -> None:
    blob_contract.check_write_file(MemoryBlobStore(), BASE, tmp_path)


def test_memory_store_refuses_forbidden_objects() -> None:
    blobs = MemoryBlobStore()
    blobs.write_bytes(BASE + "a", b"x", content_type="text/plain")
    blobs.forbidden.add(BASE + "a")
    for call in (blobs.stat, blobs.read_bytes, blobs.delete):
        with pytest.raises(BlobForbidden):
            call(BASE + "a")
    with pytest.raises(BlobForbidden):
        blobs.create(BASE + "a", b"y", content_type="text/plain")


def _wav(seconds: float, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(seconds * rate))
    return buf.getvalue()


def test_probe_streams_the_object_through_the_store() -> None:
    blobs = MemoryBlobStore()
    uri = "gs://test-inbox/uploads/a.wav"
    blobs.write_bytes(uri, _wav(2.0), content_type="audio/wav")
    prober = SourceProber(settings(), blobs)
    assert prober.probe(uri).duration_s == pytest.approx(2.0)
    with pytest.raises(InvalidInput) as missing:
        prober.probe("gs://test-inbox/uploads/gone.wav")
    assert missing.value.code == "source_missing"


def test_a_source_the_service_may_not_read_is_forbidden() -> None:
    s = settings()
    blobs = MemoryBlobStore()
    core = Services(settings=s, jobs=MemoryJobStore(), publisher=RecordingPublisher(), blobs=blobs)
    api = ApiServices(
        core=core,
        verifier=cast(Any, None),
        limiter=cast(Any, None),
        policy=cast(Any, None),
        canceller=cast(Any, None),
    )
    caller = Principal(subject="alice", issuer=None, algorithm="HS256")
    uri = f"gs://{s.buckets.inbox}/{upload_folder(api, caller.subject)}a.wav"
    blobs.write_bytes(uri, _wav(1.0), content_type="audio/wav")
    blobs.forbidden.add(uri)
    with pytest.raises(Forbidden) as refused:
        resolve_source(api, caller, uri)
    assert refused.value.code == "source_forbidden"
    blobs.forbidden.clear()
    assert blobs.stat(uri) is not None  # unread, so not deleted as a refused upload would be
