"""Notes without a model: sentence ranking, keyword extraction and rules. Pure, no I/O.

The last link of the provider chain (so that notes are always produced) and the engine behind
the local OpenAI-compatible server, which answers from the transcript it is sent.

- summary and key points: sentences scored by the frequency of their content words (a
  Luhn/SumBasic-style ranking) with a small lead bonus, redundant sentences dropped;
- topics and title: RAKE-style candidate phrases (runs of content words) scored by degree
  over frequency, weighted by how often they occur;
- action items, decisions, open questions, people: rules over single sentences.

Given speaker turns (``common.notes.turns``), every sentence is known by its speaker: a
first-person commitment ("I'll send it") is owned by that speaker's label, and action items,
decisions and questions are raised by the speaker of their sentence. Without turns they are
as before: "I" is "speaker" and nothing is raised by anyone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from common.domain.jobs import NotesTemplate
from common.domain.notes import TEMPLATES, ActionItem, Notes, Raised
from common.notes.turns import parse_turns


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't do
    does doesn't doing don't down during each few for from further get gets getting got had
    hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's
    like me more most mustn't my myself no nor not now of off on once only or other ought our
    ours ourselves out over own really right same say said says shall shan't she she'd she'll
    she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've this those through to too under
    until up us very was wasn't we we'd we'll we're we've were weren't what what's when when's
    where where's which while who who's whom why why's will with won't would wouldn't yeah yes
    you you'd you'll you're you've your yours yourself yourselves okay ok um uh oh well so
    going gonna want wanna thing things think know mean lot also maybe kind sort actually
    basically one two need needs make makes made go goes went see look take first next last
    time today tomorrow yesterday week day days good great fine sure thanks thank please
    nobody knows yet everyone everybody morning afternoon evening hello hi finally first
    second third lot lots bit"""
)

_CALENDAR = _wordset(
    """monday tuesday wednesday thursday friday saturday sunday january february march april
    may june july august september october november december"""
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\u2019-]*")
_PHRASE_BREAK = re.compile(r"[,;:()\[\]\"“”!?.]")

_MODAL = (
    r"(?:will|'ll|\u2019ll|shall|is going to|are going to|am going to|needs? to|has to|have to|"
    r"should|must|is supposed to|promised to|agreed to|offered to)"
)
_ACTOR = re.compile(
    # A reply often opens with a word of assent before the commitment ("Great, I'll ...").
    rf"^(?i:(?:so|and|then|okay|ok|also|alright|finally|first|second|third|next|now|lastly|"
    rf"great|good|sure|yes|yeah|right|fine|well|perfect|thanks),?\s+)?"
    # "I'll" as well as "I will": the contraction is how commitments are usually spoken.
    rf"(?P<owner>[A-Z][a-z]+(?:\s[A-Z][a-z]+)?|I|we|We|you|You)(?:\s+{_MODAL}|['\u2019]ll)"
    rf"\s+(?P<task>.+)$"
)
_IMPERATIVE = re.compile(
    r"^(?:(?:so|and|okay|ok|also),?\s+)?(?:let's|let us|please|remember to|don't forget to|"
    r"make sure (?:to|that)|action item:?|to ?do:?|follow up (?:on|with))\s+(?P<task>.+)$",
    re.IGNORECASE,
)
_DUE = re.compile(
    r"\b(?:by|before|on|until|due|no later than)\s+(?:the\s+)?(?:"
    r"(?:next\s+|this\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|week|"
    r"month|quarter)|tomorrow|tonight|end of (?:the\s+)?(?:day|week|month|quarter|year)|"
    r"(?:january|february|march|april|may|june|july|august|september|october|november|"
    r"december)\s+\d{1,2}(?:st|nd|rd|th)?|\d{1,2}(?:st|nd|rd|th)?(?:\s+of\s+\w+)?|"
    r"\d{4}-\d{2}-\d{2}|noon|midnight)\b"
    r"|\b(?:tomorrow|tonight|next week|next month|this afternoon|this evening|later today)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:decided|decide to|agreed|agree that|we agree|concluded|settled on|go with|going with|"
    r"chose|chosen|approved|the decision is|the plan is|we will use|we'll use|final answer)\b",
    re.IGNORECASE,
)
_UNCERTAIN = re.compile(
    r"\b(?:not sure|unclear|open question|to be determined|tbd|don't know yet|we don't know|"
    r"need to figure out|still need to decide|undecided)\b",
    re.IGNORECASE,
)
_PERSON_VERB = re.compile(
    r"^(?:will|'ll|said|says|thinks|asked|agreed|mentioned|suggested|can|should|is|was|has|"
    r"wants|needs|and|to)\b"
)


