"""The HTTP side of ``api``: route, authenticate, rate-limit, parse, call the service layer,
and map domain errors to statuses with ``{"error": {"code", "message"}}`` bodies.

Status rules: 400 a request we cannot read (bad JSON, query or header); 401 no valid token;
403 a source the caller may not use; 404 no such job (or not the caller's) or route; 405 wrong
method; 409 a result that is not ready; 413 too big (body or audio); 415 not JSON or not
audio; 422 readable JSON whose fields are wrong (unknown, wrong type, bad value, refused URL);
429 rate-limited (with Retry-After); 503 Pub/Sub or Firestore did not answer (with
Retry-After; nothing was created).
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import flask
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from common.config.settings import Limits, Settings
from common.domain.errors import (
    AudionotesError,
    BlobNotFound,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    PublishFailed,
    RateLimited,
    StoreUnavailable,
)
from common.domain.jobs import JOB_ID_PATTERN, JobOptions, JobState, utcnow
from common.edge.auth import Principal, Unauthenticated
from common.obs.logs import get_logger
from common.obs.tracing import stage
from functions.api import openapi, schemas, service
from functions.api.routes import BY_ENDPOINT, PAGE_TOKEN_PATTERN, STATE_NAMES, url_map
from functions.api.service import Api, Forbidden, NotReady, TooLarge, UnsupportedMedia

log = get_logger(__name__)

_URLS = url_map()
_JOB_ID = re.compile(f"^{JOB_ID_PATTERN}$")
_TOKEN = re.compile(f"^{PAGE_TOKEN_PATTERN}$")
_BAD_REQUEST_CODES = {
    "bad_limit",
    "bad_page_token",
    "bad_state",
    "bad_format",
    "unknown_parameter",
    "bad_idempotency_key",
}
_MEDIA_TYPES = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
M = TypeVar("M", bound=BaseModel)


class BadRequest(InvalidInput):
    code = "bad_request"


def handle(request: flask.Request, api_factory: Callable[[], Api]) -> flask.Response:
    try:
        adapter = _URLS.bind_to_environ(request.environ)
        endpoint, args = adapter.match()
    except MethodNotAllowed as exc:
        response = _error(405, "method_not_allowed", f"{request.method} is not allowed here")
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
        return response
    except NotFound:
        return _error(404, "not_found", f"no route for {request.method} {request.path}")
    if endpoint == "healthz":
        return _json(200, schemas.Health())
    try:
        api = api_factory()  # first: it configures tracing (functions.main)
    except Exception:
        log.exception("cannot build the API's services", extra={"code": "internal"})
        return _error(500, "internal", "internal error; it has been logged")
    # A job created here starts its trace here (or in the client's, when it sends one).
    with stage(
        f"api {endpoint}",
        parents=[request.headers.get("traceparent")],
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": str(request.path)},
    ) as span:
        if isinstance(args.get("job_id"), str):
            span.set_attribute("job_id", args["job_id"])
        try:
            response = _dispatch(endpoint, args, request, api)
        except AudionotesError as exc:
            response = _domain_error(exc)
        except Exception:
            log.exception("unhandled error in %s", endpoint, extra={"code": "internal"})
            response = _error(500, "internal", "internal error; it has been logged")
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(StatusCode.ERROR)
        return response


def _dispatch(
    endpoint: str, args: Mapping[str, Any], request: flask.Request, api: Api
) -> flask.Response:
    route = BY_ENDPOINT[endpoint]
    ip = client_ip(request, api.core.settings.auth.trusted_proxy_hops)
    caller: Principal | None = None
    if route.auth:
        try:
            caller = api.verifier.verify_header(request.headers.get("Authorization"))
        except Unauthenticated:
            api.limiter.hit([f"ip:{ip}"])  # failed logins count against the address too
            raise
        api.limiter.hit([f"ip:{ip}", f"sub:{caller.subject}"])
        if caller.subject == api.core.settings.auth.upload_owner:
            # That owner holds every gsutil upload: a token naming it would read them all.
            raise Forbidden(
                f"subject {caller.subject!r} is reserved for uploads into the inbox",
                code="reserved_subject",
            )
    elif route.rate_limited:
        api.limiter.hit([f"ip:{ip}"])

    if endpoint == "openapi":
        return flask.Response(_openapi(api.core.settings), 200, mimetype="application/json")
    assert caller is not None
    job_id = args.get("job_id")
    if job_id is not None and not _JOB_ID.match(job_id):
        raise JobNotFound(f"no job {job_id}")

    if endpoint == "create_job":
        _no_query(request)
        body = read_body(request, schemas.CreateJob, api.core.settings.limits.max_body_bytes)
        submission = service.Submission(
            audio_url=body.audio_url,
            options=JobOptions(**body.model_dump(exclude={"audio_url"})),
        )
        key = request.headers.get("Idempotency-Key")
        job, replayed = service.submit_job(api, caller, submission, key)
        trace.get_current_span().set_attributes({"job_id": job.job_id, "state": job.state.value})
        accepted = schemas.JobAccepted(
            **schemas.JobView.of(job).model_dump(),
            status_url=f"{public_root(request, api.core.settings.auth.trusted_proxy_hops)}"
            f"/v1/jobs/{job.job_id}",
            replayed=replayed,
        )
        response = _json(202, accepted)
        response.headers["Location"] = accepted.links.self
        return response
    if endpoint == "list_jobs":
        query = _query(request, {"state", "limit", "page_token"})
        page = service.list_jobs(
            api,
            caller,
            state=_state(query.get("state")),
            limit=_limit(query.get("limit")),
            page_token=_page_token(query.get("page_token")),
        )
        return _json(
            200,
            schemas.JobPage(
                jobs=[schemas.JobView.of(j) for j in page.jobs],
                next_page_token=page.next_page_token,
            ),
        )
    if endpoint == "get_job":
        _no_query(request)
        return _json(200, schemas.JobView.of(service.get_job(api, caller, job_id or "")))
    if endpoint == "delete_job":
        _no_query(request)
        done = service.delete_job(api, caller, job_id or "")
        return _json(
            200,
            schemas.JobDeleted(
                job_id=done.job.job_id,
                state=done.job.state,
                cancelled=done.cancelled,
                deleted_objects=done.deleted_objects,
            ),
        )
    if endpoint in ("get_transcript", "get_notes"):
        query = _query(request, {"format"})
        kind = "transcript" if endpoint == "get_transcript" else "notes"
        result = service.read_result(api, caller, job_id or "", kind, query.get("format", "json"))
        response = flask.Response(result.data, 200, content_type=_MEDIA_TYPES[result.fmt])
        response.headers["Cache-Control"] = "private, no-store"
        return response
    if endpoint == "create_upload":
        _no_query(request)
        upload = read_body(request, schemas.CreateUpload, api.core.settings.limits.max_body_bytes)
        ticket = service.create_upload(
            api,
            caller,
            filename=upload.filename,
            content_type=upload.content_type,
            size=upload.size_bytes,
        )
        return _json(
            201,
            schemas.UploadTicket(
                upload_url=ticket.upload_url,
                headers=ticket.headers,
                audio_url=ticket.audio_url,
                expires_at=utcnow() + ticket.expires_in,
            ),
        )
    raise AssertionError(f"route {endpoint} has no handler")  # pragma: no cover


@functools.lru_cache(maxsize=4)
def _openapi_for(limits_json: str, models: tuple[str, ...]) -> bytes:
    return openapi.render(Limits.model_validate_json(limits_json), list(models)).encode()


def _openapi(settings: Settings) -> bytes:
    """The document as this deployment enforces it (functions/openapi.json for the defaults)."""
    models = tuple(sorted(settings.transcription.models))
    return _openapi_for(settings.limits.model_dump_json(), models)


# --- parsing -----------------------------------------------------------------------------------


def read_body(request: flask.Request, model: type[M], max_bytes: int) -> M:
    """The JSON body as ``model``: 415 not JSON, 413 too big, 400 unparseable, 422 invalid."""
    if request.mimetype != "application/json":
        raise UnsupportedMedia(
            f"Content-Type must be application/json, not {request.mimetype or '(none)'}",
            code="unsupported_media_type",
        )
    length = request.content_length
    if length is not None and length > max_bytes:
        raise TooLarge(
            f"the body is {length} bytes; the limit is {max_bytes}", code="body_too_large"
        )
    data = request.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"the body is over the limit of {max_bytes} bytes", code="body_too_large")
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _validation_error(exc) from None


def _validation_error(exc: ValidationError) -> InvalidInput:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return BadRequest(f"the body is not valid JSON: {first['msg']}", code="malformed_json")
    codes = {
        "extra_forbidden": "unknown_field",
        "missing": "missing_field",
        "model_type": "wrong_type",
        "model_attributes_type": "wrong_type",
    }
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    kind = first["type"]
    if kind in codes:
        code = codes[kind]
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        code = "wrong_type"
    else:
        code = "invalid_value"
    return InvalidInput("; ".join(parts), code=code)


def _query(request: flask.Request, allowed: set[str]) -> dict[str, str]:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter"
        )
    repeated = [k for k in request.args if len(request.args.getlist(k)) > 1]
    if repeated:
        raise BadRequest(f"repeated query parameter: {repeated[0]}", code="unknown_parameter")
    return {k: request.args[k] for k in request.args}


def _no_query(request: flask.Request) -> None:
    _query(request, set())


def _state(value: str | None) -> JobState | None:
    if value is None:
        return None
    if value not in STATE_NAMES:
        states = ", ".join(s.value for s in JobState)
        raise BadRequest(
            f"state must be one of {states} (or in lower case)", code="bad_state"
        ) from None
    return JobState(value.upper())


def _page_token(value: str | None) -> str | None:
    """Only a token this API could have issued (base64url of a job id) reaches the store."""
    if value is None:
        return None
    try:
        job_id = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        job_id = ""
    if not _TOKEN.match(value) or not _JOB_ID.match(job_id):
        raise BadRequest("page_token is not valid", code="bad_page_token")
    return value


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise BadRequest("limit must be an integer from 1 to 100", code="bad_limit")
    return int(value)


def public_root(request: flask.Request, trusted_hops: int) -> str:
    """The URL root callers used: behind Google's front end the request reaches us as plain
    http, and the scheme they used is in X-Forwarded-Proto (the hop we trust, from the right)."""
    root = request.url_root.rstrip("/")
    if trusted_hops <= 0:
        return root
    chain = [p.strip() for p in request.headers.get("X-Forwarded-Proto", "").split(",")]
    scheme = chain[-trusted_hops] if len(chain) >= trusted_hops else ""
    if scheme in ("http", "https"):
        root = f"{scheme}://{root.split('://', 1)[1]}"
    return root


def client_ip(request: flask.Request, trusted_hops: int) -> str:
    """The address that sent the request, as the trusted proxies in front of us saw it."""
    peer = request.remote_addr or "unknown"
    if trusted_hops <= 0:
        return peer
    chain = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
    if len(chain) < trusted_hops:
        return peer
    candidate = chain[-trusted_hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


# --- responses ---------------------------------------------------------------------------------


def _json(status: int, body: BaseModel) -> flask.Response:
    response = flask.Response(body.model_dump_json(), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def framework_error(exc: HTTPException) -> flask.Response:
    """An HTTP error raised outside ``handle`` (by functions-framework's routing)."""
    status = exc.code or 500
    if status == 404:
        return _error(404, "not_found", f"no route for {flask.request.method} {flask.request.path}")
    return _error(status, "bad_request" if status < 500 else "internal", exc.description or "")


def _error(status: int, code: str, message: str) -> flask.Response:
    body = schemas.ErrorBody(error=schemas.ErrorDetail(code=code, message=message))
    return _json(status, body)


def status_of(exc: AudionotesError) -> int:
    """The HTTP status of a domain error (the domain itself knows no HTTP)."""
    if isinstance(exc, Unauthenticated):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, JobNotFound | BlobNotFound):
        return 404
    if isinstance(exc, NotReady | InvalidTransition):
        return 409
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, UnsupportedMedia):
        return 415
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, PublishFailed | StoreUnavailable):
        return 503
    if isinstance(exc, InvalidInput):
        return 400 if isinstance(exc, BadRequest) or exc.code in _BAD_REQUEST_CODES else 422
    return 500


def _domain_error(exc: AudionotesError) -> flask.Response:
    status = status_of(exc)
    if status >= 500:
        log.error("%s: %s", exc.code, exc.message, extra={"code": exc.code})
    response = _error(status, exc.code, exc.message)
    if isinstance(exc, Unauthenticated):
        challenge = 'Bearer realm="audionotes"'
        if exc.code != "missing_token":  # RFC 6750 3.1: no error code for absent credentials
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, PublishFailed | StoreUnavailable):
        response.headers["Retry-After"] = "5"
    return response
