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


def test_a_second_stack_on_taken_ports_refuses_to_start(stack, tmp_path):  # type: ignore[no-untyped-def]
    """Readiness checks would pass against the first stack's services; up must refuse."""
    import pytest

    from emulators.config import LocalStack
    from emulators.processes import StackError
    from emulators.stack import Stack

    other = Stack(LocalStack(state_dir=tmp_path / "other", ports=stack.local.ports))
    with pytest.raises(StackError, match=f"port {stack.local.ports.firestore} is already in use"):
        other.up(deadline_s=20)
    assert not any(s["running"] for s in other.status().values())
    assert all(s["running"] for s in stack.status().values())  # the first stack is untouched
