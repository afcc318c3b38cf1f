"""Notes quality: how well each provider's notes match hand-written gold on the meetings of
``bench/notes_eval`` (owners, action items, due dates, decisions, open questions), and what
they cost (seconds per meeting, completion tokens per second, fallbacks, peak memory).

    .venv/bin/python bench/notes_quality.py --providers extractive
    .venv/bin/python bench/notes_quality.py \\
        --providers extractive,local-0.5b=http://127.0.0.1:8081/v1,local-1.5b=http://127.0.0.1:8082/v1

A provider is ``extractive`` (the extractive engine alone: a ``NotesEngine`` with no links) or
``NAME=URL`` of an OpenAI-compatible endpoint: a ``NotesEngine`` with one ``ProviderLink``
(``ChatProvider`` named NAME, strict ``json_schema`` output, the model ``GET URL/models``
reports unless ``--model NAME=ID``, production defaults otherwise), falling back to the
extractive engine as in production. A provider that cannot be reached is reported in its row;
one that fails mid-run shows as fallbacks, with the reason. Scoring: ``bench/notes_eval/score.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.notes_eval.engines import (  # noqa: E402
    Unreachable,
    chat_engine,
    extractive_engine,
    own_peak_rss_mb,
    pid_peak_rss_mb,
    served_model,
    server_peak_rss_mb,
)
from bench.notes_eval.eval_set import MEETINGS_DIR, Meeting, load_meetings  # noqa: E402
from bench.notes_eval.score import Counts, MeetingScore, aggregate, score_meeting  # noqa: E402
from common.domain.jobs import NotesTemplate  # noqa: E402
from common.notes.chain import EXTRACTIVE, NotesEngine  # noqa: E402

DEFAULT_TIMEOUT_S = 600.0  # a 1.5B model on a few CPU cores takes minutes on the longest meeting


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    url: str | None  # None: the extractive engine alone
    model: str | None = None  # None: what GET {url}/models reports
    pid: int | None = None  # the server's process, for its peak memory


@dataclass
class MeetingRun:
    meeting_id: str
    words: int
    seconds: float
    answered_by: str  # the provenance's provider: NAME, or "extractive" after a fallback
    model: str
    calls: int
    chunks: int
    prompt_tokens: int
    completion_tokens: int
    fallback_reason: str | None
    score: MeetingScore


@dataclass
class ProviderResult:
    spec: ProviderSpec
    model: str | None = None
    error: str | None = None  # why nothing ran
    runs: list[MeetingRun] = field(default_factory=list)
    peak_rss_mb: float | None = None
    peak_rss_source: str | None = None

    @property
    def counts(self) -> Counts:
        return aggregate([r.score for r in self.runs])

    @property
    def fallbacks(self) -> list[MeetingRun]:
        if self.spec.url is None:
            return []
        return [r for r in self.runs if r.answered_by == EXTRACTIVE]


def parse_providers(text: str) -> list[ProviderSpec]:
    specs: list[ProviderSpec] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, _, url = entry.partition("=")
        if not url and name != EXTRACTIVE:
            raise SystemExit(f"--providers: {entry!r} is neither 'extractive' nor NAME=URL")
        specs.append(ProviderSpec(name=name.strip(), url=url.strip() or None))
    if len({s.name for s in specs}) != len(specs):
        raise SystemExit("--providers: names must be unique")
    return specs


def parse_pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"{flag}: expected NAME=VALUE, got {value!r}")
        pairs[name] = rest
    return pairs


def run_provider(spec: ProviderSpec, meetings: list[Meeting], timeout_s: float) -> ProviderResult:
    result = ProviderResult(spec)
    engine: NotesEngine
    if spec.url is None:
        engine = extractive_engine()
        result.model = "extractive-v1"
    else:
        try:
            result.model = spec.model or served_model(spec.url)
        except Unreachable as exc:
            result.error = f"unreachable: {exc}"
            return result
        engine = chat_engine(spec.name, spec.url, result.model, timeout_s=timeout_s)
    for meeting in meetings:
        started = time.perf_counter()
        notes, prov = engine.generate(
            f"notes-eval-{meeting.id}", meeting.pieces(), NotesTemplate.MEETING
        )
        seconds = time.perf_counter() - started
        run = MeetingRun(
            meeting_id=meeting.id,
            words=meeting.words,
            seconds=round(seconds, 3),
            answered_by=prov.provider,
            model=prov.model,
            calls=prov.calls,
            chunks=prov.chunks,
            prompt_tokens=prov.usage.prompt_tokens,
            completion_tokens=prov.usage.completion_tokens,
            fallback_reason=prov.fallback_reason,
            score=score_meeting(meeting, notes),
        )
        result.runs.append(run)
        print(
            f"  {spec.name} {meeting.id} ({meeting.words} words): {seconds:.1f} s, "
            f"by {prov.provider}, {prov.usage.completion_tokens} completion tokens",
            file=sys.stderr,
            flush=True,
        )
    if spec.url is None:
        result.peak_rss_mb, result.peak_rss_source = own_peak_rss_mb(), "bench process"
    else:
        peak = server_peak_rss_mb(spec.url)
        if peak is not None:
            result.peak_rss_mb, result.peak_rss_source = peak, "server /health"
        elif spec.pid is not None:
            result.peak_rss_mb = pid_peak_rss_mb(spec.pid)
            result.peak_rss_source = f"VmHWM of pid {spec.pid}"
    return result


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _r(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


HEADER = (
    "| provider | model | owner R / P | action R / P | due acc | decisions R / P | questions R / P "
    "| s/meeting mean | s longest | completion tok/s | fell back | peak RSS MB |"
)


def row(result: ProviderResult) -> str:
    spec = result.spec
    if result.error is not None:
        return f"| {spec.name} | {result.model or '-'} | {result.error} |" + " |" * 9
    c = result.counts
    runs = result.runs
    seconds = sum(r.seconds for r in runs)
    longest = max(runs, key=lambda r: r.words) if runs else None
    tokens = sum(r.completion_tokens for r in runs)
    rate = f"{tokens / seconds:.1f}" if tokens and seconds else "n/a"
    fell = "-" if spec.url is None else f"{len(result.fallbacks)} of {len(runs)}"
    peak = (
        "n/a"
        if result.peak_rss_mb is None
        else f"{result.peak_rss_mb:,.0f} ({result.peak_rss_source})"
    )
    cells = [
        spec.name,
        result.model or "-",
        f"{_r(c.owner_recall)} / {_r(c.owner_precision)}",
        f"{_r(c.action_recall)} / {_r(c.action_precision)}",
        _r(c.due_accuracy),
        f"{_r(c.decisions_recall)} / {_r(c.decisions_precision)}",
        f"{_r(c.questions_recall)} / {_r(c.questions_precision)}",
        _s(seconds / len(runs)) if runs else "n/a",
        f"{_s(longest.seconds)} ({longest.meeting_id}, {longest.words} words)"
        if longest
        else "n/a",
        rate,
        fell,
        peak,
    ]
    return "| " + " | ".join(cells) + " |"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu_model": cpu,
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--providers",
        default=EXTRACTIVE,
        help="comma-separated: 'extractive' and/or NAME=URL (an OpenAI-compatible /v1 base)",
    )
    parser.add_argument("--model", action="append", default=[], metavar="NAME=MODEL_ID")
    parser.add_argument("--server-pid", action="append", default=[], metavar="NAME=PID")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, help="per request")
    parser.add_argument("--only", default="", help="meeting ids, comma-separated (m01,m05)")
    parser.add_argument("--meetings", type=Path, default=MEETINGS_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write every figure, per meeting, here")
    args = parser.parse_args(argv)

    models = parse_pairs(args.model, "--model")
    pids = parse_pairs(args.server_pid, "--server-pid")
    specs = [
        ProviderSpec(
            s.name, s.url, models.get(s.name), int(pids[s.name]) if s.name in pids else None
        )
        for s in parse_providers(args.providers)
    ]
    only = [i.strip() for i in args.only.split(",") if i.strip()]
    meetings = load_meetings(args.meetings, only)
    facts = machine()
    print(
        f"{facts['date_utc']}, host {facts['host']}, {facts['machine']}, {facts['cpu_model']}, "
        f"nproc {facts['nproc']}, load avg {facts['load_avg_1m']}, Python {facts['python']}"
    )
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    gold_items = sum(len(m.gold.action_items) for m in meetings)
    print(
        f"meetings: {len(meetings)} ({', '.join(f'{m.id} {m.words}w' for m in meetings)}), "
        f"{gold_items} gold action items"
    )
    results = []
    for spec in specs:
        print(f"running {spec.name} ...", file=sys.stderr, flush=True)
        results.append(run_provider(spec, meetings, args.timeout_s))
    print()
    print(HEADER)
    print("|" + " --- |" * 12)
    for result in results:
        print(row(result))
    for result in results:
        for run in result.fallbacks:
            print(f"- {result.spec.name} {run.meeting_id} fell back: {run.fallback_reason}")
    if args.json:
        report = {
            "machine": facts,
            "argv": sys.argv,
            "providers": [
                {**asdict(r), "ratios": r.counts.ratios(), "totals": asdict(r.counts)}
                for r in results
            ],
        }
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
