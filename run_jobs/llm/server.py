"""The OpenAI-compatible HTTP server: ``/v1/chat/completions``, ``/v1/models``, ``/health``.

Each request is checked before it reaches the model (a bad body, an unknown model, a schema
that does not compile, a prompt the context cannot hold: 400 with a message), then waits its
turn in the bounded queue (full: 429 + Retry-After) and is generated greedily under the
grammar its ``response_format`` asks for. Nothing a client sends makes the process fail: an
unexpected error is a 500 with its message, and the server goes on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.config.settings import LocalLlm as LocalLlmSettings
from common.obs.logs import get_logger
from run_jobs.llm import model as model_module
from run_jobs.llm.admission import Admission, Busy
from run_jobs.llm.grammar import BadSchema, grammar_for
from run_jobs.llm.model import Generation, LocalModel, PromptTooLong
from run_jobs.llm.schemas import ChatRequest, completion, error

log = get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


def _invalid(message: str, code: str, param: str | None = None) -> Reply:
    return Reply(400, error(message, "invalid_request_error", code, param))


class ChatService:
    """What the HTTP handler calls; no HTTP in here, so tests drive it directly."""

    def __init__(self, model: LocalModel, settings: LocalLlmSettings) -> None:
        self.model = model
        self.settings = settings
        self.admission = Admission(settings.queue_depth, max_wait_s=settings.max_wait_s)
        self.started = time.time()

    def models(self) -> Reply:
        entry = {"id": self.model.model_id, "object": "model", "created": int(self.started)}
        return Reply(200, {"object": "list", "data": [{**entry, "owned_by": "audionotes"}]})

    def health(self) -> Reply:
        return Reply(
            200,
            {
                "status": "ok",
                "model": self.model.model_id,
                "model_loads": model_module.loads,
                "load_s": round(self.model.load_s, 2),
                "threads": self.model.threads,
                "n_ctx": self.model.n_ctx,
                "queue": self.admission.snapshot(),
                "peak_rss_mb": _peak_rss_mb(),
            },
        )

    def chat(self, raw: Any) -> Reply:
        try:
            request = ChatRequest.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _invalid(f"{where}: {first['msg']}", "invalid_request", where)
        if request.model and request.model != self.model.model_id:
            return Reply(
                404,
                error(
                    f"model {request.model!r} is not served here; this server serves "
                    f"{self.model.model_id!r}",
                    "invalid_request_error",
                    "model_not_found",
                    "model",
                ),
            )
        fmt = request.response_format
        try:
            grammar = grammar_for(
                fmt.type if fmt else "text",
                fmt.json_schema.json_schema if fmt and fmt.json_schema else None,
                max_items=self.settings.max_array_items,
            )
        except BadSchema as exc:
            return _invalid(str(exc), "invalid_json_schema", "response_format")
        prompt = self.model.prompt(
            [{"role": _role(m.role), "content": m.text} for m in request.messages]
        )
        tokens = self.model.tokenize(prompt)
        limit = request.completion_limit or self.settings.default_max_tokens
        limit = min(limit, max(self.model.n_ctx - len(tokens), 0))
        if limit < 16:
            return _invalid(
                str(PromptTooLong(len(tokens), self.model.n_ctx)),
                "context_length_exceeded",
                "messages",
            )
        try:
            with self.admission.slot():
                generation = self.model.generate(
                    tokens,
                    max_tokens=limit,
                    grammar=grammar,
                    temperature=request.temperature,
                    seed=request.seed or 0,
                    repeat_penalty=self.settings.repeat_penalty,
                    stop=request.stops,
                )
        except Busy as busy:
            return Reply(
                429,
                error(f"{busy}; retry after {busy.retry_after_s}s", "rate_limit_exceeded", "busy"),
                (("Retry-After", str(busy.retry_after_s)),),
            )
        except PromptTooLong as exc:
            return _invalid(str(exc), "context_length_exceeded", "messages")
        log.info(
            "chat: %d prompt (%d cached) + %d completion tokens in %.1f + %.1f s (%s)",
            generation.prompt_tokens,
            generation.cached_tokens,
            generation.completion_tokens,
            generation.prefill_s,
            generation.decode_s,
            generation.finish_reason,
        )
        return Reply(200, _completion(self.model.model_id, generation))


def _completion(model_id: str, generation: Generation) -> dict[str, Any]:
    return completion(
        model_id,
        generation.text,
        generation.finish_reason,
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.prefill_s + generation.decode_s,
        generation.cached_tokens,
    )


def _role(role: str) -> str:
    # OpenAI's newer name for the system role; chat templates know only "system".
    return "system" if role == "developer" else role


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def handler_for(service: ChatService) -> type[BaseHTTPRequestHandler]:
    max_body = service.settings.max_body_bytes

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("/health", "/healthz", ""):
                self._send(service.health())
            elif path == "/v1/models":
                self._send(service.models())
            else:
                self._send(Reply(404, error(f"no route GET {path}", "invalid_request_error")))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/v1/chat/completions":
                self._send(Reply(404, error(f"no route POST {path}", "invalid_request_error")))
                return
            length = self._length()
            if length is None:
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                self._send(_invalid(f"the body is not JSON: {exc}", "invalid_json"))
                return
            try:
                self._send(service.chat(body))
            except Exception as exc:  # a bug must answer, not take the server down
                log.exception("chat request failed")
                self._send(Reply(500, error(f"internal error: {exc}", "server_error")))

        def _length(self) -> int | None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self._send(_invalid("bad Content-Length", "invalid_request"))
                return None
            if length > max_body:
                self.close_connection = True
                # A client that sends its body before reading the answer would otherwise
                # see a broken pipe, not the 413; a body far beyond the limit is not read.
                if length <= 8 * max_body:
                    left = length
                    while left > 0 and (piece := self.rfile.read(min(left, 1 << 16))):
                        left -= len(piece)
                self._send(
                    Reply(
                        413,
                        error(
                            f"the body is {length} bytes; at most {max_body}",
                            "invalid_request_error",
                            "request_too_large",
                        ),
                    )
                )
                return None
            return length

        def _send(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


def serve(service: ChatService, host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), handler_for(service))
    server.daemon_threads = True
    print(f"serving {service.model.model_id} on http://{host}:{port}/v1", file=sys.stderr)
    return server
