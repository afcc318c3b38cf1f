"""An OpenAI-compatible chat completions server for the local stack, with scripted faults.

``POST /v1/chat/completions`` answers from the transcript it is sent, through the extractive
engine (``common.notes.extractive``, the same code as the chain's last fallback), and reports
the model as ``local-extractive`` so that nobody mistakes its notes for a model's. It honours
``response_format`` (``json_schema``: the answer is checked against the schema sent;
``json_object``) and returns ``usage`` estimated at four characters a token. A transcript
sent as speaker turns (``SPEAKER_1: ...`` a line) gets owners and raised_by by label, as the
extractive engine reads turns.

Admin endpoints (tests script them; none exists on the real API):

- ``POST /_faults`` ``{"faults": [...], "keys": {"sk-x": 401}}`` appends faults, consumed in
  order by the requests they match, e.g. ``{"status": 429, "retry_after": 1}``,
  ``{"status": 500, "times": 10}``, ``{"delay_s": 5}``, ``{"invalid_json": true}``,
  ``{"truncated": true}``; a fault may be limited to a ``key`` or a ``model``. ``keys`` gives
  a key a status it always gets (401: a revoked key).
- ``POST /_reset`` forgets faults, key rules and the request log.
- ``GET /_requests`` the log: one entry per chat request with key, model, task, status and
  the job's notes instructions the prompt carried (``instructions``, null when none).

    python -m emulators.openai_server --port 18092
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common.domain.jobs import NotesTemplate
from common.domain.notes import Notes, NotesBatch, NotesBatchItem
from common.notes.chunking import estimate_tokens
from common.notes.extractive import extract_notes, merge_notes
from common.notes.prompts import PromptKind, parse_instructions, parse_request

MODEL_NAME = "local-extractive"


class FaultScript:
    """Faults in order, key rules and a request log, shared by the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []
        self.key_status: dict[str, int] = {}
        self.log: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        # Requests still running when the script is reset (a slow one) are not logged after.
        self.epoch = 0

    def reset(self) -> None:
        with self._lock:
            self.epoch += 1
            self.faults.clear()
            self.key_status.clear()
            self.log.clear()

    def add(self, faults: list[dict[str, Any]], keys: Mapping[str, int]) -> None:
        with self._lock:
            for fault in faults:
                self.faults.append({**fault, "times": int(fault.get("times", 1))})
            self.key_status.update({k: int(v) for k, v in keys.items()})

    def take(self, key: str, model: str) -> dict[str, Any] | None:
        """The first fault that matches this request, used up by it."""
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.get("key") not in (None, key) or fault.get("model") not in (None, model):
                    continue
                fault["times"] -= 1
                if fault["times"] <= 0:
                    del self.faults[i]
                return dict(fault)
        return None

    def record(self, entry: dict[str, Any]) -> int:
        with self._lock:
            entry["n"] = next(self._ids)
            if entry.pop("epoch", self.epoch) == self.epoch:
                self.log.append(entry)
            return int(entry["n"])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": list(self.log),
                "pending_faults": list(self.faults),
                "keys": dict(self.key_status),
            }


def answer(messages: list[dict[str, Any]]) -> tuple[PromptKind, NotesTemplate, str]:
    """``(task, template, JSON content)`` built from what the request says."""
    try:
        task, template, payload = parse_request(messages)
    except ValueError:
        # Not one of ours: treat the last user message as the transcript.
        user = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        task, template, payload = PromptKind.NOTES, NotesTemplate.MEETING, user[-1] if user else ""
    if task is PromptKind.NOTES:
        result: Notes | NotesBatch = extract_notes(payload, template)
    elif task is PromptKind.MERGE:
        parts = [Notes.model_validate(p) for p in json.loads(payload)]
        result = merge_notes(parts, template)
    else:
        items = json.loads(payload)
        result = NotesBatch(
            items=[
                NotesBatchItem(id=str(i["id"]), notes=extract_notes(str(i["text"]), template))
                for i in items
            ]
        )
    return task, template, result.model_dump_json()


