"""A transcript as plain text, SubRip (.srt), WebVTT (.vtt), whisper's TSV and RTTM: pure
renderings.

With speakers, the text is written as turns (``SPEAKER_1: ...``), a cue never holds two
speakers, SubRip prefixes the speaker, WebVTT uses its voice tag (``<v SPEAKER_1>``), the TSV
gains a speaker column, and RTTM lists the diarizer's turns in the layout NIST's and pyannote's
scoring tools read. Each shows a speaker's name where one was given (``speaker_names``).

Subtitle cues are built from the words' timestamps (a segment without words is spread over its
span by characters), so a cue fits ``max_lines`` lines of ``max_line_chars`` and lasts at most
``max_cue_s``. Words are never split: one longer than a line stands alone on its line. A cue
ends where it is best to end it among the places it could: a sentence end, then a clause mark or
a pause, then any word. ``SubtitleOptions`` states each limit once: the transcribe job writes
the defaults, the API takes the same fields as query parameters, the CLI as flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from common.domain.speakers import display
from common.domain.transcripts import Segment, Transcript

MaxLineChars = Annotated[int, Field(ge=10, le=200, description="Characters per subtitle line")]
MaxLines = Annotated[int, Field(ge=1, le=4, description="Lines per cue")]
MaxCueSeconds = Annotated[float, Field(ge=1, le=30, description="Longest a cue stays, seconds")]
MinGapSeconds = Annotated[float, Field(ge=0, le=2, description="Least time between cues, seconds")]
HighlightWords = Annotated[bool, Field(description="A cue per spoken word, that word underlined")]

# Where a cue ends best: after these, after a pause, else anywhere between words.
# (The escapes: fullwidth ? ! , ; : and the en dash, as CJK and typeset text write them.)
_SENTENCE_ENDS = tuple(".?!…。\uff1f\uff01")
_CLAUSE_ENDS = tuple(",;:—\u2013、\uff0c\uff1b\uff1a")
PAUSE_S = 0.5  # a breath between words: a good place to end a cue
LONG_PAUSE_S = 2.0  # silence: a cue never spans it (it would hang over nothing said)
MIN_CUE_S = 0.2  # what is left of a cue shortened for the gap to the next
_CJK = 0x2E80  # from here on, scripts that put no spaces between words


class SubtitleOptions(BaseModel):
    """How .srt and .vtt cues are cut; the defaults are what the transcribe job stores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_line_chars: MaxLineChars = 42  # the usual broadcast limit (BBC, Netflix: 42)
    max_lines: MaxLines = 2
    max_cue_s: MaxCueSeconds = 7.0
    # About two frames at 24 fps, so players show two cues as two.
    min_gap_s: MinGapSeconds = 0.1
    highlight_words: HighlightWords = False


DEFAULT_OPTIONS = SubtitleOptions()
SUBTITLE_FORMATS = ("srt", "vtt")  # the renderings SubtitleOptions shape


@dataclass(frozen=True)
class Token:
    """A word as spoken: its text keeps its leading space (none in languages written without)."""

    text: str
    start: float
    end: float
    strength: int = 0  # how good a cue end it is after this word: 0 any, 1 clause/pause, 2 sentence
    hard: bool = False  # a cue must end after it (a long silence or another speaker follows)
    speaker: str | None = None


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    tokens: tuple[Token, ...]

    @property
    def speaker(self) -> str | None:
        return self.tokens[0].speaker if self.tokens else None


# --- the renderings ----------------------------------------------------------------------------


def to_txt(transcript: Transcript) -> str:
    """A segment a line; with speakers, a turn a line: ``SPEAKER_1: what they said``."""
    spoken = _spoken(transcript.segments)
    if not transcript.turns:
        lines = [s.text.strip() for s in spoken]
    else:
        lines = []
        speaker: str | None = None
        for seg in spoken:
            if lines and seg.speaker == speaker:
                lines[-1] += " " + seg.text.strip()
            else:
                speaker = seg.speaker
                who = display(speaker, transcript.speaker_names) or "UNKNOWN"
                lines.append(f"{who}: {seg.text.strip()}")
    return "\n".join(lines) + ("\n" if lines else "")


