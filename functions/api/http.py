"""The HTTP side of ``api``, a Flask app: route, authenticate, rate-limit, parse, call the
service layer, and map domain errors to statuses with ``{"error": {"code", "message"}}`` bodies.

Status rules: 400 a request we cannot read (bad JSON, query or header); 401 no valid token;
403 a source the caller may not use; 404 no such job (or not the caller's) or route; 405 wrong
method; 409 a result that is not ready (or speakers to name in a transcript without any); 413
too big (body or audio); 415 not JSON or not audio; 422 readable JSON whose fields are wrong
(unknown, wrong type, bad value, refused URL); 429 rate-limited (with Retry-After); 503 Pub/Sub
or Firestore did not answer (with Retry-After; nothing was created).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, get_args

import flask
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, ValidationError
from pydantic_core.core_schema import ErrorType
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

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
from common.domain.jobs import JobOptions, utcnow
from common.domain.subtitles import SubtitleOptions
from common.domain.transcripts import MEDIA_TYPES
from common.edge.auth import Principal, Unauthenticated
from common.obs.logs import get_logger
from common.obs.tracing import stage
from functions.api import openapi, page, schemas, service
from functions.api.routes import ROUTES, Route
from functions.api.service import (
    ApiServices,
    Forbidden,
    NoSpeakers,
    ResultNotReady,
    TooLarge,
    UnsupportedMedia,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = get_logger(__name__)

# Raised as plain InvalidInput by the service layer and the job store, still unreadable requests.
_BAD_REQUEST_CODES = {
    "bad_limit",
    "bad_page_token",
    "bad_state",
    "bad_format",
    "inapplicable_parameter",
    "unknown_parameter",
    "bad_idempotency_key",
}
# pydantic's own error types; any other is a PydanticCustomError raised with a domain code
# (bad_speakers, unknown_speaker, ...), which is the answer's code as it is.
_PYDANTIC_ERROR_TYPES = frozenset(get_args(ErrorType))
M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., flask.Response]
_HANDLERS: dict[str, Handler] = {}


class BadRequest(InvalidInput):
    code = "bad_request"


def create_app(
    settings: Settings,
    api_factory: Callable[[], ApiServices],
    *,
    storage_origin: str = "https://storage.googleapis.com",
) -> flask.Flask:
    """The API as a Flask app: a view per route, JSON errors for everything it answers, and
    the web page (functions.api.page) at ``/``.

    ``api_factory`` builds the services on the first request that needs them (not /healthz);
    ``storage_origin`` is where signed URLs point (the page's Content-Security-Policy).
    """
    app = flask.Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_body_bytes
    app.url_map.strict_slashes = False
    hops = settings.auth.trusted_proxy_hops
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        _plausible_forwarding(app.wsgi_app), x_for=hops, x_proto=hops, x_host=0
    )
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(AudionotesError, _domain_error)
    app.register_error_handler(Exception, _internal_error)
    for route in ROUTES:
        view = _health if route.endpoint == "healthz" else _view(route, api_factory)
        app.add_url_rule(
            route.rule,
            route.endpoint,
            view,
            methods=[route.method],
            provide_automatic_options=False,  # OPTIONS is 405 like any other unrouted method
        )
    page.register(app, storage_origin=storage_origin)
    return app


def _plausible_forwarding(app: WSGIApplication) -> WSGIApplication:
    """ProxyFix takes the trusted hop's values as they are: one that is not an IP address or
    not http(s) is ignored, and the request keeps what it came with."""

    def checked(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        orig = environ.get("werkzeug.proxy_fix.orig")
        if orig:
            try:
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(environ.get("REMOTE_ADDR", "")))
            except ValueError:
                environ["REMOTE_ADDR"] = orig["REMOTE_ADDR"]
            if environ["wsgi.url_scheme"] not in ("http", "https"):
                environ["wsgi.url_scheme"] = orig["wsgi.url_scheme"]
        return app(environ, start_response)

    return checked


def _health() -> flask.Response:
    return _json(200, schemas.Health())


def _view(route: Route, api_factory: Callable[[], ApiServices]) -> Handler:
    handler = _HANDLERS[route.endpoint]

    def view(**args: str) -> flask.Response:
        api = api_factory()  # first: it configures tracing (functions.main)
        request = flask.request
        # A job created here starts its trace here (or in the client's, when it sends one).
        with stage(
            f"api {route.endpoint}",
            parents=[request.headers.get("traceparent")],
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method, "http.route": request.path},
        ) as span:
            if "job_id" in args:
                span.set_attribute("job_id", args["job_id"])
            try:
                caller = _admit(route, api, request)
                if "job_id" in args and not schemas.JOB_ID.match(args["job_id"]):
                    raise JobNotFound(f"no job {args['job_id']}")
                query = None if route.query is None else parse_query(route.query, request.args)
                response = handler(api, caller, query, **args)
            except Exception as exc:  # answered by the app's error handlers, inside the span
                app = flask.current_app
                response = app.make_response(app.handle_user_exception(exc))
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(StatusCode.ERROR)
            return response

    return view


def _admit(route: Route, api: ApiServices, request: flask.Request) -> Principal | None:
    """Authenticate and rate-limit: by the client's address and, once known, its subject."""
    ip = request.remote_addr or "unknown"  # the trusted proxy's view of it (ProxyFix)
    if not route.auth:
        if route.rate_limited:
            api.limiter.hit([f"ip:{ip}"])
        return None
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
    return caller


def _handles(endpoint: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[endpoint] = handler
        return handler

    return register


# --- views: (api, caller, query model, path arguments) -> response -----------------------------


@_handles("openapi")
def _openapi_document(api: ApiServices, _caller: None, _query: None) -> flask.Response:
    return flask.Response(_openapi(api.core.settings), 200, mimetype="application/json")


@_handles("list_models")
def _list_models(api: ApiServices, _caller: Principal, _query: schemas.NoQuery) -> flask.Response:
    return _json(200, schemas.ModelList.of(api.core.settings.transcription))


@_handles("create_job")
def _create_job(api: ApiServices, caller: Principal, _query: schemas.NoQuery) -> flask.Response:
    request = flask.request
    body = read_body(request, schemas.CreateJob)
    submission = service.Submission(
        audio_url=body.audio_url,
        options=JobOptions(**body.model_dump(exclude={"audio_url"})),
    )
    key = request.headers.get("Idempotency-Key")
    job, replayed = service.submit_job(api, caller, submission, key)
    trace.get_current_span().set_attributes({"job_id": job.job_id, "state": job.state.value})
    accepted = schemas.JobAccepted(
        **schemas.JobView.of(job).model_dump(),
        status_url=f"{request.url_root.rstrip('/')}/v1/jobs/{job.job_id}",  # scheme: ProxyFix
        replayed=replayed,
    )
    response = _json(202, accepted)
    response.headers["Location"] = accepted.links.self
    return response


@_handles("list_jobs")
def _list_jobs(api: ApiServices, caller: Principal, query: schemas.ListJobsQuery) -> flask.Response:
    page = service.list_jobs(
        api, caller, state=query.state, limit=query.limit, page_token=query.page_token
    )
    return _json(
        200,
        schemas.JobPage(
            jobs=[schemas.JobView.of(j) for j in page.jobs],
            next_page_token=page.next_page_token,
        ),
    )


@_handles("get_job")
def _get_job(
    api: ApiServices, caller: Principal, _query: schemas.NoQuery, job_id: str
) -> flask.Response:
    return _json(200, schemas.JobView.of(service.get_job(api, caller, job_id)))


@_handles("delete_job")
def _delete_job(
    api: ApiServices, caller: Principal, _query: schemas.NoQuery, job_id: str
) -> flask.Response:
    done = service.delete_job(api, caller, job_id)
    return _json(
        200,
        schemas.JobDeleted(
            job_id=done.job.job_id,
            state=done.job.state,
            cancelled=done.cancelled,
            deleted_objects=done.deleted_objects,
        ),
    )


@_handles("get_transcript")
def _get_transcript(
    api: ApiServices, caller: Principal, query: schemas.TranscriptQuery, job_id: str
) -> flask.Response:
    return _result(api, caller, job_id, "transcript", query.format, query.subtitles())


@_handles("get_notes")
def _get_notes(
    api: ApiServices, caller: Principal, query: schemas.NotesQuery, job_id: str
) -> flask.Response:
    return _result(api, caller, job_id, "notes", query.format)


def _result(
    api: ApiServices,
    caller: Principal,
    job_id: str,
    kind: str,
    fmt: str,
    subtitles: SubtitleOptions | None = None,
) -> flask.Response:
    result = service.read_result(api, caller, job_id, kind, fmt, subtitles)
    response = flask.Response(result.data, 200, content_type=MEDIA_TYPES[result.fmt])
    response.headers["Cache-Control"] = "private, no-store"
    return response


@_handles("get_audio")
def _get_audio(
    api: ApiServices, caller: Principal, _query: schemas.NoQuery, job_id: str
) -> flask.Response:
    audio = service.audio_link(api, caller, job_id)
    expires = utcnow() + audio.expires_in if audio.expires_in else None
    return _json(
        200,
        schemas.AudioLink(
            url=audio.url, signed=audio.signed, expires_at=expires, content_type=audio.content_type
        ),
    )


@_handles("name_speakers")
def _name_speakers(
    api: ApiServices, caller: Principal, _query: schemas.NoQuery, job_id: str
) -> flask.Response:
    body = read_body(flask.request, schemas.SpeakerNames)
    named = service.name_speakers(api, caller, job_id, body.root)
    return _json(
        200,
        schemas.SpeakersView(
            job_id=named.job.job_id,
            speakers=named.speakers,
            speaker_names=named.job.speaker_names,
        ),
    )


@_handles("create_upload")
def _create_upload(api: ApiServices, caller: Principal, _query: schemas.NoQuery) -> flask.Response:
    upload = read_body(flask.request, schemas.CreateUpload)
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


@functools.lru_cache(maxsize=4)
def _openapi_for(limits_json: str, models: tuple[str, ...]) -> bytes:
    return openapi.render(Limits.model_validate_json(limits_json), list(models)).encode()


def _openapi(settings: Settings) -> bytes:
    """The document as this deployment enforces it (functions/openapi.json for the defaults)."""
    models = tuple(sorted(settings.transcription.models))
    return _openapi_for(settings.limits.model_dump_json(), models)


# --- parsing -----------------------------------------------------------------------------------


def read_body(request: flask.Request, model: type[M]) -> M:
    """The JSON body as ``model``: 415 not JSON, 413 over MAX_CONTENT_LENGTH (raised by
    werkzeug as it reads), 400 unparseable, 422 invalid."""
    if request.mimetype != "application/json":
        raise UnsupportedMedia(
            f"Content-Type must be application/json, not {request.mimetype or '(none)'}",
            code="unsupported_media_type",
        )
    try:
        return model.model_validate_json(request.get_data(cache=False))
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
    elif kind not in _PYDANTIC_ERROR_TYPES:
        code = kind
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        code = "wrong_type"
    else:
        code = "invalid_value"
    return InvalidInput("; ".join(parts), code=code)


def parse_query(model: type[M], args: MultiDict[str, str]) -> M:
    """The query string as ``model``: 400 with unknown_parameter, or bad_<name> for a value."""
    repeated = [k for k in args if len(args.getlist(k)) > 1]
    if repeated:
        raise BadRequest(f"repeated query parameter: {repeated[0]}", code="unknown_parameter")
    try:
        return model.model_validate(args.to_dict())
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter"
        )
    name = str(errors[0]["loc"][0])
    raise BadRequest(f"{name}: {errors[0]['msg']}", code=f"bad_{name}")


# --- responses ---------------------------------------------------------------------------------


def _json(status: int, body: BaseModel) -> flask.Response:
    response = flask.Response(body.model_dump_json(), status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def http_error(exc: HTTPException) -> flask.Response:
    """The errors werkzeug raises (no route, wrong method, body too large), for this app and
    for functions-framework's own routing (functions.main)."""
    request = flask.request
    if isinstance(exc, NotFound):
        return _error(404, "not_found", f"no route for {request.method} {request.path}")
    if isinstance(exc, MethodNotAllowed):
        response = _error(405, "method_not_allowed", f"{request.method} is not allowed here")
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or []))
        return response
    if isinstance(exc, RequestEntityTooLarge):
        limit, length = request.max_content_length, request.content_length
        if length is not None and limit is not None and length > limit:
            message = f"the body is {length} bytes; the limit is {limit}"
        else:  # sent without Content-Length (chunked): werkzeug stopped reading at the limit
            message = f"the body is over the limit of {limit} bytes"
        return _error(413, "body_too_large", message)
    status = exc.code or 500
    return _error(status, "bad_request" if status < 500 else "internal", exc.description or "")


def _internal_error(exc: Exception) -> flask.Response:
    log.error(
        "unhandled error in %s", flask.request.endpoint, exc_info=exc, extra={"code": "internal"}
    )
    return _error(500, "internal", "internal error; it has been logged")


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
    if isinstance(exc, ResultNotReady | NoSpeakers | InvalidTransition):
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
