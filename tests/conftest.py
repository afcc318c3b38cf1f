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
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the environment as it was, and a fresh cached Settings."""
    from common.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def stack():  # type: ignore[no-untyped-def]
    """The running local stack (emulators.stack.Stack), its env applied to this process."""
    from emulators.config import LocalStack
    from emulators.stack import Stack

    os.environ["AUDIONOTES_LOCAL_DIR"] = TEST_STACK_DIR
    os.environ["AUDIONOTES_LOCAL_PORT_BASE"] = TEST_PORT_BASE
    the_stack = Stack(LocalStack.from_env())
    already_up = all(s["running"] for s in the_stack.status().values())
    the_stack.up()
    saved = {k: os.environ.get(k) for k in the_stack.local.environment()}
    os.environ.update(the_stack.local.environment())
    yield the_stack
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if not already_up and not os.environ.get("AUDIONOTES_KEEP_STACK"):
        the_stack.down()


@pytest.fixture
def clean_stack(stack, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The stack with Firestore, buckets and queued messages emptied before the test."""
    stack.reset()
    for key, value in stack.local.environment().items():
        monkeypatch.setenv(key, value)
    return stack


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