def to_tsv(transcript: Transcript) -> str:
    """As whisper's CLI writes it: a header, then a segment a row, times in integer ms; with
    speakers, a fourth column names the speaker."""
    names = transcript.speaker_names
    rows = ["start\tend\ttext" + ("\tspeaker" if transcript.turns else "")]
    for seg in _spoken(transcript.segments):
        text = " ".join(seg.text.split())  # no tab or newline inside a field
        row = f"{_millis(seg.start)}\t{_millis(seg.end)}\t{text}"
        if transcript.turns:
            row += "\t" + " ".join((display(seg.speaker, names) or "").split())
        rows.append(row)
    return "\n".join(rows) + "\n"


def to_rttm(transcript: Transcript) -> str:
    """``SPEAKER <file> 1 <onset> <duration> <NA> <NA> <speaker> <NA> <NA>``, a turn a line.
    Fields are split on spaces, so a name's spaces become underscores."""
    lines = []
    for turn in transcript.turns:
        who = "_".join((display(turn.speaker, transcript.speaker_names) or "").split())
        duration = max(0.0, turn.end - turn.start)
        lines.append(
            f"SPEAKER {transcript.job_id} 1 {turn.start:.3f} {duration:.3f} <NA> <NA> "
            f"{who} <NA> <NA>"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def to_srt(transcript: Transcript, options: SubtitleOptions = DEFAULT_OPTIONS) -> str:
    """With two or more speakers each cue begins with its speaker ("Priya: ..."), counted in
    the line's width; SubRip has no other way to say who speaks."""
    names = transcript.speaker_names
    several = len({t.speaker for t in transcript.turns}) > 1

    def label(speaker: str | None) -> str:
        return f"{display(speaker, names)}:" if several and speaker else ""

    blocks = [
        f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for number, (start, end, text, _) in enumerate(
            _frames(transcript, options, str, label), start=1
        )
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript, options: SubtitleOptions = DEFAULT_OPTIONS) -> str:
    """Each cue of a transcript with speakers carries WebVTT's voice tag (``<v Priya>``),
    which players do not draw as text, so it takes no room on the line."""
    names = transcript.speaker_names

    def voiced(speaker: str | None, text: str) -> str:
        who = display(speaker, names)
        # The voice tag's annotation runs to '>': a name cannot hold one.
        return f"<v {_vtt_escaped(who)}>{text}" if who and transcript.turns else text

    blocks = [
        f"{_clock(start, '.')} --> {_clock(end, '.')}\n{voiced(speaker, text)}\n"
        for start, end, text, speaker in _frames(transcript, options, _vtt_escaped, _no_label)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(transcript: Transcript, fmt: str, options: SubtitleOptions = DEFAULT_OPTIONS) -> str:
    """The transcript in ``fmt`` (one of TRANSCRIPT_FORMATS); options shape srt and vtt only."""
    if fmt == "json":
        return transcript.model_dump_json(indent=1)
    if fmt == "txt":
        return to_txt(transcript)
    if fmt == "tsv":
        return to_tsv(transcript)
    if fmt == "srt":
        return to_srt(transcript, options)
    if fmt == "vtt":
        return to_vtt(transcript, options)
    if fmt == "rttm":
        return to_rttm(transcript)
    raise ValueError(f"no rendering {fmt!r}")


def _frames(
    transcript: Transcript,
    options: SubtitleOptions,
    escaped: Callable[[str], str],
    label: Callable[[str | None], str],
) -> list[tuple[float, float, str, str | None]]:
    """(start, end, text, speaker) of each cue shown; with highlight_words, of each word's
    state. ``label`` is the text a cue of that speaker begins with ("" for none)."""
    frames = []
    for cue in cues(transcript, options, label):
        prefix = label(cue.speaker)
        shown = (Token(prefix, cue.start, cue.start), *cue.tokens) if prefix else cue.tokens
        lines = layout(shown, options.max_line_chars)
        if options.highlight_words:
            states = _word_states(cue, lines, escaped)
        else:
            text = "\n".join("".join(escaped(t.text) for t in line).strip() for line in lines)
            states = [(cue.start, cue.end, text)]
        frames += [(start, end, text, cue.speaker) for start, end, text in states]
    return frames


def _no_label(speaker: str | None) -> str:
    return ""


def _vtt_escaped(text: str) -> str:
    """WebVTT text is markup: a word's own & < > are written as entities (SubRip has none)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- cues --------------------------------------------------------------------------------------


def cues(
    transcript: Transcript,
    options: SubtitleOptions = DEFAULT_OPTIONS,
    label: Callable[[str | None], str] = _no_label,
) -> list[Cue]:
    """The transcript's words cut into cues that fit the options (with the ``label`` a cue
    of its speaker begins with), in time order, apart by at least min_gap_s."""
    tokens = tokenize(transcript.segments)
    found: list[Cue] = []
    i = 0
    while i < len(tokens):
        j = _cue_end(tokens, i, options, label(tokens[i].speaker))
        chosen = tokens[i : j + 1]
        start = chosen[0].start
        end = min(max(t.end for t in chosen), start + options.max_cue_s)
        found.append(Cue(start, max(end, start + MIN_CUE_S), tuple(chosen)))
        i = j + 1
    return _spaced(found, options.min_gap_s)


def tokenize(segments: list[Segment]) -> list[Token]:
    """Every spoken word in order, across segments (a sentence may run on into the next)."""
    raw: list[Token] = []
    for seg in _spoken(segments):
        pieces = (
            [
                Token(w.word, w.start, max(w.end, w.start), speaker=w.speaker or seg.speaker)
                for w in seg.words
                if w.word.strip()
            ]
            if seg.words
            else _spread(seg)
        )
        for piece in pieces:
            if raw and raw[-1].speaker == piece.speaker and _continues(raw[-1].text, piece.text):
                last = raw.pop()
                piece = Token(
                    last.text + piece.text,
                    last.start,
                    max(last.end, piece.end),
                    speaker=last.speaker,
                )
            raw.append(piece)
    tokens: list[Token] = []
    for here, after in zip(raw, [*raw[1:], None], strict=False):
        pause = (after.start - here.end) if after is not None else 0.0
        word = here.text.rstrip()
        strength = 2 if word.endswith(_SENTENCE_ENDS) else 0
        if not strength and (word.endswith(_CLAUSE_ENDS) or pause >= PAUSE_S):
            strength = 1
        turn_ends = after is not None and after.speaker != here.speaker
        tokens.append(
            Token(
                here.text,
                here.start,
                here.end,
                strength=strength,
                hard=pause >= LONG_PAUSE_S or turn_ends,
                speaker=here.speaker,
            )
        )
    return tokens


def _continues(before: str, text: str) -> bool:
    """Whisper may cut a word in pieces ("2" ".4", "don" "'t"); a piece without a leading space
    belongs to the word before, except in scripts written without spaces (CJK)."""
    if text[:1].isspace() or not before:
        return False
    return ord(before[-1]) < _CJK and ord(text[0]) < _CJK


def _spread(seg: Segment) -> list[Token]:
    """A segment without word times: its words share its span in proportion to their length."""
    words = seg.text.split()
    total = sum(len(w) + 1 for w in words)
    span = max(seg.end - seg.start, 0.0)
    tokens, at = [], seg.start
    for word in words:
        length = span * (len(word) + 1) / total
        tokens.append(Token(" " + word, at, at + length, speaker=seg.speaker))
        at += length
    return tokens


def _cue_end(tokens: list[Token], i: int, options: SubtitleOptions, prefix: str) -> int:
    """The index of the last word of the cue that starts at ``tokens[i]``."""
    j = i  # the last word that still fits; a single word always does
    while not tokens[j].hard and j + 1 < len(tokens) and _fits(tokens[i : j + 2], options, prefix):
        j += 1
    if j + 1 == len(tokens) or tokens[j].hard:
        return j
    # Full: end at the best place in its later part, so as not to leave a stub of a cue.
    chars = len(_joined(tokens[i : j + 1]))
    best = j
    for k in range(j, i - 1, -1):
        if len(_joined(tokens[i : k + 1])) < chars / 4:
            break
        if tokens[k].strength > tokens[best].strength:
            best = k
    return best


def _fits(tokens: list[Token], options: SubtitleOptions, prefix: str = "") -> bool:
    if tokens[-1].end - tokens[0].start > options.max_cue_s:
        return False
    shown = [Token(prefix, 0, 0), *tokens] if prefix else tokens
    return len(wrap(shown, options.max_line_chars)) <= options.max_lines


def _spaced(found: list[Cue], gap: float) -> list[Cue]:
    """Cues at least ``gap`` apart: the earlier one ends sooner, or if too short for that,
    the later one starts later (never before the earlier, whatever the word times say)."""
    spaced: list[Cue] = []
    for cue in found:
        if spaced:
            prev = spaced[-1]
            if cue.start - prev.end < gap:
                end = max(cue.start - gap, prev.start + MIN_CUE_S)
                spaced[-1] = Cue(prev.start, min(prev.end, end), prev.tokens)
                start = max(cue.start, spaced[-1].end + gap)
                cue = Cue(start, max(cue.end, start + MIN_CUE_S), cue.tokens)
        spaced.append(cue)
    return spaced


# --- lines -------------------------------------------------------------------------------------


def wrap(tokens: Sequence[Token], width: int) -> list[str]:
    """The words on as few lines of at most ``width`` as greedy filling gives, evened out."""
    return [_joined(line) for line in layout(tokens, width)]


def layout(tokens: Sequence[Token], width: int) -> list[list[Token]]:
    """The words in lines: as few as greedy filling to ``width`` gives, at the narrowest width
    that needs no more (two halves read better than a full line and a stub)."""
    lines = _greedy(tokens, width)
    if len(lines) < 2:
        return lines
    low, high = max(len(t.text.strip()) for t in tokens), width
    while low < high:
        middle = (low + high) // 2
        if len(_greedy(tokens, middle)) <= len(lines):
            high = middle
        else:
            low = middle + 1
    return _greedy(tokens, high)


def _greedy(tokens: Sequence[Token], width: int) -> list[list[Token]]:
    lines: list[list[Token]] = []
    line: list[Token] = []
    for token in tokens:
        if line and len(_joined([*line, token])) > width:
            lines.append(line)
            line = []
        line.append(token)
    if line:
        lines.append(line)
    return lines


def _joined(tokens: Sequence[Token]) -> str:
    return "".join(t.text for t in tokens).strip()


def _word_states(
    cue: Cue, lines: list[list[Token]], escaped: Callable[[str], str]
) -> list[tuple[float, float, str]]:
    """The cue once per word, from that word's start to the next's, that word underlined.

    Whisper's --highlight_words does the same. <u> is in both SubRip and WebVTT and players
    draw it as it is; WebVTT's inline karaoke timestamps (<00:00:01.000>) change nothing on
    screen unless the page styles ::cue(:past), and SubRip has no such thing.
    """
    starts = [cue.start]
    for token in cue.tokens[1:]:
        starts.append(min(max(token.start, starts[-1]), cue.end))
    ends = [*starts[1:], cue.end]
    states = []  # on the plain cue's lines: a tag moves no word
    for current, (start, end) in zip(cue.tokens, zip(starts, ends, strict=True), strict=True):
        if end <= start:
            continue  # a word said in no time: its state would never show
        text = "\n".join(
            "".join(
                _underlined(escaped(t.text)) if t is current else escaped(t.text) for t in line
            ).strip()
            for line in lines
        )
        states.append((start, end, text))
    return states


def _underlined(text: str) -> str:
    word = text.lstrip()
    return f"{text[: len(text) - len(word)]}<u>{word}</u>"


# --- times -------------------------------------------------------------------------------------


def _spoken(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if s.text.strip()]


def _millis(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _clock(seconds: float, separator: str) -> str:
    millis = _millis(seconds)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"
