"""The notes contract: what the ``notes`` function writes and the API serves.

``jobs/{job_id}/notes.json`` in the results bucket is ``NotesDocument.model_dump_json()``;
``notes.md`` is ``render_markdown(document)``, a pure function of it. ``Notes`` is also the
structured-output schema every model is asked to fill, so every field is required (OpenAI's
strict mode requires it) and "not stated" is ``null``, never a made-up value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.domain.jobs import NotesTemplate
from common.domain.speakers import SpeakerTalk, display

NOTES_JSON = "notes.json"
NOTES_MD = "notes.md"


_WHO = (
    "a speaker label such as 'SPEAKER_2' when the transcript's turns show it was that "
    "speaker, else a name said in the recording, else null"
)


def _raised_by_absent(data: Any) -> Any:
    # notes.json written before speakers had no raised_by: it was not stated.
    if isinstance(data, dict) and "raised_by" not in data:
        return {**data, "raised_by": None}
    return data


class ActionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="What is to be done, as an imperative sentence.")
    owner: str | None = Field(description=f"Who will do it, only when stated: {_WHO}.")
    due: str | None = Field(description="When it is due, as spoken ('Friday'), if stated.")
    raised_by: str | None = Field(description=f"Who asked for it: {_WHO}.")

    # No default for raised_by: strict structured outputs require every field, so older
    # stored notes are filled in before validation instead.
    @model_validator(mode="before")
    @classmethod
    def _from_older(cls, data: Any) -> Any:
        return _raised_by_absent(data)


class Raised(BaseModel):
    """A decision or an open question, and who raised it."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="One short sentence.")
    raised_by: str | None = Field(description=f"Who raised it: {_WHO}.")

    @model_validator(mode="before")
    @classmethod
    def _from_older(cls, data: Any) -> Any:
        # notes.json written before speakers held decisions and questions as plain strings.
        if isinstance(data, str):
            return {"text": data, "raised_by": None}
        return _raised_by_absent(data)


class Notes(BaseModel):
    """Structured diary notes of one recording."""

    model_config = ConfigDict(extra="forbid")

    # Action items first: grammar-constrained decoding writes properties in schema order, so
    # a model lists them while the transcript is freshest, before the prose fields.
    action_items: list[ActionItem]
    title: str = Field(description="A short title, at most 12 words.")
    summary: str = Field(description="Three to six sentences.")
    key_points: list[str]
    decisions: list[Raised]
    open_questions: list[Raised]
    topics: list[str] = Field(description="Short keyword phrases.")
    people: list[str] = Field(description="People mentioned by name.")
    diary_entry: str = Field(description="A first-person diary entry about the recording.")


class NotesBatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    notes: Notes


class NotesBatch(BaseModel):
    """Several short transcripts answered in one request; ``id`` echoes the input's id."""

    model_config = ConfigDict(extra="forbid")

    items: list[NotesBatchItem]


class Usage(BaseModel):
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    # Seconds the server spent on the call, as it reported them (our own model server does),
    # else as the call took: what a compute-priced (self-hosted) model is charged by.
    compute_s: float = Field(default=0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            compute_s=round(self.compute_s + other.compute_s, 3),
        )


class Attempt(BaseModel):
    """One call to a provider (or one decision not to call it), in order."""

    provider: str
    outcome: str  # ok | rate_limited | server_error | timeout | auth | bad_output | ...
    key: int | None = None  # which API key (its index, never the key)
    status: int | None = None
    waited_s: float = 0.0
    detail: str | None = None


class Dropped(BaseModel):
    """A value a model wrote that the transcript does not support, removed from the notes
    (``common.notes.grounding``): an owner or raised_by set to null, a due date set to null,
    a person or a copied item left out; or an owner replaced by the one the committing turn
    names (``common.notes.attribution``)."""

    field: str  # where it was, e.g. "action_items[0].owner" or "people"
    value: str
    reason: str


class Provenance(BaseModel):
    """What produced the notes, so that a result can be explained and costed."""

    provider: str  # openai | fallback | extractive
    model: str  # as the provider reported it
    requested_model: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    calls: int = 0
    chunks: int = 1
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    fallback_reason: str | None = None
    # True when these notes were made earlier for the same owner and content
    # (common/notes/cache.py): what produced them is above, and this job paid nothing.
    from_cache: bool = False
    # What grounding removed from a model's answer (empty for extractive notes, and in
    # notes.json written before grounding).
    dropped: list[Dropped] = Field(default_factory=list)
    # Commitments a speaker said in the first person that the model left out, added from the
    # extractive rule (``common.notes.attribution``).
    added: list[ActionItem] = Field(default_factory=list)


class NotesDocument(BaseModel):
    """``notes.json``."""

    job_id: str
    template: NotesTemplate
    language: str | None = None
    created_at: datetime
    notes: Notes
    provenance: Provenance
    # Talk time per speaker (from the transcript's turns, not from a model), and the names
    # given to the labels the notes use (PUT /v1/jobs/{id}/speakers).
    speakers: list[SpeakerTalk] = Field(default_factory=list)
    speaker_names: dict[str, str] = Field(default_factory=dict)

    def with_names(self, names: Mapping[str, str]) -> NotesDocument:
        """The same notes under other names (a rename): no model call, only a new rendering,
        since the notes hold labels and ``render_markdown`` looks the names up."""
        return self.model_copy(
            update={
                "speaker_names": dict(names),
                "speakers": [
                    t.model_copy(update={"name": names.get(t.speaker)}) for t in self.speakers
                ],
            }
        )


