"""The local OpenAI-compatible server over loopback HTTP: its routes, key rules, scripted
faults and request log."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from common.domain.jobs import NotesTemplate
from common.domain.notes import Notes
from common.notes.prompts import map_messages
from emulators.openai_server import MODEL_NAME, serve

TEXT = "Anna will send the budget by Friday. We decided to hire two engineers."


@pytest.fixture
def base_url() -> Iterator[str]:
    server = serve(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def call(
    url: str, body: Any = None, *, key: str = "sk-good", raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": map_messages(TEXT, NotesTemplate.MEETING), **extra}


def test_routes(base_url: str) -> None:
    assert call(f"{base_url}/healthz")[::2] == (200, {"ok": True})
    status, _, models = call(f"{base_url}/v1/models/")  # the real API's paths: either spelling
    assert status == 200 and models["data"][0]["id"] == MODEL_NAME
    assert call(f"{base_url}/healthz/")[0] == 404  # the admin ones: exactly
    assert call(f"{base_url}/v1/nothing")[0] == 404
    assert call(f"{base_url}/v1/models", {})[0] == 404  # GET only
    status, _, error = call(f"{base_url}/_reset", raw=b"{not json")
    assert status == 400 and error["error"]["type"] == "invalid_request_error"


def test_an_answer_fits_its_schema_and_counts_its_tokens(base_url: str) -> None:
    schema = {"name": "notes", "schema": Notes.model_json_schema()}
    body = chat_body(response_format={"type": "json_schema", "json_schema": schema})
    status, _, completion = call(f"{base_url}/v1/chat/completions/", body)
    assert status == 200 and completion["model"] == MODEL_NAME
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "stop"
    notes = Notes.model_validate_json(choice["message"]["content"])
    assert notes.action_items[0].owner == "Anna"
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_an_answer_to_turns_names_speakers_by_label_and_fits_the_schema(base_url: str) -> None:
    from common.domain.notes import NotesBatch
    from common.notes.prompts import batch_messages

    turns = "SPEAKER_1: Should we hire two engineers?\nSPEAKER_2: I'll send the budget by Friday."
    schema = {"name": "notes", "schema": Notes.model_json_schema()}
    body = {
        "model": "gpt-4o-mini",
        "messages": map_messages(turns, NotesTemplate.MEETING),
        "response_format": {"type": "json_schema", "json_schema": schema},
    }
    status, _, completion = call(f"{base_url}/v1/chat/completions", body)
    assert status == 200
    notes = Notes.model_validate_json(completion["choices"][0]["message"]["content"])
    assert [(a.owner, a.raised_by) for a in notes.action_items] == [("SPEAKER_2", "SPEAKER_2")]
    assert notes.open_questions[0].raised_by == "SPEAKER_1"

    batch_schema = {"name": "batch", "schema": NotesBatch.model_json_schema()}
    body = {
        "model": "gpt-4o-mini",
        "messages": batch_messages([("a", TEXT), ("b", turns)], NotesTemplate.MEETING),
        "response_format": {"type": "json_schema", "json_schema": batch_schema},
    }
    status, _, completion = call(f"{base_url}/v1/chat/completions", body)
    batch = NotesBatch.model_validate_json(completion["choices"][0]["message"]["content"])
    assert status == 200 and batch.items[0].notes.action_items[0].owner == "Anna"
    assert batch.items[1].notes.action_items[0].owner == "SPEAKER_2"


def test_key_rules_and_faults_are_answered_in_order_and_logged(base_url: str) -> None:
    faults = [
        {"status": 429, "retry_after": 2},
        {"truncated": True},
        {"status": 500, "key": "sk-other"},
    ]
    call(f"{base_url}/_faults", {"faults": faults, "keys": {"sk-revoked": 401}})
    chat = f"{base_url}/v1/chat/completions"
    assert call(chat, chat_body(), key="")[0] == 401
    status, _, error = call(chat, chat_body(), key="sk-revoked")
    assert status == 401 and error["error"]["type"] == "invalid_api_key"
    status, headers, error = call(chat, chat_body())
    assert status == 429 and headers["Retry-After"] == "2"
    assert error["error"]["type"] == "rate_limit_exceeded"
    status, _, completion = call(chat, chat_body())
    assert status == 200 and completion["choices"][0]["finish_reason"] == "length"
    assert call(chat, chat_body())[0] == 200  # the 500 is only for sk-other
    assert call(chat, {"model": "m", "messages": []})[0] == 400
    _, _, log = call(f"{base_url}/_requests")
    assert [r["status"] for r in log["requests"]] == [401, 401, 429, 200, 200, 400]
    assert [r["n"] for r in log["requests"]] == [1, 2, 3, 4, 5, 6]
    assert log["requests"][3]["task"] == "notes" and log["requests"][3]["usage"]
    assert [f["key"] for f in log["pending_faults"]] == ["sk-other"]
    assert log["keys"] == {"sk-revoked": 401}
    call(f"{base_url}/_reset", {})
    _, _, log = call(f"{base_url}/_requests")
    assert log == {"requests": [], "pending_faults": [], "keys": {}}
