"""Notes made once per owner and content: the same transcript text, template and notes
options of one owner give the notes made the first time, at no cost.

Keyed within one owner only: another owner's identical audio pays for its own notes, so
nothing of one owner (not even that the same words were summarised before) reaches another.
The model configured is part of the key, so changing it makes notes anew, and so are the
job's notes instructions (when it has any): other instructions, other notes. So are the
speaker labels, through the turn lines the notes are made from (``common.notes.turns``): the
same words said by other speakers make other notes. The names given to the labels are not:
a rename re-renders the notes and never makes them anew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from common.config.settings import Settings
from common.domain.jobs import JobOptions
from common.domain.owners import subject_folder
from common.domain.transcripts import Transcript
from common.notes.turns import notes_pieces

# Bump when the prompt or the Notes model changes what the same input produces. Not bumped for
# speakers: a transcript without them is sent as before, and its stored notes (decisions as
# strings, no raised_by) still load, so its key and its entry stay good. 2: the worked
# example, action items first, and the answer checked against the transcript (attribution,
# grounding). DELETE removes a job's entries under every version (``all_versions``).
VERSION = 2
all_versions = range(1, VERSION + 1)


def cache_key(
    pieces: Transcript | Sequence[str],
    options: JobOptions,
    settings: Settings,
    *,
    version: int = VERSION,
) -> str:
    """The key of a transcript's notes. Give the transcript (or ``notes_pieces`` of it): its
    plain ``.pieces`` carry no speakers and are the right key only without them."""
    text = notes_pieces(pieces) if isinstance(pieces, Transcript) else list(pieces)
    material: dict[str, object] = {
        "v": version,
        "template": options.notes_template.value,
        "model": settings.llm.model,
        "text": text,
    }
    if options.notes_instructions is not None:
        # Only when given: the keys of notes made without them stay what they were.
        material["instructions"] = options.notes_instructions
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode())
    return digest.hexdigest()


def cache_uri(settings: Settings, owner: str, key: str) -> str:
    b = settings.buckets
    return f"gs://{b.results}/{b.cache_prefix}notes/{subject_folder(owner)}/{key}.json"
