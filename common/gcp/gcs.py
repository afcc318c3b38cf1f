"""Cloud Storage behind the ``BlobStore`` port.

Signed URLs go through an injectable ``Signer``: a service-account key where one exists (the
local stack generates one), IAM ``signBlob`` with the runtime's own identity on GCP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]
from google.oauth2 import service_account

from common.domain.blobs import BlobInfo, BlobRef
from common.domain.errors import BlobNotFound


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
    def __init__(
        self,
        project: str,
        *,
        client: storage.Client | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.project = project
        self._client = client
        self._signer = signer

    @property
    def client(self) -> storage.Client:
        if self._client is None:
            self._client = storage.Client(project=self.project)
        return self._client

    def _blob(self, uri: str) -> storage.Blob:
        ref = BlobRef.parse(uri)
        return self.client.bucket(ref.bucket).blob(ref.name)

    def read_bytes(self, uri: str) -> bytes:
        try:
            data: bytes = self._blob(uri).download_as_bytes()
        except gexc.NotFound as exc:
            raise BlobNotFound(f"{uri} does not exist") from exc
        return data

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> str:
        """Write and return the new generation. ``if_generation_match=0`` writes only if absent
        (raises ``google.api_core.exceptions.PreconditionFailed`` otherwise)."""
        blob = self._blob(uri)
        blob.upload_from_string(
            data, content_type=content_type, if_generation_match=if_generation_match
        )
        return str(blob.generation)

    def download_to(self, uri: str, path: Path) -> BlobInfo:
        blob = self._blob(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            blob.download_to_filename(str(path))
        except gexc.NotFound as exc:
            raise BlobNotFound(f"{uri} does not exist") from exc
        return _info(blob)

    def stat(self, uri: str) -> BlobInfo | None:
        ref = BlobRef.parse(uri)
        blob = self.client.bucket(ref.bucket).get_blob(ref.name)
        return None if blob is None else _info(blob)

    def list(self, prefix_uri: str) -> Iterator[str]:
        ref = BlobRef.parse(prefix_uri)
        for blob in self.client.list_blobs(ref.bucket, prefix=ref.name):
            yield f"gs://{ref.bucket}/{blob.name}"

    def delete(self, uri: str) -> bool:
        try:
            self._blob(uri).delete()
        except gexc.NotFound:
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


def _info(blob: storage.Blob) -> BlobInfo:
    return BlobInfo(
        ref=BlobRef(blob.bucket.name, blob.name),
        size=int(blob.size or 0),
        content_type=blob.content_type,
        generation=str(blob.generation),
        md5_hash=blob.md5_hash,
        metadata=dict(blob.metadata or {}),
    )
