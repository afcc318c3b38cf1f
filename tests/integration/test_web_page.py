"""The web page in a real browser (Debian's headless Chromium) against the running stack: sign in
with a token, drop a spoken two-voice meeting, follow it in the list, read it (speakers, notes,
the player following the words), rename a speaker and download the SRT; errors shown as the
API words them, another subject's job out of reach; labelled, keyboard-usable and
phone-width, checked with axe-core."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.keys import Keys

from common.config.settings import Settings
from common.domain.jobs import Job, JobError, JobSource, JobState, api_job_id
from common.edge.auth import issue_hs256
from common.gcp.job_store import FirestoreJobStore
from tests.conftest import TEST_STACK_DIR
from tests.data.conversation import make_conversation
from tests.integration.browser import AXE_JS, Browser, chromium
from tests.integration.test_speakers_flow import TURNS

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(TEST_STACK_DIR) / "screenshots"
PHONE = (390, 844)  # CSS pixels of a common phone, portrait
OPTIONS = "return [...document.getElementById(arguments[0]).options].map(o => o.value)"


@pytest.fixture(scope="module")
def axe_js() -> str:
    package, _, name = AXE_JS.partition("/")
    return resources.files(package).joinpath(name).read_text()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium(downloads) as b:
        yield b


@pytest.fixture
def page(clean_stack: Any) -> str:
    return str(clean_stack.local.function_url("api"))


def _token(settings: Settings, subject: str) -> str:
    return issue_hs256(settings.auth.jwt_secret.get_secret_value(), subject)


def _api(page: str, token: str, path: str) -> requests.Response:
    return requests.get(page + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _sign_in(b: Browser, page: str, token: str) -> None:
    """By keyboard: the token typed in, Tab to the button, Enter."""
    b.open(page + "/")
    b.wait(lambda: b.visible("view-sign-in"), "the sign-in form")
    field = b.by_id("token")
    field.send_keys(token)
    field.send_keys(Keys.TAB)
    focused = b.driver.switch_to.active_element
    assert focused.text == "Sign in"
    focused.send_keys(Keys.ENTER)
    b.wait(lambda: b.visible("view-jobs"), "the jobs view")


def _no_violations(b: Browser, axe_js: str, where: str) -> None:
    violations = b.axe(axe_js)
    assert violations == [], (
        where,
        [(v["id"], v["help"], [n.get("target") for n in v["nodes"]]) for v in violations],
    )


def _shot(b: Browser, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    b.driver.save_screenshot(str(SCREENSHOTS / name))


def test_a_meeting_from_drop_to_notes_renamed_speakers_and_srt(
    browser: Browser,
    page: str,
    settings: Settings,
    unique: str,
    tmp_path: Path,
    axe_js: str,
) -> None:
    b = browser
    token = _token(settings, f"web-{unique}")
    meeting = tmp_path / "library-meeting.wav"
    make_conversation(meeting, TURNS)

    _sign_in(b, page, token)
    assert b.text("who") == f"web-{unique}"
    # The options come from the API's own document and catalog.
    templates = b.js(OPTIONS, "opt-template")
    assert templates == ["meeting", "lecture", "interview", "diary"]
    models = b.js(OPTIONS, "opt-model")
    assert "tiny.en" in models
    _no_violations(b, axe_js, "the jobs view")

    b.drop_file("drop", meeting, "audio/wav")
    assert b.text("file-chosen").startswith("Chosen: library-meeting.wav")
    b.by_id("opt-speakers").send_keys("2")
    b.by_id("opt-vocabulary").send_keys("council, roof")
    b.by_id("submit-button").click()
    job_id = b.wait(
        lambda: b.js("return document.querySelector('#jobs li.job')?.dataset.job"),
        "the new job in the list",
    )

    # Live state: the list follows the job to its end.
    seen: list[str] = []

    def finished() -> bool:
        state = b.js(
            f"return document.querySelector('#jobs li[data-job=\"{job_id}\"]')?.dataset.state"
        )
        if state and (not seen or seen[-1] != state):
            seen.append(state)
        return state in ("COMPLETED", "FAILED", "CANCELLED")

    b.wait(finished, "the job to finish", timeout_s=300)
    assert len(seen) >= 2 and seen[-1] == "COMPLETED", seen  # it changed under our eyes
    job = _api(page, token, f"/v1/jobs/{job_id}").json()
    assert job["options"]["speakers"] == "2" and job["options"]["vocabulary"] == ["council", "roof"]

    b.click(f'#jobs li[data-job="{job_id}"] a')
    b.wait(lambda: b.visible("notes-box") and b.visible("transcript-box"), "the job page")
    b.wait(lambda: b.js("return document.getElementById('player').readyState >= 1"), "audio")
    assert b.text("job-title") == "library-meeting.wav" and b.text("job-state") == "COMPLETED"

    # The transcript by speaker turns, as the API has it.
    transcript = _api(page, token, f"/v1/jobs/{job_id}/transcript?format=json").json()
    words = [w for s in transcript["segments"] for w in s["words"]]
    shown = b.texts("#transcript .w")
    assert shown == [w["word"] for w in words]
    speakers = b.js(
        "return [...document.querySelectorAll('#transcript .speaker')].map(s => s.textContent)"
    )
    assert set(speakers) == {"SPEAKER_1", "SPEAKER_2"} and len(speakers) >= 2
    text = b.text("transcript").lower()
    assert "budget" in text and "council" in text

    # The notes as the API has them: every action item with its owner.
    notes = _api(page, token, f"/v1/jobs/{job_id}/notes?format=json").json()["notes"]
    tasks = b.texts("#notes .task")
    assert tasks == [a["task"] for a in notes["action_items"]] and tasks
    facts = b.texts("#notes .facts")
    owners = [a["owner"] for a in notes["action_items"] if a["owner"]]
    assert all(any(f"owner: {o}" in f for f in facts) for o in owners)
    _no_violations(b, axe_js, "the job page")

    # Click a word: the player seeks to it and marks it.
    k = next(i for i, w in enumerate(words) if w["start"] > 2.0)
    b.css(f'#transcript .w[data-i="{k}"]')[0].click()
    b.wait(lambda: b.css(f'#transcript .w[data-i="{k}"].current'), "the clicked word marked")
    at = b.js("return document.getElementById('player').currentTime")
    assert abs(at - words[k]["start"]) < 0.5, (at, words[k])
    # Playing: the mark follows the audio, always on the word being said.
    b.js("document.getElementById('player').play()")
    b.wait(
        lambda: b.js("return document.getElementById('player').currentTime") > words[k]["end"] + 1,
        "playback",
    )
    b.js("document.getElementById('player').pause()")
    now = b.js("return document.getElementById('player').currentTime")
    marked = [int(e.get_attribute("data-i")) for e in b.css("#transcript .w.current")]
    assert len(marked) == 1 and marked[0] > k, (marked, k)
    assert words[marked[0]]["start"] <= now + 0.05 <= words[marked[0]]["end"] + 1.05
    # By keyboard: a turn's time stamp is a button.
    first = b.css("#transcript .ts")[0]
    first.send_keys(Keys.ENTER)
    b.wait(lambda: b.js("return document.getElementById('player').currentTime") < 1.0, "seek to 0")

    # Rename a speaker: the page and the API both show the name.
    field = b.by_id("name-SPEAKER_1")
    field.clear()
    field.send_keys("Priya Patel")
    field.send_keys(Keys.ENTER)
    b.wait(lambda: "Speaker names saved" in b.text("status"), "the names saved")
    speakers = b.js(
        "return [...document.querySelectorAll('#transcript .speaker')].map(s => s.textContent)"
    )
    assert set(speakers) == {"Priya Patel", "SPEAKER_2"}
    named = _api(page, token, f"/v1/jobs/{job_id}").json()
    assert named["speaker_names"] == {"SPEAKER_1": "Priya Patel"}

    # Download the SRT: what the API serves, with the new name.
    b.click('#downloads button[data-kind="transcript"][data-format="srt"]')
    srt = b.downloaded("library-meeting.wav.transcript.srt").read_text()
    assert srt == _api(page, token, f"/v1/jobs/{job_id}/transcript?format=srt").text
    assert " --> " in srt and "Priya Patel: " in srt
    formats = b.js(
        "return [...document.querySelectorAll('#downloads button')].map(d => d.textContent)"
    )
    assert {"transcript.json", "transcript.rttm", "notes.md"} <= set(formats)

    _shot(b, "job-desktop.png")
    # A phone's width: nothing to scroll sideways, the transcript below the player.
    b.driver.set_window_size(*PHONE)
    b.wait(lambda: b.js("return window.innerWidth") <= PHONE[0], "the narrow window")
    assert b.overflows() == 0
    _shot(b, "job-phone.png")
    b.driver.get(page + "/#/")
    b.open(page + "/")  # a reload: the token was in memory only
    b.wait(lambda: b.visible("view-sign-in"), "signed out by the reload")
    assert b.js("return localStorage.length + sessionStorage.length") == 0
    assert b.js("return document.cookie") == ""
    assert b.overflows() == 0
    assert b.errors() == []


def _job_of(store: FirestoreJobStore, owner: str, audio: str, **changes: Any) -> str:
    job = Job.new(
        job_id=api_job_id(owner, None), owner=owner, source=JobSource(uri=audio), retention_days=1
    )
    store.create(job.model_copy(update=changes))
    return job.job_id


def test_errors_are_the_apis_own_words_and_other_subjects_jobs_stay_out_of_reach(
    browser: Browser,
    page: str,
    settings: Settings,
    store: FirestoreJobStore,
    unique: str,
    tmp_path: Path,
    axe_js: str,
) -> None:
    b = browser
    # A bad token: refused with the API's message.
    b.open(page + "/")
    b.by_id("token").send_keys("not-a-token")
    b.css("#sign-in-form button")[0].click()
    refused = requests.get(
        page + "/v1/jobs?limit=1", headers={"Authorization": "Bearer not-a-token"}, timeout=30
    ).json()["error"]
    b.wait(lambda: b.visible("alert"), "the refusal")
    assert b.text("alert-text") == f"Not signed in: {refused['message']} ({refused['code']})"
    assert b.visible("view-sign-in")
    _no_violations(b, axe_js, "the sign-in form with an error")

    alice, bob = f"alice-{unique}", f"bob-{unique}"
    audio = f"gs://{settings.buckets.inbox}/elsewhere/{unique}.wav"
    theirs = _job_of(store, alice, audio)
    failed = _job_of(
        store,
        bob,
        audio,
        state=JobState.FAILED,
        error=JobError(code="empty_transcript", message="no speech was heard in the audio"),
    )
    token = _token(settings, bob)
    b.by_id("token").clear()
    _sign_in(b, page, token)
    b.wait(lambda: b.css(f'#jobs li[data-job="{failed}"]'), "bob's job in the list")
    assert not b.css(f'#jobs li[data-job="{theirs}"]')

    # Alice's job by its id: the API's 404, nothing of it shown.
    b.driver.get(f"{page}/#/jobs/{theirs}")
    b.wait(lambda: b.text("job-title") == "No such job", "the refusal")
    answer = _api(page, token, f"/v1/jobs/{theirs}").json()["error"]
    assert b.text("alert-text") == f"{answer['message']} ({answer['code']})"
    assert answer["code"] == "job_not_found"
    assert not b.visible("transcript-box") and not b.visible("player-box")
    # Not an id at all: never sent to the API.
    b.driver.get(f"{page}/#/jobs/..%2F..%2Fopenapi.json")
    b.wait(lambda: "is not a job id" in b.text("alert-text"), "the page's own refusal")

    # A failed job says what went wrong.
    b.driver.get(f"{page}/#/jobs/{failed}")
    b.wait(lambda: b.visible("job-error"), "the failure")
    assert b.text("job-error-message") == "This job failed: no speech was heard in the audio"
    assert b.text("job-error-code") == "empty_transcript"
    assert b.text("job-state") == "FAILED"
    # Its audio was never stored: the API's 404, said where the player would be.
    b.wait(lambda: "No audio to play: " in b.text("player-note"), "the player's note")
    _no_violations(b, axe_js, "a failed job")

    # A file that is not audio, picked with the file chooser: the API's own refusal.
    b.driver.get(f"{page}/#/")
    b.wait(lambda: b.visible("view-jobs"), "the jobs view")
    text = tmp_path / "minutes.wav"
    text.write_text("These are not audio bytes, only minutes typed up.\n" * 20)
    b.by_id("file").send_keys(str(text))
    b.by_id("submit-button").click()
    b.wait(lambda: b.visible("alert") and "not submitted" in b.text("alert-text"), "the refusal")
    message = b.text("alert-text")
    assert message.startswith("minutes.wav was not submitted: ") and "(not_audio)" in message
    assert "is not audio" in message
    assert b.css(f'#jobs li[data-job="{failed}"]') and len(b.css("#jobs li.job")) == 1
    # The refusals above are the only failed loads (the browser logs each 4xx it fetched).
    assert all("the server responded with a status of 4" in e for e in b.errors()), b.errors()


def test_the_page_and_its_files_are_served_with_a_strict_policy(page: str) -> None:
    served = requests.get(page + "/", timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/html")
    policy = served.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    connect = policy.split("connect-src ")[1].split(";")[0].split()
    assert connect == ["'self'", os.environ["STORAGE_EMULATOR_HOST"]]  # the signed URLs' host
    again = requests.get(page + "/", headers={"If-None-Match": served.headers["ETag"]}, timeout=30)
    assert again.status_code == 304
    assert (
        requests.get(page + "/web/app.js", timeout=30)
        .headers["Content-Type"]
        .startswith("text/javascript")
    )
    for missing in ("/web/index.html", "/web/page.py", "/web/..%2Fpage.py"):
        assert requests.get(page + missing, timeout=30).status_code == 404, missing