def split_sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    if not text:
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if len(_WORD.findall(s)) >= 2]


def content_words(text: str) -> list[str]:
    return [
        w
        for w in (m.lower().replace("\u2019", "'") for m in _WORD.findall(text))
        if w not in STOPWORDS and len(w) > 2 and not w.isdigit()
    ]


def rank_sentences(sentences: Sequence[str]) -> list[int]:
    """Indexes of ``sentences``, best first."""
    freq = Counter(w for s in sentences for w in content_words(s))
    if not freq:
        return list(range(len(sentences)))
    top = max(freq.values())
    scores: list[tuple[float, int]] = []
    n = len(sentences)
    for i, sentence in enumerate(sentences):
        words = content_words(sentence)
        if not words:
            scores.append((0.0, i))
            continue
        weight = sum(freq[w] / top for w in set(words)) / math.sqrt(len(words))
        lead = 0.15 * (1 - i / n) if n > 1 else 0.0
        scores.append((weight + lead, i))
    scores.sort(key=lambda pair: (-pair[0], pair[1]))
    return [i for _, i in scores]


def _pick(sentences: Sequence[str], order: Iterable[int], k: int) -> list[int]:
    chosen: list[int] = []
    seen: list[set[str]] = []
    for i in order:
        words = set(content_words(sentences[i]))
        if not words or any(_jaccard(words, other) > 0.5 for other in seen):
            continue
        chosen.append(i)
        seen.append(words)
        if len(chosen) == k:
            break
    return chosen


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def keyphrases(text: str, k: int = 8) -> list[str]:
    """RAKE-style phrases: runs of up to three content words between stopwords/punctuation."""
    phrases: list[tuple[str, ...]] = []
    for fragment in _PHRASE_BREAK.split(text):
        run: list[str] = []
        for raw in _WORD.findall(fragment):
            word = raw.lower().replace("\u2019", "'")
            if word in STOPWORDS or len(word) <= 2 or word.isdigit() or word in _CALENDAR:
                if run:
                    phrases.append(tuple(run[:3]))
                run = []
            else:
                run.append(word)
        if run:
            phrases.append(tuple(run[:3]))
    if not phrases:
        return []
    freq: Counter[str] = Counter()
    degree: Counter[str] = Counter()
    for phrase in phrases:
        for word in phrase:
            freq[word] += 1
            degree[word] += len(phrase)
    counts = Counter(phrases)
    scored = {
        p: sum(degree[w] / freq[w] for w in p) * math.log1p(counts[p]) + freq[p[0]] * 0.1
        for p in counts
    }
    result: list[str] = []
    used: set[str] = set()
    for phrase in sorted(scored, key=lambda p: (-scored[p], p)):
        if any(w in used for w in phrase) and len(result) >= 3:
            continue
        if len(phrase) == 1 and freq[phrase[0]] < 2 and len(counts) > 12:
            continue
        result.append(" ".join(phrase))
        used.update(phrase)
        if len(result) == k:
            break
    return result


def people(sentences: Sequence[str]) -> list[str]:
    found: Counter[str] = Counter()
    for sentence in sentences:
        tokens = sentence.split()
        i = 0
        while i < len(tokens):
            word = tokens[i].strip(".,;:!?\"'()")
            if _is_name(word):
                name = [word]
                while i + 1 < len(tokens) and _is_name(tokens[i + 1].strip(".,;:!?\"'()")):
                    if tokens[i].endswith((",", ".", ";", ":", "!", "?")):
                        break
                    i += 1
                    name.append(tokens[i].strip(".,;:!?\"'()"))
                rest = " ".join(tokens[i + 1 : i + 2]).lower()
                at_start = i - len(name) + 1 == 0
                if not at_start or _PERSON_VERB.match(rest) or tokens[i].endswith(","):
                    found[" ".join(name)] += 1
            i += 1
    return [name for name, _ in found.most_common(12)]


