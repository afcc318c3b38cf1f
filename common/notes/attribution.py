"""Who owns an action item, read off the turn that commits to it.

A small model reads "Owen, I'll cancel the unused licences" in a turn of SPEAKER_3 and writes
owner "Owen": the name it saw, not the speaker who said "I'll". The extractive engine's rule
reads that turn right (a sentence "I'll ..." in a turn of SPEAKER_3 is SPEAKER_3's; "Noor will
..." is Noor's), and it rarely names a wrong owner (precision 0.96 on bench/notes_eval), but it
finds only the commitments phrased that way. So each of a model's items is matched to the
rule's items of the same transcript by the content words of their tasks; where one matches and
the rule names an owner, the rule's owner stands, and the model's is recorded as replaced.
Items the rule does not find keep the model's owner (grounding still checks it). A speaker's
own commitment ("I'll ..." in their turn) that the model left out entirely is added, as the
rule wrote it: a small model misses many of them in a long meeting.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.domain.notes import ActionItem, Dropped, Notes
from common.notes.extractive import content_words
from common.notes.grounding import FIRST_PERSON_OWNER

# Shared content words over the smaller task's: "Cancel the unused SaaS licences" and
# "cancel unused licences" share 3 of 3.
MIN_OVERLAP = 0.5
NEAR = 0.34
_STEM = 5  # "licences" and "licence", "planning" and "planned" share a stem


def _stems(task: str) -> frozenset[str]:
    return frozenset(w[:_STEM] for w in content_words(task))


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    # One shared word is not a match when both tasks have more to say.
    if shared < 2 and min(len(a), len(b)) > 1:
        return 0.0
    return shared / min(len(a), len(b))


def replaced_reason(owner: str) -> str:
    return f"the turn that commits to it makes {owner} the owner"


def attribute(
    notes: Notes, rule_items: Sequence[ActionItem]
) -> tuple[Notes, list[Dropped], list[ActionItem]]:
    """``notes`` with each matched item's owner taken from ``rule_items`` (the extractive
    engine's items of the same transcript) and the first-person commitments it lacked added;
    the owners that were replaced, and the items added."""
    model = [_stems(i.task) for i in notes.action_items]
    rule = [_stems(i.task) for i in rule_items]
    pairs = sorted(
        (
            (_overlap(m, r), mi, ri)
            for mi, m in enumerate(model)
            for ri, r in enumerate(rule)
            # "speaker" (a plain transcript's "I") says nothing a model could get wrong
            if rule_items[ri].owner not in (None, FIRST_PERSON_OWNER)
        ),
        reverse=True,
    )
    taken_model: set[int] = set()
    taken_rule: set[int] = set()
    # A rule item close to any of the model's is not added again, matched or not.
    near = {ri for ri, r in enumerate(rule) if any(_overlap(m, r) >= NEAR for m in model)}
    owners: dict[int, str] = {}
    for score, mi, ri in pairs:
        if score < MIN_OVERLAP:
            break
        if mi in taken_model or ri in taken_rule:
            continue
        taken_model.add(mi)
        taken_rule.add(ri)
        owners[mi] = str(rule_items[ri].owner)
    replaced: list[Dropped] = []
    items: list[ActionItem] = []
    for i, item in enumerate(notes.action_items):
        owner = owners.get(i)
        if owner is not None and owner != item.owner:
            if item.owner is not None:
                replaced.append(
                    Dropped(
                        field=f"action_items[{i}].owner",
                        value=item.owner,
                        reason=replaced_reason(owner),
                    )
                )
            item = item.model_copy(update={"owner": owner})
        items.append(item)
    added = [
        item
        for ri, item in enumerate(rule_items)
        if ri not in taken_rule and ri not in near and _is_label(item.owner)
    ]
    update = {"action_items": items + added}
    return notes.model_copy(update=update), replaced, added


def _is_label(owner: str | None) -> bool:
    return owner is not None and owner.startswith("SPEAKER_")
