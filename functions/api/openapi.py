"""The OpenAPI 3.1 document, generated from the routes and the pydantic schemas.

``functions/openapi.json`` is this document, kept in the repository and served at
``/openapi.json``; a test fails when the two differ. Regenerate after changing the API:

    python -m functions.api.openapi > functions/openapi.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from common.config.settings import Limits, Transcription
from common.domain.blobs import BUCKET_PATTERN, OBJECT_NAME_PATTERN
from common.domain.speakers import MAX_SPEAKERS
from common.edge.ssrf import url_pattern
from functions.api import schemas
from functions.api.routes import ROUTES, Route

TITLE = "audionotes API"
VERSION = "1.0.0"

_REASONS = {
    400: "The request cannot be read (bad JSON, query parameter or header)",
    401: "No valid bearer token (missing, expired, forged, wrong algorithm)",
    403: "The caller may not use this source",
    404: "No such job, or not the caller's",
    409: "The result is not ready yet (naming speakers: no transcript yet, or one without "
    "speakers)",
    413: "The body or the audio is too large",
    415: "The body is not JSON, or the audio is not audio",
    422: "Readable JSON whose fields are wrong (unknown, wrong type, bad value, refused URL)",
    429: "Rate limit reached; see Retry-After",
    503: "Pub/Sub or Firestore did not answer; nothing was changed. Retry after Retry-After",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [schemas.ErrorBody]
    for route in ROUTES:
        for model in (route.body, route.response):
            if isinstance(model, type) and model not in found:
                found.append(model)
    return found


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.endpoint, "summary": route.summary}
    params = [
        {
            "name": p.name,
            "in": p.where,
            "required": p.required,
            "description": p.description,
            "schema": p.schema,
        }
        for p in route.params
    ]
    if route.query is not None:
        params += _query_params(route.query)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    responses: dict[str, Any] = {}
    if isinstance(route.response, dict):
        content = {
            media: {"schema": {"type": "string"}, "example": description}
            for media, description in route.response.items()
        }
        if "application/json" in content:
            content["application/json"] = {"schema": {"type": "object"}}
        responses[str(route.ok)] = {"description": "OK", "content": content}
    elif route.response is not None:
        responses[str(route.ok)] = {
            "description": "OK",
            "content": {"application/json": {"schema": _ref(route.response)}},
        }
    for status in route.errors:
        entry: dict[str, Any] = {
            "description": _REASONS[status],
            "content": {"application/json": {"schema": _ref(schemas.ErrorBody)}},
        }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}
            }
        responses[str(status)] = entry
    op["responses"] = responses
    op["security"] = [{"bearer": []}] if route.auth else []
    return op


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query model's fields as parameters: each limit is stated once, in the model."""
    schema = model.model_json_schema()
    params = []
    for name, prop in schema["properties"].items():
        # An optional parameter is absent, never null.
        value = next(s for s in prop.get("anyOf", [prop]) if s.get("type") != "null")
        value = {k: v for k, v in value.items() if k not in ("title", "description", "default")}
        if prop.get("default") is not None:
            value["default"] = prop["default"]
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "description": prop["description"],
                "schema": value,
            }
        )
    return params


def document(limits: Limits | None = None, models: list[str] | None = None) -> dict[str, Any]:
    """The document for a deployment's limits and models; the committed file is the default
    ``Limits`` and ``Transcription.models``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    components: dict[str, Any] = {}
    for model in _models():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = schema
    _state_limits(components, limits or Limits(), models or sorted(Transcription().models))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Audio in, transcripts and structured notes out. Every call but "
            "/healthz and /openapi.json needs `Authorization: Bearer <JWT>`; jobs belong to "
            'the token\'s subject. Errors are `{"error": {"code", "message"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (HS256 shared secret, or RS256 via JWKS)",
                }
            },
        },
    }


def _state_limits(components: dict[str, Any], limits: Limits, models: list[str]) -> None:
    """What depends on the deployment (which URL schemes it takes, how big an upload), and
    the patterns the server checks with codes of their own (common/domain/blobs.py,
    common/edge/ssrf.py)."""
    url = url_pattern(allow_http=limits.allow_http_urls)
    create = components["CreateJob"]["properties"]
    create["audio_url"]["pattern"] = f"^(gs://{BUCKET_PATTERN}/{OBJECT_NAME_PATTERN}|{url})$"
    _nullable_string(create["webhook_url"])["pattern"] = f"^{url}$"
    _nullable_string(create["model"])["enum"] = models
    # What SpeakerSpec.parse takes, exactly: a JSON number is a count too, and no count or
    # range bound over MAX_SPEAKERS, nor a range that runs backwards, matches.
    speakers = _nullable_string(create["speakers"])
    speakers["pattern"] = _speakers_pattern()
    create["speakers"]["anyOf"].insert(
        1, {"type": "integer", "minimum": 1, "maximum": MAX_SPEAKERS}
    )
    size = components["CreateUpload"]["properties"]["size_bytes"]
    _nullable_string(size, kind="integer")["maximum"] = limits.max_upload_bytes


def _speakers_pattern() -> str:
    def at_least(low: int) -> str:
        """A regex of the numbers low..MAX_SPEAKERS."""
        return "|".join(str(n) for n in range(MAX_SPEAKERS, low - 1, -1))

    ranges = "|".join(f"{low}-(?:{at_least(low)})" for low in range(1, MAX_SPEAKERS + 1))
    return f"^(?:auto|none|{ranges}|{at_least(1)})$"


def _nullable_string(prop: dict[str, Any], kind: str = "string") -> dict[str, Any]:
    return next(s for s in prop["anyOf"] if s.get("type") == kind)


def render(limits: Limits | None = None, models: list[str] | None = None) -> str:
    return json.dumps(document(limits, models), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
