"""The notes model server (run_jobs/llm) without a model: request checks, the grammar, the
bounded queue and the service's answers, with a scripted stand-in for llama.cpp. The real
model answers in tests/integration/test_local_llm.py."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from common.config.settings import LocalLlm
from common.domain.notes import Notes
from run_jobs.llm.admission import Admission, Busy
from run_jobs.llm.grammar import BadSchema, grammar_for
from run_jobs.llm.model import Generation
from run_jobs.llm.schemas import ChatRequest
from run_jobs.llm.server import ChatService

NOTES_SCHEMA = Notes.model_json_schema()


class ScriptedModel:
    """What ChatService needs of LocalModel; one token per character."""

    model_id = "qwen2.5-coder-0.5b-instruct"
    load_s = 0.1
    threads = 2

    def __init__(self, answer: str = '{"ok": true}', n_ctx: int = 512, hold_s: float = 0) -> None:
        self.answer = answer
        self.n_ctx = n_ctx
        self.hold_s = hold_s
        self.calls: list[dict[str, Any]] = []

    def prompt(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"<{m['role']}>{m['content']}" for m in messages)

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def generate(self, tokens: list[int], **kwargs: Any) -> Generation:
        self.calls.append({"tokens": len(tokens), **kwargs})
        time.sleep(self.hold_s)
        return Generation(self.answer, len(tokens), len(self.answer), "stop", 0.01, 0.02)


def service(model: ScriptedModel | None = None, **settings: Any) -> ChatService:
    return ChatService(model or ScriptedModel(), LocalLlm(**settings))  # type: ignore[arg-type]


def chat(**body: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hello"}], **body}


# the request ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        (chat(stream=True), "stream"),
        (chat(n=2), "n"),
        (chat(tools=[{"type": "function"}]), "tools"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(response_format={"type": "json_schema"}), "response_format"),
        ("not an object", "body"),
    ],
)
def test_bad_requests_get_400_naming_the_field(body: Any, where: str) -> None:
    model = ScriptedModel()
    reply = service(model).chat(body)
    assert reply.status == 400
    assert reply.body["error"]["type"] == "invalid_request_error"
    assert reply.body["error"]["param"] == where or reply.body["error"]["message"].startswith(where)
    assert model.calls == []  # refused before the model


def test_developer_role_and_text_parts_are_accepted() -> None:
    request = ChatRequest.model_validate(
        {"messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}]}]}
    )
    assert request.messages[0].text == "a"
    reply = service().chat(
        {"messages": [{"role": "developer", "content": [{"type": "text", "text": "hi"}]}]}
    )
    assert reply.status == 200


def test_an_unknown_model_is_404_and_its_own_name_is_served() -> None:
    reply = service().chat(chat(model="gpt-4o"))
    assert reply.status == 404 and reply.body["error"]["code"] == "model_not_found"
    assert service().chat(chat(model=ScriptedModel.model_id)).status == 200


def test_a_prompt_the_context_cannot_hold_is_400_context_length_exceeded() -> None:
    model = ScriptedModel(n_ctx=64)
    reply = service(model).chat(chat(messages=[{"role": "user", "content": "x" * 100}]))
    assert reply.status == 400
    assert reply.body["error"]["code"] == "context_length_exceeded"
    assert model.calls == []


def test_the_completion_limit_is_clamped_to_what_the_context_has_left() -> None:
    model = ScriptedModel(n_ctx=100)
    assert service(model).chat(chat(max_tokens=1000)).status == 200
    prompt_tokens = model.calls[0]["tokens"]
    assert model.calls[0]["max_tokens"] == 100 - prompt_tokens
    service(model, default_max_tokens=20).chat(chat())
    assert model.calls[1]["max_tokens"] == 20


def test_an_uncompilable_schema_is_400_invalid_json_schema() -> None:
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "#/nowhere"}}}
    reply = service().chat(chat(response_format=bad))
    assert reply.status == 400
    assert reply.body["error"]["code"] == "invalid_json_schema"


# the answer -------------------------------------------------------------------------------
def test_the_answer_is_a_chat_completion_with_usage_and_compute_seconds() -> None:
    reply = service().chat(chat())
    assert reply.status == 200
    body = reply.body
    assert body["object"] == "chat.completion" and body["model"] == ScriptedModel.model_id
    assert body["choices"][0]["message"]["content"] == '{"ok": true}'
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["completion_tokens"] == len('{"ok": true}')
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["compute_s"] == pytest.approx(0.03)
    json.dumps(body)  # serialisable as it is sent


def test_json_schema_and_json_object_ask_the_model_for_a_grammar_and_text_for_none() -> None:
    model = ScriptedModel()
    svc = service(model, max_array_items=5)
    fmt = {"type": "json_schema", "json_schema": {"name": "notes", "schema": NOTES_SCHEMA}}
    svc.chat(chat(response_format=fmt))
    svc.chat(chat(response_format={"type": "json_object"}))
    svc.chat(chat())
    grammars = [c["grammar"] for c in model.calls]
    assert grammars[0] == grammar_for("json_schema", NOTES_SCHEMA, max_items=5)
    assert grammars[1] == grammar_for("json_object")
    assert grammars[2] is None


def test_models_and_health_name_the_one_model() -> None:
    svc = service()
    assert [m["id"] for m in svc.models().body["data"]] == [ScriptedModel.model_id]
    health = svc.health().body
    assert health["status"] == "ok" and health["model"] == ScriptedModel.model_id
    assert health["queue"]["depth"] == LocalLlm().queue_depth


# the grammar -------------------------------------------------------------------------------
def test_the_notes_schema_compiles_with_bounded_arrays_and_compact_space() -> None:
    grammar = grammar_for("json_schema", NOTES_SCHEMA, max_items=3)
    assert grammar is not None
    assert 'space ::= " "?' in grammar
    assert "action-items" in grammar  # every property has its rule
    # at most 3 items: the item rule appears with a bounded repetition, never unbounded
    unbounded = grammar_for("json_schema", NOTES_SCHEMA, max_items=1000)
    assert grammar != unbounded


def test_schemas_that_cannot_compile_are_bad_schemas() -> None:
    with pytest.raises(BadSchema):
        grammar_for("json_schema", {"$ref": "#/$defs/Missing"})
    with pytest.raises(BadSchema):
        grammar_for("json_schema", None)


# the queue --------------------------------------------------------------------------------
def test_a_full_queue_refuses_with_a_retry_after_from_the_mean_request_time() -> None:
    admission = Admission(depth=1)
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with admission.slot():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    waiter = threading.Thread(target=hold)
    waiter.start()
    deadline = time.monotonic() + 5
    while admission.snapshot()["inside"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(Busy) as busy, admission.slot():
        pass
    assert busy.value.retry_after_s >= 1
    release.set()
    holder.join(5)
    waiter.join(5)
    snap = admission.snapshot()
    assert snap["served"] == 2 and snap["refused"] == 1 and snap["inside"] == 0


def test_a_request_that_waits_too_long_is_refused_and_the_order_skips_it() -> None:
    admission = Admission(depth=2, max_wait_s=0.2)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with admission.slot():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    with pytest.raises(Busy), admission.slot():
        pass
    release.set()
    holder.join(5)
    with admission.slot() as waited:  # the abandoned ticket does not block the next one
        assert waited < 1


def test_the_service_answers_429_with_retry_after_when_its_queue_is_full() -> None:
    model = ScriptedModel(hold_s=0.5)
    svc = service(model, queue_depth=0)
    first = threading.Thread(target=svc.chat, args=(chat(),))
    first.start()
    deadline = time.monotonic() + 5
    while svc.admission.snapshot()["inside"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    reply = svc.chat(chat())
    first.join(5)
    assert reply.status == 429
    assert reply.body["error"]["code"] == "busy"
    assert dict(reply.headers)["Retry-After"].isdigit()
