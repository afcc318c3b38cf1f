from __future__ import annotations

import json
import logging

from common.obs.logs import JsonFormatter, bind, current_traceparent


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, msg, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_line_carries_severity_job_and_trace() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with bind(job_id="j-1", traceparent=parent):
        line = JsonFormatter(project="p1").format(
            _record("hello", code="bad", event="llm_usage", cost_usd=0.25)
        )
    entry = json.loads(line)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "hello"
    assert entry["job_id"] == "j-1"
    assert entry["code"] == "bad"
    assert (entry["event"], entry["cost_usd"]) == ("llm_usage", 0.25)
    assert "args" not in entry and "levelno" not in entry  # LogRecord internals stay out
    assert entry["logging.googleapis.com/trace"] == (
        "projects/p1/traces/0af7651916cd43dd8448eb211c80319c"
    )
    assert entry["logging.googleapis.com/spanId"] == "b7ad6b7169203331"


def test_bind_is_scoped() -> None:
    with bind(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"):
        assert current_traceparent() is not None
    assert current_traceparent() is None
    entry = json.loads(JsonFormatter().format(_record("x")))
    assert "job_id" not in entry and "logging.googleapis.com/trace" not in entry
