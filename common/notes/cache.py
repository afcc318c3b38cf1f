"""Notes made once per owner and content: the same transcript text, template and notes
options of one owner give the notes made the first time, at no cost.

Keyed within one owner only: another owner's identical audio pays for its own notes, so
nothing of one owner (not even that the same words were summarised before) reaches another.
The model configured is part of the key, so changing it makes notes anew.
"""

from __future__ import annotations

import hashlib
import json

from common.config.settings import Settings
from common.domain.jobs import JobOptions
from common.domain.owners import subject_folder

# Bump when the prompt or the Notes model changes what the same input produces.
VERSION = 1


def cache_key(pieces: list[str], options: JobOptions, settings: Settings) -> str:
    material = json.dumps(
        {
            "v": VERSION,
            "template": options.notes_template.value,
            "model": settings.llm.model,
            "text": pieces,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def cache_uri(settings: Settings, owner: str, key: str) -> str:
    b = settings.buckets
    return f"gs://{b.results}/{b.cache_prefix}notes/{subject_folder(owner)}/{key}.json"
