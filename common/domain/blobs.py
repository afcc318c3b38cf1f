"""Objects addressed by ``gs://bucket/name`` URIs, and the object names the service accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.domain.errors import InvalidInput

BUCKET_PATTERN = r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"
_GS_URI = re.compile(rf"^gs://({BUCKET_PATTERN})/(.+)\Z", re.DOTALL)
BAD_OBJECT_NAME = "bad_object_name"
# An object name the service accepts: segments that are not empty, '.' or '..', and no
# backslash, '%' (so no decoding can make one) or control character; a trailing '/' (a prefix)
# is allowed. Written without lookaheads so that it is also the OpenAPI document's pattern
# (functions/api/openapi.py) and a generator can produce it.
_CHAR = r"[^/\\%\x00-\x1f\x7f]"
_SEGMENT = rf"(?:[^/\\%\x00-\x1f\x7f.]{_CHAR}*|\.[^/\\%\x00-\x1f\x7f.]{_CHAR}*|\.\.{_CHAR}+)"
OBJECT_NAME_PATTERN = rf"{_SEGMENT}(?:/{_SEGMENT})*/?"
_OBJECT_NAME = re.compile(f"^{OBJECT_NAME_PATTERN}\\Z")


def check_object_name(name: str) -> None:
    """Refuse names that a path-like reader would resolve elsewhere.

    GCS names are literal, but ownership is decided by name prefix, and stores that map names
    to paths (fake-gcs-server, gcsfuse, any later copy to disk) normalise ``a/../b`` to ``b``.
    """
    if not _OBJECT_NAME.match(name):
        raise InvalidInput(
            f"object name {name!r} has an empty, '.' or '..' segment, a backslash, a control "
            "character or a '%'; name objects without them",
            code=BAD_OBJECT_NAME,
        )


@dataclass(frozen=True)
class BlobRef:
    bucket: str
    name: str

    @classmethod
    def parse(cls, uri: str) -> BlobRef:
        match = _GS_URI.match(uri)
        if not match:
            raise InvalidInput(f"not a gs://bucket/object URI: {uri!r}", code="bad_uri")
        check_object_name(match.group(2))
        return cls(match.group(1), match.group(2))

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


@dataclass(frozen=True)
class BlobInfo:
    ref: BlobRef
    size: int
    content_type: str | None
    generation: str
    md5_hash: str | None
    metadata: dict[str, str] = field(default_factory=dict)
