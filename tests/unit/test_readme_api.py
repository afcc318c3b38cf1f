"""The README's API table names every route the code serves."""

from __future__ import annotations

from functions.api.routes import ROUTES
from tests.conftest import REPO_ROOT


def test_every_route_is_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## HTTPS API", 1)[1].split("\n## ", 1)[0]
    missing = [
        f"{r.method} {r.path}" for r in ROUTES if r.path.replace("{job_id}", "{id}") not in section
    ]
    assert not missing, f"README's HTTPS API section does not list: {missing}"
