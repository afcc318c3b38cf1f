"""Load through the whole local stack: N concurrent submissions, half ``gsutil cp`` into the
inbox and half through the HTTPS API (POST /v1/uploads, PUT to the signed URL, POST /v1/jobs),
each followed to a final state.

    .venv/bin/python bench/load.py [--jobs 8] [--deadline 900] [--json] [--keep-logs DIR]
        [--long N --long-minutes M] [--chunk-seconds S] [--mode workers|per_job]
        [--max-workers K]

It starts its own stack in a temporary state folder on its own ports (base 54000), so it
neither needs nor disturbs a running one, and stops it at the end. Only loopback traffic.
Each file is espeak-ng speech of a text of its own (a numbered variation of
``tests/data/speech.KNOWN_TEXT``) so the content cache (sha256 + model) cannot dedupe them:
every job runs the model (``--same-audio`` submits one file N times to measure the cache
instead). The model is the stack's default, the smallest one (tiny.en, int8 on CPU).

Reports throughput (jobs per minute, audio seconds per wall second), p50/p95 latency per stage
from each job's ``state_times`` (nearest rank: with 8 jobs p95 is the slowest), refused
submissions (the client got an error and no job), lost jobs (accepted, but no job document or
not final by the deadline) and duplicated ones (more than one job per
submission, more than one ``transcripts-ready`` or ``transcription-requests`` message per job
(pull subscriptions of our own tap the topics), more than one Cloud Run execution per job), and
the transcribe tasks' own breakdown from their logs: process start, model load, transcription,
the rest, and the model loads per 100 jobs (short jobs share batch-lane executions: one load
serves many; ``--sentences 1`` makes ~4 s files, ``--submitters`` caps concurrent uploads).
``--long`` adds N files of M minutes (a distinct passage looped), submitted with the short
ones; ``--chunk-seconds`` scales the chunking down so that they take several chunks on one
laptop. ``--mode`` is how transcription reaches the tasks (``Workers.mode``: pull workers, or
one execution per job as before them) and ``--max-workers`` the local cap per tier; the work
figures (processes started, model loads, chunks, chunks run twice) come from the task logs
for either mode. ``bench/workers.py`` runs this for both modes side by side.
One run, not a minimum over repeats: a run takes minutes and the stack is the measurement;
the machine's load average is printed with it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import wave
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.data.speech import KNOWN_TEXT, make_speech  # noqa: E402

PORT_BASE = 54000
SENTENCES = [s.strip() + "." for s in KNOWN_TEXT.split(".") if s.strip()]
NUMBERS = [
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]
# Stages from the job's state_times: (label, from state, to state).
STAGES = (
    ("queued->dispatched", "QUEUED", "DISPATCHED"),
    ("dispatched->transcribing", "DISPATCHED", "TRANSCRIBING"),
    ("transcribing->transcribed", "TRANSCRIBING", "TRANSCRIBED"),
    ("transcribed->completed", "TRANSCRIBED", "COMPLETED"),
    ("end-to-end (queued->completed)", "QUEUED", "COMPLETED"),
)


@dataclass
class Submission:
    index: int
    via: str  # "gsutil" | "https"
    audio: str
    audio_s: float
    kind: str = "short"  # "short" | "long"
    uri: str = ""
    job_id: str | None = None
    started: float = 0.0  # epoch seconds: the client began the upload
    accepted: float = 0.0  # epoch seconds: gsutil returned / POST /v1/jobs answered
    error: str | None = None
    state: str | None = None
    state_times: dict[str, float] = field(default_factory=dict)


def speech_files(
    folder: Path, count: int, *, same: bool, sentences: int = 4
) -> list[tuple[Path, float]]:
    """``count`` short files of distinct text (each ~15-25 s with 4 sentences), or one file
    ``count`` times."""
    from common.audio.decode import probe

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(1 if same else count):
        rotated = SENTENCES[i % len(SENTENCES) :] + SENTENCES[: i % len(SENTENCES)]
        label = NUMBERS[i % len(NUMBERS)] + (f" batch {i // len(NUMBERS)}" if i >= 12 else "")
        text = f"Recording number {label}. " + " ".join(rotated[:sentences])
        path = make_speech(folder / f"load-{i:03d}.wav", text)
        files.append((path, probe(path).duration_s))
    return files * count if same else files


def long_files(folder: Path, count: int, minutes: float) -> list[tuple[Path, float]]:
    """``count`` files of ``minutes`` each: a passage of its own (numbered) looped."""
    from common.audio.decode import probe

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        text = f"Long recording number {NUMBERS[i % len(NUMBERS)]}. " + " ".join(SENTENCES)
        passage = make_speech(folder / f"passage-{i:03d}.wav", text)
        path = folder / f"long-{i:03d}.wav"
        with wave.open(str(passage), "rb") as src:
            params, frames = src.getparams(), src.readframes(src.getnframes())
        total = int(minutes * 60 * params.framerate) * params.sampwidth * params.nchannels
        with wave.open(str(path), "wb") as out:
            out.setparams(params)
            out.writeframes((frames * (total // len(frames) + 1))[:total])
        files.append((path, probe(path).duration_s))
    return files


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Bench:
    def __init__(self, stack: Any, run_id: str) -> None:
        from common.edge.auth import issue_hs256
        from common.gcp.gcs import GcsBlobStore
        from common.gcp.job_store import FirestoreJobStore

        self.stack = stack
        self.local = stack.local
        self.settings = stack.local.settings
        self.run_id = run_id
        self.env = stack.child_env()
        s = self.settings
        self.jobs = FirestoreJobStore(s.project, s.collections.jobs)
        self.blobs = GcsBlobStore(s.project)
        secret = s.auth.jwt_secret.get_secret_value()
        self.token = issue_hs256(secret, f"load-{run_id}", ttl_s=3600, audience=s.auth.audience)
        self.api = self.local.function_url("api")

    def submit(self, sub: Submission) -> Submission:
        sub.started = time.time()
        try:
            if sub.via == "gsutil":
                self._gsutil(sub)
            else:
                self._https(sub)
        except Exception as exc:  # recorded and reported as a lost submission
            sub.error = f"{type(exc).__name__}: {exc}"[:300]
        sub.accepted = time.time()
        return sub

    def _gsutil(self, sub: Submission) -> None:
        from common.domain.jobs import upload_job_id

        s = self.settings
        name = f"{s.buckets.inbox_prefix}load-{self.run_id}/{sub.index:03d}.wav"
        sub.uri = f"gs://{s.buckets.inbox}/{name}"
        subprocess.run(
            ["gsutil", "-q", "cp", sub.audio, sub.uri],
            check=True,
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        info = self.blobs.stat(sub.uri)
        if info is None:
            raise RuntimeError(f"{sub.uri} is not in the inbox after gsutil cp")
        sub.job_id = upload_job_id(s.buckets.inbox, name, info.generation)

    def _https(self, sub: Submission) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        path = Path(sub.audio)
        ticket = session.post(
            f"{self.api}/v1/uploads",
            json={
                "filename": path.name,
                "content_type": "audio/wav",
                "size_bytes": path.stat().st_size,
            },
            timeout=60,
        )
        ticket.raise_for_status()
        t = ticket.json()
        with path.open("rb") as data:
            put = requests.put(t["upload_url"], data=data, headers=t["headers"], timeout=120)
        put.raise_for_status()
        sub.uri = t["audio_url"]
        created = session.post(
            f"{self.api}/v1/jobs",
            json={"audio_url": sub.uri},
            headers={"Idempotency-Key": f"load-{self.run_id}-{sub.index}"},
            timeout=60,
        )
        created.raise_for_status()
        sub.job_id = created.json()["job_id"]

    def follow(self, subs: list[Submission], deadline: float) -> None:
        from common.domain.errors import JobNotFound

        pending = [s for s in subs if s.job_id]
        while pending and time.time() < deadline:
            for sub in list(pending):
                assert sub.job_id is not None
                try:
                    job = self.jobs.get(sub.job_id)
                except JobNotFound:
                    continue
                sub.state = job.state.value
                sub.state_times = {k.value: v.timestamp() for k, v in job.state_times.items()}
                if job.state.is_final:
                    pending.remove(sub)
            time.sleep(1.0)

    def jobs_per_source(self) -> Counter[str]:
        """Every job document in Firestore, counted by its source URI."""
        from google.cloud import firestore

        s = self.settings
        client = firestore.Client(project=s.project)
        return Counter(
            str((d.to_dict() or {}).get("source", {}).get("uri"))
            for d in client.collection(s.collections.jobs).stream()
        )

    def executions(self) -> dict[str, list[dict[str, Any]]]:
        """Per job id: each Cloud Run execution that ran a task for it, from the task logs and
        the emulator's execution list (start time)."""
        s = self.settings
        starts: dict[str, float] = {}
        for job in (s.run_jobs.transcribe_cpu, s.run_jobs.transcribe_gpu):
            url = (
                f"{s.run_jobs.api_endpoint}/v2/projects/{s.project}/locations/{s.region}"
                f"/jobs/{job}/executions"
            )
            for e in requests.get(url, timeout=30).json().get("executions", []):
                if e.get("startTime"):
                    starts[e["name"].rsplit("/", 1)[1]] = _epoch(e["startTime"])
        found: dict[str, list[dict[str, Any]]] = {}
        for log in sorted(self.local.executions_dir.glob("*/task-*-attempt-*.log")):
            # A batch-lane task serves several jobs: each task_started begins one's record.
            events = _events(log)
            for i, part in enumerate(_per_job(events)):
                started = part[0]
                name = log.parent.name
                record: dict[str, Any] = {"execution": name, "log": log.name, "in_lane": i > 0}
                record["process_start_s"] = (
                    _epoch(started["time"]) - starts.get(name, _epoch(started["time"]))
                    if i == 0
                    else 0.0
                )
                self._task_record(record, started, part)
                found.setdefault(str(started.get("job_id")), []).append(record)
        return found

    @staticmethod
    def _task_record(record: dict[str, Any], started: dict[str, Any], events: list[Any]) -> None:
        loaded = chunk = None
        for e in events:
            if e.get("event") == "model_loaded":
                loaded = e
                match = re.search(r"in ([0-9.]+) s", e["message"])
                record["model_load_s"] = float(match.group(1)) if match else None
            elif e.get("event") == "chunk_transcribed":
                chunk = e
                match = re.search(r"([0-9.]+) s of audio in", e["message"])
                record["audio_s"] = float(match.group(1)) if match else None
                record["transcribe_s"] = e.get("duration_s")
            elif e.get("event") == "task_done":
                record["task_s"] = _epoch(e["time"]) - _epoch(started["time"])
                record["outcome"] = e["message"]
        record["model_loads"] = int(loaded is not None)
        if loaded is not None and chunk is not None and record.get("model_load_s"):
            # The model loads lazily inside the transcribe call: split that call into
            # import + load, and inference (features, VAD, decoding) after the load.
            inference = _epoch(chunk["time"]) - _epoch(loaded["time"])
            record["inference_s"] = inference
            record["import_s"] = (
                float(record["transcribe_s"]) - inference - float(record["model_load_s"])
            )
        elif chunk is not None and record.get("transcribe_s") is not None:
            record["inference_s"] = float(record["transcribe_s"])  # model already loaded


