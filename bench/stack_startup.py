"""How long the local stack takes to become ready, and how much memory it holds once up.

    .venv/bin/python bench/stack_startup.py [--repeats 3]

Each repeat starts the whole stack from nothing in its own state folder and ports, waits for
readiness (the same checks `python -m emulators up` uses), reads the resident memory of every
process and its children, and stops it. Reports the minimum and the median of the start times:
the minimum is the least disturbed by other load on a shared machine, the median the typical.
Budget (issue: foundation): ready in <= 20 s, <= 2 GB RAM, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from emulators.config import LocalStack, Ports
from emulators.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=46000)
    args = parser.parse_args()
    times, memory = [], []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            stack = Stack(LocalStack(state_dir=Path(folder), ports=Ports(args.port_base)))
            try:
                times.append(stack.up())
                status = stack.status()
                memory.append(sum(float(str(s["rss_mb"] or 0)) for s in status.values()))
                pieces = len([s for s in status.values() if s["running"]])
            finally:
                stack.down()
        print(
            f"run {i + 1}: ready in {times[-1]:.2f}s, {memory[-1]:.0f} MB RSS, {pieces} processes"
        )
    print(
        f"\nstack start: min {min(times):.2f}s, median {statistics.median(times):.2f}s; "
        f"RSS max {max(memory):.0f} MB ({args.repeats} runs, {pieces} processes)"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d}, load avg {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
