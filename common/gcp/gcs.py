"""Cloud Storage behind the ``BlobStore`` port.

Signed URLs go through an injectable ``Signer``: a service-account key where one exists (the
local stack generates one), IAM ``signBlob`` with the runtime's own identity on GCP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Protocol

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]
from google.oauth2 import service_account

from common.domain.blobs import BlobInfo, BlobRef
from common.domain.errors import BlobChanged, BlobExists, BlobForbidden, BlobNotFound
from common.gcp import clients


class Signer(Protocol):
    def sign(
        self, blob: storage.Blob, *, method: str, expires: timedelta, content_type: str | None
    ) -> str: ...


class KeySigner:
    """V4 signatures from a service-account JSON key file."""

    def __init__(self, key_file: str | Path) -> None:
        self._credentials = service_account.Credentials.from_service_account_file(str(key_file))

    def sign(
        self, blob: storage.Blob, *, method: str, expires: timedelta, content_type: str | None
    ) -> str:
        url: str = blob.generate_signed_url(
            version="v4",
            expiration=expires,
            method=method,
            content_type=content_type,
            credentials=self._credentials,
        )
        return url


class IamSigner:
    """V4 signatures through IAM signBlob, for runtimes without a key (Cloud Functions/Run).

    The runtime service account needs ``roles/iam.serviceAccountTokenCreator`` on itself.
    """

    def __init__(self) -> None:
        self._credentials, _ = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )

    def sign(
        self, blob: storage.Blob, *, method: str, expires: timedelta, content_type: str | None
    ) -> str:
        creds = self._credentials
        if not creds.valid:
            creds.refresh(google.auth.transport.requests.Request())
        url: str = blob.generate_signed_url(
            version="v4",
            expiration=expires,
            method=method,
            content_type=content_type,
            service_account_email=creds.service_account_email,  # type: ignore[attr-defined]
            access_token=creds.token,
        )
        return url


class GcsBlobStore:
    def __init__(self, project: str, *, signer: Signer | None = None) -> None:
        self.project = project
        self._signer = signer

    @property
    def client(self) -> storage.Client:
        return clients.storage_client(self.project)

    def _blob(self, uri: str, generation: str | None = None) -> storage.Blob:
        ref = BlobRef.parse(uri)
        return self.client.bucket(ref.bucket).blob(
            ref.name, generation=int(generation) if generation else None
        )

    def read_bytes(self, uri: str) -> bytes:
        with _domain_errors(uri):
            data: bytes = self._blob(uri).download_as_bytes()
        return data

    def read_range(
        self, uri: str, start: int, length: int, *, generation: str | None = None
    ) -> bytes:
        with _domain_errors(uri):
            # Raw: the stored bytes, not a gzip-encoded object's decompressed ones.
            data: bytes = self._blob(uri, generation).download_as_bytes(
                start=start, end=start + length - 1, raw_download=True
            )
        return data

    @contextlib.contextmanager
    def open_reader(self, uri: str, *, chunk_size: int) -> Iterator[IO[bytes]]:
        # The reader fetches on read, so errors surface in the caller's body, here too.
        with _domain_errors(uri), self._blob(uri).open("rb", chunk_size=chunk_size) as reader:
            yield reader

    def write_bytes(self, uri: str, data: bytes, *, content_type: str) -> str:
        return self._upload(uri, data, content_type=content_type)

    def write_file(self, uri: str, path: Path, *, content_type: str) -> str:
        blob = self._blob(uri)
        with _domain_errors(uri):
            blob.upload_from_filename(str(path), content_type=content_type)
        return str(blob.generation)

    def create(self, uri: str, data: bytes, *, content_type: str) -> str:
        try:
            return self._upload(uri, data, content_type=content_type, if_generation_match=0)
        except gexc.PreconditionFailed as exc:
            raise BlobExists(f"{uri} already exists") from exc

    def replace(self, uri: str, data: bytes, *, content_type: str, generation: str) -> str:
        try:
            return self._upload(
                uri, data, content_type=content_type, if_generation_match=int(generation)
            )
        except gexc.PreconditionFailed as exc:
            raise BlobChanged(f"{uri} is no longer generation {generation}") from exc

    def _upload(
        self, uri: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> str:
        blob = self._blob(uri)
        with _domain_errors(uri):
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match
            )
        return str(blob.generation)

    def download_to(self, uri: str, path: Path) -> BlobInfo:
        blob = self._blob(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _domain_errors(uri):
            blob.download_to_filename(str(path))
        return _info(blob)

    def stat(self, uri: str) -> BlobInfo | None:
        ref = BlobRef.parse(uri)
        with _domain_errors(uri):
            blob = self.client.bucket(ref.bucket).get_blob(ref.name)
        return None if blob is None else _info(blob)

    def list(self, prefix_uri: str) -> Iterator[str]:
        ref = BlobRef.parse(prefix_uri)
        with _domain_errors(prefix_uri):
            for blob in self.client.list_blobs(ref.bucket, prefix=ref.name):
                yield f"gs://{ref.bucket}/{blob.name}"

    def delete(self, uri: str) -> bool:
        try:
            with _domain_errors(uri):
                self._blob(uri).delete()
        except BlobNotFound:
            return False
        return True

    def delete_prefix(self, prefix_uri: str) -> int:
        return sum(self.delete(uri) for uri in list(self.list(prefix_uri)))

    def signed_url(
        self, uri: str, *, method: str, expires: timedelta, content_type: str | None = None
    ) -> str:
        if self._signer is None:
            raise RuntimeError("this BlobStore has no Signer configured")
        return self._signer.sign(
            self._blob(uri), method=method, expires=expires, content_type=content_type
        )


@contextlib.contextmanager
def _domain_errors(uri: str) -> Iterator[None]:
    try:
        yield
    except gexc.NotFound as exc:
        raise BlobNotFound(f"{uri} does not exist") from exc
    except gexc.Forbidden as exc:
        raise BlobForbidden(f"the service may not access {uri}") from exc


def _info(blob: storage.Blob) -> BlobInfo:
    return BlobInfo(
        ref=BlobRef(blob.bucket.name, blob.name),
        size=int(blob.size or 0),
        content_type=blob.content_type,
        generation=str(blob.generation),
        md5_hash=blob.md5_hash,
        metadata=dict(blob.metadata or {}),
    )
