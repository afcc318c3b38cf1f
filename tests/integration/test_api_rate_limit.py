"""Rate limits hold across function instances: two real functions-framework processes of
``api``, sharing the Firestore windows, together allow exactly the limit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from common.edge.auth import issue_hs256
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PER_MINUTE = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_instances(clean_stack: Any, tmp_path: Path) -> Iterator[list[str]]:
    env = {
        **os.environ,
        **clean_stack.local.environment(),
        "AUDIONOTES_AUTH__RATE_PER_MINUTE": str(PER_MINUTE),
        "AUDIONOTES_AUTH__RATE_PER_HOUR": "1000",
        "AUDIONOTES_AUTH__TRUSTED_PROXY_HOPS": "1",
        "PYTHONPATH": str(REPO),
    }
    framework = str(Path(sys.executable).with_name("functions-framework"))
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    for i in range(2):
        port = _free_port()
        log = (tmp_path / f"api-{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [framework, "--source=functions/main.py", "--target=api", f"--port={port}"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")

    def up(url: str) -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        for url in urls:
            wait_for(lambda url=url: up(url), what=f"{url} to start")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def _minute() -> int:
    return int(time.time() // 60)


def test_limit_is_shared_by_two_processes_and_answers_429(
    two_instances: list[str], clean_stack: Any, unique: str
) -> None:
    secret = clean_stack.local.settings.auth.jwt_secret.get_secret_value()
    for attempt in range(3):  # a run that straddles a minute boundary sees two windows: rerun
        subject = f"rl-{unique}-{attempt}"
        token = issue_hs256(secret, subject)
        headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": f"192.0.2.{attempt}"}
        started = _minute()
        statuses, retry_after = [], []
        for i in range(PER_MINUTE * 2):
            url = two_instances[i % 2]  # alternate: each process alone would allow PER_MINUTE
            response = requests.get(f"{url}/v1/jobs", headers=headers, timeout=30)
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after.append(int(response.headers["Retry-After"]))
                assert response.json()["error"]["code"] == "rate_limited"
        if _minute() != started:
            continue
        assert statuses == [200] * PER_MINUTE + [429] * PER_MINUTE
        assert all(1 <= r <= 60 for r in retry_after)
        break
    else:
        pytest.fail("three runs in a row crossed a minute boundary")


def test_limit_is_per_subject_and_per_address(
    two_instances: list[str], clean_stack: Any, unique: str
) -> None:
    """The processes sit behind one trusted proxy hop (as behind Google's front end), so the
    client address is the last X-Forwarded-For entry: this test plays several addresses."""
    secret = clean_stack.local.settings.auth.jwt_secret.get_secret_value()

    def get(i: int, token: str | None, address: str) -> int:
        headers = {"X-Forwarded-For": f"198.51.100.77, {address}"}  # the first one is spoofable
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = two_instances[i % 2]
        return requests.get(f"{url}/v1/jobs", headers=headers, timeout=30).status_code

    for attempt in range(3):
        started = _minute()
        net = f"203.0.{attempt}"
        alice = issue_hs256(secret, f"alice-{unique}-{attempt}")
        bob = issue_hs256(secret, f"bob-{unique}-{attempt}")
        spent = [get(i, alice, f"{net}.1") for i in range(PER_MINUTE)]
        alice_elsewhere = get(0, alice, f"{net}.2")  # the subject's budget is gone everywhere
        bob_same_address = get(1, bob, f"{net}.1")  # the address's budget is gone for anyone
        bob_elsewhere = get(0, bob, f"{net}.3")
        anonymous = [get(i, None, f"{net}.4") for i in range(PER_MINUTE + 1)]
        if _minute() != started:
            continue
        assert spent == [200] * PER_MINUTE
        assert (alice_elsewhere, bob_same_address, bob_elsewhere) == (429, 429, 200)
        assert anonymous == [401] * PER_MINUTE + [429]  # failed logins count too
        break
    else:
        pytest.fail("three runs in a row crossed a minute boundary")
