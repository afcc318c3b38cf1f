"""The web page's files as ``api`` serves them, and what holds the page to the API: the final
states it stops polling at, no HTML parsed from API text, every file it names served."""

from __future__ import annotations

import re

from common.domain.jobs import FINAL_STATES, Job, JobSource, utcnow
from functions.api import page
from functions.api.http import create_app
from tests.unit.test_api_app import _api, _auth, _error, _settings

APP_JS = (page.WEB_DIR / "app.js").read_text()
INDEX = (page.WEB_DIR / "index.html").read_text()
STORAGE = "http://127.0.0.1:4443"


def _client():  # type: ignore[no-untyped-def]
    settings = _settings()
    api = _api(settings)
    return create_app(settings, lambda: api, storage_origin=STORAGE).test_client(), api


def test_the_page_is_served_at_the_root_with_its_policy_and_revalidated_by_etag() -> None:
    client, _ = _client()
    served = client.get("/")
    assert served.status_code == 200 and served.mimetype == "text/html"
    assert served.get_data(as_text=True) == INDEX
    policy = served.headers["Content-Security-Policy"]
    assert f"connect-src 'self' {STORAGE};" in policy
    assert f"media-src {STORAGE} https:;" in policy
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy
    assert served.headers["Referrer-Policy"] == "no-referrer"
    assert served.headers["X-Frame-Options"] == "DENY"
    again = client.get("/", headers={"If-None-Match": served.headers["ETag"]})
    assert (again.status_code, again.get_data()) == (304, b"")
    assert client.head("/").status_code == 200


def test_only_the_pages_own_files_are_served() -> None:
    client, _ = _client()
    for name, media_type in page.FILES.items():
        if name == page.PAGE:
            continue
        got = client.get(f"/web/{name}")
        assert got.status_code == 200 and got.headers["Content-Type"] == media_type, name
        assert got.get_data() == (page.WEB_DIR / name).read_bytes()
    on_disk = {p.name for p in page.WEB_DIR.iterdir()}
    assert on_disk == set(page.FILES), "every file in web/ is listed in page.FILES, and no more"
    for path in ("/web/index.html", "/web/nope.js", "/web/..%2Fpage.py", "/web/", "/web/.."):
        assert client.get(path).status_code == 404, path
    assert _error(client.post("/")) == (405, "method_not_allowed")


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r'(?:src|href)="/web/([^"]+)"', INDEX))
    assert named == set(page.FILES) - {page.PAGE}
    ids_used = set(re.findall(r'\$\("([a-z0-9-]+)"\)', APP_JS))
    ids_there = set(re.findall(r'id="([a-z0-9-]+)"', INDEX))
    assert ids_used <= ids_there, ids_used - ids_there


def test_the_page_stops_polling_at_the_domains_final_states() -> None:
    found = re.search(r"const FINAL_STATES = \[([^\]]*)\];", APP_JS)
    assert found, "app.js defines FINAL_STATES"
    states = set(re.findall(r'"([A-Z]+)"', found.group(1)))
    assert states == {s.value for s in FINAL_STATES}


def test_the_page_never_parses_text_as_html_nor_keeps_the_token() -> None:
    for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert risky not in APP_JS, risky
    for storage in ("localStorage", "sessionStorage", "document.cookie", "indexedDB"):
        assert storage not in APP_JS, storage


def test_audio_of_a_job_submitted_by_url_is_that_url_unsigned() -> None:
    client, api = _client()
    url = "https://media.example.org/talk.mp3"
    job = Job.new(
        job_id=f"a-{1:032d}", owner="alice", source=JobSource(uri=url), retention_days=1
    ).model_copy(update={"updated_at": utcnow()})
    api.core.jobs.create(job)
    got = client.get(f"/v1/jobs/{job.job_id}/audio", headers=_auth("alice"))
    assert got.get_json() == {"url": url, "signed": False, "expires_at": None, "content_type": None}
    assert _error(client.get(f"/v1/jobs/{job.job_id}/audio", headers=_auth("bob"))) == (
        404,
        "job_not_found",
    )
    missing = Job.new(
        job_id=f"a-{2:032d}",
        owner="alice",
        source=JobSource(uri="gs://test-inbox/uploads/gone.wav"),
        retention_days=1,
    )
    api.core.jobs.create(missing)
    assert _error(client.get(f"/v1/jobs/{missing.job_id}/audio", headers=_auth("alice"))) == (
        404,
        "audio_not_found",
    )
