"""Shared fixtures. Integration tests get a running local stack (started once per session,
or reused when already up) and a clean state per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

# The tests' own stack, beside (not instead of) a demo stack on the default ports.
TEST_STACK_DIR = os.environ.get("AUDIONOTES_TEST_STACK_DIR", str(REPO_ROOT / ".local" / "test"))
TEST_PORT_BASE = os.environ.get("AUDIONOTES_TEST_PORT_BASE", "28000")


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Each test sees the environment as it was, and a fresh cached Settings: whatever a test
    sets in os.environ (directly, not only through monkeypatch) is undone after it."""
    from common.config.settings import get_settings

    saved = dict(os.environ)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def stack():  # type: ignore[no-untyped-def]
    """The running local stack (emulators.stack.Stack). Integration tests get its environment
    applied per test (tests/integration/conftest.py), so nothing leaks into other tests."""
    from common.domain.local_llms import QWEN_0_5B
    from emulators.config import LocalStack, Ports
    from emulators.stack import Stack

    # tiny.en and the 0.5B notes model, the fastest; notes through the scriptable OpenAI
    # stand-in (tests/integration/test_local_llm.py drives the model server directly).
    local = LocalStack(
        state_dir=Path(TEST_STACK_DIR),
        ports=Ports(int(TEST_PORT_BASE)),
        default_model="tiny.en",
        llm_model=QWEN_0_5B,
        notes_from="double",
    )
    the_stack = Stack(local)
    already_up = all(s["running"] for s in the_stack.status().values())
    the_stack.up()
    yield the_stack
    if not already_up and not os.environ.get("AUDIONOTES_KEEP_STACK"):
        the_stack.down()


@pytest.fixture
def clean_stack(stack):  # type: ignore[no-untyped-def]
    """The stack with Firestore, buckets and queued messages emptied before the test."""
    stack.reset()
    return stack


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
