"""The requests we send: map (one chunk), reduce (merge partial notes) and batch.

The first line of every system prompt is a machine-readable header,
``audionotes-task: <task>; template: <template>``, and each user message starts with a fixed
marker line. They tell a reader of the request (our logs; the local OpenAI-compatible
server) what is being asked without parsing prose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from common.domain.jobs import NotesTemplate
from common.domain.notes import TEMPLATES, Notes


class PromptKind(StrEnum):
    NOTES = "notes"
    MERGE = "merge"
    BATCH = "batch"


TRANSCRIPT_MARKER = "TRANSCRIPT:"
PARTIAL_NOTES_MARKER = "PARTIAL NOTES (JSON list, in order):"
BATCH_MARKER = "TRANSCRIPTS (JSON list of {id, text}):"

_HEADER = re.compile(r"^audionotes-task: (\w+); template: (\w+)$", re.MULTILINE)

_RULES = (
    "Write structured diary notes in the language of the transcript. Use only what the "
    "transcript says: never invent names, owners, dates or decisions; use null for an action "
    "item's owner or due date unless it is stated. Key points, decisions and open questions "
    "are short sentences. Topics are short keyword phrases."
)


def _system(task: PromptKind, template: NotesTemplate, schema: type[BaseModel] | None) -> str:
    tpl = TEMPLATES[template]
    lines = [
        f"audionotes-task: {task.value}; template: {template.value}",
        f"The recording is {tpl.focus}.",
        _RULES,
        f"The diary entry is written {tpl.diary_voice}.",
    ]
    if task is PromptKind.MERGE:
        lines.append(
            "You are given the notes of consecutive parts of one recording. Merge them into "
            "one set of notes for the whole recording: deduplicate, keep every action item, "
            "decision and open question, and write one summary and one diary entry."
        )
    if task is PromptKind.BATCH:
        lines.append(
            "You are given several independent transcripts. Answer with one item per "
            "transcript, in the same order, echoing its id."
        )
    if schema is not None:
        # For json_object mode (vLLM, Ollama, llama.cpp): the schema travels in the prompt.
        lines.append("Reply with one JSON object that follows this JSON schema exactly:")
        lines.append(json.dumps(schema.model_json_schema(), separators=(",", ":")))
    return "\n".join(lines)


def map_messages(
    text: str,
    template: NotesTemplate,
    *,
    part: int = 1,
    parts: int = 1,
    schema_in_prompt: type[BaseModel] | None = None,
) -> list[dict[str, Any]]:
    where = f" (part {part} of {parts})" if parts > 1 else ""
    return [
        {"role": "system", "content": _system(PromptKind.NOTES, template, schema_in_prompt)},
        {"role": "user", "content": f"{TRANSCRIPT_MARKER}{where}\n{text}"},
    ]


def reduce_messages(
    partials: Sequence[Notes],
    template: NotesTemplate,
    *,
    schema_in_prompt: type[BaseModel] | None = None,
) -> list[dict[str, Any]]:
    body = json.dumps([p.model_dump(mode="json") for p in partials], ensure_ascii=False)
    return [
        {"role": "system", "content": _system(PromptKind.MERGE, template, schema_in_prompt)},
        {"role": "user", "content": f"{PARTIAL_NOTES_MARKER}\n{body}"},
    ]


def batch_messages(
    items: Sequence[tuple[str, str]],
    template: NotesTemplate,
    *,
    schema_in_prompt: type[BaseModel] | None = None,
) -> list[dict[str, Any]]:
    body = json.dumps([{"id": i, "text": t} for i, t in items], ensure_ascii=False)
    return [
        {"role": "system", "content": _system(PromptKind.BATCH, template, schema_in_prompt)},
        {"role": "user", "content": f"{BATCH_MARKER}\n{body}"},
    ]


def parse_request(messages: Sequence[dict[str, Any]]) -> tuple[PromptKind, NotesTemplate, str]:
    """``(task, template, payload)`` of a request built here; ValueError if it is not one."""
    system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
    user = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    match = _HEADER.search(system)
    if not match:
        raise ValueError("the system message has no 'audionotes-task: ...' header")
    task, template = PromptKind(match.group(1)), NotesTemplate(match.group(2))
    marker = {
        PromptKind.NOTES: TRANSCRIPT_MARKER,
        PromptKind.MERGE: PARTIAL_NOTES_MARKER,
        PromptKind.BATCH: BATCH_MARKER,
    }[task]
    if not user.startswith(marker):
        raise ValueError(f"the user message does not start with {marker!r}")
    payload = user.split("\n", 1)[1] if "\n" in user else ""
    return task, template, payload
