"""The model's answer: parsed and checked against ``schemas/llm_assessment.json`` before use.

The engine decodes under that schema, yet the text is still checked here: a generation cut off
at ``max_tokens``, a remote server that ignored the constraint, or a schema drift must turn into
a failed assessment of that one candidate, never into a bad alert. The checks mirror the schema;
a test holds the two together.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from riskstream.package_data import SCHEMAS
from riskstream.records import Category, Severity

SCHEMA_PATH = SCHEMAS / "llm_assessment.json"
SCORE_STEPS: tuple[float, ...] = tuple(round(i * 0.05, 2) for i in range(21))
"""The score is one of these: a bounded grammar, so a constrained generation always ends."""
RATIONALE_MAX_CHARS = 160
RATIONALE_CHARS = re.compile(r"[ !#-\[\]-~]*")
"""Printable ASCII but quote and backslash: no escapes, one byte each (the schema's pattern)."""
NO_CATEGORY = "none"
ACTIONS = ("dismiss", "monitor", "review", "escalate", "block")
_FIELDS = frozenset({"score", "category", "severity", "rationale", "recommended_action"})


class InvalidAssessmentError(ValueError):
    """The model's text is not a valid assessment; the reason says which rule it broke."""


@dataclass(frozen=True, slots=True)
class LlmAssessment:
    score: float
    """Likelihood 0..1, in steps of 0.05, that the candidate is what ``category`` names."""
    category: str
    """A :class:`Category` value, or ``none`` when the model judges the pattern benign."""
    severity: Severity
    rationale: str
    """One or two short sentences; at most 160 characters."""
    recommended_action: str
    """One of ``dismiss``, ``monitor``, ``review``, ``escalate``, ``block``."""

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["severity"] = self.severity.value
        return body


def output_schema() -> dict[str, Any]:
    """The JSON Schema the engine constrains generation with (the file, as data)."""
    return dict(json.loads(SCHEMA_PATH.read_text()))


def longest_answer_chars(schema: dict[str, Any] | None = None) -> int:
    """Characters of the longest answer the schema admits, written as the engine writes it
    (keys in order, no whitespace). Every character of it is one byte needing no escape, so a
    byte-level tokenizer spends at most this many tokens on it: ``max_tokens`` must be at
    least this plus the end-of-sequence token."""
    props = (schema or output_schema())["properties"]
    total = 2 + len(props) - 1
    for key, prop in props.items():
        if "enum" in prop:
            value = max(len(json.dumps(v, separators=(",", ":"))) for v in prop["enum"])
        else:
            value = prop["maxLength"] + 2
        total += len(json.dumps(key)) + 1 + value
    return total


ANSWER_MAX_TOKENS = longest_answer_chars() + 1
"""The least ``max_tokens`` under which no valid answer is cut off (+1: end of sequence)."""


def parse_assessment(text: str) -> LlmAssessment:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAssessmentError(f"not JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(obj, dict):
        raise InvalidAssessmentError("not a JSON object")
    missing = _FIELDS - obj.keys()
    if missing:
        raise InvalidAssessmentError(f"missing {sorted(missing)}")
    extra = obj.keys() - _FIELDS
    if extra:
        raise InvalidAssessmentError(f"unexpected {sorted(extra)}")
    score = obj["score"]
    if isinstance(score, bool) or not isinstance(score, int | float) or float(score) not in SCORE_STEPS:
        raise InvalidAssessmentError(f"score {score!r} is not one of 0, 0.05, ..., 1")
    category = obj["category"]
    if category != NO_CATEGORY and category not in {c.value for c in Category}:
        raise InvalidAssessmentError(f"category {category!r} is unknown")
    try:
        severity = Severity(obj["severity"])
    except ValueError:
        raise InvalidAssessmentError(f"severity {obj['severity']!r} is unknown") from None
    rationale = obj["rationale"]
    if not isinstance(rationale, str) or not 1 <= len(rationale) <= RATIONALE_MAX_CHARS:
        raise InvalidAssessmentError(f"rationale must be a string of 1..{RATIONALE_MAX_CHARS} characters")
    if not RATIONALE_CHARS.fullmatch(rationale):
        raise InvalidAssessmentError("rationale must be printable ASCII without quote or backslash")
    action = obj["recommended_action"]
    if action not in ACTIONS:
        raise InvalidAssessmentError(f"recommended_action {action!r} is unknown")
    return LlmAssessment(float(score), category, severity, rationale, action)