@dataclass(frozen=True)
class Template:
    """How one kind of recording is summarised: what to stress and what to call things."""

    name: NotesTemplate
    label: str
    focus: str
    diary_voice: str
    headings: dict[str, str]


_BASE_HEADINGS = {
    "summary": "Summary",
    "key_points": "Key points",
    "action_items": "Action items",
    "decisions": "Decisions",
    "open_questions": "Open questions",
    "topics": "Topics",
    "people": "People",
    "diary_entry": "Diary",
    "speakers": "Speakers",
}

TEMPLATES: dict[NotesTemplate, Template] = {
    NotesTemplate.MEETING: Template(
        NotesTemplate.MEETING,
        "Meeting",
        "a work meeting: stress decisions taken, action items with owner and due date, "
        "and unresolved questions",
        "as one of the participants, looking back on the meeting",
        _BASE_HEADINGS,
    ),
    NotesTemplate.LECTURE: Template(
        NotesTemplate.LECTURE,
        "Lecture",
        "a lecture or talk: stress the concepts taught, definitions, examples and what to "
        "study next; action items are assignments or follow-up reading",
        "as a student reflecting on what was learned",
        {**_BASE_HEADINGS, "key_points": "Key concepts", "action_items": "Follow-up"},
    ),
    NotesTemplate.INTERVIEW: Template(
        NotesTemplate.INTERVIEW,
        "Interview",
        "an interview: stress the questions asked, the answers given, notable quotes and the "
        "interviewee's positions",
        "as the interviewer, noting impressions",
        {**_BASE_HEADINGS, "key_points": "Highlights", "open_questions": "Questions raised"},
    ),
    NotesTemplate.DIARY: Template(
        NotesTemplate.DIARY,
        "Voice memo",
        "a personal voice memo or diary: stress what happened, feelings, plans and reminders",
        "in the speaker's own first-person voice",
        {**_BASE_HEADINGS, "action_items": "To do", "diary_entry": "Diary entry"},
    ),
}


def render_markdown(doc: NotesDocument) -> str:
    """``notes.md``: a pure function of ``notes.json``, so redelivery rewrites the same bytes."""
    tpl = TEMPLATES[doc.template]
    h = tpl.headings
    n = doc.notes
    out: list[str] = [f"# {_one_line(n.title) or tpl.label}", ""]
    out += [f"*{tpl.label} · job `{doc.job_id}` · {doc.created_at:%Y-%m-%d %H:%M} UTC*", ""]
    out += [f"## {h['summary']}", "", n.summary.strip() or "_Nothing was said._", ""]

    def bullets(key: str, items: list[str]) -> None:
        if items:
            out.extend([f"## {h[key]}", "", *(f"- {_one_line(i)}" for i in items), ""])

    bullets("key_points", n.key_points)
    names = doc.speaker_names

    def who(role: str, speaker: str | None) -> str | None:
        # Labels in notes.json, names in the rendering: a rename re-renders, no model call.
        shown = display(speaker, names)
        return f"{role}: {_one_line(shown)}" if shown else None

    if n.action_items:
        out += [f"## {h['action_items']}", ""]
        for item in n.action_items:
            due = f"due: {_one_line(item.due)}" if item.due else None
            # "raised by" only when someone other than the owner asked for it.
            asked = None if item.raised_by == item.owner else who("raised by", item.raised_by)
            extra = [p for p in (who("owner", item.owner), due, asked) if p]
            suffix = f" ({'; '.join(extra)})" if extra else ""
            out.append(f"- [ ] {_one_line(item.task)}{suffix}")
        out.append("")
    for key, raised in (("decisions", n.decisions), ("open_questions", n.open_questions)):
        if raised:
            out += [f"## {h[key]}", ""]
            for r in raised:
                by = who("raised by", r.raised_by)
                out.append(f"- {_one_line(r.text)}" + (f" ({by})" if by else ""))
            out.append("")
    if n.topics:
        out += [f"## {h['topics']}", "", ", ".join(_one_line(t) for t in n.topics), ""]
    if n.people:
        out += [f"## {h['people']}", "", ", ".join(_one_line(p) for p in n.people), ""]
    if n.diary_entry.strip():
        out += [f"## {h['diary_entry']}", "", n.diary_entry.strip(), ""]
    if doc.speakers:
        out += [f"## {h['speakers']}", ""]
        for talk in doc.speakers:
            name = _one_line(display(talk.speaker, names) or talk.speaker)
            out.append(f"- {name}: {_clock(talk.talk_s)} ({talk.share:.0%})")
        out.append("")
    p = doc.provenance
    left_out = f" {len(p.dropped)} value(s) corrected or left out." if p.dropped else ""
    if p.added:
        left_out += f" {len(p.added)} spoken commitment(s) added."
    out += [
        "---",
        "",
        f"<sub>Made by {p.provider} ({p.model}) from {p.chunks} chunk(s) in {p.calls} "
        f"call(s); cost ${p.cost_usd:.6f}.{left_out}</sub>",
        "",
    ]
    return "\n".join(out)


def _clock(seconds: float) -> str:
    """mm:ss (minutes past 59 keep counting: a three-hour meeting is 180:00)."""
    whole = round(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
