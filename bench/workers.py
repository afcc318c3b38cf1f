"""Pull workers against one execution per job, side by side on this machine, through the
whole local stack (``bench/load.py``, one stack per run, one run after the other):

1. a mix of short files and long ones (several chunks each) in each ``Workers.mode``:
   processes started and model loads per 100 chunks, chunks run twice, lost, p50/p95
   end-to-end per kind;
2. the latency of one long file with 1, 2, 3 workers allowed (its chunks spread over them).

    .venv/bin/python bench/workers.py [--short 8] [--long 2] [--long-minutes 20]
        [--latency-minutes 60] [--workers 1,2,3] [--chunk-seconds 300] [--json]

The chunk length is scaled down (300 s, not production's 1200 s) so that a laptop sees jobs of
several chunks in minutes. tiny.en on CPU: the model is cheap here, so the figures show the
per-chunk costs a GPU pays (process start, model load), not a GPU's speed. On a 2-core
machine more than two workers cannot make one file faster: the latency series says so rather
than hide it. Exits non-zero if any run lost, refused or duplicated work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

LOAD = Path(__file__).resolve().parent / "load.py"


def load(*args: str) -> dict[str, Any]:
    """One bench/load.py run, its JSON report (it exits 1 on lost/duplicated work: kept)."""
    done = subprocess.run(
        [sys.executable, str(LOAD), "--json", *args], capture_output=True, text=True
    )
    start = done.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"bench/load.py {' '.join(args)} printed no report:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout[start:])
    report["exit"] = done.returncode
    return report


def _p(stages: dict[str, Any], label: str) -> str:
    v = stages.get(label)
    return f"{v['p50_s']:.1f} / {v['p95_s']:.1f}" if v else "-"


def mix_table(runs: dict[str, dict[str, Any]]) -> None:
    print(
        "\n| mode | jobs done | processes | model loads | chunks | processes / 100 chunks "
        "| model loads / 100 chunks | chunks run twice | lost | short end-to-end p50 / p95 s "
        "| long end-to-end p50 / p95 s | span s |"
    )
    print("| --- " * 12 + "|")
    for mode, r in runs.items():
        w = r["work"]
        print(
            f"| {mode} | {r['completed']}/{r['submitted']} | {w['processes']} "
            f"| {w['model_loads']} | {w['chunks_transcribed']} "
            f"| {w['processes_per_100_chunks']:.1f} | {w['model_loads_per_100_chunks']:.1f} "
            f"| {len(r['duplicated'].get('chunks_run_twice', {}))} | {len(r['lost'])} "
            f"| {_p(r['stages'], 'end-to-end, short files')} "
            f"| {_p(r['stages'], 'end-to-end, long files')} | {r['span_s']:.1f} |"
        )


def latency_table(runs: dict[int, dict[str, Any]]) -> None:
    print(
        "\n| workers allowed | processes | chunks | end-to-end s | "
        "TRANSCRIBING -> TRANSCRIBED s | vs 1 worker |"
    )
    print("| --- " * 6 + "|")
    base = None
    for n, r in runs.items():
        job = r["jobs"][0]
        times = job["state_times"]
        total = times.get("COMPLETED", 0) - times.get("QUEUED", 0)
        work = times.get("TRANSCRIBED", 0) - times.get("TRANSCRIBING", 0)
        base = base or total
        print(
            f"| {n} | {r['work']['processes']} | {r['work']['chunks_transcribed']} "
            f"| {total:.1f} | {work:.1f} | {total / base:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=8, help="short files in the mix")
    parser.add_argument("--long", type=int, default=2, help="long files in the mix")
    parser.add_argument("--long-minutes", type=float, default=20)
    parser.add_argument("--latency-minutes", type=float, default=60, help="0: skip part 2")
    parser.add_argument("--workers", default="1,2,3", help="caps for the latency series")
    parser.add_argument("--chunk-seconds", type=int, default=300)
    parser.add_argument("--deadline", type=float, default=1800)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    common = ["--chunk-seconds", str(args.chunk_seconds), "--deadline", str(args.deadline)]
    mix = [
        *common,
        *("--jobs", str(args.short), "--sentences", "1"),
        *("--long", str(args.long), "--long-minutes", str(args.long_minutes)),
    ]
    mixes = {mode: load(*mix, "--mode", mode) for mode in ("per_job", "workers")}
    latency: dict[int, dict[str, Any]] = {}
    if args.latency_minutes:
        one = [*common, "--jobs", "0", "--long", "1", "--long-minutes", str(args.latency_minutes)]
        for n in (int(x) for x in args.workers.split(",")):
            latency[n] = load(*one, "--mode", "workers", "--max-workers", str(n))
    if args.json:
        print(json.dumps({"mix": mixes, "latency": latency}, indent=1, default=str))
    else:
        print(
            f"mix: {args.short} short files (one sentence) + {args.long} x "
            f"{args.long_minutes:g} min, chunks of {args.chunk_seconds} s"
        )
        mix_table(mixes)
        if latency:
            print(f"\none {args.latency_minutes:g}-minute file, chunks of {args.chunk_seconds} s")
            latency_table(latency)
        print()
        for label, r in [*mixes.items(), *((f"{n} worker(s)", r) for n, r in latency.items())]:
            print(f"- {label}: {r['machine']}")
    bad = [r for r in [*mixes.values(), *latency.values()] if r["exit"] != 0]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
