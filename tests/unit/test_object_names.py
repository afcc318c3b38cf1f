"""Object names that a path-like store would resolve elsewhere are refused everywhere a name
is accepted or derived (``BlobRef.parse``), and on the upload path (a FAILED job)."""

from __future__ import annotations

import pytest

from common.domain.blobs import BAD_OBJECT_NAME, BlobRef, check_object_name
from common.domain.errors import InvalidInput

ACCEPTED = [
    "uploads/a.wav",
    "uploads/☃.wav",  # non-Latin-1 is fine
    "uploads/a..b.wav",
    "uploads/.hidden/x.wav",
    "jobs/a-1/",  # a prefix
]
REFUSED = [
    "api-uploads/bob/../../uploads/secret/x.wav",
    "uploads/../escape.wav",
    "uploads/./a.wav",
    "uploads//a.wav",
    "/uploads/a.wav",
    "uploads/..",
    "uploads/%2e%2e/a.wav",
    "uploads/%2E%2E/a.wav",
    "uploads/%252e%252e/a.wav",  # encoded twice
    "uploads/..%2fa.wav",
    "uploads/a%2Fb.wav",  # a hidden separator
    "uploads\\..\\a.wav",
    "uploads/a\nb.wav",
    "uploads/a\x00.wav",
    "uploads/100%.wav",  # no '%' at all: no decoding of the name can change it
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_literal_names_are_accepted(name: str) -> None:
    check_object_name(name)
    assert BlobRef.parse(f"gs://in-bkt/{name}").name == name


@pytest.mark.parametrize("name", REFUSED)
def test_traversal_and_its_encoded_forms_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        BlobRef.parse(f"gs://in-bkt/{name}")
    assert refused.value.code == BAD_OBJECT_NAME


def test_an_upload_with_such_a_name_becomes_a_failed_job_and_publishes_nothing() -> None:
    from typing import Any, cast

    from common.domain.jobs import JobState
    from functions.bootstrap import Services
    from functions.uploads import StorageObject, UploadOutcome, handle_upload
    from tests.fakes import MemoryBlobStore, MemoryJobStore, settings

    s = settings()
    jobs = MemoryJobStore()
    svc = Services(settings=s, jobs=jobs, publisher=cast(Any, None), blobs=MemoryBlobStore())
    obj = StorageObject(
        bucket=s.buckets.inbox, name="uploads/x/../../secret.wav", generation="1", size=10
    )
    assert handle_upload(obj, svc) is UploadOutcome.REJECTED
    [job] = jobs.jobs.values()
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == BAD_OBJECT_NAME