def schema_errors(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    """The JSON-schema subset OpenAI structured outputs use: $ref/$defs, anyOf, type,
    properties, required, additionalProperties=false, items, enum."""
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return schema_errors(value, target, root)
    if "anyOf" in schema:
        options = [schema_errors(value, option, root) for option in schema["anyOf"]]
        return [] if any(not errs for errs in options) else min(options, key=len)
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        checks = {
            "object": isinstance(value, dict),
            "array": isinstance(value, list),
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "null": value is None,
        }
        if not any(checks.get(k, False) for k in kinds):
            return [f"{value!r:.60} is not of type {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{value!r:.60} not in {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"missing {k!r}" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"unexpected {k!r}" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                errors += [f"{k}: {e}" for e in schema_errors(v, props[k], root)]
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += [f"[{i}]: {e}" for e in schema_errors(item, schema["items"], root)]
    return errors


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # JSON-able, or a str sent as it is
    headers: Mapping[str, str] = field(default_factory=dict)


def error_reply(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """An error shaped as the real API's."""
    return Reply(status, {"error": {"message": message, "type": kind, "code": None}}, headers or {})


class _Refusal(Exception):
    """A chat request answered with an error (logged with its status)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass(frozen=True)
class Request:
    key: str  # the bearer token, "" when none
    body: Any = None


def chat(script: FaultScript, request: Request) -> Reply:
    """A chat completion, or the error a key rule, a scripted fault or the request calls for;
    every one is logged."""
    body = request.body
    model = str(body.get("model", ""))
    entry: dict[str, Any] = {
        "key": request.key,
        "model": model,
        "at": time.time(),
        "epoch": script.epoch,
    }
    try:
        _check_key(script, request.key)
        fault = script.take(request.key, model) or {}
        entry["fault"] = fault or None
        _inject(fault)
        task, template, content = _answer_checked(body)
        instructions = _instructions_of(body)
    except _Refusal as refusal:
        entry["status"] = refusal.reply.status
        script.record(entry)
        return refusal.reply
    content, finish = _corrupt(content, fault)
    usage = _usage(body, content)
    entry.update(
        status=200,
        task=task.value,
        template=template.value,
        instructions=instructions,
        usage=usage,
    )
    n = script.record(entry)
    return Reply(200, _completion(n, content, finish, usage))


def _check_key(script: FaultScript, key: str) -> None:
    if not key:
        raise _Refusal(error_reply(401, "no API key", "invalid_request_error"))
    if key in script.key_status:
        status = script.key_status[key]
        raise _Refusal(error_reply(status, f"key rejected ({status})", "invalid_api_key"))


def _inject(fault: Mapping[str, Any]) -> None:
    """The fault's delay, then its status if it has one."""
    if fault.get("delay_s"):
        time.sleep(float(fault["delay_s"]))
    status = int(fault.get("status", 200))
    if status != 200:
        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        raise _Refusal(error_reply(status, f"scripted fault {status}", kind, headers))


def _answer_checked(body: Mapping[str, Any]) -> tuple[PromptKind, NotesTemplate, str]:
    """``answer``, refused for a request we cannot answer or an answer that does not fit the
    schema asked for."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Refusal(
            error_reply(400, "'messages' must be a non-empty list", "invalid_request_error")
        )
    try:
        task, template, content = answer(messages)
    except (ValueError, KeyError, TypeError) as exc:
        raise _Refusal(
            error_reply(400, f"cannot answer this request: {exc}", "invalid_request_error")
        ) from exc
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema", {})
        problems = schema_errors(json.loads(content), schema, schema)
        if problems:  # our own answer must fit the schema it was asked for
            raise _Refusal(
                error_reply(500, f"answer does not fit the schema: {problems[:3]}", "server")
            )
    return task, template, content


def _instructions_of(body: Mapping[str, Any]) -> str | None:
    """The job's notes instructions the request carries, for the log (tests read them)."""
    try:
        return parse_instructions(body["messages"])
    except ValueError as exc:
        raise _Refusal(
            error_reply(400, f"cannot read the instructions: {exc}", "invalid_request_error")
        ) from exc


def _corrupt(content: str, fault: Mapping[str, Any]) -> tuple[str, str]:
    """``(content, finish_reason)`` as the fault spoils them."""
    finish = "stop"
    if fault.get("invalid_json"):
        content = content[: max(len(content) // 3, 1)] + '"}, oops'
    if fault.get("truncated"):
        content, finish = content[: max(len(content) // 2, 1)], "length"
    return content, finish


def _usage(body: Mapping[str, Any], content: str) -> dict[str, int]:
    """Tokens estimated at four characters each, the response format counted as prompt."""
    prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in body["messages"])
    response_format = body.get("response_format") or {}
    if response_format:
        prompt += estimate_tokens(json.dumps(response_format))
    completion = estimate_tokens(content)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(n: int, content: str, finish: str, usage: Mapping[str, int]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-local-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_NAME,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def _add_faults(script: FaultScript, request: Request) -> Reply:
    script.add(list(request.body.get("faults", [])), dict(request.body.get("keys", {})))
    return Reply(200, script.snapshot())


def _reset(script: FaultScript, request: Request) -> Reply:
    script.reset()
    return Reply(200, {"ok": True})


Route = Callable[[FaultScript, Request], Reply]

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/healthz"): lambda script, _: Reply(200, {"ok": True}),
    ("GET", "/_requests"): lambda script, _: Reply(200, script.snapshot()),
    ("GET", "/v1/models"): lambda script, _: Reply(
        200, {"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]}
    ),
    ("POST", "/_faults"): _add_faults,
    ("POST", "/_reset"): _reset,
    ("POST", "/v1/chat/completions"): chat,
}


def route(method: str, path: str) -> Route | None:
    # The real API's paths match with a trailing slash too, as clients may spell them; the
    # admin ones only exactly.
    return ROUTES.get((method, path.rstrip("/") if path.startswith("/v1/") else path))


def make_handler(script: FaultScript) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle(Request(key=self._key()))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as exc:
                self._send(
                    error_reply(400, f"the body is not JSON: {exc}", "invalid_request_error")
                )
                return
            self._handle(Request(key=self._key(), body=body))

        def _key(self) -> str:
            return self.headers.get("Authorization", "").removeprefix("Bearer ").strip()

        def _handle(self, request: Request) -> None:
            handler = route(self.command, self.path)
            if handler is None:
                self._send(error_reply(404, f"no route {self.path}", "invalid_request_error"))
            else:
                self._send(handler(script, request))

        def _send(self, reply: Reply) -> None:
            body = reply.body
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(FaultScript()))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = serve(args.port, args.host)
    print(f"local OpenAI-compatible server on http://{args.host}:{args.port}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
