"""Structured answers: a JSON schema becomes a grammar, and the answer is validated.

The grammar (llama-cpp's JSON-schema converter) makes the model emit JSON of the schema's
shape, but it cannot promise a *complete* document — the answer may hit max_tokens midway —
and it ignores some keywords (numeric bounds, formats). So the text is validated with the
`jsonschema` package (the reference implementation of every draft, a pure-Python wheel plus
`rpds-py`) before it is saved: a hand-written validator would re-implement $ref, anyOf and
friends, and be wrong about some of them.
"""

from __future__ import annotations

import json

from analysis.inference.types import EngineError, InvalidStructuredOutput

# Findings on a timeline: what the issue cites as the typical structured question.
FINDINGS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "timestamp": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}:[0-9]{2}$"},
            "finding": {"type": "string"},
            "severity": {"enum": ["low", "medium", "high"]},
        },
        "required": ["timestamp", "finding", "severity"],
        "additionalProperties": False,
    },
}


def check_schema(schema: dict) -> None:
    """Refuse a schema that is not valid JSON Schema, before anything is queued."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise EngineError(f"The answer schema is not valid JSON Schema: {exc.message}") from exc


def grammar_for(schema: dict):
    from llama_cpp import LlamaGrammar

    check_schema(schema)
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # the converter raises bare ValueErrors/KeyErrors
        raise EngineError(f"The answer schema cannot be turned into a grammar: {exc}") from exc


def instructions(schema: dict) -> str:
    """Said after the question, so real models aim for the grammar instead of fighting it."""
    return "\n\nAnswer with JSON only, valid against this JSON schema:\n" + json.dumps(schema)


def validate(text: str, schema: dict):
    """The parsed answer, or InvalidStructuredOutput saying what is wrong with it."""
    from jsonschema import Draft202012Validator

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidStructuredOutput(
            f"The answer is not complete JSON ({exc.msg}, character {exc.pos}); "
            "it may have hit the token limit."
        ) from exc
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: e.path)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        raise InvalidStructuredOutput(
            f"The answer does not match the schema at {where}: {errors[0].message}"
        )
    return value