def _is_name(word: str) -> bool:
    return (
        len(word) > 1
        and word[0].isupper()
        and word[1:].islower()
        and word.isalpha()
        and word.lower() not in STOPWORDS
        and word.lower() not in _CALENDAR
        and word.lower() not in _NOT_NAMES
    )


_NOT_NAMES = _wordset(
    """hello hi hey alright right good great first second third then also after before now
    today tomorrow yesterday next last this that these those there here our their everyone
    anyway however meanwhile finally overall action decision question english french german
    spanish europe america monday"""
)


def action_items(
    sentences: Sequence[str], speakers: Sequence[str | None] | None = None
) -> list[ActionItem]:
    """``speakers``: the label of each sentence's speaker, when the transcript has turns."""
    said_by = list(speakers) if speakers is not None else [None] * len(sentences)
    items: list[ActionItem] = []
    for sentence, speaker in zip(sentences, said_by, strict=True):
        if sentence.endswith("?"):
            continue
        body = sentence.rstrip(".!")
        owner: str | None = None
        match = _ACTOR.match(body)
        if match:
            who = match.group("owner")
            task = match.group("task")
            if who.lower() in ("we", "you"):
                owner = None
            elif who == "I":
                owner = speaker or "speaker"
            elif _is_name(who.split()[0]):
                owner = who
            else:
                continue
            if task.lower().startswith(("be ", "have been ", "probably be", "see ")):
                continue
        else:
            imperative = _IMPERATIVE.match(body)
            if not imperative:
                continue
            task = imperative.group("task")
        due_match = _DUE.search(task)
        due = due_match.group(0) if due_match else None
        if due is not None:
            due = re.sub(
                r"^(?:by|before|on|until|due|no later than)\s+(?:the\s+)?", "", due, flags=re.I
            )
        task = task.strip().rstrip(",")
        if len(content_words(task)) < 1:
            continue
        items.append(
            ActionItem(task=task[0].upper() + task[1:], owner=owner, due=due, raised_by=speaker)
        )
    return _dedupe_items(items)[:30]


