"""GPU throughput benchmark: model load time, time to first segment, RTF and peak GPU memory by
model x batch size x compute type, on one long file (20 minutes by default), bare faster-whisper.

    .venv/bin/python bench/gpu.py --models large-v3,large-v3-turbo --batch-sizes 1,8,16
    .venv/bin/python bench/gpu.py --models large-v3=/models/large-v3 --out gpu.json
    .venv/bin/python bench/gpu.py --device cpu --models tiny.en --minutes 1 \\
        --batch-sizes 1,8 --compute-types int8          # smoke test of the script on a CPU

Written for a CUDA machine (this project has none; tests never need one). Batch 1 is
``WhisperModel.transcribe`` (sequential, with its temperature fallback); batch N > 1 is
``BatchedInferencePipeline.transcribe(batch_size=N)``. Both decode with beam 5, VAD on and word
timestamps on (the project's ``Transcription`` defaults), each a flag. The audio is decoded to
16 kHz before timing: RTF is the model's, not PyAV's.

Each cell (model, compute type, batch size) runs in its own process, so its model load and
memory are its own: CTranslate2 keeps freed GPU memory in its caching allocator, so cells
sharing a process would inherit the previous peak. ``torch.cuda.max_memory_allocated`` sees only
torch's allocator, not CTranslate2's, so peak GPU memory is device-wide memory in use, sampled
in a thread: through pynvml when it imports, else ``nvidia-smi --query-gpu=memory.used -lms``
streaming every 50 ms; the JSON says which. Other processes on the GPU count: run it alone. On a
CPU the cell reports its process's peak RSS instead.

Load time is ``WhisperModel(...)``; time to first segment runs from the ``transcribe`` call to
the first segment out of the generator, on the first (cold) pass after the load; RTF is the
minimum over ``--repeats`` passes (the least-disturbed one).

Models (``--models``, comma-separated): ``NAME`` is found as a deployment finds it
(``Settings.transcription.models`` through ``model_store.model_path``: a baked folder,
``gs://`` is not reachable here, a package), else, for a catalog name, its hub repo (which
faster-whisper downloads: a GPU machine may reach the hub, this one cannot); ``NAME=SPEC`` loads
SPEC, a folder or a hub repo, under NAME. The default is the whole catalog
(common/domain/whisper_models.py). A cell that cannot load records its error and the run goes on.

The audio (unless ``--audio``): espeak-ng reading made-up sentences (tests/data/speech.py
``SENTENCE_PARTS``), about 5 minutes of it, looped by sox to ``--minutes``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.domain.errors import InvalidInput  # noqa: E402
from common.domain.whisper_models import CATALOG  # noqa: E402
from run_jobs.transcribe.model_store import ModelUnavailable  # noqa: E402

SAMPLE_RATE = 16_000
PIECE_MINUTES = 5.0  # distinct speech before the loop starts
COMPUTE_TYPES = {"cuda": ("float16", "int8_float16"), "cpu": ("int8",)}


@dataclass(frozen=True)
class Cell:
    model: str  # the name it is reported under
    spec: str  # what WhisperModel loads: a folder or a hub repo
    compute_type: str
    batch_size: int


def parse_models(text: str) -> list[tuple[str, str | None]]:
    """``a,b=SPEC`` -> [("a", None), ("b", "SPEC")]; None: resolve ``a`` like a deployment."""
    out: list[tuple[str, str | None]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, spec = item.partition("=")
        out.append((name, spec or None))
    return out


def _ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers, e.g. 1,8,16")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    a = p.add_argument
    a("--models", type=parse_models, default=parse_models(",".join(CATALOG)), help="NAME[=SPEC],")
    a("--batch-sizes", type=_ints, default=[1, 8, 16], help="1 = sequential WhisperModel")
    a("--compute-types", type=_names, default=None, help="default: float16,int8_float16 (cuda)")
    a("--device", choices=("cuda", "cpu"), default="cuda")
    a("--device-index", type=int, default=0)
    a("--minutes", type=float, default=20.0, help="length of the generated file")
    a("--audio", type=Path, default=None, help="use this file instead of generated speech")
    a("--beam-size", type=int, default=5)
    a("--language", default="en", help="'' to let the model detect it")
    a("--no-vad", dest="vad", action="store_false", help="VAD off (batched needs clips then)")
    a("--no-word-timestamps", dest="word_timestamps", action="store_false")
    a("--repeats", type=int, default=1, help="passes per cell after one load; RTF is the min")
    a("--cpu-threads", type=int, default=0, help="CTranslate2 threads (0: its default)")
    a("--cell-timeout", type=float, default=1800.0, help="s per cell before it is given up")
    a("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-gpu")
    a("--json", action="store_true", help="print only the JSON line")
    a("--out", type=Path, default=None, help="also write the JSON report here")
    a("--cell", nargs=4, metavar=("NAME", "SPEC", "COMPUTE", "BATCH"), help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.compute_types is None:
        args.compute_types = list(COMPUTE_TYPES[args.device])
    return args


def resolve(name: str, spec: str | None) -> str:
    """What WhisperModel should load for ``name`` (module docstring, "Models")."""
    if spec:
        return spec
    from common.config.settings import Settings

    settings = Settings(
        project="audionotes-bench", buckets={"inbox": "bench-inbox", "results": "bench-results"}
    )
    if name in settings.transcription.models:
        from run_jobs.transcribe.model_store import model_path

        return str(model_path(name, settings, None))
    if name in CATALOG:
        return CATALOG[name].hub_repo
    return name  # a folder or hub repo given as the name itself


def grid(args: argparse.Namespace, specs: dict[str, str]) -> list[Cell]:
    """Model-major, then compute type, then batch size: one model's cells run together."""
    return [
        Cell(name, specs[name], compute, batch)
        for (name, _), compute, batch in product(args.models, args.compute_types, args.batch_sizes)
        if name in specs
    ]


