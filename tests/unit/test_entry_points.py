"""The deployed entry points as functions-framework serves them, in process."""

from __future__ import annotations

import functions_framework
import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def api_app():  # type: ignore[no-untyped-def]
    app = functions_framework.create_app(
        target="api", source=str(REPO_ROOT / "functions" / "main.py"), signature_type="http"
    )
    return app.test_client()


@pytest.mark.parametrize(
    "path", ["/v1/jobs/%0a", "/healthz%0d%0a", "/v1/jobs/%0a/notes", "/robots.txt"]
)
def test_paths_the_framework_routes_itself_get_the_json_error_body(api_app, path: str) -> None:  # type: ignore[no-untyped-def]
    response = api_app.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_api_entry_point_hands_the_request_to_the_api_app(api_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The app is configured from the settings (proxy hops, body limit) when first called.
    monkeypatch.setenv("AUDIONOTES_PROJECT", "audionotes-test")
    monkeypatch.setenv("AUDIONOTES_BUCKETS__INBOX", "test-inbox")
    monkeypatch.setenv("AUDIONOTES_BUCKETS__RESULTS", "test-results")
    assert api_app.get("/healthz").get_json() == {"status": "ok"}
    wrong = api_app.put("/v1/jobs", data=b"{}")
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET, HEAD, POST"
