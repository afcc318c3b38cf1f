"""Speaker diarization benchmark: DER and speaker counts on the speaker-eval set.

    .venv/bin/python bench/diarization.py [--spec auto|N|A-B|oracle] [--files NAME ...] [--json]

Builds the set on first use (``bench/speakers/build_set.py``, into ``.cache/speaker-eval``;
PyPI must be reachable then), runs ``diarize_samples`` on each file and scores it with
``bench/speakers/der.py``: DER with a 0.25 s collar around every reference boundary and
overlapped speech scored. ``--spec oracle`` gives the diarizer each file's reference speaker
count. Per set ("real": recorded and constructed conversations of real people; "espeak":
espeak-ng voices): total DER (all errors over all reference speech), the share of files with
the exact speaker count, diarization seconds and real-time factor. One warm-up call first, so
model loading is reported apart (``warmup_s``) and not in any file's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "speakers"))

from der import DerReport, der, read_rttm, write_rttm  # noqa: E402

from common.domain.speakers import SpeakerSpec  # noqa: E402
from run_jobs.transcribe.speakers.diarize import diarize_samples  # noqa: E402

DEFAULT_SET = REPO / ".cache" / "speaker-eval"
SR = 16_000


def read_wav(path: Path) -> np.ndarray:
    """The builder writes 16 kHz mono 16-bit PCM, so no resampling is needed here."""
    with wave.open(str(path)) as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SR, 1, 2):
            raise ValueError(f"{path}: not 16 kHz mono 16-bit")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def _row(entry: dict[str, Any], report: DerReport, seconds: float) -> dict[str, Any]:
    return {
        "name": entry["name"],
        "set": entry["set"],
        "origin": entry["origin"],
        "duration_s": entry["duration_s"],
        "reference_speakers": report.reference_speakers,
        "hypothesis_speakers": report.hypothesis_speakers,
        "der": report.der,
        "missed_s": report.missed,
        "false_alarm_s": report.false_alarm,
        "confusion_s": report.confusion,
        "scored_speech_s": report.total,
        "diarize_s": seconds,
        "rtf": seconds / entry["duration_s"],
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    speech = sum(r["scored_speech_s"] for r in rows)
    errors = sum(r["missed_s"] + r["false_alarm_s"] + r["confusion_s"] for r in rows)
    seconds = sum(r["diarize_s"] for r in rows)
    audio = sum(r["duration_s"] for r in rows)
    exact = sum(r["reference_speakers"] == r["hypothesis_speakers"] for r in rows)
    return {
        "files": len(rows),
        "der": errors / speech if speech else 0.0,
        "missed_s": sum(r["missed_s"] for r in rows),
        "false_alarm_s": sum(r["false_alarm_s"] for r in rows),
        "confusion_s": sum(r["confusion_s"] for r in rows),
        "scored_speech_s": speech,
        "count_accuracy": exact / len(rows) if rows else 0.0,
        "audio_s": audio,
        "diarize_s": seconds,
        "rtf": seconds / audio if audio else 0.0,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from build_set import build

    manifest = build(args.set_dir)
    entries = [f for f in manifest["files"] if f["set"] in args.sets]
    if args.files:
        unknown = set(args.files) - {f["name"] for f in manifest["files"]}
        if unknown:
            raise SystemExit(f"no such file in the set: {', '.join(sorted(unknown))}")
        entries = [f for f in manifest["files"] if f["name"] in args.files]
    if not entries:
        raise SystemExit("no files to run")

    started = time.perf_counter()
    diarize_samples(
        read_wav(args.set_dir / f"{entries[0]['name']}.wav")[: 10 * SR], SpeakerSpec.parse("auto")
    )
    warmup_s = time.perf_counter() - started

    rows: list[dict[str, Any]] = []
    for entry in entries:
        name = entry["name"]
        samples = read_wav(args.set_dir / f"{name}.wav")
        spec = SpeakerSpec.parse(str(entry["n_speakers"]) if args.spec == "oracle" else args.spec)
        started = time.perf_counter()
        turns = diarize_samples(samples, spec)
        seconds = time.perf_counter() - started
        hypothesis = [(t.start, t.end, t.speaker) for t in turns]
        reference = read_rttm((args.set_dir / f"{name}.rttm").read_text())
        report = der(reference, hypothesis, collar=args.collar)
        rows.append(_row(entry, report, seconds))
        if args.hyp_dir:
            args.hyp_dir.mkdir(parents=True, exist_ok=True)
            (args.hyp_dir / f"{name}.rttm").write_text(write_rttm(hypothesis, name))
        if not args.json:
            _print_row(rows[-1])

    by_set = {s: totals([r for r in rows if r["set"] == s]) for s in args.sets}
    # The recordings made as they are (the meeting excerpts and the phone call) apart from
    # the conversations cut together from clips: the first are what the DER aim is about.
    for origin in ("recorded", "constructed"):
        by_set[f"real/{origin}"] = totals(
            [r for r in rows if r["set"] == "real" and r["origin"] == origin]
        )
    return {
        "spec": args.spec,
        "collar_s": args.collar,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "warmup_s": warmup_s,
        # ru_maxrss is KiB on Linux: the whole process, set reading and scoring included.
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "files": rows,
        "sets": {s: t for s, t in by_set.items() if t["files"]},
    }


_HEAD = f"{'file':24} {'set':6} {'dur s':>6} {'DER':>7} {'miss':>6} {'FA':>6} {'conf':>6} "
_HEAD += f"{'ref':>3} {'hyp':>3} {'sec':>6} {'RTF':>6}"


def _print_row(r: dict[str, Any]) -> None:
    if not getattr(_print_row, "headed", False):
        print(_HEAD)
        _print_row.headed = True  # type: ignore[attr-defined]
    print(
        f"{r['name']:24} {r['set']:6} {r['duration_s']:6.1f} {r['der']:7.1%} "
        f"{r['missed_s']:6.2f} {r['false_alarm_s']:6.2f} {r['confusion_s']:6.2f} "
        f"{r['reference_speakers']:3d} {r['hypothesis_speakers']:3d} {r['diarize_s']:6.2f} "
        f"{r['rtf']:6.3f}"
    )


def _print_summary(result: dict[str, Any]) -> None:
    print(f"\nspec {result['spec']}, collar {result['collar_s']} s, {result['machine']}")
    for name, t in result["sets"].items():
        print(
            f"{name:16} {t['files']:2d} files  DER {t['der']:6.1%} (miss {t['missed_s']:.1f} s, "
            f"FA {t['false_alarm_s']:.1f} s, conf {t['confusion_s']:.1f} s of "
            f"{t['scored_speech_s']:.1f} s)  count exact {t['count_accuracy']:.0%}  "
            f"{t['diarize_s']:.1f} s for {t['audio_s']:.0f} s audio, RTF {t['rtf']:.3f}"
        )
    print(
        f"warm-up (model load) {result['warmup_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="auto", help="auto, N, A-B, or oracle")
    parser.add_argument("--files", nargs="+", metavar="NAME", help="only these (any set)")
    parser.add_argument("--sets", nargs="+", default=["real", "espeak"], choices=["real", "espeak"])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--collar", type=float, default=0.25)
    parser.add_argument("--set-dir", type=Path, default=DEFAULT_SET)
    parser.add_argument("--hyp-dir", type=Path, help="also write each hypothesis as RTTM here")
    parser.add_argument("--build-only", action="store_true", help="build the set and stop")
    args = parser.parse_args()
    if args.build_only:
        from build_set import build

        print(f"{len(build(args.set_dir)['files'])} files in {args.set_dir}")
        return 0
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
