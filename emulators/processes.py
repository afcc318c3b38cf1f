"""Background processes with PID files, so that ``down`` stops exactly what ``up`` started.

A PID file records the PID and the process's start time (``/proc/<pid>/stat``), so a PID the
kernel has since given to another program is never mistaken for ours.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A piece of the local stack is missing or failed; the message says which and where."""


@dataclass(frozen=True)
class Service:
    name: str
    argv: Sequence[str]
    ready: Callable[[], bool]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ports: tuple[int, ...] = ()  # what it listens on (127.0.0.1)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may contain spaces, so split after ')'.
    return stat.rsplit(")", 1)[1].split()[19]


class ProcessTable:
    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The PID of our running process ``name``, or None (stale files are removed)."""
        path = self.pid_file(name)
        try:
            pid_text, started = path.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if _start_time(pid) != started or _is_zombie(pid):
            _reap(pid)
            path.unlink(missing_ok=True)
            return None
        return pid

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def start(self, service: Service) -> bool:
        """Start unless already running; returns whether it started a new process."""
        if self.pid(service.name) is not None:
            return False
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(service.name).open("ab") as log:
            proc = subprocess.Popen(
                list(service.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(service.env) if service.env is not None else None,
                cwd=service.cwd,
                start_new_session=True,  # its own process group: down kills its children too
            )
        started = _start_time(proc.pid)
        self.pid_file(service.name).write_text(f"{proc.pid} {started}\n")
        return True

    def wait_ready(self, services: Sequence[Service], deadline_s: float) -> None:
        pending = list(services)
        end = time.monotonic() + deadline_s
        while pending:
            for service in list(pending):
                if self.pid(service.name) is None:
                    raise StackError(self._failure(service.name, "exited during start"))
                if service.ready():
                    pending.remove(service)
            if not pending:
                return
            if time.monotonic() > end:
                names = ", ".join(s.name for s in pending)
                raise StackError(
                    self._failure(pending[0].name, f"not ready after {deadline_s:.0f}s ({names})")
                )
            time.sleep(0.1)

    def stop(self, name: str, *, grace_s: float = 5.0) -> bool:
        pid = self.pid(name)
        if pid is None:
            self.pid_file(name).unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        end = time.monotonic() + grace_s
        while time.monotonic() < end and _start_time(pid) is not None:
            if _is_zombie(pid):
                break
            time.sleep(0.05)
        else:
            if _start_time(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        self.pid_file(name).unlink(missing_ok=True)
        return True

    def _failure(self, name: str, what: str) -> str:
        log = self.log_file(name)
        tail = ""
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tail = "\n    " + "\n    ".join(lines)
        return f"{name} {what}; its log is {log}:{tail}"


def _reap(pid: int) -> None:
    """Collect the exit status of a child of this process, so it leaves the process table."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def http_ok(url: str, *, accept: Callable[[int], bool] = lambda status: status < 500) -> bool:
    """True once ``url`` answers with an accepted status."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return accept(response.status)
    except urllib.error.HTTPError as err:
        return accept(err.code)
    except (OSError, ValueError):
        return False


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
