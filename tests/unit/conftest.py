from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never see a deployment's or a local stack's settings (say, after
    `eval "$(python -m emulators env)"` in the same shell)."""
    for key in list(os.environ):
        if key.startswith("AUDIONOTES_") or key.endswith("_EMULATOR_HOST"):
            monkeypatch.delenv(key)
