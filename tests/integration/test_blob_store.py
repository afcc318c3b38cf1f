"""GcsBlobStore against fake-gcs-server: the port's checks (``tests/blob_contract.py``, also run
on the in-memory fake) and a V4 signed upload URL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests

from common.domain.errors import BlobExists, BlobNotFound
from common.gcp.gcs import GcsBlobStore, KeySigner
from tests import blob_contract


@pytest.fixture
def blobs(clean_stack) -> GcsBlobStore:  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    assert s.signing_key_file
    return GcsBlobStore(s.project, signer=KeySigner(s.signing_key_file))


def test_write_read_stat_list_delete(blobs, clean_stack, unique):
    base = f"gs://{clean_stack.local.settings.buckets.results}/t-{unique}/"
    blobs.write_bytes(base + "a.json", b'{"a":1}', content_type="application/json")
    blobs.write_bytes(base + "b.txt", b"bee", content_type="text/plain")
    assert blobs.read_bytes(base + "a.json") == b'{"a":1}'
    info = blobs.stat(base + "b.txt")
    assert info is not None and (info.size, info.content_type) == (3, "text/plain")
    assert sorted(blobs.list(base)) == [base + "a.json", base + "b.txt"]
    with pytest.raises(BlobExists):
        blobs.create(base + "a.json", b"x", content_type="text/plain")
    assert blobs.delete_prefix(base) == 2
    assert blobs.stat(base + "a.json") is None
    with pytest.raises(BlobNotFound):
        blobs.read_bytes(base + "a.json")


def test_signed_url_upload(blobs, clean_stack, unique):
    uri = f"gs://{clean_stack.local.settings.buckets.results}/signed-{unique}.bin"
    url = blobs.signed_url(
        uri, method="PUT", expires=timedelta(minutes=5), content_type="application/octet-stream"
    )
    assert "X-Goog-Signature=" in url
    response = requests.put(
        url, data=b"payload", headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert blobs.read_bytes(uri) == b"payload"


@pytest.mark.parametrize(
    "check",
    [
        blob_contract.check_read_range,
        blob_contract.check_open_reader,
        blob_contract.check_create,
        blob_contract.check_replace,
    ],
)
def test_keeps_the_port(blobs, clean_stack, unique, check: Any):
    check(blobs, f"gs://{clean_stack.local.settings.buckets.results}/port-{unique}/")


def test_writes_a_file(blobs, clean_stack, unique, tmp_path):
    base = f"gs://{clean_stack.local.settings.buckets.results}/file-{unique}/"
    blob_contract.check_write_file(blobs, base, tmp_path)
    info = blobs.stat(base + "upload.wav")
    assert info is not None and info.content_type == "audio/wav"