# --- audio ----------------------------------------------------------------------------------


def _sentences(seconds: float, seed: int = 7) -> str:
    """Made-up sentences (~6 s each at espeak-ng's 160 wpm) enough for ``seconds``."""
    from tests.data.speech import SENTENCE_PARTS

    rng = random.Random(seed)
    parts = {k: v.split("|") for k, v in SENTENCE_PARTS.items()}
    count = math.ceil(seconds / 6.0)
    return " ".join(
        " ".join(rng.choice(parts[k]) for k in ("who", "did", "what", "where", "when", "why"))
        .capitalize()
        .rstrip()
        + "."
        for _ in range(count)
    )


def loops_needed(total_s: float, piece_s: float) -> int:
    """sox ``repeat N`` plays the piece N + 1 times: the N that reaches ``total_s``."""
    return max(0, math.ceil(total_s / piece_s) - 1)


def speech(folder: Path, minutes: float) -> Path:
    """espeak-ng speech looped to ``minutes`` (module docstring); cached in ``folder``."""
    from tests.data.speech import make_speech

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"speech-{minutes:g}min.wav"
    if out.exists():
        return out
    total = minutes * 60
    piece = make_speech(
        folder / "piece.wav", _sentences(min(total, PIECE_MINUTES * 60)), speed_wpm=160
    )
    piece_s = float(
        subprocess.run(
            ["soxi", "-D", str(piece)], capture_output=True, text=True, check=True
        ).stdout
    )
    partial = out.with_suffix(".part.wav")
    subprocess.run(
        [
            "sox",
            str(piece),
            str(partial),
            "repeat",
            str(loops_needed(total, piece_s)),
            "trim",
            "0",
            f"{total:.3f}",
        ],
        check=True,
    )
    partial.rename(out)
    return out


# --- memory ---------------------------------------------------------------------------------


def parse_smi(line: str) -> float | None:
    """One ``memory.used`` line of nvidia-smi's csv,noheader,nounits output, in MiB."""
    try:
        return float(line.strip().split(",")[0])
    except ValueError:
        return None


