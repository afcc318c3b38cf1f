"""ProcessTable starts, finds and stops exactly its own processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.processes import ProcessTable, Service, StackError


def test_start_is_idempotent_and_stop_kills_the_group(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path / "run", tmp_path / "logs")
    # A parent with a child: down must stop both (process group).
    argv = [
        sys.executable,
        "-c",
        "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)",
    ]
    service = Service("sleeper", argv, ready=lambda: True)
    assert table.start(service) is True
    pid = table.pid("sleeper")
    assert pid is not None
    assert table.start(service) is False  # already running: nothing new
    assert table.pid("sleeper") == pid
    assert table.stop("sleeper") is True
    assert table.pid("sleeper") is None
    alive = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True).returncode == 0
    assert not alive


def test_stale_pid_file_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path / "run", tmp_path / "logs")
    (tmp_path / "run").mkdir()
    # Our own PID, but with a start time that is not ours: a recycled PID.
    table.pid_file("ghost").write_text(f"{os.getpid()} 1\n")
    assert table.pid("ghost") is None
    assert table.stop("ghost") is False


def test_a_process_that_dies_names_itself_and_its_log(tmp_path: Path) -> None:
    table = ProcessTable(tmp_path / "run", tmp_path / "logs")
    service = Service(
        "broken", [sys.executable, "-c", "print('boom'); raise SystemExit(2)"], ready=lambda: False
    )
    table.start(service)
    with pytest.raises(StackError) as err:
        table.wait_ready([service], deadline_s=10)
    assert "broken exited during start" in str(err.value)
    assert "boom" in str(err.value)
    assert str(table.log_file("broken")) in str(err.value)