def work_counts(executions_dir: Path, ours: set[str]) -> dict[str, Any]:
    """What the transcribe processes did, from their logs: processes started (one log per
    task attempt), model loads, chunks transcribed, and chunks of our jobs the model ran more
    than once (a duplicate, unless a crash came between)."""
    processes = loads = 0
    runs: Counter[tuple[str, int]] = Counter()
    for log in executions_dir.glob("*/task-*-attempt-*.log"):
        events = _events(log)
        if not events:
            continue
        processes += 1
        for e in events:
            if e.get("event") == "model_loaded":
                loads += 1
            elif e.get("event") == "chunk_transcribed" and e.get("job_id") in ours:
                runs[(str(e["job_id"]), int(e.get("chunk", 0)))] += 1
    chunks = sum(runs.values())
    return {
        "processes": processes,
        "model_loads": loads,
        "chunks_transcribed": chunks,
        "processes_per_100_chunks": 100 * processes / max(chunks, 1),
        "model_loads_per_100_chunks": 100 * loads / max(chunks, 1),
        "chunks_run_twice": {f"{j}#{c}": n for (j, c), n in runs.items() if n > 1},
    }


def _per_job(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    parts: list[list[dict[str, Any]]] = []
    for e in events:
        if e.get("event") == "task_started":
            parts.append([e])
        elif parts:
            parts[-1].append(e)
    return parts


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _events(log: Path) -> list[dict[str, Any]]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def summarise(
    subs: list[Submission],
    per_source: Counter[str],
    ready: Counter[str],
    requests_: Counter[str],
    executions: dict[str, list[dict[str, Any]]],
    wall_s: float,
    work: dict[str, Any],
    mode: str,
) -> dict[str, Any]:
    done = [s for s in subs if s.state == "COMPLETED"]
    # Refused: the client was told (an error answer, no job). Lost: accepted (a job id came
    # back, or the object is in the inbox) but no job document, or not final by the deadline.
    refused = [{"index": s.index, "via": s.via, "error": s.error} for s in subs if s.job_id is None]
    lost = [
        {"index": s.index, "via": s.via, "job_id": s.job_id, "state": s.state}
        for s in subs
        if s.job_id is not None and s.state not in ("COMPLETED", "FAILED", "CANCELLED")
    ]
    failed = [{"index": s.index, "job_id": s.job_id} for s in subs if s.state == "FAILED"]
    ours = {s.job_id for s in subs if s.job_id}
    duplicated = {
        "jobs_per_submission": {
            s.uri: per_source[s.uri] for s in subs if s.uri and per_source[s.uri] > 1
        },
        "transcripts_ready_per_job": {j: n for j, n in ready.items() if j in ours and n > 1},
        "transcription_requests_per_job": {
            j: n for j, n in requests_.items() if j in ours and n > 1
        },
        "chunks_run_twice": work["chunks_run_twice"],
    }
    if mode == "per_job":
        # One execution per job there; with pull workers a job's chunks spread over several.
        duplicated["executions_per_job"] = {
            j: len({r["execution"] for r in rs})
            for j, rs in executions.items()
            if j in ours and len({r["execution"] for r in rs}) > 1
        }
    stages: dict[str, dict[str, float]] = {}
    for label, a, b in STAGES:
        values = [
            s.state_times[b] - s.state_times[a] for s in done if {a, b} <= s.state_times.keys()
        ]
        if values:
            stages[label] = {
                "p50_s": percentile(values, 0.5),
                "p95_s": percentile(values, 0.95),
                "n": len(values),
            }
    for kind in ("short", "long"):
        values = [
            s.state_times["COMPLETED"] - s.state_times["QUEUED"]
            for s in done
            if s.kind == kind and {"QUEUED", "COMPLETED"} <= s.state_times.keys()
        ]
        if values and any(s.kind == "long" for s in subs):
            stages[f"end-to-end, {kind} files"] = {
                "p50_s": percentile(values, 0.5),
                "p95_s": percentile(values, 0.95),
                "n": len(values),
            }
    accept = [s.accepted - s.started for s in subs if s.job_id]
    for via in ("gsutil", "https"):
        values = [s.accepted - s.started for s in subs if s.via == via and s.job_id]
        if values:
            stages[f"submit ({via}: upload+accepted)"] = {
                "p50_s": percentile(values, 0.5),
                "p95_s": percentile(values, 0.95),
                "n": len(values),
            }
    first = min(s.started for s in subs)
    last = max((s.state_times["COMPLETED"] for s in done), default=first)
    span = max(last - first, 1e-9)
    audio = sum(s.audio_s for s in done)
    tasks = [
        r for rs in executions.values() for r in rs if r.get("inference_s") and r.get("task_s")
    ]
    task_figures: dict[str, Any] = {}
    if tasks:
        for r in tasks:
            # Everything in a task but the model's inference: process start and imports,
            # fetch, decode, model load, chunk result, merge, renderings, state, publish.
            r["overhead_s"] = float(r["process_start_s"]) + float(r["task_s"]) - r["inference_s"]
            r["rtf"] = r["inference_s"] / float(r["audio_s"])
        keys = ("process_start_s", "import_s", "model_load_s", "inference_s", "task_s")
        for key in (*keys, "overhead_s", "rtf"):
            values = [float(r[key]) for r in tasks if r.get(key) is not None]
            if values:
                task_figures[key] = {
                    "min": min(values),
                    "p50": percentile(values, 0.5),
                    "max": max(values),
                }
    # What the duplicate checks saw: with fewer than one of each per job, "0 duplicated" would
    # prove nothing (a tap that missed the messages would also count none twice).
    observed = {
        "jobs_for_our_sources": sum(per_source[s.uri] for s in subs if s.uri),
        "transcripts_ready_messages": sum(n for j, n in ready.items() if j in ours),
        "transcription_requests_messages": sum(n for j, n in requests_.items() if j in ours),
        "executions": len(
            {r["execution"] for j, rs in executions.items() if j in ours for r in rs}
        ),
        "task_attempts": sum(len(rs) for j, rs in executions.items() if j in ours),
        "model_loads": sum(
            r.get("model_loads", 0) for j, rs in executions.items() if j in ours for r in rs
        ),
    }
    return {
        "submitted": len(subs),
        "mode": mode,
        "work": {k: v for k, v in work.items() if k != "chunks_run_twice"},
        "observed": observed,
        "by_via": dict(Counter(s.via for s in subs)),
        "completed": len(done),
        "failed": failed,
        "refused": refused,
        "lost": lost,
        "duplicated": duplicated,
        "duplicated_count": sum(len(v) for v in duplicated.values()),
        "span_s": span,
        "wall_s": wall_s,
        "jobs_per_min": len(done) / span * 60,
        "model_loads_per_100_jobs": 100 * observed["model_loads"] / max(len(done), 1),
        "audio_s_total": audio,
        "audio_s_per_wall_s": audio / span,
        "submit_accept_max_s": max(accept, default=0.0),
        "stages": stages,
        "tasks": task_figures,
        "jobs": [asdict(s) for s in subs],
    }


def print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['completed']}/{r['submitted']} completed ({r['by_via']}), "
        f"{len(r['failed'])} failed, {len(r['refused'])} refused, {len(r['lost'])} lost, "
        f"{r['duplicated_count']} duplicated"
    )
    print(
        "observed for our jobs: "
        + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in r["observed"].items())
    )
    print(f"model loads per 100 completed jobs: {r['model_loads_per_100_jobs']:.1f}")
    w = r["work"]
    print(
        f"{r['mode']}: {w['processes']} transcribe processes, {w['model_loads']} model loads, "
        f"{w['chunks_transcribed']} chunks: {w['processes_per_100_chunks']:.1f} processes and "
        f"{w['model_loads_per_100_chunks']:.1f} model loads per 100 chunks"
    )
    print(
        f"throughput: {r['jobs_per_min']:.2f} jobs/min, "
        f"{r['audio_s_per_wall_s']:.3f} audio-s per wall-s "
        f"({r['audio_s_total']:.1f} s of audio in {r['span_s']:.1f} s, first submit to last "
        f"COMPLETED)"
    )
    print("\n| stage | p50 s | p95 s | n |\n| --- | --- | --- | --- |")
    for label, v in r["stages"].items():
        print(f"| {label} | {v['p50_s']:.2f} | {v['p95_s']:.2f} | {v['n']} |")
    if r["tasks"]:
        print("\n| transcribe task | min | p50 | max |\n| --- | --- | --- | --- |")
        for label, v in r["tasks"].items():
            print(f"| {label} | {v['min']:.3f} | {v['p50']:.3f} | {v['max']:.3f} |")
    for what in ("refused", "lost", "failed"):
        for item in r[what]:
            print(f"{what}: {item}")
    for kind, items in r["duplicated"].items():
        for key, n in items.items():
            print(f"duplicated ({kind}): {key} x{n}")
    print(f"\n{r['machine']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8, help="concurrent submissions")
    parser.add_argument("--deadline", type=float, default=900, help="seconds to wait for all")
    parser.add_argument("--port-base", type=int, default=PORT_BASE)
    parser.add_argument("--same-audio", action="store_true", help="one file N times (cache)")
    parser.add_argument("--sentences", type=int, default=4, help="sentences per file (~4 s each)")
    parser.add_argument("--submitters", type=int, default=16, help="concurrent uploads at most")
    parser.add_argument("--long", type=int, default=0, help="long files, besides the short")
    parser.add_argument("--long-minutes", type=float, default=20, help="minutes per long file")
    parser.add_argument("--chunk-seconds", type=int, help="the stack's chunk length (default 1200)")
    parser.add_argument("--mode", choices=("workers", "per_job"), default="workers")
    parser.add_argument("--max-workers", type=int, default=2, help="pull workers per tier")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--keep-logs", type=Path, help="copy the stack's logs here at the end")
    args = parser.parse_args()

    from common.config.settings import Tier
    from emulators.config import LocalStack, Ports
    from emulators.stack import Stack
    from tests.integration.helpers import Tap

    load_before = os.getloadavg()
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="audionotes-load-") as folder:
        files = [
            (path, seconds, "short")
            for path, seconds in speech_files(
                Path(folder) / "audio", args.jobs, same=args.same_audio, sentences=args.sentences
            )
        ] + [
            (path, seconds, "long")
            for path, seconds in long_files(Path(folder) / "long", args.long, args.long_minutes)
        ]
        if args.chunk_seconds:
            os.environ["AUDIONOTES_LIMITS__CHUNK_SECONDS"] = str(args.chunk_seconds)
        local = LocalStack(
            state_dir=Path(folder) / "stack",
            ports=Ports(args.port_base),
            default_model="tiny.en",
            notes_from="double",  # the pipeline's throughput, not the notes model's
            workers_mode=args.mode,
            max_workers=args.max_workers,
        )
        stack = Stack(local)
        try:
            ready_s = stack.up()
            os.environ.update(stack.local.environment())
            bench = Bench(stack, run_id)
            s = stack.local.settings
            taps = {
                topic: Tap(s.project, topic, f"load-{run_id}-{topic}")
                for topic in (s.topics.transcripts_ready, s.topics.transcription_requests)
            }
            subs = [
                Submission(i, "gsutil" if i % 2 == 0 else "https", str(path), seconds, kind)
                for i, (path, seconds, kind) in enumerate(files)
            ]
            started = time.monotonic()
            deadline = time.time() + args.deadline
            with ThreadPoolExecutor(max_workers=min(len(subs), args.submitters)) as pool:
                subs = list(pool.map(bench.submit, subs))
            bench.follow(subs, deadline)
            wall_s = time.monotonic() - started
            time.sleep(3)  # let late duplicates, if any, arrive before counting
            counted = {
                topic: Counter(m.attributes.get("job_id", "") for m in tap.drain(settle_s=3))
                for topic, tap in taps.items()
            }
            for tap in taps.values():
                tap.delete()
            report = summarise(
                subs,
                bench.jobs_per_source(),
                counted[s.topics.transcripts_ready],
                counted[s.topics.transcription_requests],
                bench.executions(),
                wall_s,
                work_counts(stack.local.executions_dir, {x.job_id for x in subs if x.job_id}),
                args.mode,
            )
        finally:
            stack.down()
            if args.keep_logs is not None:
                for what in (stack.local.log_dir, stack.local.executions_dir):
                    shutil.copytree(what, args.keep_logs / what.name, dirs_exist_ok=True)
    report["stack_ready_s"] = ready_s
    report["model"] = (
        f"{s.transcription.default_models[Tier.CPU]} ({s.transcription.device} -> int8 on CPU)"
    )
    report["beam"] = s.transcription.beam_size
    report["batched"] = s.transcription.batched
    report["batch_lanes"] = (
        f"{s.batch_lanes.count} lane(s), jobs <= {s.batch_lanes.short_max_s:.0f} s"
        if s.batch_lanes.short_max_s > 0 and args.mode == "per_job"
        else "off"
    )
    report["chunk_seconds"] = s.limits.chunk_seconds
    report["max_workers"] = args.max_workers
    report["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"load avg before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}; model {report['model']}, beam {report['beam']}, "
        f"batched {report['batched']}; {args.mode}, up to {args.max_workers} worker(s) per tier, "
        f"chunks of {s.limits.chunk_seconds} s; batch lanes {report['batch_lanes']}"
    )
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print_table(report)
    sys.exit(1 if report["lost"] or report["refused"] or report["duplicated_count"] else 0)


if __name__ == "__main__":
    main()