class PeakMemory:
    """Peak device memory in use (MiB) while the block runs, sampled in a thread."""

    def __init__(self, device_index: int, interval_s: float = 0.05) -> None:
        self.index = device_index
        self.interval_s = interval_s
        self.source = "none"
        self.baseline_mib: float | None = None
        self.peak_mib: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._smi: subprocess.Popen[str] | None = None

    def _seen(self, mib: float | None) -> None:
        if mib is None:
            return
        if self.baseline_mib is None:
            self.baseline_mib = mib
        self.peak_mib = mib if self.peak_mib is None else max(self.peak_mib, mib)

    def __enter__(self) -> PeakMemory:
        handle = None
        try:
            import pynvml  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            pynvml = None
        if pynvml is not None:
            try:
                pynvml.nvmlInit()
                handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            except pynvml.NVMLError:  # no driver or no such device: nvidia-smi next
                handle = None
        if handle is not None:
            self.source = "pynvml"
            self._seen(pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)

            def poll() -> None:
                while not self._stop.wait(self.interval_s):
                    self._seen(pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)

            self._start(poll)
        elif shutil.which("nvidia-smi"):
            self.source = "nvidia-smi"
            query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
            where = ["-i", str(self.index)]
            first = subprocess.run([*query, *where], capture_output=True, text=True, check=True)
            self._seen(parse_smi(first.stdout))
            self._smi = subprocess.Popen(
                [*query, *where, "-lms", str(round(self.interval_s * 1000))],
                stdout=subprocess.PIPE,
                text=True,
            )
            smi = self._smi

            def read() -> None:
                assert smi.stdout is not None
                for line in smi.stdout:
                    self._seen(parse_smi(line))

            self._start(read)
        return self

    def _start(self, target: Any) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __exit__(self, *_: object) -> None:
        time.sleep(self.interval_s * 2)  # one more sample after the work
        self._stop.set()
        if self._smi is not None:
            self._smi.terminate()
            self._smi.wait()
        for thread in self._threads:
            thread.join(timeout=2)


# --- one cell, in its own process ----------------------------------------------------------


def _timed(segments: Iterator[Any], called: float) -> tuple[float, float, int, int]:
    """(first segment s, whole pass s, segments, words), from the transcribe call."""
    first = math.nan
    count = words = 0
    for segment in segments:
        if count == 0:
            first = time.perf_counter() - called
        count += 1
        words += len(segment.words or [])
    return first, time.perf_counter() - called, count, words


