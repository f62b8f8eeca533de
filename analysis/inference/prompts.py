"""Turns an analysis into chat messages for the engine."""

from __future__ import annotations

from analysis.models import Analysis

SYSTEM_PROMPT = (
    "You are an assistant helping a professional review the material in a case. "
    "Answer precisely and say when you are not sure."
)


def build_messages(analysis: Analysis) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": analysis.question},
    ]


def fold_system_prompt(messages: list[dict]) -> list[dict]:
    """For chat templates without a system role: the system text opens the first user turn."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system and rest:
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest
