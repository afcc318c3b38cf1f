"""The root conftest undoes what a test writes into os.environ (tests/conftest.py)."""

from __future__ import annotations

import os

MARK = "AUDIONOTES_TEST_ISOLATION_MARK"


def test_a_test_writes_the_environment() -> None:
    os.environ[MARK] = "set by the test before"


def test_the_next_test_does_not_see_it() -> None:
    assert MARK not in os.environ
