"""Custom vocabulary: how often rare names and jargon come out right, without and with the
job's ``vocabulary`` (faster-whisper's hotwords), through the project's Transcriber.

    .venv/bin/python bench/vocabulary.py --model tiny.en

The speech is espeak-ng reading sentences full of names a small model has rarely heard; the
score is the share of those terms found, spelled as given, in the transcript, and the WER of
the whole text. Both runs decode the same samples with the same options but the hotwords.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.data.speech import make_speech, word_error_rate  # noqa: E402

TERMS = ["Priya", "Kubernetes", "Siobhan", "Nguyen", "Grafana", "Terraform", "Okonkwo", "Postgres"]
SENTENCES = [
    "Priya will move the billing service to Kubernetes before the end of the month.",
    "Siobhan asked whether Grafana can show the queue depth for every region.",
    "Nguyen said the Terraform plan failed because the Postgres password had expired.",
    "Okonkwo will write the migration guide, and Priya will review it on Thursday.",
    "We agreed that Kubernetes upgrades wait until Siobhan is back from leave.",
    "Grafana alerts go to Nguyen first, then to Okonkwo if nobody answers.",
    "The Postgres replicas need more memory; Terraform should size them next week.",
    "Siobhan and Priya will demo the new dashboards in Grafana on Friday.",
]


def term_hits(text: str) -> tuple[int, int]:
    """(terms found as spelled, terms said): each sentence's terms counted once per mention."""
    words = re.findall(r"[A-Za-z]+", text)
    said = sum(s.count(term) for s in SENTENCES for term in TERMS)
    found = sum(min(words.count(term), sum(s.count(term) for s in SENTENCES)) for term in TERMS)
    return found, said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()

    from common.audio.decode import decode_window
    from common.config.settings import Settings
    from run_jobs.transcribe.model_store import model_path
    from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions

    settings = Settings(
        project="audionotes-bench", buckets={"inbox": "bench-in", "results": "bench-out"}
    )
    text = " ".join(SENTENCES)
    with tempfile.TemporaryDirectory() as folder:
        samples = decode_window(make_speech(Path(folder) / "names.wav", text))
    plain = WhisperOptions.from_settings(args.model, settings)
    rows = []
    for label, hotwords in (("without vocabulary", None), ("with vocabulary", ", ".join(TERMS))):
        options = replace(plain, hotwords=hotwords)
        transcriber = Transcriber(model_path(args.model, settings, None), options)
        started = time.monotonic()
        result = transcriber.transcribe(samples, language="en")
        seconds = time.monotonic() - started
        heard = " ".join(s.text.strip() for s in result.segments)
        found, said = term_hits(heard)
        rows.append((label, found, said, word_error_rate(text, heard), seconds))
        print(f"{label}: {heard}", file=sys.stderr)

    print(
        f"model {args.model} ({plain.compute_type}, batched={plain.batched}), "
        f"{len(samples) / 16_000:.0f} s of espeak speech, {len(TERMS)} terms; "
        f"{platform.node()} {datetime.now(UTC):%Y-%m-%d}"
    )
    print("| run | terms right | WER | seconds |")
    print("| --- | --- | --- | --- |")
    for label, found, said, wer, seconds in rows:
        print(f"| {label} | {found} of {said} | {wer:.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