def run_cell(cell: Cell, audio_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    audio = decode_audio(str(audio_path), sampling_rate=SAMPLE_RATE)
    audio_s = len(audio) / SAMPLE_RATE
    options: dict[str, Any] = {
        "beam_size": args.beam_size,
        "language": args.language or None,
        "vad_filter": args.vad,
        "word_timestamps": args.word_timestamps,
    }
    result: dict[str, Any] = {**asdict(cell), "audio_s": audio_s, "options": options}
    memory = PeakMemory(args.device_index) if args.device == "cuda" else None
    with memory or _nothing():
        started = time.perf_counter()
        model = WhisperModel(
            cell.spec,
            device=args.device,
            device_index=args.device_index,
            compute_type=cell.compute_type,
            cpu_threads=args.cpu_threads,
        )
        result["load_s"] = time.perf_counter() - started
        runner: Any = model if cell.batch_size == 1 else BatchedInferencePipeline(model)
        batch = {} if cell.batch_size == 1 else {"batch_size": cell.batch_size}
        passes = []
        for _ in range(max(1, args.repeats)):
            called = time.perf_counter()
            segments, _info = runner.transcribe(audio, **options, **batch)
            passes.append(_timed(segments, called))
    first, _, count, words = passes[0]
    best = min(p[1] for p in passes)
    result |= {
        "first_segment_s": first,
        "transcribe_s": best,
        "rtf": best / audio_s,
        "x_real_time": audio_s / best,
        "passes_s": [p[1] for p in passes],
        "segments": count,
        "words": words,
        "gpu_mem_source": memory.source if memory else "none (cpu)",
        "gpu_mem_baseline_mib": memory.baseline_mib if memory else None,
        "gpu_mem_peak_mib": memory.peak_mib if memory else None,
        # ru_maxrss is in KiB on Linux; the whole cell process, model and audio included.
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    return result


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _child(cell: Cell, audio: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``run_cell`` in a fresh process; a failure is the cell's result, with its reason."""
    flags = [
        "--device",
        args.device,
        "--device-index",
        str(args.device_index),
        "--beam-size",
        str(args.beam_size),
        "--language",
        args.language,
        "--repeats",
        str(args.repeats),
        "--cpu-threads",
        str(args.cpu_threads),
        "--audio",
        str(audio),
        "--cell",
        cell.model,
        cell.spec,
        cell.compute_type,
        str(cell.batch_size),
    ]
    flags += [] if args.vad else ["--no-vad"]
    flags += [] if args.word_timestamps else ["--no-word-timestamps"]
    try:
        done = subprocess.run(
            [sys.executable, __file__, *flags],
            capture_output=True,
            text=True,
            timeout=args.cell_timeout,
        )
    except subprocess.TimeoutExpired:
        return {**asdict(cell), "error": f"over --cell-timeout {args.cell_timeout:g} s"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return {**asdict(cell), "error": tail[0][:300]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- the run ---------------------------------------------------------------------------------


def hardware(device: str, index: int) -> dict[str, Any]:
    out: dict[str, Any] = {"host": platform.node(), "machine": platform.machine()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        out["cpu"] = next(
            line.split(":", 1)[1].strip() for line in cpu.splitlines() if "model name" in line
        )
    except (OSError, StopIteration):
        out["cpu"] = platform.processor()
    out["cores"] = os.cpu_count()
    if device == "cuda" and shutil.which("nvidia-smi"):
        query = "--query-gpu=name,driver_version,memory.total"
        done = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader", "-i", str(index)],
            capture_output=True,
            text=True,
        )
        out["gpu"] = done.stdout.strip() or done.stderr.strip()
    import ctranslate2
    import faster_whisper

    out["faster_whisper"] = faster_whisper.__version__
    out["ctranslate2"] = ctranslate2.__version__
    out["cuda_devices"] = ctranslate2.get_cuda_device_count()
    return out


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "model",
        "compute",
        "batch",
        "load s",
        "first segment s",
        "RTF",
        "x real time",
        "peak GPU MiB (baseline)",
        "peak RSS MiB",
        "segments",
        "words",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        if "error" in r:
            cells = [r["model"], r["compute_type"], str(r["batch_size"]), f"error: {r['error']}"]
            cells += [""] * (len(head) - len(cells))
        else:
            gpu = _fmt(r["gpu_mem_peak_mib"], ",.0f")
            if r["gpu_mem_baseline_mib"] is not None:
                gpu += f" ({r['gpu_mem_baseline_mib']:,.0f}, {r['gpu_mem_source']})"
            cells = [
                r["model"],
                r["compute_type"],
                str(r["batch_size"]),
                _fmt(r["load_s"], ".2f"),
                _fmt(r["first_segment_s"], ".2f"),
                _fmt(r["rtf"], ".4f"),
                _fmt(r["x_real_time"], ".1f"),
                gpu,
                _fmt(r["rss_peak_mib"], ",.0f"),
                str(r["segments"]),
                str(r["words"]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.cell:
        name, spec, compute, batch = args.cell
        print(json.dumps(run_cell(Cell(name, spec, compute, int(batch)), args.audio, args)))
        return
    audio = args.audio or speech(args.workdir, args.minutes)
    specs: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    for name, spec in args.models:
        try:
            specs[name] = resolve(name, spec)
        except (ModelUnavailable, InvalidInput, ImportError, OSError) as exc:  # the rest run
            results.append(
                {
                    "model": name,
                    "spec": spec,
                    "compute_type": "-",
                    "batch_size": 0,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    cells = grid(args, specs)
    started = datetime.now(UTC)
    if not args.json:
        print(f"# {started:%Y-%m-%d %H:%M} UTC, {args.device}, {len(cells)} cells, {audio}")
    for cell in cells:
        results.append(_child(cell, audio, args))
        if not args.json:
            print(
                f"  {cell.model} {cell.compute_type} batch {cell.batch_size}: "
                + (results[-1].get("error") or f"RTF {results[-1]['rtf']:.4f}"),
                flush=True,
            )
    report = {
        "started": started.isoformat(timespec="seconds"),
        "device": args.device,
        "hardware": hardware(args.device, args.device_index),
        "audio": str(audio),
        "smoke": args.device != "cuda",  # a CPU run checks the script, it is no GPU figure
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if not args.json:
        print("\n" + table(results) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
