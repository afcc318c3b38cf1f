"""``response_format`` → a GBNF grammar that llama.cpp enforces token by token.

The JSON-schema converter is the one llama.cpp ships (vendored in cyllama). Its grammars allow
up to two newlines and twenty spaces of indentation between tokens, which a small model spends
whole tokens on; here the space between JSON tokens is at most one blank, so an answer costs
about a third fewer tokens.

Greedy decoding of a small model can repeat one array item until the token limit (seen with
the 0.5B: the same four topics, over and over). So every array the schema leaves unbounded
gets ``maxItems``: the grammar then closes it, and the answer stays valid JSON. (Strings are
not bounded so: ``char{0,800}`` makes llama.cpp's grammar sampler several times slower; the
model's repeat penalty keeps strings from looping.)
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cyllama.utils.json_schema_to_grammar import json_schema_to_grammar

_COMPACT_SPACE = 'space ::= " "?'
# Any JSON object, for response_format json_object.
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


class BadSchema(ValueError):
    pass


def grammar_for(
    kind: str,
    schema: dict[str, Any] | None = None,
    *,
    max_items: int = 12,
) -> str | None:
    if kind == "text":
        return None
    if kind == "json_object":
        return _compiled(json.dumps(_ANY_OBJECT))
    return _compiled(json.dumps(_bounded(schema, max_items)))


def _bounded(node: Any, max_items: int) -> Any:
    """``node`` with ``maxItems`` on every array schema that has none."""
    if isinstance(node, list):
        return [_bounded(item, max_items) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _bounded(value, max_items) for key, value in node.items()}
    kinds = out.get("type")
    if "array" in (kinds if isinstance(kinds, list) else [kinds]) and "maxItems" not in out:
        out["maxItems"] = max_items
    return out


@lru_cache(maxsize=64)
def _compiled(schema_json: str) -> str:
    """Cached by the schema's text: the notes chain sends the same schema every time."""
    try:
        grammar = json_schema_to_grammar(json.loads(schema_json))
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadSchema(f"the JSON schema cannot be compiled to a grammar: {exc}") from exc
    if "root ::=" not in grammar:
        raise BadSchema("the JSON schema compiled to a grammar without a root rule")
    return "\n".join(
        _COMPACT_SPACE if line.startswith("space ::=") else line for line in grammar.splitlines()
    )