def _dedupe_items(items: list[ActionItem]) -> list[ActionItem]:
    out: list[ActionItem] = []
    seen: set[str] = set()
    for item in items:
        key = f"{item.owner}|{' '.join(_WORD.findall(item.task.lower()))}"
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def extract_notes(text: str, template: NotesTemplate = NotesTemplate.MEETING) -> Notes:
    """Notes from transcript text (plain, or turn lines); deterministic for a given text and
    template."""
    turns = parse_turns(text)
    if turns is None:
        sentences = split_sentences(text)
        speakers: list[str | None] = [None] * len(sentences)
        plain = text
    else:
        said = [(speaker, s) for speaker, words in turns for s in split_sentences(words)]
        sentences = [s for _, s in said]
        speakers = [speaker for speaker, _ in said]
        plain = " ".join(words for _, words in turns)
    if not sentences:
        return _empty(template)
    order = rank_sentences(sentences)
    n = len(sentences)
    summary_k = 3 if n < 30 else 5
    summary_idx = sorted(_pick(sentences, order, summary_k))
    key_k = min(8, max(3, n // 6))
    key_idx = _pick(sentences, order, key_k)
    topics = keyphrases(plain, 8)
    said_by = list(zip(sentences, speakers, strict=True))
    decisions = _unique_raised(
        Raised(text=s, raised_by=by)
        for s, by in said_by
        if _DECISION.search(s) and not s.endswith("?")
    )
    questions = _unique_raised(
        Raised(text=s, raised_by=by) for s, by in said_by if s.endswith("?") or _UNCERTAIN.search(s)
    )
    actions = action_items(sentences, speakers)
    return _compose(
        template,
        summary=" ".join(sentences[i] for i in summary_idx),
        key_points=[sentences[i] for i in sorted(key_idx)],
        action_items=actions,
        decisions=decisions[:10],
        open_questions=questions[:10],
        topics=topics,
        people=people(sentences),
    )


def merge_notes(parts: Sequence[Notes], template: NotesTemplate = NotesTemplate.MEETING) -> Notes:
    """The reduce step: one set of notes from the notes of consecutive chunks."""
    if not parts:
        return _empty(template)
    if len(parts) == 1:
        return parts[0]
    summary_sentences = [s for p in parts for s in split_sentences(p.summary)]
    order = rank_sentences(summary_sentences)
    summary_k = min(6, max(3, len(parts)))
    summary = " ".join(
        summary_sentences[i] for i in sorted(_pick(summary_sentences, order, summary_k))
    )
    points = _unique(p for part in parts for p in part.key_points)
    point_order = rank_sentences(points)
    key_points = [points[i] for i in sorted(_pick(points, point_order, 10))]
    topic_counts: Counter[str] = Counter()
    for rank_part in parts:
        for rank, topic in enumerate(rank_part.topics):
            topic_counts[topic.lower()] += len(rank_part.topics) - rank
    topics = [t for t, _ in topic_counts.most_common(10)]
    people_counts = Counter(p for part in parts for p in part.people)
    return _compose(
        template,
        summary=summary,
        key_points=key_points,
        action_items=_dedupe_items([a for p in parts for a in p.action_items])[:60],
        decisions=_unique_raised(d for p in parts for d in p.decisions)[:15],
        open_questions=_unique_raised(q for p in parts for q in p.open_questions)[:15],
        topics=topics,
        people=[name for name, _ in people_counts.most_common(15)],
    )


def _compose(
    template: NotesTemplate,
    *,
    summary: str,
    key_points: list[str],
    action_items: list[ActionItem],
    decisions: list[Raised],
    open_questions: list[Raised],
    topics: list[str],
    people: list[str],
) -> Notes:
    label = TEMPLATES[template].label
    title = label
    if topics:
        lead = " and ".join(topics[:2])
        title = f"{label}: {lead[0].upper()}{lead[1:]}"
    return Notes(
        title=title,
        summary=summary,
        key_points=key_points,
        action_items=action_items,
        decisions=decisions,
        open_questions=open_questions,
        topics=topics,
        people=people,
        diary_entry=_diary(template, summary, topics, action_items, people),
    )


def _diary(
    template: NotesTemplate,
    summary: str,
    topics: list[str],
    items: list[ActionItem],
    names: list[str],
) -> str:
    about = ", ".join(topics[:3]) if topics else "several things"
    opening = {
        NotesTemplate.MEETING: f"Today I was in a meeting about {about}",
        NotesTemplate.LECTURE: f"Today I attended a lecture on {about}",
        NotesTemplate.INTERVIEW: f"Today I conducted an interview that covered {about}",
        NotesTemplate.DIARY: f"Today I recorded a note to myself about {about}",
    }[template]
    if names and template != NotesTemplate.DIARY:
        opening += f", with {', '.join(names[:3])} mentioned"
    parts = [opening + "."]
    lead = split_sentences(summary)[:2]
    if lead:
        parts.append("What stayed with me: " + " ".join(lead))
    if items:
        parts.append("Next I need to: " + "; ".join(i.task.rstrip(".") for i in items[:3]) + ".")
    return " ".join(parts)


def _empty(template: NotesTemplate) -> Notes:
    return Notes(
        title=TEMPLATES[template].label,
        summary="",
        key_points=[],
        action_items=[],
        decisions=[],
        open_questions=[],
        topics=[],
        people=[],
        diary_entry="",
    )


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        key = " ".join(item.lower().split())
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _unique_raised(items: Iterable[Raised]) -> list[Raised]:
    """The first of each text (who raised it first raised it)."""
    out: list[Raised] = []
    seen: set[str] = set()
    for item in items:
        key = " ".join(item.text.lower().split())
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out
