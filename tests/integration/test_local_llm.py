"""The notes model server (run_jobs/llm) as the stack runs it: the real 0.5B model on
llama.cpp, reached by the official openai client and by the notes chain (its retry loop, the
Firestore breaker and spend ledger). The 0.5B is the fastest model, not a good one: these
tests hold the contract (valid JSON of the schema, usage and compute time, errors, the queue),
not the notes' quality (bench/notes_quality.py measures that)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest
from google.cloud import firestore

from common.config.settings import FallbackStyle, Settings
from common.domain.jobs import NotesTemplate
from common.domain.local_llms import QWEN_0_5B
from common.domain.notes import Notes
from common.domain.transcripts import Transcript
from common.gcp.ledger_store import FirestoreSpendLedger
from common.gcp.notes_engine import build_engine
from common.notes.turns import notes_pieces
from tests.conftest import DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(stack: Any) -> str:
    return str(stack.local.url(stack.local.ports.llm))


def _post(url: str, body: bytes, timeout: float = 120) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _health(server: str) -> dict[str, Any]:
    with urllib.request.urlopen(server + "/health", timeout=10) as response:
        return dict(json.loads(response.read()))


def test_it_serves_one_model_loaded_once(server: str) -> None:
    health = _health(server)
    assert health["model"] == QWEN_0_5B and health["model_loads"] == 1
    assert health["peak_rss_mb"] > 300  # the weights are in memory
    client = openai.OpenAI(api_key="none", base_url=server + "/v1", max_retries=0)
    assert [m.id for m in client.models.list()] == [QWEN_0_5B]


def test_a_json_schema_request_answers_json_of_that_schema(server: str) -> None:
    client = openai.OpenAI(api_key="none", base_url=server + "/v1", max_retries=0, timeout=300)
    response = client.chat.completions.parse(
        model=QWEN_0_5B,
        messages=[
            {"role": "system", "content": "Write meeting notes as JSON."},
            {"role": "user", "content": "SPEAKER_1: I will send the budget to Anna by Friday."},
        ],
        response_format=Notes,
        max_completion_tokens=400,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, Notes)  # the grammar held it to the schema
    usage = response.usage
    assert usage is not None and usage.prompt_tokens > 20 and usage.completion_tokens > 10
    assert (usage.model_extra or {}).get("compute_s", 0) > 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"messages": []}', 400, None),
        (b"{not json", 400, "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', 400, None),
        (
            json.dumps(
                {
                    "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/Nowhere"}},
                    },
                }
            ).encode(),
            400,
            "invalid_json_schema",
        ),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "budget meeting notes " * 4000}]}
            ).encode(),
            400,
            "context_length_exceeded",
        ),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}', 404, None),
        (b'{"messages": [{"role": "user", "content": "' + b"x" * 2_100_000 + b'"}]}', 413, None),
    ],
)
def test_bad_requests_get_a_clear_error_and_the_server_goes_on(
    server: str, body: bytes, status: int, code: str | None
) -> None:
    got, _, answer = _post(server + "/v1/chat/completions", body)
    assert got == status, answer
    assert answer["error"]["message"]
    if code is not None:
        assert answer["error"]["code"] == code
    health = _health(server)
    assert health["status"] == "ok" and health["model_loads"] == 1


def test_a_full_queue_answers_429_with_retry_after(server: str) -> None:
    depth = int(_health(server)["queue"]["depth"])
    body = json.dumps(
        {"messages": [{"role": "user", "content": "Count from one to fifty."}], "max_tokens": 24}
    ).encode()
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def ask() -> None:
        status, headers, _ = _post(server + "/v1/chat/completions", body, timeout=600)
        with lock:
            results.append((status, headers))

    threads = [threading.Thread(target=ask) for _ in range(depth + 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    statuses = sorted(s for s, _ in results)
    assert len(results) == depth + 3
    assert statuses.count(200) >= depth + 1  # one generating, the queue waiting
    refused = [h for s, h in results if s == 429]
    assert refused, statuses
    assert all(int(h["Retry-After"]) >= 1 for h in refused)
    assert set(statuses) <= {200, 429}


def test_the_notes_chain_falls_back_to_it_and_charges_its_compute_time(
    stack: Any, unique: str
) -> None:
    """No OpenAI key: the chain's only model is the local one, priced by compute seconds."""
    base: Settings = stack.local.settings
    llm = base.llm.model_copy(
        update={
            "openai_api_keys": [],
            "fallback_base_url": stack.local.url(stack.local.ports.llm) + "/v1",
            "fallback_model": QWEN_0_5B,
            "fallback_style": FallbackStyle.JSON_SCHEMA,
            "fallback_request_timeout_s": 600,
            "fallback_chunk_tokens": 3000,
            "max_output_tokens": 1200,
        }
    )
    settings = base.model_copy(
        update={
            "llm": type(base.llm).model_validate(llm.model_dump()),
            "collections": base.collections.model_copy(
                update={"breakers": f"breakers-{unique}", "spend": f"spend-{unique}"}
            ),
        }
    )
    client = firestore.Client(project=settings.project)
    engine = build_engine(settings, lambda: client)
    transcript = Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())
    notes, prov = engine.generate("job-local-llm", notes_pieces(transcript), NotesTemplate.MEETING)
    assert prov.provider == "fallback" and prov.model == QWEN_0_5B, prov.attempts
    assert [a.outcome for a in prov.attempts] == ["ok"]
    assert notes.title and notes.summary
    assert prov.usage.compute_s > 0
    price = settings.llm.prices["qwen2.5-coder"].compute_usd_per_hour
    assert prov.cost_usd == pytest.approx(prov.usage.compute_s * price / 3600, rel=1e-3)
    spent = FirestoreSpendLedger(lambda: client, settings.collections.spend).spent_usd()
    assert spent == pytest.approx(prov.cost_usd, rel=1e-3)


def test_a_shared_prefix_is_not_read_again_and_changes_no_answer(server: str) -> None:
    client = openai.OpenAI(api_key="none", base_url=server + "/v1", max_retries=0, timeout=300)
    system = {"role": "system", "content": "Answer in one short sentence. " * 20}

    def ask(question: str) -> tuple[str, int]:
        response = client.chat.completions.create(
            model=QWEN_0_5B,
            messages=[system, {"role": "user", "content": question}],
            max_tokens=24,
        )
        usage = response.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        return str(response.choices[0].message.content), int(
            usage.prompt_tokens_details.cached_tokens or 0
        )

    first, _ = ask("What colour is the sky?")
    other, cached = ask("What is two plus two?")
    assert cached > 100  # the system prompt, kept from the request before
    again, cached_again = ask("What colour is the sky?")
    assert cached_again > 100
    assert again == first  # greedy decoding over the kept prefix gives the same answer
    assert other != first
