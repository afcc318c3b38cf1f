"""The notes contract: what the ``notes`` function writes and the API serves.

``jobs/{job_id}/notes.json`` in the results bucket is ``NotesDocument.model_dump_json()``;
``notes.md`` is ``render_markdown(document)``, a pure function of it. ``Notes`` is also the
structured-output schema every model is asked to fill, so every field is required (OpenAI's
strict mode requires it) and "not stated" is ``null``, never a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.domain.jobs import NotesTemplate
from common.domain.speakers import SpeakerTalk

NOTES_JSON = "notes.json"
NOTES_MD = "notes.md"


class ActionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="What is to be done, as an imperative sentence.")
    owner: str | None = Field(description="Who will do it, only when the speaker says so.")
    due: str | None = Field(description="When it is due, as spoken ('Friday'), if stated.")


class Notes(BaseModel):
    """Structured diary notes of one recording."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(description="A short title, at most 12 words.")
    summary: str = Field(description="Three to six sentences.")
    key_points: list[str]
    action_items: list[ActionItem]
    decisions: list[str]
    open_questions: list[str]
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

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Attempt(BaseModel):
    """One call to a provider (or one decision not to call it), in order."""

    provider: str
    outcome: str  # ok | rate_limited | server_error | timeout | auth | bad_output | ...
    key: int | None = None  # which API key (its index, never the key)
    status: int | None = None
    waited_s: float = 0.0
    detail: str | None = None


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
    if n.action_items:
        out += [f"## {h['action_items']}", ""]
        for item in n.action_items:
            extra = [
                p
                for p in (item.owner and f"owner: {item.owner}", item.due and f"due: {item.due}")
                if p
            ]
            suffix = f" ({'; '.join(extra)})" if extra else ""
            out.append(f"- [ ] {_one_line(item.task)}{suffix}")
        out.append("")
    bullets("decisions", n.decisions)
    bullets("open_questions", n.open_questions)
    if n.topics:
        out += [f"## {h['topics']}", "", ", ".join(_one_line(t) for t in n.topics), ""]
    if n.people:
        out += [f"## {h['people']}", "", ", ".join(_one_line(p) for p in n.people), ""]
    if n.diary_entry.strip():
        out += [f"## {h['diary_entry']}", "", n.diary_entry.strip(), ""]
    p = doc.provenance
    out += [
        "---",
        "",
        f"<sub>Made by {p.provider} ({p.model}) from {p.chunks} chunk(s) in {p.calls} "
        f"call(s); cost ${p.cost_usd:.6f}.</sub>",
        "",
    ]
    return "\n".join(out)


def _one_line(text: str) -> str:
    return " ".join(text.split())
