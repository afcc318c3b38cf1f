"""``Stack.up`` walks its steps in dependency order, each group ready before what needs it,
without starting anything here (the real stack: tests/integration/test_stack_lifecycle)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators import stack as stack_module
from emulators.config import LocalStack, Ports, defined_functions
from emulators.processes import Service
from emulators.stack import Prerequisites, Stack


def test_up_starts_each_group_then_what_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        stack_module,
        "check_prerequisites",
        lambda: Prerequisites("java", Path("fs.jar"), Path("ps.jar"), Path("fake-gcs")),
    )
    stack = Stack(LocalStack(state_dir=tmp_path, ports=Ports(31000)))
    done: list[object] = []

    def start(services: list[Service], deadline_s: float) -> None:
        done.append([s.name for s in services])
        done.extend(s.ports for s in services)

    monkeypatch.setattr(stack, "_start", start)
    for step in ("ensure_pubsub", "ensure_buckets", "_restart_if_code_changed", "ensure_run_jobs"):
        monkeypatch.setattr(stack, step, lambda step=step: done.append(step))
    stack.up()

    ports = stack.local.ports
    functions = defined_functions()
    assert [d for d in done if not isinstance(d, tuple)] == [
        ["firestore", "pubsub"],
        "ensure_pubsub",
        ["gcs"],
        "ensure_buckets",
        "_restart_if_code_changed",
        ["eventarc-bridge", "openai", "llm", "cloud-run", *[f"function-{f}" for f in functions]],
        "ensure_run_jobs",
    ]
    assert [d for d in done if isinstance(d, tuple)] == [
        (ports.firestore,),
        (ports.pubsub,),
        (ports.gcs_https, ports.gcs_http),
        (ports.bridge,),
        (ports.openai,),
        (ports.llm,),
        (ports.cloud_run,),
        *[(ports.function(f),) for f in functions],
    ]
    assert stack.local.boto_config.exists() and stack.local.signing_key.exists()


def test_notes_come_from_the_model_server_unless_a_key_or_the_double_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AUDIONOTES_LLM__OPENAI_API_KEYS", "AUDIONOTES_LLM__FALLBACK_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    ports = Ports(31000)
    server = f"http://127.0.0.1:{ports.llm}/v1"

    demo = LocalStack(state_dir=tmp_path, ports=ports).llm_environment()
    assert "AUDIONOTES_LLM__OPENAI_API_KEYS" not in demo  # no OpenAI link at all
    assert demo["AUDIONOTES_LLM__FALLBACK_BASE_URL"] == server
    assert demo["AUDIONOTES_LLM__FALLBACK_MODEL"] == demo["AUDIONOTES_LOCAL_LLM__MODEL"]
    assert demo["AUDIONOTES_LLM__FALLBACK_STYLE"] == "json_schema"

    tests = LocalStack(state_dir=tmp_path, ports=ports, notes_from="double").llm_environment()
    assert tests["AUDIONOTES_LLM__OPENAI_BASE_URL"] == f"http://127.0.0.1:{ports.openai}/v1"
    assert "AUDIONOTES_LLM__FALLBACK_BASE_URL" not in tests

    monkeypatch.setenv("AUDIONOTES_LLM__OPENAI_API_KEYS", '["sk-real"]')
    real = LocalStack(state_dir=tmp_path, ports=ports, notes_from="double").llm_environment()
    assert "AUDIONOTES_LLM__OPENAI_API_KEYS" not in real  # the real key stands
    assert real["AUDIONOTES_LLM__FALLBACK_BASE_URL"] == server

    with pytest.raises(ValueError, match="unknown local LLM"):
        LocalStack(state_dir=tmp_path, ports=ports, llm_model="gpt-5")
