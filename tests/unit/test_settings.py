from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.config.settings import Settings, get_settings

BASE = {
    "AUDIONOTES_PROJECT": "my-project-1",
    "AUDIONOTES_BUCKETS__INBOX": "my-inbox",
    "AUDIONOTES_BUCKETS__RESULTS": "my-results",
}


def test_reads_nested_groups_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AUDIONOTES_DELIVERY__MAX_DELIVERY_ATTEMPTS", "7")
    monkeypatch.setenv("AUDIONOTES_LLM__OPENAI_API_KEYS", '["sk-a","sk-b"]')
    s = get_settings()
    assert (s.project, s.buckets.inbox, s.buckets.results) == (
        "my-project-1",
        "my-inbox",
        "my-results",
    )
    assert s.delivery.max_delivery_attempts == 7
    assert [k.get_secret_value() for k in s.llm.openai_api_keys] == ["sk-a", "sk-b"]
    assert "sk-a" not in repr(s)  # secrets never print
    assert s.inbox_uri == "gs://my-inbox/uploads/"
    assert get_settings() is s  # built once per process


def test_missing_required_names_fail_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(BASE):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValidationError) as err:
        Settings()
    missing = {e["loc"] for e in err.value.errors() if e["type"] == "missing"}
    assert ("project",) in missing and ("buckets",) in missing


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("AUDIONOTES_BUCKETS__INBOX", "Bad_Bucket"),
        ("AUDIONOTES_PROJECT", "x"),
        ("AUDIONOTES_BUCKETS__INBOX_PREFIX", "/abs/"),
        ("AUDIONOTES_BUCKETS__INBOX_PREFIX", "no-slash"),
        ("AUDIONOTES_DELIVERY__MAX_DELIVERY_ATTEMPTS", "3"),  # Pub/Sub's minimum is 5
        ("AUDIONOTES_RUN_JOBS__TRANSCRIBE_GPU", "Transcribe_GPU"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, field: str, value: str) -> None:
    for key, v in BASE.items():
        monkeypatch.setenv(key, v)
    monkeypatch.setenv(field, value)
    with pytest.raises(ValidationError):
        Settings()
