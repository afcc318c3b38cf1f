"""`up` is idempotent and `status` reports each piece of the running stack."""

from __future__ import annotations


def test_second_up_starts_nothing_new(stack):  # type: ignore[no-untyped-def]
    before = {name: s["pid"] for name, s in stack.status().items()}
    assert all(before.values()), before
    stack.up()
    after = {name: s["pid"] for name, s in stack.status().items()}
    assert after == before


def test_status_reports_memory_and_logs(stack):  # type: ignore[no-untyped-def]
    for name, state in stack.status().items():
        assert state["running"] is True, name
        assert float(str(state["rss_mb"])) > 0, name
        assert str(state["log"]).endswith(f"{name}.log")
