"""The README's configuration table is generated from Settings and must not drift from it."""

from __future__ import annotations

from common.config.reference import END, START, env_vars, render_into
from tests.conftest import REPO_ROOT


def test_readme_configuration_table_is_current() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert START in readme and END in readme
    assert render_into(readme) == readme, (
        "README.md's configuration table is stale: run "
        "`.venv/bin/python -m common.config.reference README.md`"
    )


def test_every_variable_is_listed_once() -> None:
    names = [v.name for v in env_vars()]
    assert len(names) == len(set(names))
    assert "AUDIONOTES_BUCKETS__INBOX" in names
    assert "AUDIONOTES_DELIVERY__MAX_DELIVERY_ATTEMPTS" in names
